//! The member's signing key on disk: 64 hex digits in a file only its owner can read.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

/// The key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Could not read or write it.
    #[error("cannot access key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It does not hold a key.
    #[error("key file {0} does not hold 64 hex digits (an ed25519 secret key)")]
    Malformed(PathBuf),
    /// It exists already.
    #[error("key file {0} exists already; refusing to overwrite a member key")]
    Exists(PathBuf),
}

/// Writes a new random key to `path` with mode 0600.
pub fn generate(path: &Path) -> Result<SigningKey, KeyError> {
    let key = SigningKey::from_bytes(&rand::random());
    write(path, &key)?;
    Ok(key)
}

/// Writes `key` to a new file at `path` with mode 0600.
pub fn write(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    let io = |source| KeyError::Io { path: path.to_owned(), source };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists { KeyError::Exists(path.to_owned()) } else { io(e) }
    })?;
    file.write_all(format!("{}\n", hex::encode(key.to_bytes())).as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads the key at `path` (a node checks its mode first: `files.rs`).
pub fn load(path: &Path) -> Result<SigningKey, KeyError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.to_owned(), source })?;
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret).map_err(|_| KeyError::Malformed(path.to_owned()))?;
    Ok(SigningKey::from_bytes(&secret))
}

/// The libp2p peer id of a node whose network identity is this member key.
pub fn peer_id(key: &SigningKey) -> String {
    libp2p_keypair(key).public().to_peer_id().to_string()
}

/// The libp2p keypair for this member key: by default a node's network identity is its
/// member key, so the manifest can list the peer id next to the key.
pub fn libp2p_keypair(key: &SigningKey) -> libp2p::identity::Keypair {
    let mut bytes = key.to_bytes();
    match libp2p::identity::ed25519::SecretKey::try_from_bytes(&mut bytes) {
        Ok(secret) => libp2p::identity::ed25519::Keypair::from(secret).into(),
        // try_from_bytes fails only for a slice that is not 32 bytes long.
        Err(_) => unreachable!("an ed25519 secret key is always 32 bytes"),
    }
}
