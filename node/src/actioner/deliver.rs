//! Delivering the outbox to one webhook: each event in id order, retried with backoff until
//! the receiver answers 2xx, the cursor moved on only then.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use super::Actioner;
use crate::api::WebhookEvent;
use crate::config::{EventKind, WebhookConfig};
use crate::node::now_ms;

/// The first retry waits this long; each next one twice as long, up to the hook's `retry_max`.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// How long a receiver may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The `X-Hashmesh-Signature` value of `body`: `sha256=` and the hex HMAC-SHA256 keyed with
/// `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers to hook `index` until `cancel` fires.
pub(super) async fn run(actioner: Arc<Actioner>, index: usize, cancel: CancellationToken) {
    let hook = &actioner.hooks[index];
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .build()
        .new_agent();
    let mut newest = actioner.outbox.newest();
    let mut backoff = FIRST_RETRY;
    loop {
        let cursor = hook.state().delivered_through;
        let next = match actioner.outbox.after(cursor) {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, url = %hook.config.url, "cannot read the webhook outbox");
                None
            }
        };
        let Some((id, body)) = next else {
            tokio::select! {
                () = cancel.cancelled() => return,
                changed = newest.changed() => if changed.is_err() { return },
                // A backstop: a missed wake-up costs at most this long.
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            continue;
        };
        // The event's kind decides whether this hook wants it, and names it in a header.
        let kind = serde_json::from_slice::<WebhookEvent>(&body).map(|e| e.event.kind());
        let outcome = match kind {
            Ok(kind) if hook.config.events.contains(&kind) => {
                post(&agent, &hook.config, kind, body, id).await
            }
            Ok(_) => Ok(()),
            // Nothing can make a corrupt event deliverable: log it and move past it.
            Err(e) => {
                tracing::error!(id, error = %e, "skipping an unreadable webhook event");
                Ok(())
            }
        };
        match outcome {
            Ok(()) => {
                backoff = FIRST_RETRY;
                if let Err(e) = actioner.delivered(index, id) {
                    tracing::error!(error = %e, "cannot record a webhook delivery; it may be sent again");
                }
            }
            Err(why) => {
                let wait = backoff;
                backoff = (backoff * 2).min(hook.config.retry_max);
                hook.failed(why.clone(), wait);
                tracing::warn!(url = %hook.config.url, id, error = %why, retry_in = ?wait, "webhook delivery failed");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// POSTs one event; `Err` says why the receiver did not take it.
async fn post(
    agent: &ureq::Agent,
    hook: &WebhookConfig,
    kind: EventKind,
    body: Vec<u8>,
    id: u64,
) -> Result<(), String> {
    let (agent, url, signature) = (agent.clone(), hook.url.clone(), signature(&hook.secret, &body));
    let attempt = tokio::task::spawn_blocking(move || {
        agent
            .post(&url)
            .header("Content-Type", "application/json")
            .header("X-Hashmesh-Signature", signature)
            .header("X-Hashmesh-Event", kind.name())
            .header("X-Hashmesh-Delivery", id.to_string())
            .send(&body[..])
    })
    .await
    .map_err(|e| format!("delivery task failed: {e}"))?;
    match attempt {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("the receiver answered HTTP {}", response.status().as_u16())),
        Err(e) => Err(format!("cannot reach the receiver: {e}")),
    }
}

/// When a retry `wait` from now is due (unix ms), for `GET /v1/webhooks`.
pub(super) fn retry_at(wait: Duration) -> u64 {
    now_ms() + wait.as_millis() as u64
}
