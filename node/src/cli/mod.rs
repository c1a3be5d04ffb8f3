//! The `hashmesh` command line: node set-up and running, and a client of the node's RPC.

/// Like `println!`, but a closed stdout (`hashmesh entries | head`) ends the output quietly
/// instead of panicking: the reader has what it wanted.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod client;
mod commands;
mod devnet;
pub mod init;
mod lists;
mod manifest;
mod member;
mod reports;
mod review;
mod scan;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use hashmesh_protocol::{Category, Fingerprint, MemberId, RecordId, Status, Verdict};

pub use commands::run;

/// hashmesh: a federated, peer-to-peer exchange of fingerprints of illegal content.
///
/// A node keeps a full replica of the federation's signed entries and votes, matches content
/// against it, and replicates with the other members' nodes. Set one up with `init` and
/// `run`; everything else talks to a running node over its RPC.
#[derive(Debug, Parser)]
#[command(name = "hashmesh", version, propagate_version = true)]
pub struct Cli {
    /// The node's RPC address.
    #[arg(long, global = true, env = "HASHMESH_RPC", default_value = "http://127.0.0.1:7800")]
    pub rpc: String,
    /// RPC bearer token (printed by `init`, kept in <data-dir>/rpc-tokens).
    #[arg(long, global = true, env = "HASHMESH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA certificates to trust for an https:// node (a private CA, or the node's own
    /// self-signed certificate); without it, the public roots.
    #[arg(long, global = true, env = "HASHMESH_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a data dir: member key (0600), config with RPC tokens, and a manifest.
    Init(InitArgs),
    /// Run a node from its data dir (made by `hashmesh init`).
    Run(RunArgs),
    /// Make a member key file (0600) and print the member key and peer id to send to the
    /// federation, which lists them in its manifest; then `init --key FILE --manifest …`.
    Keygen {
        /// Where to write the key.
        #[arg(long, default_value = "member.key")]
        out: PathBuf,
    },
    /// Founding a federation: build its genesis manifest from the members' `keygen` outputs,
    /// or check a manifest.
    #[command(subcommand)]
    Manifest(manifest::ManifestCommand),
    /// Run a local federation of N member nodes in one process (fresh keys, one manifest).
    Devnet(DevnetArgs),
    /// Show the node's status: replica size, digest, logs, equivocators, sync state.
    Status,
    /// Probe the node, for a container HEALTHCHECK (no token, no shell or curl needed):
    /// exit 0 if `/healthz` answers 200, 1 otherwise (the reason on stderr).
    Health {
        /// Probe `/readyz` instead (caught up with a peer), not just alive.
        #[arg(long)]
        ready: bool,
    },
    /// List member peers: connection, address, records exchanged, rejects.
    Peers,
    /// Submit an entry: fingerprints of content your platform removed.
    Submit(SubmitArgs),
    /// Vote on another member's entry (admin token).
    Vote(VoteArgs),
    /// Retract one of your member's entries (admin token).
    Retract(RetractArgs),
    /// List entries, filtered and paged.
    Entries(EntriesArgs),
    /// Show one entry with its votes and status.
    Show {
        /// Entry id.
        id: RecordId,
    },
    /// Match fingerprints (--hash) or files against the node's replica.
    Match(MatchArgs),
    /// Import a hash list as entries of your member (submitter token): rows the federation
    /// already holds are skipped, bad rows are listed with their line and the reason.
    ///
    /// Exit status 0 when every row was imported or already held, 1 otherwise.
    Import(lists::ImportArgs),
    /// Export the replica, or a filtered part of it, as a hash list that `import` reads back.
    Export(lists::ExportArgs),
    /// Print every fingerprint of each file (and URL), offline (no node needed).
    ///
    /// Exact kinds for any file; for images (JPEG, PNG, GIF, WebP, BMP) also pdq (with its
    /// quality), dhash and phash; for videos (MP4/MOV, WebM/MKV, AVI, FLV, MPEG-TS) also vpdq,
    /// decoded by FFmpeg (`HASHMESH_VIDEO_FFMPEG` and `HASHMESH_VIDEO_FFPROBE` name other
    /// programs).
    Hash {
        /// Files to hash.
        #[arg(required_unless_present = "urls")]
        files: Vec<PathBuf>,
        /// URLs to fingerprint as `url:` (normalised, then blake3).
        #[arg(long = "url")]
        urls: Vec<String>,
    },
    /// Entries awaiting this member's vote, oldest first, with every vote and reason (admin
    /// token).
    Queue {
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// An entry's signed history: the entry, each vote and retraction, the status after each.
    History {
        /// Entry id.
        id: RecordId,
    },
    /// Print a proof of an entry's status (JSON) that `hashmesh verify` checks offline.
    ExportProof {
        /// Entry id.
        id: RecordId,
    },
    /// Check a proof from `export-proof` offline: signatures, the membership chain, the
    /// status. No node needed.
    Verify {
        /// The proof file.
        file: PathBuf,
        /// Your copy of the federation's genesis manifest, to check the proof's against.
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
    /// Matches and removals by day and category, summed over the members' signed daily
    /// counters.
    Stats {
        /// First day, YYYY-MM-DD (default 30 days before --to).
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD (default today, UTC).
        #[arg(long)]
        to: Option<String>,
        /// First sign and publish this member's changed counters now (admin token), rather
        /// than at the next `stats.publish_interval`.
        #[arg(long)]
        publish: bool,
    },
    /// Delivery state of this node's webhooks: events delivered and waiting, the last error
    /// (admin token).
    Webhooks,
    /// Membership epochs: propose and approve changes to the federation, list its members.
    #[command(subcommand)]
    Member(member::MemberCommand),
    /// Print a shell completion script: `source <(hashmesh completions bash)`, or save it
    /// where your shell looks (see README).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages: hashmesh.1 and one per command (hashmesh-run.1, …) into a
    /// folder (`man -l DIR/hashmesh.1`, or install them under /usr/local/share/man/man1), or
    /// hashmesh.1 alone to stdout.
    Man {
        /// The folder to write the pages into (created if missing).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Raw signed records of one author's log, for audit.
    Records {
        /// The author's member id.
        #[arg(long)]
        author: MemberId,
        /// First seq.
        #[arg(long, default_value_t = 1)]
        from_seq: u64,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// `hashmesh init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Where to create the node's data.
    #[arg(long, env = "HASHMESH_DATA_DIR", default_value = "hashmesh-data")]
    pub data_dir: PathBuf,
    /// The federation manifest to join; without it, a single-member genesis manifest is made.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Use this member key file (from `hashmesh keygen`) instead of generating a new key:
    /// the key the federation's manifest lists for you.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Federation name for a new genesis manifest.
    #[arg(long, default_value = "local")]
    pub federation: String,
    /// This member's name in a new genesis manifest.
    #[arg(long, default_value = "member-1")]
    pub name: String,
    /// RPC listen address.
    #[arg(long, default_value = crate::config::DEFAULT_RPC_LISTEN)]
    pub rpc_listen: std::net::SocketAddr,
    /// Make a follower's data dir: a read-only replica of this member node (its RPC URL),
    /// written to follow.node. Needs --manifest; the follower's token goes in
    /// HASHMESH_FOLLOW_TOKEN (or follow.token) when it runs.
    #[arg(long, value_name = "URL", requires = "manifest", conflicts_with = "key")]
    pub follow: Option<String>,
}

/// `hashmesh run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The node's data dir, made by `hashmesh init`.
    #[arg(long, env = "HASHMESH_DATA_DIR", default_value = "hashmesh-data")]
    pub data_dir: PathBuf,
    /// Narrow the modes of the data dir and its private files (member key, config.toml,
    /// rpc-tokens) to the node's user before starting, instead of refusing to start.
    #[arg(long)]
    pub fix_permissions: bool,
    /// Override the RPC listen address from config.toml.
    #[arg(long)]
    pub rpc_listen: Option<std::net::SocketAddr>,
    /// Run as a read-only follower of this member node (its RPC URL, e.g.
    /// http://member-node:7800): replicate from it, serve matching and reads, refuse writes.
    /// Also follow.node in config.toml or HASHMESH_FOLLOW_NODE.
    #[arg(long, value_name = "URL")]
    pub follow: Option<String>,
    /// Serve plain HTTP on an address other than loopback (a trusted network, or behind a
    /// TLS-terminating proxy); refused otherwise. Also rpc.insecure / HASHMESH_RPC_INSECURE.
    #[arg(long)]
    pub insecure_rpc: bool,
    /// The follower's token for the member node (the matcher role suffices). Also
    /// follow.token in config.toml or HASHMESH_FOLLOW_TOKEN, which keep it out of `ps`.
    #[arg(long, value_name = "TOKEN")]
    pub follow_token: Option<String>,
    /// Log lines as text, or as one JSON object per line for a log collector.
    #[arg(long, value_enum, env = "HASHMESH_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `hashmesh devnet`.
#[derive(Debug, clap::Args)]
pub struct DevnetArgs {
    /// How many member nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Where the nodes' data dirs live (reused on the next run).
    #[arg(long, default_value = "hashmesh-devnet")]
    pub dir: PathBuf,
    /// First RPC port; node i listens on this + i.
    #[arg(long, default_value_t = 7800)]
    pub rpc_port: u16,
    /// First libp2p port; node i listens on this + i.
    #[arg(long, default_value_t = 7700)]
    pub p2p_port: u16,
    /// Log lines as text, or as one JSON object per line.
    #[arg(long, value_enum, env = "HASHMESH_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How the node's log lines are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: time, level, span, message, fields.
    Text,
    /// For log collectors: one JSON object per line, the event's fields at the top level.
    Json,
}

impl Cli {
    /// The log format the command asks for (only the commands that run nodes have a choice).
    pub fn log_format(&self) -> LogFormat {
        match &self.command {
            Command::Run(RunArgs { log_format, .. }) | Command::Devnet(DevnetArgs { log_format, .. }) => {
                *log_format
            }
            _ => LogFormat::Text,
        }
    }
}

/// `hashmesh submit`.
#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// Fingerprint as kind:hex (repeatable).
    #[arg(long = "hash", required_unless_present_any = ["files", "urls"])]
    pub hashes: Vec<Fingerprint>,
    /// Files to fingerprint locally and submit (only fingerprints leave this machine).
    #[arg(long = "file")]
    pub files: Vec<PathBuf>,
    /// URLs of the content, submitted as `url:` fingerprints so shared links match.
    #[arg(long = "url")]
    pub urls: Vec<String>,
    /// Category: csam, drugs, harmful_behavior, or one the manifest adds.
    #[arg(long)]
    pub category: Category,
    /// Where the content was seen (repeatable).
    #[arg(long = "link")]
    pub links: Vec<String>,
    /// A note for reviewers.
    #[arg(long)]
    pub note: Option<String>,
    /// Unix time in ms after which the entry lapses.
    #[arg(long)]
    pub expires_at: Option<u64>,
}

/// `hashmesh vote`.
#[derive(Debug, clap::Args)]
pub struct VoteArgs {
    /// Entry id.
    pub id: RecordId,
    /// confirm or dispute.
    #[arg(value_parser = parse_verdict)]
    pub verdict: Verdict,
    /// Why (required for a dispute: the other members' reviewers read it).
    #[arg(long)]
    pub reason: Option<String>,
}

/// `hashmesh retract`.
#[derive(Debug, clap::Args)]
pub struct RetractArgs {
    /// Entry id.
    pub id: RecordId,
    /// Why.
    #[arg(long)]
    pub reason: Option<String>,
}

/// `hashmesh entries`.
#[derive(Debug, clap::Args)]
pub struct EntriesArgs {
    /// Only this status.
    #[arg(long)]
    pub status: Option<Status>,
    /// Only this category.
    #[arg(long)]
    pub category: Option<Category>,
    /// Only this author.
    #[arg(long)]
    pub author: Option<MemberId>,
    /// Page size.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Continue after this entry id.
    #[arg(long)]
    pub cursor: Option<RecordId>,
}

/// `hashmesh match`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = scan::EXIT_STATUS_HELP)]
pub struct MatchArgs {
    /// Fingerprint as kind:hex (repeatable).
    #[arg(long = "hash")]
    pub hashes: Vec<Fingerprint>,
    /// Files to match: uploaded to this platform's own node (`--rpc`), which computes every
    /// fingerprint, PDQ with its mirrored and rotated variants included (and vPDQ for a video,
    /// if the node has FFmpeg).
    pub files: Vec<PathBuf>,
    /// Scan a folder, recursively: hash every file here on all cores, send only the
    /// fingerprints to the node in batches, and write one report row per file. Exit status:
    /// 0 nothing matched, 1 something to remove or review, 2 error (see --help).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["hashes", "files"])]
    pub dir: Option<PathBuf>,
    /// With --dir: where to write the report (default: stdout).
    #[arg(long, value_name = "FILE", requires = "dir", conflicts_with_all = ["hashes", "files"])]
    pub report: Option<PathBuf>,
    /// With --dir: the report's format, one row per file [default: jsonl].
    // No `default_value`: clap does not enforce `requires` on an argument that has one. And
    // `requires` alone lets `--format csv FILE` through, since FILE rules out --dir.
    #[arg(long, value_enum, requires = "dir", conflicts_with_all = ["hashes", "files"])]
    pub format: Option<ReportFormat>,
    /// With --dir: hashing threads (default: one per core).
    #[arg(long, value_name = "N", requires = "dir", conflicts_with_all = ["hashes", "files"])]
    pub jobs: Option<std::num::NonZeroUsize>,
}

/// The format of `match --dir`'s report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

fn parse_verdict(s: &str) -> Result<Verdict, String> {
    match s {
        "confirm" => Ok(Verdict::Confirm),
        "dispute" => Ok(Verdict::Dispute),
        _ => Err(format!("verdict is `confirm` or `dispute`, not {s:?}")),
    }
}
