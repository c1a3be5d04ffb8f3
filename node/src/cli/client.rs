//! A blocking JSON client of the node's RPC.

use anyhow::{Context, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::ErrorBody;

/// How long a probe (`hashmesh health`) waits: well inside a HEALTHCHECK's own timeout.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Talks to one node.
pub(super) struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    pub(super) fn new(
        base: &str,
        token: Option<String>,
        ca_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let tls = crate::tls::client(ca_file).map_err(anyhow::Error::msg)?;
        let agent =
            ureq::Agent::config_builder().http_status_as_error(false).tls_config(tls).build().new_agent();
        Ok(Self { base: base.trim_end_matches('/').to_owned(), token, agent })
    }

    pub(super) fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        self.finish(path, req.call())
    }

    pub(super) fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        self.finish(path, req.send_json(body))
    }

    pub(super) fn post_bytes<T: DeserializeOwned>(&self, path: &str, body: &[u8]) -> anyhow::Result<T> {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/octet-stream");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        self.finish(path, req.send(body))
    }

    /// Posts a body read from `reader` as it is sent (a file of any size).
    pub(super) fn post_reader<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &str,
        reader: &mut dyn std::io::Read,
    ) -> anyhow::Result<T> {
        let mut req = self.agent.post(format!("{}{path}", self.base)).header("Content-Type", content_type);
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        self.finish(path, req.send(ureq::SendBody::from_reader(reader)))
    }

    /// Gets `path` and copies the body to `out` as it arrives; the bytes copied.
    pub(super) fn get_to(&self, path: &str, out: &mut dyn std::io::Write) -> anyhow::Result<u64> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut response = req.call().with_context(|| self.unreachable())?;
        if !response.status().is_success() {
            return self.finish::<serde_json::Value>(path, Ok(response)).map(|_| 0);
        }
        std::io::copy(&mut response.body_mut().as_reader(), out)
            .with_context(|| format!("reading the answer to {path}"))
    }

    /// Gets `path` without a token, giving up after [`PROBE_TIMEOUT`]: the status code and
    /// the body, whatever the status (probes report a 503's reason).
    pub(super) fn probe(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let mut response = self
            .agent
            .get(format!("{}{path}", self.base))
            .config()
            .timeout_global(Some(PROBE_TIMEOUT))
            .build()
            .call()
            .with_context(|| self.unreachable())?;
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Ok((response.status().as_u16(), text))
    }

    fn unreachable(&self) -> String {
        format!("cannot reach the node at {} (is `hashmesh run` going? set --rpc or HASHMESH_RPC)", self.base)
    }

    fn finish<T: DeserializeOwned>(
        &self,
        path: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> anyhow::Result<T> {
        let mut response = result.with_context(|| self.unreachable())?;
        let status = response.status();
        let text =
            response.body_mut().read_to_string().with_context(|| format!("reading the answer to {path}"))?;
        if !status.is_success() {
            let message = serde_json::from_str::<ErrorBody>(&text).map(|e| e.error).unwrap_or(text);
            if status.as_u16() == 401 && self.token.is_none() {
                bail!("{message} — set HASHMESH_TOKEN or pass --token");
            }
            bail!("{message} (HTTP {})", status.as_u16());
        }
        serde_json::from_str(&text)
            .with_context(|| format!("the node's answer to {path} is not what this CLI expects"))
    }
}
