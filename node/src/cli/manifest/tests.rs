//! `manifest new`'s checks and the listen addresses `init` takes from a manifest, no sockets.

use ed25519_dalek::SigningKey;
use hashmesh_protocol::{Manifest, MemberId, MemberInfo};

use super::{FoundingError, MemberSpec, build, listen_addresses};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn spec(text: &str) -> MemberSpec {
    text.parse().expect("spec parses")
}

fn member(name: &str, seed: u8, address: &str) -> MemberSpec {
    let k = key(seed);
    spec(&format!("name={name},key={},address={address}", MemberId::from_key(&k.verifying_key())))
}

#[test]
fn builds_a_manifest_init_accepts_with_the_peer_ids_the_keys_give() {
    let with_peer = {
        let k = key(2);
        spec(&format!(
            "name=beta, key={}, peer={}, address=/ip6/::1/tcp/7702",
            MemberId::from_key(&k.verifying_key()),
            crate::identity::peer_id(&k)
        ))
    };
    let manifest =
        build("founders", &[member("alpha", 1, "/ip4/192.0.2.1/tcp/7701"), with_peer]).expect("valid");
    assert_eq!(manifest.epoch, 1);
    assert_eq!(Manifest::from_toml(&manifest.to_toml()).expect("round trip"), manifest);
    for (m, seed) in manifest.members.iter().zip([1, 2]) {
        assert_eq!(m.peers, vec![crate::identity::peer_id(&key(seed))], "{}", m.name);
    }
    assert_eq!(manifest.members[1].addresses, vec!["/ip6/::1/tcp/7702".to_owned()]);
}

#[test]
fn refuses_what_would_not_work_saying_which_member_and_why() {
    let a = member("alpha", 1, "/ip4/192.0.2.1/tcp/7701");
    let cases: Vec<(Vec<MemberSpec>, &str)> = vec![
        (vec![a.clone(), member("alpha", 2, "/ip4/192.0.2.2/tcp/7701")], "name \"alpha\" appears twice"),
        (vec![a.clone(), member("beta", 1, "/ip4/192.0.2.2/tcp/7701")], "appears twice"),
        (vec![spec("name=x,key=abc,address=/ip4/192.0.2.2/tcp/1")], "is not a member key"),
        (vec![spec("key=00")], "has no name"),
        (vec![spec("name=x,address=/ip4/192.0.2.2/tcp/1")], "give key="),
        (vec![member("beta", 2, "/ip4/300.0.0.1/tcp/7702")], "not a multiaddress"),
        (
            vec![member(
                "beta",
                2,
                &format!("/ip4/192.0.2.2/tcp/7702/p2p/{}", crate::identity::peer_id(&key(1))),
            )],
            "peer id that is not this member's",
        ),
        (vec![member("beta", 2, "/dns4/example.org/tcp/7700")], "IP addresses only"),
        (vec![member("beta", 2, "/ip4/0.0.0.0/tcp/7700")], "listen address"),
        (vec![member("beta", 2, "/ip4/192.0.2.2/tcp/0")], "port 0"),
        (vec![member("beta", 2, "/ip4/192.0.2.2/udp/7700")], "needs /tcp/PORT"),
        (
            vec![a.clone(), member("beta", 2, "/ip4/192.0.2.1/tcp/7701")],
            "given for both \"alpha\" and \"beta\"",
        ),
    ];
    for (specs, want) in cases {
        let err = build("founders", &specs).expect_err(want).to_string();
        assert!(err.contains(want), "{want:?} in {err:?}");
    }
    // A peer id from another member's keygen output.
    let mut wrong = member("beta", 2, "/ip4/192.0.2.2/tcp/7702");
    wrong.peer = Some(crate::identity::peer_id(&key(1)));
    assert!(matches!(build("founders", &[wrong]), Err(FoundingError::PeerMismatch { .. })));
    wrong_peer_text_is_refused();
    assert!(matches!(build("no spaces", &[a]), Err(FoundingError::Manifest(_))));
}

fn wrong_peer_text_is_refused() {
    let mut m = member("beta", 2, "/ip4/192.0.2.2/tcp/7702");
    m.peer = Some("not-a-peer".into());
    assert!(matches!(build("founders", &[m]), Err(FoundingError::BadPeer { .. })));
}

#[test]
fn spec_syntax_errors_name_the_field() {
    assert!("name=a,colour=red".parse::<MemberSpec>().expect_err("unknown").contains("colour"));
    assert!("name=a,name=b".parse::<MemberSpec>().expect_err("twice").contains("twice"));
    assert!("alpha".parse::<MemberSpec>().expect_err("no =").contains("name=value"));
    let two = spec("name=a,address=/ip4/192.0.2.1/tcp/1,address=/ip6/::1/tcp/2");
    assert_eq!(two.addresses.len(), 2);
}

#[test]
fn a_member_listens_on_its_own_port_on_loopback_as_given_elsewhere_on_every_interface() {
    let info = |addresses: &[&str]| MemberInfo {
        name: "alpha".into(),
        key: MemberId([0; 32]),
        peers: Vec::new(),
        addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
    };
    assert_eq!(listen_addresses(&info(&["/ip4/127.0.0.1/tcp/7701"])), ["/ip4/127.0.0.1/tcp/7701"]);
    assert_eq!(
        listen_addresses(&info(&[
            "/ip4/203.0.113.5/tcp/7702",
            "/ip4/10.0.0.5/tcp/7702",
            "/ip6/2001:db8::1/tcp/7703",
            "/ip6/::1/tcp/7704",
            "/dns4/example.org/tcp/7705",
        ])),
        ["/ip4/0.0.0.0/tcp/7702", "/ip6/::/tcp/7703", "/ip6/::1/tcp/7704"]
    );
    assert!(listen_addresses(&info(&[])).is_empty());
}
