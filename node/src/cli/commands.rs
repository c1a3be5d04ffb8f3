//! What each verb does.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use hashmesh_protocol::MemberId;
use serde::Serialize;

use super::client::Client;
use super::init::{InitOptions, Initialised, ManifestSource, init};
use super::scan::ScanOptions;
use super::{Cli, Command, EntriesArgs, InitArgs, MatchArgs, ReportFormat, RunArgs, SubmitArgs};
use crate::api::{
    CastVote, EntryPage, EntryView, MatchHashes, MatchResponse, PeerList, RawRecord, RetractEntry,
    StatusView, SubmitEntry, Written,
};
use crate::config::{CONFIG_FILE, Config};
use crate::hashers;

/// Runs the parsed command line; the exit status is success unless the command says
/// otherwise (`match --dir` reports what it found in it).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Match(MatchArgs { dir: Some(dir), report, format, jobs, .. }) = cli.command {
        let client = Client::new(&cli.rpc, cli.token, cli.ca_file.as_deref())?;
        let jobs = jobs.or_else(|| std::thread::available_parallelism().ok()).map_or(1, usize::from);
        let options = ScanOptions { dir, report, format: format.unwrap_or(ReportFormat::Jsonl), jobs };
        return tokio::task::spawn_blocking(move || super::scan::run(&client, &options))
            .await
            .context("scan task failed");
    }
    run_command(cli).await.map(|()| ExitCode::SUCCESS)
}

async fn run_command(cli: Cli) -> anyhow::Result<()> {
    let client = || Client::new(&cli.rpc, cli.token.clone(), cli.ca_file.as_deref());
    let json = cli.json;
    // The client is blocking; keep it off the async runtime's worker threads.
    let blocking = |f: Box<dyn FnOnce() -> anyhow::Result<()> + Send>| async move {
        tokio::task::spawn_blocking(f).await.context("client task failed")?
    };
    match cli.command {
        Command::Init(args) => cmd_init(&args, json),
        Command::Keygen { out } => {
            let key = crate::identity::generate(&out)?;
            let member = hashmesh_protocol::MemberId::from_key(&key.verifying_key());
            let peer = crate::identity::peer_id(&key);
            if json {
                print_json(&serde_json::json!({ "key_file": out, "member": member, "peer_id": peer }));
            } else {
                say!("wrote {} (keep it secret; mode 0600)", out.display());
                say!("member key: {member}");
                say!("peer id:    {peer}");
                say!("send both to the federation; once the manifest lists them:");
                say!("  hashmesh init --key {} --manifest federation.toml", out.display());
            }
            Ok(())
        }
        Command::Run(args) => cmd_run(args).await,
        Command::Health { ready } => {
            // A probe, not a client: no token, and any status but 200 is a failure (exit 1).
            let c = Client::new(&cli.rpc, None, cli.ca_file.as_deref())?;
            let path = if ready { "/readyz" } else { "/healthz" };
            blocking(Box::new(move || match c.probe(path)? {
                (200, _) => Ok(()),
                (code, body) => bail!("{path} answered HTTP {code}: {}", body.trim()),
            }))
            .await
        }
        Command::Manifest(command) => super::manifest::run(command, json),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            // Into a buffer first: clap_complete panics on a closed stdout (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "hashmesh", &mut script);
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(())
        }
        Command::Man { out_dir } => {
            let command = <Cli as clap::CommandFactory>::command();
            match out_dir {
                Some(dir) => {
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    clap_mangen::generate_to(command, &dir)
                        .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
                    say!(
                        "wrote the manual pages into {}: man -l {}",
                        dir.display(),
                        dir.join("hashmesh.1").display()
                    );
                }
                None => {
                    let mut page = Vec::new();
                    clap_mangen::Man::new(command).render(&mut page)?;
                    let _ = std::io::Write::write_all(&mut std::io::stdout(), &page);
                }
            }
            Ok(())
        }
        Command::Devnet(args) => super::devnet::devnet(&args).await,
        Command::Peers => {
            let c = client()?;
            blocking(Box::new(move || {
                let list: PeerList = c.get("/v1/peers")?;
                if json {
                    print_json(&list);
                    return Ok(());
                }
                for p in &list.peers {
                    say!(
                        "{} {:<10} {:<28} received {:<6} sent {:<6} rejects {:<3} {}",
                        p.peer_id,
                        p.member.as_deref().unwrap_or("?"),
                        p.address.as_deref().unwrap_or("(not connected)"),
                        p.records_received,
                        p.records_sent,
                        p.rejects,
                        if p.in_sync { "in sync" } else { "" }
                    );
                }
                Ok(())
            }))
            .await
        }
        Command::Status => {
            let c = client()?;
            blocking(Box::new(move || print_status(&c.get::<StatusView>("/v1/status")?, json))).await
        }
        Command::Submit(args) => {
            let c = client()?;
            blocking(Box::new(move || submit(&c, args, json))).await
        }
        Command::Vote(args) => {
            let c = client()?;
            blocking(Box::new(move || {
                let body = CastVote { verdict: args.verdict, reason: args.reason };
                let w: Written = c.post(&format!("/v1/entries/{}/votes", args.id), &body)?;
                print_written("vote", &w, json)
            }))
            .await
        }
        Command::Retract(args) => {
            let c = client()?;
            blocking(Box::new(move || {
                let w: Written = c.post(
                    &format!("/v1/entries/{}/retract", args.id),
                    &RetractEntry { reason: args.reason },
                )?;
                print_written("retraction", &w, json)
            }))
            .await
        }
        Command::Entries(args) => {
            let c = client()?;
            blocking(Box::new(move || list_entries(&c, &args, json))).await
        }
        Command::Show { id } => {
            let c = client()?;
            blocking(Box::new(move || {
                let e: EntryView = c.get(&format!("/v1/entries/{id}"))?;
                if json {
                    print_json(&e)
                } else {
                    print_entry(&e, true)
                }
                Ok(())
            }))
            .await
        }
        Command::Match(args) => {
            let c = client()?;
            blocking(Box::new(move || match_(&c, args, json))).await
        }
        Command::Import(args) => {
            let c = client()?;
            blocking(Box::new(move || super::lists::import(&c, &args, json))).await
        }
        Command::Export(args) => {
            let c = client()?;
            blocking(Box::new(move || super::lists::export(&c, &args))).await
        }
        Command::Stats { from, to, publish } => {
            let c = client()?;
            blocking(Box::new(move || {
                super::reports::stats(&c, from.as_deref(), to.as_deref(), publish, json)
            }))
            .await
        }
        Command::Webhooks => {
            let c = client()?;
            blocking(Box::new(move || super::reports::webhooks(&c, json))).await
        }
        Command::Hash { files, urls } => hash_files(&files, &urls, json),
        Command::Queue { limit } => {
            let c = client()?;
            blocking(Box::new(move || super::review::queue(&c, limit, json))).await
        }
        Command::History { id } => {
            let c = client()?;
            blocking(Box::new(move || super::review::history(&c, id, json))).await
        }
        Command::ExportProof { id } => {
            let c = client()?;
            blocking(Box::new(move || super::review::export_proof(&c, id))).await
        }
        Command::Verify { file, manifest } => super::review::verify(&file, manifest.as_deref(), json),
        Command::Member(command) => {
            let c = client()?;
            blocking(Box::new(move || super::member::run(&c, command, json))).await
        }
        Command::Records { author, from_seq, limit } => {
            let c = client()?;
            blocking(Box::new(move || {
                let records: Vec<RawRecord> =
                    c.get(&format!("/v1/records?author={author}&from_seq={from_seq}&limit={limit}"))?;
                if json {
                    print_json(&records);
                } else {
                    for r in records {
                        say!("{} seq {} {}", r.id, r.seq, r.bytes);
                    }
                }
                Ok(())
            }))
            .await
        }
    }
}

pub(super) fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => say!("{text}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

fn cmd_init(args: &InitArgs, json: bool) -> anyhow::Result<()> {
    let mut config = Config::default();
    config.rpc.listen = args.rpc_listen;
    if let Some(node) = &args.follow {
        config.follow.node = node.clone();
        // The token comes when it runs; checked here for the URL alone.
        config.follow.token = "checked at run".into();
        config.check().map_err(|e| anyhow::anyhow!("{e}"))?;
        config.follow.token.clear();
    }
    let key = match &args.key {
        Some(path) => Some(crate::identity::load(path)?),
        None => None,
    };
    let mut own_addresses = None;
    let manifest = match &args.manifest {
        Some(path) => {
            let manifest = super::init::read_manifest(path)?;
            // The manifest says where the others dial this member; listening on the default
            // port instead would make two members on one host collide, or be unreachable.
            let me = key.as_ref().and_then(|k| manifest.member(&MemberId::from_key(&k.verifying_key())));
            let listen = me.map(super::manifest::listen_addresses).unwrap_or_default();
            if !listen.is_empty() {
                config.p2p.listen = listen;
                own_addresses = me.map(|m| m.addresses.clone());
            }
            ManifestSource::Given(manifest)
        }
        None => ManifestSource::Genesis { federation: args.federation.clone(), name: args.name.clone() },
    };
    let listen = config.p2p.listen.clone();
    let done = init(&args.data_dir, InitOptions { manifest, key, config })?;
    match &args.follow {
        Some(node) => report_follower(&args.data_dir, &done, node, json),
        None => report_init(&args.data_dir, &done, &listen, own_addresses.as_deref(), json),
    }
    Ok(())
}

fn report_follower(dir: &Path, done: &Initialised, node: &str, json: bool) {
    let tokens: serde_json::Map<String, serde_json::Value> =
        done.tokens.iter().map(|t| (t.name.clone(), t.token.clone().into())).collect();
    if json {
        print_json(&serde_json::json!({ "data_dir": dir, "follows": node, "tokens": tokens }));
        return;
    }
    say!("initialised {} as a read-only follower of {node}", dir.display());
    for t in &done.tokens {
        say!("{:<9} token: {} (for this follower's own RPC)", t.name, t.token);
    }
    say!(
        "run it with a matcher token of {node}: HASHMESH_FOLLOW_TOKEN=<token> hashmesh run --data-dir {}",
        dir.display()
    );
}

/// `own_addresses`: this member's addresses in the manifest, when the listen addresses were
/// taken from them.
fn report_init(
    dir: &Path,
    done: &Initialised,
    listen: &[String],
    own_addresses: Option<&[String]>,
    json: bool,
) {
    if json {
        let tokens: serde_json::Map<String, serde_json::Value> =
            done.tokens.iter().map(|t| (t.name.clone(), t.token.clone().into())).collect();
        print_json(&serde_json::json!({
            "data_dir": dir,
            "member": done.member,
            "tokens": tokens,
            "p2p_listen": listen,
        }));
        return;
    }
    say!("initialised {}", dir.display());
    say!("member key: {}", done.member);
    for t in &done.tokens {
        say!("{:<9} token: {}", t.name, t.token);
    }
    say!("(tokens are also in {}, mode 0600)", dir.join(super::init::TOKENS_FILE).display());
    let whence = match own_addresses {
        Some(own) if own == listen => "this member's address in the manifest".to_owned(),
        Some(own) => format!("the port of this member's address in the manifest, {}", own.join(" ")),
        None => "the default; change p2p.listen in config.toml".to_owned(),
    };
    say!("p2p listen: {} ({whence})", listen.join(" "));
    if !done.in_manifest {
        say!(
            "note: the manifest does not list this member key: the node will replicate but refuse writes until a membership epoch adds it (send `hashmesh keygen --json` output to a member, who runs `hashmesh member propose`), or use the key the manifest lists (--key)"
        );
    }
}

async fn cmd_run(args: RunArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    if !dir.join(CONFIG_FILE).exists() {
        let d = dir.display();
        match &args.follow {
            Some(node) => anyhow::bail!(
                "{d} is not a node's data dir (it has no {CONFIG_FILE}): make a follower's with `hashmesh init --data-dir {d} --manifest MANIFEST --follow {node}`"
            ),
            None => anyhow::bail!(
                "{d} is not a node's data dir (it has no {CONFIG_FILE}): make one with `hashmesh init --data-dir {d}` (with --key and --manifest to join a federation), or try a local federation with `hashmesh devnet`"
            ),
        }
    }
    let mut config = Config::load(dir)?;
    if let Some(listen) = args.rpc_listen {
        config.rpc.listen = listen;
    }
    if args.insecure_rpc {
        config.rpc.insecure = true;
    }
    if let Some(node) = args.follow {
        config.follow.node = node;
    }
    if let Some(token) = args.follow_token {
        config.follow.token = token;
    }
    config.check().map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.fix_permissions {
        for path in crate::files::check(dir, &config, true)? {
            say!("narrowed the mode of {}", path.display());
        }
    }
    let node = crate::RunningNode::start(dir, config).await?;
    match node.handle().follows() {
        Some(member) => say!(
            "hashmesh follower of {member} running; RPC on {} (read-only; Ctrl-C to stop)",
            node.rpc_url()
        ),
        None => say!("hashmesh node running; RPC on {} (Ctrl-C to stop)", node.rpc_url()),
    }
    shutdown_signal().await?;
    say!("shutting down");
    node.shutdown().await;
    Ok(())
}

fn print_status(s: &StatusView, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(s);
        return Ok(());
    }
    say!("federation  {} (epoch {})", s.federation, s.epoch);
    say!("member      {} {}", s.member_name.as_deref().unwrap_or("?"), s.member);
    if let Some(p) = &s.peer_id {
        say!("peer id     {p}");
    }
    say!("records     {} ({} entries, {} waiting for gaps)", s.records, s.entries, s.buffered);
    match &s.follows {
        Some(node) => say!("follows     {node} (a read-only replica: writes go to that node)"),
        None => {
            let own_log = match s.own_log.as_str() {
                "confirmed" => "confirmed by peers; writes accepted",
                "waiting" => "checking with peers before accepting writes",
                "stuck" => "no peer reachable to confirm it; writes refused (see p2p.start_unconfirmed)",
                "unconfirmed" => "no peer reachable; writes accepted unconfirmed (p2p.start_unconfirmed)",
                other => other,
            };
            say!("own log     {own_log}");
        }
    }
    say!("digest      {} (identical at {} peer(s))", s.digest, s.in_sync_with.len());
    if s.refused_connections > 0 {
        say!("refused     {} connection(s) from peers not in the manifest", s.refused_connections);
    }
    for log in &s.logs {
        let fork = log.forked_at.map(|f| format!("  FORKED at seq {f}")).unwrap_or_default();
        say!("  log {} {:<12} seq {}{fork}", log.author.short(), log.name.as_deref().unwrap_or("?"), log.seq);
    }
    for m in &s.equivocators {
        say!(
            "EQUIVOCATION by member {m}: its votes no longer count and its entries are disputed (GET /v1/alerts has the proof)"
        );
    }
    Ok(())
}

fn print_written(what: &str, w: &Written, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(w);
    } else {
        say!("{what} {} written (seq {})", w.id, w.seq);
    }
    Ok(())
}

fn hash_file(file: &Path) -> anyhow::Result<hashers::Hashed> {
    let hashed = hashers::fingerprint_file(file, &video_config())
        .with_context(|| format!("cannot read {}", file.display()))?;
    for e in hashed.image_error.iter().chain(&hashed.video_error) {
        eprintln!("warning: {}: {e}; only its exact fingerprints were computed", file.display());
    }
    Ok(hashed)
}

/// How the CLI runs FFmpeg: the defaults, with any `HASHMESH_VIDEO_*` variable over them (the
/// CLI reads no config file).
pub(super) fn video_config() -> hashers::video::VideoConfig {
    crate::config::Config::parse("", |name| std::env::var(name).ok())
        .map(|(config, _)| config.video)
        .unwrap_or_default()
}

fn submit(c: &Client, args: SubmitArgs, json: bool) -> anyhow::Result<()> {
    let mut fingerprints = args.hashes;
    for url in &args.urls {
        fingerprints.push(hashers::url::fingerprint(url)?);
    }
    for file in &args.files {
        for computed in hash_file(file)?.computed {
            match computed.skipped {
                None => fingerprints.push(computed.fingerprint),
                Some(why) => eprintln!("{}: not submitting {}: {why}", file.display(), computed.fingerprint),
            }
        }
    }
    let body = SubmitEntry {
        fingerprints,
        category: args.category,
        links: args.links,
        note: args.note,
        expires_at: args.expires_at,
    };
    let w: Written = c.post("/v1/entries", &body)?;
    print_written("entry", &w, json)
}

fn list_entries(c: &Client, args: &EntriesArgs, json: bool) -> anyhow::Result<()> {
    let mut query = vec![format!("limit={}", args.limit)];
    if let Some(s) = args.status {
        query.push(format!("status={}", s.name()));
    }
    if let Some(cat) = &args.category {
        query.push(format!("category={cat}"));
    }
    if let Some(a) = &args.author {
        query.push(format!("author={a}"));
    }
    if let Some(cur) = &args.cursor {
        query.push(format!("cursor={cur}"));
    }
    let page: EntryPage = c.get(&format!("/v1/entries?{}", query.join("&")))?;
    if json {
        print_json(&page);
        return Ok(());
    }
    for e in &page.entries {
        print_entry(e, false);
    }
    if let Some(next) = page.next_cursor {
        say!("more: --cursor {next}");
    }
    Ok(())
}

pub(super) fn print_entry(e: &EntryView, full: bool) {
    say!(
        "{} {:<9} {:<16} by {} ({} votes) -> {}",
        e.id,
        e.status.name(),
        e.category,
        e.author_name.as_deref().unwrap_or("?"),
        e.votes.len(),
        e.action.name()
    );
    if full {
        // A video's fingerprint is named by its frames (`show --json` has it whole).
        for fp in &e.fingerprints {
            say!("  {fp:?}");
        }
        for link in &e.links {
            say!("  link {link}");
        }
        if let Some(note) = &e.note {
            say!("  note {note}");
        }
        for v in &e.votes {
            let by = v.reviewer.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
            let why = v.reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default();
            say!("  {} by {}{by}{why}", v.verdict.name(), v.member_name.as_deref().unwrap_or("?"));
        }
    }
}

fn match_(c: &Client, args: MatchArgs, json: bool) -> anyhow::Result<()> {
    if args.hashes.is_empty() && args.files.is_empty() {
        bail!("give fingerprints with --hash kind:hex, or files to match");
    }
    let mut responses = Vec::new();
    if !args.hashes.is_empty() {
        responses
            .push(("--hash".to_owned(), c.post("/v1/match/hashes", &MatchHashes { hashes: args.hashes })?));
    }
    for file in &args.files {
        // The file goes to this platform's own node, which computes every fingerprint
        // (PDQ with its dihedral variants included); nothing leaves the platform.
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        responses.push((file.display().to_string(), c.post_bytes("/v1/match", &bytes)?));
    }
    if json {
        let all: Vec<_> =
            responses.iter().map(|(what, r)| serde_json::json!({ "input": what, "response": r })).collect();
        print_json(&all);
        return Ok(());
    }
    for (what, response) in &responses {
        print_match(what, response);
    }
    Ok(())
}

fn print_match(what: &str, response: &MatchResponse) {
    say!("{what}: action {}", response.action.name());
    for e in response.image_error.iter().chain(&response.video_error) {
        say!("  warning: {e}");
    }
    for r in &response.results {
        // `{:?}` names a video's fingerprint by its frame count rather than print it whole.
        if let Some(why) = &r.skipped {
            say!("  {:?} not matched: {why}", r.hash);
        }
        for h in &r.hits {
            let video = h
                .video
                .map(|v| {
                    format!(
                        " ({:.0}% of the video and {:.0}% of the listed one matched)",
                        v.query_percent, v.candidate_percent
                    )
                })
                .unwrap_or_default();
            say!(
                "  {:?} -> entry {} {} {} distance {} -> {}{video}",
                r.hash,
                h.entry,
                h.category,
                h.status.name(),
                h.distance,
                h.action.name()
            );
        }
    }
    if response.results.iter().all(|r| r.hits.is_empty()) {
        say!("  no match");
    }
}

fn hash_files(files: &[std::path::PathBuf], urls: &[String], json: bool) -> anyhow::Result<()> {
    let mut failed = false;
    for url in urls {
        let fp = hashers::url::fingerprint(url)?;
        if json {
            say!(
                "{}",
                serde_json::json!({ "url": url, "fingerprints": [{ "kind": fp.kind(), "value": fp.value_hex() }] })
            );
        } else {
            say!("{fp}");
        }
    }
    for file in files {
        match hash_file(file) {
            Ok(hashed) if json => {
                let fps: Vec<serde_json::Value> = hashed
                    .computed
                    .iter()
                    .map(|c| {
                        let mut v = serde_json::json!({ "kind": c.fingerprint.kind(), "value": c.fingerprint.value_hex() });
                        if let Some(q) = c.quality {
                            v["quality"] = q.into();
                        }
                        if let Some(why) = &c.skipped {
                            v["skipped"] = why.clone().into();
                        }
                        v
                    })
                    .collect();
                say!("{}", serde_json::json!({ "file": file, "fingerprints": fps }));
            }
            Ok(hashed) => {
                for c in hashed.computed {
                    let frames = if c.fingerprint.kind() == hashmesh_protocol::FingerprintKind::Vpdq {
                        format!(
                            "  frames={}",
                            c.fingerprint.value().len() / hashmesh_protocol::vpdq::FRAME_LEN
                        )
                    } else {
                        String::new()
                    };
                    match (c.quality, &c.skipped) {
                        (Some(q), Some(why)) => say!("{}  quality={q} ({why})", c.fingerprint),
                        (Some(q), None) => say!("{}  quality={q}", c.fingerprint),
                        (None, Some(why)) => say!("{}{frames}  ({why})", c.fingerprint),
                        (None, None) => say!("{}{frames}", c.fingerprint),
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {}: {e}", file.display());
                failed = true;
            }
        }
    }
    if failed {
        bail!("some files could not be hashed");
    }
    Ok(())
}

/// Ctrl-C, or SIGTERM from `docker stop` / systemd.
pub(super) async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot wait for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
    Ok(())
}
