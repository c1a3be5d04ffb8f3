use super::*;

#[test]
fn signature_is_hmac_sha256_hex() {
    // RFC 4231, test case 2.
    assert_eq!(
        signature("Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

fn hook(url: &str) -> WebhookConfig {
    WebhookConfig {
        url: url.into(),
        secret: "a secret of sixteen".into(),
        events: vec![EventKind::Match, EventKind::StatusChanged],
        retry_max: Duration::from_secs(1),
    }
}

fn event(actioner: &Actioner) -> u64 {
    let e = Event::StatusChanged {
        entry: RecordId([1; 32]),
        category: "csam".parse().expect("valid"),
        from: Status::Pending,
        to: Status::Verified,
        action: hashmesh_protocol::Action::Remove,
    };
    actioner
        .outbox
        .push(|id| WebhookEvent { id, at: 0, member: MemberId([2; 32]), event: e })
        .expect("stored")
}

#[test]
fn ids_and_cursors_survive_a_restart_and_taken_events_are_dropped() {
    let dir = tempfile::tempdir().expect("tmp");
    let me = MemberId([2; 32]);
    {
        let store = Store::open(dir.path(), "fed", me).expect("store");
        let actioner = Actioner::open(&store, me, vec![hook("http://a/"), hook("http://b/")]).expect("open");
        assert_eq!((event(&actioner), event(&actioner), event(&actioner)), (1, 2, 3));
        // Nothing delivered yet is not "never seen": reopened, b still waits for event 1.
        drop(actioner);
        let actioner =
            Actioner::open(&store, me, vec![hook("http://a/"), hook("http://b/")]).expect("reopen");
        assert_eq!(actioner.webhooks().iter().map(|w| w.delivered_through).collect::<Vec<_>>(), vec![0, 0]);
        actioner.delivered(0, 2).expect("a took 2");
        let pending: Vec<u64> = actioner.webhooks().iter().map(|w| w.pending).collect();
        assert_eq!(pending, vec![1, 3]);
        actioner.delivered(1, 1).expect("b took 1");
        // Event 1 is taken by both: gone; 2 waits for b.
        assert_eq!(actioner.outbox.after(0).expect("read").map(|(id, _)| id), Some(2));
        store.flush().expect("flush");
    }
    let store = Store::open(dir.path(), "fed", me).expect("reopened");
    let actioner =
        Actioner::open(&store, me, vec![hook("http://a/"), hook("http://b/"), hook("http://new/")])
            .expect("open");
    let through: Vec<u64> = actioner.webhooks().iter().map(|w| w.delivered_through).collect();
    // A hook seen for the first time starts from the newest event.
    assert_eq!(through, vec![2, 1, 3]);
    assert_eq!(event(&actioner), 4, "ids go on after a restart");
}

#[test]
fn without_webhooks_no_event_is_kept() {
    let dir = tempfile::tempdir().expect("tmp");
    let me = MemberId([2; 32]);
    let store = Store::open(dir.path(), "fed", me).expect("store");
    let actioner = Actioner::open(&store, me, Vec::new()).expect("open");
    actioner.push(Event::Match {
        hash: "md5:0123456789abcdef0123456789abcdef".parse().expect("fp"),
        action: hashmesh_protocol::Action::Review,
        hits: Vec::new(),
    });
    assert_eq!(actioner.outbox.after(0).expect("read"), None);
}
