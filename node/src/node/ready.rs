//! Readiness: whether this node should be sent traffic (a load balancer's or Kubernetes'
//! readiness probe, `GET /readyz`), as distinct from being alive (`/healthz`).
//!
//! Ready means its replica is worth matching against: the store is open (a node opens it before
//! it binds the RPC, so any answer implies it) and the node has caught up — it is the only
//! member, or at some sync since start its replica held everything a peer held. That is
//! latched: under a steady stream of writes two clocks are rarely equal at the instant of a
//! comparison, and a node that caught up once stays current by gossip and sync; a probe that
//! flapped with each write would take matching away from a platform for nothing. Readiness
//! must not depend on other members' nodes staying up either, so losing every peer later
//! does not make a node unready; a restart starts over. A node told to start without peers
//! (`p2p.start_unconfirmed`, once `p2p.own_log_timeout` has passed) is ready too: its
//! operator has said the data dir is current. A follower is ready once it held everything its
//! member node held at one of its answers (never merely for being in a one-member federation).
//!
//! The endpoint is open (probes carry no token), so the reasons name no member and no count.

use std::sync::atomic::Ordering;

use super::NodeHandle;
use crate::api::Readiness;
use crate::sync::OwnLog;

impl NodeHandle {
    /// Whether this node is ready for traffic, and why (not), in words for the operator.
    pub async fn readiness(&self) -> Readiness {
        let ready = |reason: String| Readiness { ready: true, reason };
        if self.shared.caught_up.load(Ordering::Relaxed) {
            return ready("caught up with a peer since start".into());
        }
        let others = {
            let view = self.shared.replica.view();
            view.manifest().members.iter().filter(|m| m.key != self.shared.me).count()
        };
        if others == 0 && self.follows().is_none() {
            self.shared.caught_up.store(true, Ordering::Relaxed);
            return ready("the only member of the federation: nothing to catch up with".into());
        }
        let peers = self.peers().await;
        if peers.iter().any(|p| p.in_sync) {
            self.shared.caught_up.store(true, Ordering::Relaxed);
            return ready(match self.follows() {
                Some(_) => "caught up: holds everything its member node held at its last answer".into(),
                None => "caught up: holds everything a peer holds".into(),
            });
        }
        if self.own_log() == OwnLog::Unconfirmed {
            return ready(
                "no peer reachable; serving a replica its peers have not confirmed (p2p.start_unconfirmed)"
                    .into(),
            );
        }
        let connected = peers.iter().filter(|p| p.connected_since.is_some()).count();
        let reason = if self.follows().is_some() {
            "following the member node: not yet holding everything it held at its last answer".to_owned()
        } else if connected == 0 {
            "no member peer connected yet: waiting to catch up with one".to_owned()
        } else {
            format!(
                "catching up with {connected} connected peer(s): not yet holding everything any of them holds"
            )
        };
        Readiness { ready: false, reason }
    }
}
