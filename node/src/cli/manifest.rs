//! `hashmesh manifest`: founding members build the genesis manifest from each member's
//! `keygen` output, and check a manifest, instead of writing and proof-reading TOML by hand.
//!
//! The protocol crate checks what it can without libp2p (names, keys, policy numbers); this
//! module adds what only the node can judge: that a peer id is the one the member's key gives
//! (a node's libp2p identity *is* its member key, see [`crate::identity::libp2p_keypair`]),
//! and that each address is one this build can dial (`/ip4|ip6/…/tcp/PORT`, no DNS).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use clap::{Args, Subcommand};
use hashmesh_protocol::{Manifest, MemberId, MemberInfo, PolicyParams};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// `hashmesh manifest …`.
#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Build a federation's genesis manifest (epoch 1) from the founding members' `keygen`
    /// outputs; every member then runs `hashmesh init --key … --manifest FILE`.
    New(NewArgs),
    /// Check a manifest as `init` and `run` read it, plus what only a node can judge: peer ids
    /// that belong to the member keys, addresses this build can dial.
    Check {
        /// The manifest file.
        file: PathBuf,
    },
}

/// `hashmesh manifest new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The federation's name (letters, digits, - and _); it also names the gossip topics.
    #[arg(long)]
    federation: String,
    /// A founding member (repeat for each): `name=NAME,key=KEY,address=/ip4/IP/tcp/PORT`, with
    /// the member key `hashmesh keygen` printed; or `name=NAME,keygen=FILE,address=…` with a
    /// file saved from `hashmesh keygen --json`. `peer=PEER_ID` is optional (a node's peer id
    /// follows from its key; if given it must match); `address=` may repeat.
    #[arg(long = "member", value_name = "SPEC", required = true)]
    members: Vec<MemberSpec>,
    /// Write the manifest to this file (never overwritten) instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One `--member` value, split into its fields; [`build`] resolves and checks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct MemberSpec {
    name: Option<String>,
    key: Option<String>,
    keygen: Option<PathBuf>,
    peer: Option<String>,
    addresses: Vec<String>,
}

impl FromStr for MemberSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = Self::default();
        for field in s.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            let Some((name, value)) = field.split_once('=') else {
                return Err(format!("{field:?} is not name=value (e.g. name=alpha,key=…,address=…)"));
            };
            let value = value.trim().to_owned();
            let once = |slot: &mut Option<String>| {
                if slot.replace(value.clone()).is_some() {
                    return Err(format!("{name}= is given twice"));
                }
                Ok(())
            };
            match name.trim() {
                "name" => once(&mut spec.name)?,
                "key" => once(&mut spec.key)?,
                "peer" => once(&mut spec.peer)?,
                "keygen" => {
                    if spec.keygen.replace(value.clone().into()).is_some() {
                        return Err("keygen= is given twice".into());
                    }
                }
                "address" => spec.addresses.push(value),
                other => {
                    return Err(format!(
                        "unknown field {other:?}: use name=, key= or keygen=, peer=, address="
                    ));
                }
            }
        }
        Ok(spec)
    }
}

/// What is wrong with the founding members given to `manifest new`, or with a manifest's
/// peers and addresses.
#[derive(Debug, thiserror::Error)]
pub(super) enum FoundingError {
    /// A member has no name.
    #[error("a --member has no name=: give each member a name, unique in the federation")]
    NoName,
    /// A member has no key.
    #[error(
        "member {0:?}: give key=<member key from `hashmesh keygen`> or keygen=<file from `hashmesh keygen --json`>"
    )]
    NoKey(String),
    /// Both key= and keygen=.
    #[error("member {0:?}: give key= or keygen=, not both")]
    KeyTwice(String),
    /// The key is not 64 hex digits.
    #[error(
        "member {name:?}: key {key:?} is not a member key (64 hex digits: the `member key:` line of `hashmesh keygen`)"
    )]
    BadKey {
        /// The member.
        name: String,
        /// What was given.
        key: String,
    },
    /// A keygen file could not be read or is not keygen's JSON.
    #[error("member {name:?}: {path} is not the output of `hashmesh keygen --json` ({why})")]
    BadKeygenFile {
        /// The member.
        name: String,
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The peer id does not parse.
    #[error(
        "member {name:?}: peer {peer:?} is not a libp2p peer id (the `peer id:` line of `hashmesh keygen`)"
    )]
    BadPeer {
        /// The member.
        name: String,
        /// What was given.
        peer: String,
    },
    /// The peer id is another key's.
    #[error(
        "member {name:?}: peer id {peer} is not the one its key gives ({expected}); copy key and peer id from the same `hashmesh keygen` output"
    )]
    PeerMismatch {
        /// The member.
        name: String,
        /// What was given.
        peer: String,
        /// What the key gives.
        expected: String,
    },
    /// An address this build cannot dial.
    #[error("member {name:?}: address {address:?} {why}")]
    BadAddress {
        /// The member.
        name: String,
        /// What was given.
        address: String,
        /// What is wrong with it.
        why: String,
    },
    /// Two members at one address.
    #[error(
        "address {address} is given for both {first:?} and {second:?}: two nodes cannot listen on one address"
    )]
    SharedAddress {
        /// The address.
        address: String,
        /// One member.
        first: String,
        /// The other.
        second: String,
    },
    /// The manifest breaks a protocol rule (names, keys, federation name).
    #[error(transparent)]
    Manifest(#[from] hashmesh_protocol::ManifestError),
}

/// Builds and checks a genesis manifest: every member's key, peer id and addresses, and the
/// whole as [`Manifest::from_toml`] reads it, so what this returns `init` accepts.
pub(super) fn build(federation: &str, specs: &[MemberSpec]) -> Result<Manifest, FoundingError> {
    let mut members = Vec::with_capacity(specs.len());
    for spec in specs {
        let name = spec.name.clone().filter(|n| !n.trim().is_empty()).ok_or(FoundingError::NoName)?;
        let (key, keygen_peer) = match (&spec.key, &spec.keygen) {
            (Some(_), Some(_)) => return Err(FoundingError::KeyTwice(name)),
            (None, None) => return Err(FoundingError::NoKey(name)),
            (Some(key), None) => (parse_key(&name, key)?, None),
            (None, Some(path)) => read_keygen(&name, path)?,
        };
        let peer = spec.peer.clone().or(keygen_peer).unwrap_or_default();
        let peers = if peer.is_empty() {
            // An invalid key is reported below, by the manifest's own check.
            peer_of(&key).map(|p| vec![p.to_string()]).unwrap_or_default()
        } else {
            vec![peer]
        };
        members.push(MemberInfo { name, key, peers, addresses: spec.addresses.clone() });
    }
    let manifest = Manifest {
        name: federation.to_owned(),
        epoch: 1,
        policy: PolicyParams::default(),
        members,
        retired: Vec::new(),
    };
    // Through the text form, exactly as `init` and `run` will read it.
    let manifest = Manifest::from_toml(&manifest.to_toml())?;
    check_network(&manifest)?;
    Ok(manifest)
}

/// Checks what the protocol crate cannot: each member's peer ids are the one its key gives,
/// and its addresses are `/ip4|ip6/IP/tcp/PORT` (optionally `/p2p/<its peer id>`), dialable,
/// and no two members share one.
pub(super) fn check_network(manifest: &Manifest) -> Result<(), FoundingError> {
    let mut seen: BTreeMap<(std::net::IpAddr, u16), &str> = BTreeMap::new();
    for m in &manifest.members {
        let expected = peer_of(&m.key);
        for text in &m.peers {
            let peer = text
                .parse::<PeerId>()
                .map_err(|_| FoundingError::BadPeer { name: m.name.clone(), peer: text.clone() })?;
            if let Some(expected) = expected
                && peer != expected
            {
                return Err(FoundingError::PeerMismatch {
                    name: m.name.clone(),
                    peer: text.clone(),
                    expected: expected.to_string(),
                });
            }
        }
        for text in &m.addresses {
            let bad = |why: &str| FoundingError::BadAddress {
                name: m.name.clone(),
                address: text.clone(),
                why: why.to_owned(),
            };
            let (ip, port, peer) = dial_parts(text).map_err(|why| bad(&why))?;
            if ip.is_unspecified() {
                return Err(bad(
                    "is a listen address, not one other nodes can dial: give the IP they reach this member at",
                ));
            }
            if let Some(peer) = peer
                && Some(peer) != expected
            {
                return Err(bad("ends in /p2p/ with a peer id that is not this member's"));
            }
            if let Some(first) = seen.insert((ip, port), &m.name)
                && first != m.name
            {
                return Err(FoundingError::SharedAddress {
                    address: text.clone(),
                    first: first.to_owned(),
                    second: m.name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Splits a dial address into IP, TCP port and the optional trailing peer id, or says why
/// this build cannot dial it.
fn dial_parts(text: &str) -> Result<(std::net::IpAddr, u16, Option<PeerId>), String> {
    let addr: Multiaddr =
        text.parse().map_err(|_| "is not a multiaddress (e.g. /ip4/192.0.2.1/tcp/7700)".to_owned())?;
    let mut parts = addr.iter();
    let ip = match parts.next() {
        Some(Protocol::Ip4(ip)) => std::net::IpAddr::V4(ip),
        Some(Protocol::Ip6(ip)) => std::net::IpAddr::V6(ip),
        Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_)) => {
            return Err("names a host: this build dials IP addresses only (/ip4/… or /ip6/…)".into());
        }
        _ => return Err("must start with /ip4/ or /ip6/".into()),
    };
    let port = match parts.next() {
        Some(Protocol::Tcp(port)) if port != 0 => port,
        Some(Protocol::Tcp(_)) => {
            return Err("has port 0: give the port this member's node listens on".into());
        }
        _ => return Err("needs /tcp/PORT after the IP (hashmesh speaks TCP)".into()),
    };
    let peer = match parts.next() {
        None => None,
        Some(Protocol::P2p(peer)) => Some(peer),
        Some(_) => return Err("has parts after /tcp/PORT other than /p2p/<peer id>".into()),
    };
    if parts.next().is_some() {
        return Err("has parts after /p2p/<peer id>".into());
    }
    Ok((ip, port, peer))
}

/// Where a member's node listens, from its own addresses in the manifest: the same TCP port,
/// on the same IP if it is a loopback address (members sharing a host for a trial), otherwise
/// on every interface of that IP family — the address others dial may belong to a NAT, a load
/// balancer or a container host rather than to this machine, and binding to an IP the machine
/// does not have fails at start. Addresses that are not dialable are skipped.
pub(super) fn listen_addresses(member: &MemberInfo) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for text in &member.addresses {
        let Ok((ip, port, _)) = dial_parts(text) else { continue };
        let listen = match ip {
            ip if ip.is_loopback() => ip,
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
        };
        let family = if listen.is_ipv4() { "ip4" } else { "ip6" };
        let addr = format!("/{family}/{listen}/tcp/{port}");
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}

fn parse_key(name: &str, key: &str) -> Result<MemberId, FoundingError> {
    key.parse().map_err(|_| FoundingError::BadKey { name: name.to_owned(), key: key.to_owned() })
}

/// The libp2p peer id a node with this member key has, if the key is a valid point.
fn peer_of(key: &MemberId) -> Option<PeerId> {
    let public = libp2p::identity::ed25519::PublicKey::try_from_bytes(&key.0).ok()?;
    Some(libp2p::identity::PublicKey::from(public).to_peer_id())
}

/// Reads `hashmesh keygen --json`'s output: the member key, and the peer id it printed.
fn read_keygen(name: &str, path: &Path) -> Result<(MemberId, Option<String>), FoundingError> {
    let bad =
        |why: String| FoundingError::BadKeygenFile { name: name.to_owned(), path: path.to_owned(), why };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let member = value["member"].as_str().ok_or_else(|| bad("no \"member\" field".into()))?;
    let key = parse_key(name, member)?;
    Ok((key, value["peer_id"].as_str().map(str::to_owned)))
}

/// Runs `hashmesh manifest …`.
pub(super) fn run(command: ManifestCommand, json: bool) -> anyhow::Result<()> {
    match command {
        ManifestCommand::New(args) => new(&args, json),
        ManifestCommand::Check { file } => {
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let manifest = Manifest::from_toml(&text).with_context(|| format!("{}", file.display()))?;
            check_network(&manifest).with_context(|| format!("{}", file.display()))?;
            if json {
                super::commands::print_json(&manifest);
            } else {
                say!(
                    "{}: federation {} (epoch {}), {} members, ok",
                    file.display(),
                    manifest.name,
                    manifest.epoch,
                    manifest.members.len()
                );
                print_members(&manifest);
            }
            Ok(())
        }
    }
}

fn new(args: &NewArgs, json: bool) -> anyhow::Result<()> {
    let manifest = build(&args.federation, &args.members)?;
    let names: BTreeSet<&str> = manifest.members.iter().map(|m| m.name.as_str()).collect();
    for m in manifest.members.iter().filter(|m| m.addresses.is_empty()) {
        eprintln!(
            "warning: member {:?} has no address: the others cannot dial it, it must dial them",
            m.name
        );
    }
    let Some(out) = &args.out else {
        say!("{}", manifest.to_toml());
        return Ok(());
    };
    write_new(out, &manifest.to_toml())?;
    if json {
        super::commands::print_json(
            &serde_json::json!({ "out": out, "federation": manifest.name, "members": names }),
        );
        return Ok(());
    }
    say!(
        "wrote {}: federation {}, {} founding members",
        out.display(),
        manifest.name,
        manifest.members.len()
    );
    print_members(&manifest);
    say!("send it to every member; each runs, with its own key file:");
    say!("  hashmesh init --key member.key --manifest {}", out.display());
    Ok(())
}

fn print_members(manifest: &Manifest) {
    for m in &manifest.members {
        let at = if m.addresses.is_empty() { "(no address)".to_owned() } else { m.addresses.join(" ") };
        say!("  {:<12} {} {at}", m.name, m.key.short());
    }
}

/// Writes a new file, refusing to replace one: a genesis manifest others may already hold.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} exists already; refusing to overwrite a manifest (choose another --out)",
                path.display()
            )
        } else {
            anyhow::anyhow!("cannot write {}: {e}", path.display())
        }
    })?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests;
