//! `hashmesh member`: membership epochs from the command line — propose, approve, list.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use hashmesh_protocol::{Changes, MemberId, MemberInfo, ProposalId, Rotation};

use super::client::Client;
use crate::api::{MembershipView, ProposalWritten, ProposeChanges, RemoveMember};

/// `hashmesh member …`.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Propose changes for the next epoch (admin token): add, remove or rotate a member, or
    /// new policy numbers. Your record counts as your approval; the changes take effect on
    /// every node once a majority of the current members approved them.
    Propose(Box<ProposeArgs>),
    /// Approve a pending proposal (admin token). A member's first choice for an epoch is the
    /// one that counts.
    Approve {
        /// Proposal id (from `hashmesh member list`).
        id: ProposalId,
    },
    /// Show the epoch in force, the members, pending proposals and who approved them.
    List,
}

/// `hashmesh member propose`.
#[derive(Debug, Args)]
pub struct ProposeArgs {
    /// Changes as a TOML file (`[[add]]`, `[[remove]]`, `[[rotate]]`, `[policy]`); the flags
    /// below add to it.
    #[arg(long)]
    file: Option<PathBuf>,
    /// The epoch the changes make; refused if it is not the next one.
    #[arg(long)]
    epoch: Option<u64>,
    /// Name of a member to add (with --add-key).
    #[arg(long, requires = "add_key")]
    add_name: Option<String>,
    /// Member key of the member to add (64 hex digits, from its `hashmesh keygen`).
    #[arg(long, requires = "add_name")]
    add_key: Option<MemberId>,
    /// Peer id of the added member's node (repeatable).
    #[arg(long, requires = "add_name")]
    add_peer: Vec<String>,
    /// Address of the added member's node, e.g. /ip4/192.0.2.9/tcp/7700 (repeatable).
    #[arg(long, requires = "add_name")]
    add_address: Vec<String>,
    /// Member key of a member to remove (repeatable).
    #[arg(long)]
    remove: Vec<MemberId>,
    /// Keep counting the removed members' past votes.
    #[arg(long, requires = "remove")]
    keep_votes: bool,
    /// Member key of a member whose key or nodes change.
    #[arg(long)]
    rotate: Option<MemberId>,
    /// Its new member key.
    #[arg(long, requires = "rotate")]
    new_key: Option<MemberId>,
    /// Its nodes' peer ids, replacing the list (repeatable).
    #[arg(long, requires = "rotate")]
    new_peer: Vec<String>,
    /// Where a removed or rotated key's log ends (default: the last record this node holds).
    #[arg(long)]
    last_seq: Option<u64>,
}

/// Runs `hashmesh member …`.
pub(super) fn run(c: &Client, command: MemberCommand, json: bool) -> anyhow::Result<()> {
    match command {
        MemberCommand::Propose(args) => {
            let written: ProposalWritten = c.post("/v1/membership/proposals", &changes(*args)?)?;
            print_written("proposal", &written, json)
        }
        MemberCommand::Approve { id } => {
            let written: ProposalWritten =
                c.post(&format!("/v1/membership/proposals/{id}/approve"), &serde_json::json!({}))?;
            print_written("approval", &written, json)
        }
        MemberCommand::List => {
            let m: MembershipView = c.get("/v1/membership")?;
            if json {
                super::commands::print_json(&m);
                return Ok(());
            }
            say!(
                "federation {}  epoch {}  manifest {}",
                m.manifest.name,
                m.epoch,
                m.digest.get(..16).unwrap_or(&m.digest)
            );
            for member in &m.manifest.members {
                say!("  member  {:<16} {}  peers {}", member.name, member.key, member.peers.join(","));
            }
            for r in &m.manifest.retired {
                let why = if r.successor.is_some() { "rotated" } else { "removed" };
                say!("  {why} {:<16} {}  log ends at seq {} (epoch {})", r.name, r.key, r.last_seq, r.epoch);
            }
            if m.pending.is_empty() {
                say!("no pending proposals");
            }
            for p in &m.pending {
                say!(
                    "proposal {} for epoch {}: {}/{} approvals",
                    p.id,
                    p.epoch,
                    p.approvals.len(),
                    m.majority
                );
                for line in p.changes.to_toml().lines() {
                    say!("    {line}");
                }
                for a in &p.approvals {
                    say!("  approved by {} (seq {})", a.name.as_deref().unwrap_or("?"), a.seq);
                }
            }
            Ok(())
        }
    }
}

/// The request the flags and the file make.
fn changes(args: ProposeArgs) -> anyhow::Result<ProposeChanges> {
    let from_file = match &args.file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Changes::from_toml(&text).with_context(|| format!("{} is not a changes file", path.display()))?
        }
        None => Changes::default(),
    };
    let mut req = ProposeChanges {
        epoch: args.epoch,
        add: from_file.add,
        remove: from_file
            .remove
            .into_iter()
            .map(|r| RemoveMember { key: r.key, last_seq: Some(r.last_seq), votes_count: r.votes_count })
            .collect(),
        rotate: from_file.rotate,
        policy: from_file.policy,
    };
    if let (Some(name), Some(key)) = (args.add_name, args.add_key) {
        req.add.push(MemberInfo { name, key, peers: args.add_peer, addresses: args.add_address });
    }
    req.remove.extend(args.remove.into_iter().map(|key| RemoveMember {
        key,
        last_seq: args.last_seq,
        votes_count: args.keep_votes,
    }));
    if let Some(member) = args.rotate {
        req.rotate.push(Rotation {
            member,
            key: args.new_key,
            last_seq: args.last_seq,
            peers: (!args.new_peer.is_empty()).then_some(args.new_peer),
            addresses: None,
        });
    }
    Ok(req)
}

fn print_written(what: &str, w: &ProposalWritten, json: bool) -> anyhow::Result<()> {
    if json {
        super::commands::print_json(w);
    } else {
        say!("{what} for epoch {} written (seq {}); proposal {}", w.epoch, w.record.seq, w.proposal);
        say!("it takes effect once a majority of the current members approve it: see `hashmesh member list`");
    }
    Ok(())
}
