//! Store errors.

use std::path::PathBuf;

use hashmesh_protocol::ValidationError;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled could not open the data dir.
    #[error("cannot open the store at {path}: {source} (is another hashmesh process using this data dir?)")]
    Open {
        /// The data dir.
        path: PathBuf,
        /// What sled said.
        source: sled::Error,
    },
    /// The data dir was made for another federation.
    #[error(
        "the data dir {path} belongs to federation {held:?}, but this node is configured for {wanted:?}: use another --data-dir or the matching manifest"
    )]
    WrongFederation {
        /// The data dir.
        path: PathBuf,
        /// The federation it holds.
        held: String,
        /// The one configured.
        wanted: String,
    },
    /// The data dir was made for another member key.
    #[error(
        "the data dir {path} belongs to member {held}, but this node's key is {wanted}: use another --data-dir or the key file that made it"
    )]
    WrongIdentity {
        /// The data dir.
        path: PathBuf,
        /// The member it holds.
        held: String,
        /// The configured member.
        wanted: String,
    },
    /// The record breaks a chain rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Stored bytes are not what the store wrote.
    #[error("the store is corrupt: {0}; restore the data dir from a backup or resync it from peers")]
    Corrupt(String),
    /// sled failed.
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
}
