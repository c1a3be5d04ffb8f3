//! A second encoder, written from the grammar in [`crate::codec`]'s module doc and nothing else.
//!
//! It checks no limit, so tests can build the bytes a hostile peer would send (a note one byte
//! too long, a category of 33 characters) and see the decoder refuse them; and it agrees with
//! the codec on every valid record, which pins the grammar from a second side.

use ed25519_dalek::{Signer, SigningKey};

use crate::{Body, Entry, UnsignedRecord, Verdict};

#[derive(Default)]
struct Out(Vec<u8>);

impl Out {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn len8(&mut self, n: usize) {
        self.u8(u8::try_from(n).expect("test lengths fit the u8 prefix"));
    }
    fn str8(&mut self, s: &str) {
        self.len8(s.len());
        self.bytes(s.as_bytes());
    }
    fn str16(&mut self, s: &str) {
        self.bytes(&u16::try_from(s.len()).expect("test lengths fit the u16 prefix").to_be_bytes());
        self.bytes(s.as_bytes());
    }
    fn opt_str16(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str16(s);
            }
        }
    }
}

/// The bytes the signature covers, with `category` in place of the entry's own (a `Category`
/// cannot hold a name the protocol forbids, but a peer can send one).
pub(super) fn unsigned_with_category(r: &UnsignedRecord, category: Option<&str>) -> Vec<u8> {
    let mut w = Out::default();
    w.u8(1);
    w.bytes(&r.author.0);
    w.u64(r.seq);
    w.bytes(&r.prev.0);
    w.u64(r.timestamp);
    match &r.body {
        Body::Entry(e) => entry(&mut w, e, category.unwrap_or(e.category.as_str())),
        Body::Vote(v) => {
            w.u8(2);
            w.bytes(&v.entry.0);
            w.u8(match v.verdict {
                Verdict::Confirm => 1,
                Verdict::Dispute => 2,
            });
            w.opt_str16(v.reason.as_deref());
            match &v.reviewer {
                None => w.u8(0),
                Some(name) => {
                    w.u8(1);
                    w.str8(name);
                }
            }
        }
        Body::Retract(r) => {
            w.u8(3);
            w.bytes(&r.entry.0);
            w.opt_str16(r.reason.as_deref());
        }
        Body::Membership(m) => {
            w.u8(4);
            w.u64(m.epoch);
            w.str16(&m.changes);
        }
        Body::Stats(st) => {
            w.u8(5);
            w.bytes(&st.day.to_be_bytes());
            w.len8(st.counts.len());
            for c in &st.counts {
                w.str8(c.category.as_str());
                w.u64(c.matches);
                w.u64(c.removals);
            }
        }
    }
    w.0
}

fn entry(w: &mut Out, e: &Entry, category: &str) {
    w.u8(1);
    w.len8(e.fingerprints.len());
    for fp in &e.fingerprints {
        w.u8(fp.kind().tag());
        if fp.kind() == crate::FingerprintKind::Vpdq {
            w.bytes(&u32::try_from(fp.value().len()).expect("a vpdq value fits u32").to_be_bytes());
        } else {
            w.len8(fp.value().len());
        }
        w.bytes(fp.value());
    }
    w.str8(category);
    w.len8(e.links.len());
    for link in &e.links {
        w.str16(link);
    }
    w.opt_str16(e.note.as_deref());
    match e.expires_at {
        None => w.u8(0),
        Some(t) => {
            w.u8(1);
            w.u64(t);
        }
    }
}

/// The bytes the signature covers.
pub(super) fn unsigned(r: &UnsignedRecord) -> Vec<u8> {
    unsigned_with_category(r, None)
}

/// `bytes` followed by `key`'s signature of them: a record whose signature is good, so a
/// decoder that refuses it refuses it for its shape.
pub(super) fn signed(mut bytes: Vec<u8>, key: &SigningKey) -> Vec<u8> {
    let signature = key.sign(&bytes);
    bytes.extend_from_slice(&signature.to_bytes());
    bytes
}
