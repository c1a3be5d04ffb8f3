//! Creating a data dir: key, manifest, config and RPC tokens. Used by `hashmesh init`, by
//! `hashmesh run` on first start, by `hashmesh devnet` and by the test harness.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ed25519_dalek::SigningKey;
use hashmesh_protocol::{Manifest, MemberId, MemberInfo, PolicyParams};

use crate::config::{CONFIG_FILE, Config, Role, new_token};
use crate::identity;

/// File, in the data dir, holding the RPC tokens in clear (mode 0600), for the operator.
pub const TOKENS_FILE: &str = "rpc-tokens";

/// Where the manifest comes from.
pub enum ManifestSource {
    /// A file shared by the federation's members.
    File(PathBuf),
    /// Already built (devnet, tests).
    Given(Manifest),
    /// A new single-member federation.
    Genesis {
        /// Federation name.
        federation: String,
        /// This member's name.
        name: String,
    },
}

/// What `init` should make.
pub struct InitOptions {
    /// The manifest.
    pub manifest: ManifestSource,
    /// Use this key instead of generating one.
    pub key: Option<SigningKey>,
    /// Config to write (tokens are added).
    pub config: Config,
}

/// A token issued at init, in clear: shown once, and kept in the 0600 tokens file.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The secret.
    pub token: String,
}

/// What `init` made.
#[derive(Debug, Clone)]
pub struct Initialised {
    /// This node's member id.
    pub member: MemberId,
    /// Whether the manifest lists this member.
    pub in_manifest: bool,
    /// The tokens, admin first.
    pub tokens: Vec<IssuedToken>,
}

/// Creates a data dir. Refuses to touch one that already has a config or key.
pub fn init(dir: &Path, options: InitOptions) -> anyhow::Result<Initialised> {
    if dir.join(CONFIG_FILE).exists() {
        bail!(
            "{} is already initialised (it has a {CONFIG_FILE}); use it with `hashmesh run --data-dir {}`",
            dir.display(),
            dir.display()
        );
    }
    // Read the manifest before anything is written, so a bad file leaves no half-made dir.
    let source = match options.manifest {
        ManifestSource::File(path) => ManifestSource::Given(read_manifest(&path)?),
        other => other,
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create data dir {}", dir.display()))?;
    // Made here or by the operator (mkdir, a temp dir), it holds the key: only its user may in.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make data dir {} private (0700)", dir.display()))?;
    }
    let mut config = options.config;
    let key_path = dir.join(&config.key_file);
    let key = match options.key {
        Some(key) => {
            identity::write(&key_path, &key)?;
            key
        }
        None => identity::generate(&key_path)?,
    };
    let member = MemberId::from_key(&key.verifying_key());
    let manifest = match source {
        ManifestSource::Given(m) => m,
        ManifestSource::Genesis { federation, name } => genesis(&federation, &name, &key, &config),
        // Read into `Given` above.
        ManifestSource::File(path) => bail!("manifest {} was not read", path.display()),
    };
    std::fs::write(dir.join(&config.manifest), manifest.to_toml()).context("cannot write the manifest")?;
    let mut tokens = Vec::new();
    for role in [Role::Admin, Role::Submitter, Role::Matcher] {
        let name = format!("{role:?}").to_lowercase();
        let (token, entry) = new_token(&name, role);
        config.rpc.tokens.push(entry);
        tokens.push(IssuedToken { name, role, token });
    }
    write_private(
        &dir.join(TOKENS_FILE),
        &tokens.iter().map(|t| format!("{}={}\n", t.name, t.token)).collect::<String>(),
    )?;
    write_private(&dir.join(CONFIG_FILE), &config.to_toml())?;
    Ok(Initialised { member, in_manifest: manifest.is_member(&member), tokens })
}

/// Reads and checks a manifest file.
pub fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read manifest {}", path.display()))?;
    Manifest::from_toml(&text).with_context(|| format!("manifest {}", path.display()))
}

fn genesis(federation: &str, name: &str, key: &SigningKey, config: &Config) -> Manifest {
    let peer = crate::identity::peer_id(key);
    Manifest {
        name: federation.to_owned(),
        epoch: 1,
        policy: PolicyParams::default(),
        retired: Vec::new(),
        members: vec![MemberInfo {
            name: name.to_owned(),
            key: MemberId::from_key(&key.verifying_key()),
            peers: vec![peer],
            addresses: config.p2p.listen.clone(),
        }],
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// Reads a token of `role` from a data dir's tokens file.
pub fn read_token(dir: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(TOKENS_FILE)).ok()?;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('=').map(str::to_owned))
}
