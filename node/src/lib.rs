//! The hashmesh node: a sled replica of the federation's signed records, the matching index,
//! the HTTP RPC, and (in `net`) replication between member nodes.
//!
//! `main.rs` is only the CLI; everything it starts lives here so the test harness can start
//! many nodes in one process.

pub mod actioner;
pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod files;
pub mod hashers;
pub mod identity;
pub mod index;
pub mod lists;
pub mod metrics;
pub mod net;
pub mod node;
pub mod replica;
pub mod rpc;
pub mod signals;
pub mod store;
pub mod sync;
pub mod tls;

pub use node::{NodeHandle, RunningNode};

/// An error and its causes, `: `-joined, each cause once: a cause whose words the message
/// already holds (`cannot read X: Permission denied` over `Permission denied`) is not repeated.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let said = inner.to_string();
        if !said.is_empty() && !text.contains(&said) {
            text = if text.is_empty() { said } else { format!("{text}: {said}") };
        }
        cause = inner.source();
    }
    if text.is_empty() { format!("{error:?}") } else { text }
}

/// Checks a document under `docs/` that is generated from the code: it must equal `want`.
/// With `HASHMESH_BLESS` set, it is rewritten first.
#[cfg(test)]
pub(crate) fn assert_generated_doc(name: &str, want: &str, test_filter: &str) {
    let path = format!("{}/../docs/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("HASHMESH_BLESS").is_some() {
        std::fs::write(&path, want).unwrap_or_else(|e| panic!("cannot write docs/{name}: {e}"));
    }
    let held = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        held == want,
        "docs/{name} is out of date: run HASHMESH_BLESS=1 cargo test -p hashmesh-node --lib {test_filter}"
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_chain_names_each_cause_once() {
        let io = || std::io::Error::other("Permission denied");
        let wrapped = anyhow::Error::new(io()).context("cannot write config.toml");
        assert_eq!(super::error_chain(wrapped.as_ref()), "cannot write config.toml: Permission denied");
        let said_already = crate::config::ConfigError::Read { path: "c.toml".into(), source: io() };
        assert_eq!(super::error_chain(&said_already), "cannot read c.toml: Permission denied");
    }
}
