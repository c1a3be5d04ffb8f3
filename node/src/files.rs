//! Modes of a data dir's private files, checked at every start: the member key signs for the
//! member, and `config.toml` and `rpc-tokens` hold the RPC tokens (hashed and in clear), a
//! follower's token and webhook secrets. Only the node's user may read them, and only the
//! node's user may change the data dir.
//!
//! Allowed: no bits for others, none for group-write; group-read only when the group is the
//! node's own (Kubernetes mounts Secrets as `0440 root:<fsGroup>`, where the fsGroup is the
//! pod's group). Anything wider is refused with the `chmod` that fixes it, or fixed by
//! `hashmesh run --fix-permissions`. A data dir on a read-only mount (a Kubernetes Secret
//! volume) is not held to this itself — no one can change what is in it — but its files are.

use std::path::{Path, PathBuf};

use crate::config::Config;

/// A file or dir whose mode lets others in.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} is mode {mode:04o}: it holds {what}, so only the node's user may read it; run `chmod {want:o} {path}` (or start with --fix-permissions)"
)]
pub struct TooOpen {
    /// The file or dir.
    pub path: PathBuf,
    /// What it holds.
    pub what: &'static str,
    /// Its mode.
    pub mode: u32,
    /// The mode it should have.
    pub want: u32,
}

/// Why the modes could not be checked or fixed.
#[derive(Debug, thiserror::Error)]
pub enum FileModeError {
    /// One is too open.
    #[error(transparent)]
    TooOpen(#[from] TooOpen),
    /// Could not read or change a mode.
    #[error("cannot check or fix the mode of {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What to check: each path with what it holds and its mode when private.
fn private(data_dir: &Path, config: &Config) -> Vec<(PathBuf, &'static str, u32)> {
    let mut files = vec![
        (data_dir.to_owned(), "the member key and the RPC tokens", 0o700),
        (data_dir.join(&config.key_file), "the member's signing key", 0o600),
        (data_dir.join(crate::config::CONFIG_FILE), "RPC token hashes and other secrets", 0o600),
        (data_dir.join(crate::cli::init::TOKENS_FILE), "the RPC tokens", 0o600),
    ];
    if !config.rpc.tls_key.as_os_str().is_empty() {
        files.push((data_dir.join(&config.rpc.tls_key), "the RPC's TLS private key", 0o600));
    }
    files
}

/// Checks every private file of `data_dir` (a missing one is not checked); with `fix`, first
/// narrows any that is too open to its private mode. Returns what was fixed.
pub fn check(data_dir: &Path, config: &Config, fix: bool) -> Result<Vec<PathBuf>, FileModeError> {
    let mut fixed = Vec::new();
    for (path, what, want) in private(data_dir, config) {
        let mode = match mode_of(&path) {
            Ok(Some(mode)) => mode,
            Ok(None) => continue,
            Err(source) => return Err(FileModeError::Io { path, source }),
        };
        if is_private(mode, group_of(&path).is_some_and(|g| Some(g) == own_group()))
            || (path == data_dir && read_only(&path))
        {
            continue;
        }
        if !fix {
            return Err(TooOpen { path, what, mode, want }.into());
        }
        set_mode(&path, want).map_err(|source| FileModeError::Io { path: path.clone(), source })?;
        tracing::warn!(path = %path.display(), from = format!("{mode:04o}"), to = format!("{want:04o}"), "narrowed a file's mode (--fix-permissions)");
        fixed.push(path);
    }
    Ok(fixed)
}

/// No access for others, no group write, group read (and search) only for the node's group.
fn is_private(mode: u32, own_group: bool) -> bool {
    let group = mode & 0o070;
    mode & 0o007 == 0 && group & 0o020 == 0 && (group == 0 || own_group)
}

#[cfg(unix)]
fn mode_of(path: &Path) -> std::io::Result<Option<u32>> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some(meta.permissions().mode() & 0o777)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn group_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.gid())
}

/// The node's effective group: on Linux, `/proc/self` belongs to the process's effective user
/// and group.
#[cfg(unix)]
fn own_group() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.gid())
}

/// Whether `dir` is on a read-only mount: a file cannot be made in it for that reason.
fn read_only(dir: &Path) -> bool {
    let probe = dir.join(".hashmesh-mode-probe");
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            false
        }
        Err(e) => e.kind() == std::io::ErrorKind::ReadOnlyFilesystem,
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn mode_of(_: &Path) -> std::io::Result<Option<u32>> {
    Ok(None)
}

#[cfg(not(unix))]
fn group_of(_: &Path) -> Option<u32> {
    None
}

#[cfg(not(unix))]
fn own_group() -> Option<u32> {
    None
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_means_nothing_for_others_and_group_read_only_for_the_nodes_group() {
        for mode in [0o600, 0o400, 0o700] {
            assert!(is_private(mode, false), "{mode:o}");
        }
        // A Kubernetes Secret: 0440 root:<the pod's group>.
        assert!(is_private(0o440, true));
        assert!(is_private(0o750, true));
        for (mode, own) in
            [(0o644, true), (0o604, false), (0o440, false), (0o660, true), (0o755, true), (0o701, false)]
        {
            assert!(!is_private(mode, own), "{mode:o} own group {own}");
        }
    }

    #[test]
    fn too_open_files_are_refused_with_the_chmod_or_narrowed_when_asked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::default();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
        let key = dir.path().join(&config.key_file);
        std::fs::write(&key, "k").expect("write");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = check(dir.path(), &config, false).expect_err("refused").to_string();
        assert!(
            err.contains("mode 0644") && err.contains("chmod 600") && err.contains("signing key"),
            "{err}"
        );
        assert_eq!(check(dir.path(), &config, true).expect("fixed"), vec![key.clone()]);
        assert_eq!(mode_of(&key).expect("mode"), Some(0o600));
        assert!(check(dir.path(), &config, false).expect("now private").is_empty());

        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let err = check(dir.path(), &config, false).expect_err("refused").to_string();
        assert!(err.contains("chmod 700"), "{err}");
    }
}
