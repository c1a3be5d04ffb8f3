//! A member node that lies to its followers: it answers `POST /v1/sync` over plain HTTP with
//! a clock claiming `author`'s log runs to `records.len()` and, for every range request,
//! exactly `records` (bytes the scenario chose: a flipped byte, another author's records).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hashmesh_node::sync::wire::{SyncRequest, SyncResponse};
use hashmesh_node::sync::{Clock, LogClock};
use hashmesh_protocol::{MemberId, Record};

/// A running rogue member node.
pub struct RogueUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    ranges: Arc<AtomicUsize>,
}

impl RogueUpstream {
    /// Starts it on a free loopback port, in a thread that lives as long as the test.
    pub fn start(author: MemberId, records: Vec<Vec<u8>>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let head = records.last().and_then(|r| Record::decode(r).ok()).map(|r| r.id());
        let clock: Clock = BTreeMap::from([(
            author,
            LogClock {
                seq: records.len() as u64,
                id: head.unwrap_or(hashmesh_protocol::RecordId([7; 32])),
                fork: None,
            },
        )]);
        let ranges = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&ranges);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (clock, records, counter) = (clock.clone(), records.clone(), Arc::clone(&counter));
                std::thread::spawn(move || serve(stream, &clock, &records, &counter));
            }
        });
        Ok(Self { addr, ranges })
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Range requests it has answered.
    pub fn ranges_asked(&self) -> usize {
        self.ranges.load(Ordering::SeqCst)
    }
}

/// Answers the requests of one keep-alive connection until the client closes it.
fn serve(stream: TcpStream, clock: &Clock, records: &[Vec<u8>], ranges: &AtomicUsize) {
    let Ok(mut out) = stream.try_clone() else { return };
    let mut input = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if input.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if input.read_exact(&mut body).is_err() {
            return;
        }
        let answer = match cbor4ii::serde::from_slice::<SyncRequest>(&body) {
            Ok(SyncRequest::Heads) => {
                SyncResponse::Heads { clock: clock.clone(), epoch: 1, manifest: [0; 32] }
            }
            Ok(SyncRequest::Range { .. }) => {
                ranges.fetch_add(1, Ordering::SeqCst);
                SyncResponse::Records(records.iter().cloned().map(serde_bytes::ByteBuf::from).collect())
            }
            Ok(SyncRequest::Proof { .. }) | Err(_) => SyncResponse::Refused("no".into()),
        };
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &answer).unwrap_or_default();
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/cbor\r\ncontent-length: {}\r\n\r\n",
            bytes.len()
        );
        if out.write_all(head.as_bytes()).and_then(|()| out.write_all(&bytes)).is_err() {
            return;
        }
    }
}
