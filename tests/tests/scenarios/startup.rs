//! Starting from a data dir that is not what the node left: the node refuses to start and says
//! what is wrong and what to do, rather than serving a replica it cannot trust.

use hashmesh_node::config::Config;
use hashmesh_node::store::Store;
use hashmesh_protocol::{Body, Entry, RecordId, UnsignedRecord};
use hashmesh_tests::{TestNet, seeded_key};

fn md5(n: u32) -> String {
    format!("md5:{n:032x}")
}

/// A record that does not extend node0's log: a gap after its head, appended behind the
/// replica's back through the store API, as a damaged disk or a bad restore could leave it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_does_not_chain_stops_the_node_at_start_with_what_to_do() {
    let mut net = TestNet::new(1).await.expect("testnet");
    for n in 0..3 {
        net.nodes[0].submit(&[&md5(n)], "drugs").await;
    }
    net.nodes[0].stop().await;
    let dir = net.nodes[0].dir.path().to_owned();
    let config = Config::load(&dir).expect("config");
    {
        let store =
            Store::open(&dir.join(&config.db), &net.manifest.name, net.nodes[0].member).expect("store");
        let body = Body::Entry(Entry {
            fingerprints: vec![md5(9).parse().expect("valid")],
            category: "drugs".parse().expect("valid"),
            links: vec![],
            note: None,
            expires_at: None,
        });
        let stray =
            UnsignedRecord { author: net.nodes[0].member, seq: 5, prev: RecordId::ZERO, timestamp: 0, body }
                .sign(&seeded_key(0))
                .expect("signs");
        store.append([&stray]).expect("append");
        store.flush().expect("flush");
    }
    let err = net.nodes[0].start().await.expect_err("must refuse a log with a gap");
    let message = format!("{err:#}");
    assert!(message.contains("the store is corrupt"), "{message}");
    assert!(message.contains("jumps to seq 5"), "says where: {message}");
    assert!(message.contains("restore the data dir from a backup or resync it from peers"), "{message}");
    assert!(net.nodes[0].node.is_none());
}
