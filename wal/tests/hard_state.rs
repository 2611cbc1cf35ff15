//! Hard state (term, vote): the rules Raft imposes and their cost in fsyncs.

use raftwal::{Error, HardState, Options, Wal};

fn hs(term: u64, vote: Option<u64>) -> HardState {
    HardState { term, vote }
}

#[test]
fn new_wal_starts_at_term_zero_without_vote() {
    let dir = tempfile::tempdir().unwrap();
    let w = Wal::open(dir.path(), Options::default()).unwrap();
    assert_eq!(w.hard_state(), hs(0, None));
}

#[test]
fn each_change_is_one_fdatasync_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), Options::default()).unwrap();
    let steps = [
        hs(1, None),
        hs(1, Some(3)),
        hs(2, None),
        hs(5, Some(1)),
        hs(6, Some(6)),
    ];
    for s in steps {
        let before = w.stats();
        w.set_hard_state(s).unwrap();
        let after = w.stats();
        assert_eq!(after.file_syncs - before.file_syncs, 1, "{s:?}");
        assert_eq!(after.header_updates - before.header_updates, 1);
        assert_eq!(w.hard_state(), s);
        drop(w);
        w = Wal::open(dir.path(), Options::default()).unwrap();
        assert_eq!(w.hard_state(), s);
    }
}

#[test]
fn unchanged_state_costs_no_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), Options::default()).unwrap();
    w.set_hard_state(hs(3, Some(2))).unwrap();
    let before = w.stats();
    for _ in 0..10 {
        w.set_hard_state(hs(3, Some(2))).unwrap();
    }
    assert_eq!(w.stats(), before);
}

#[test]
fn term_never_decreases() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), Options::default()).unwrap();
    w.set_hard_state(hs(4, None)).unwrap();
    let before = w.stats();
    let err = w.set_hard_state(hs(3, None)).unwrap_err();
    assert!(matches!(err, Error::InvalidHardState { .. }), "{err}");
    assert!(err.to_string().contains("decrease"), "{err}");
    let err = w.set_hard_state(hs(0, Some(1))).unwrap_err();
    assert!(matches!(err, Error::InvalidHardState { .. }), "{err}");
    assert_eq!(w.hard_state(), hs(4, None));
    assert_eq!(w.stats(), before, "a refused change writes nothing");
    assert!(!w.is_poisoned(), "misuse does not poison");
    w.set_hard_state(hs(4, Some(9))).unwrap();
    drop(w);
    let w = Wal::open(dir.path(), Options::default()).unwrap();
    assert_eq!(w.hard_state(), hs(4, Some(9)));
}

#[test]
fn a_terms_vote_never_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), Options::default()).unwrap();
    w.set_hard_state(hs(2, Some(1))).unwrap();
    for bad in [hs(2, Some(2)), hs(2, None)] {
        let err = w.set_hard_state(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidHardState { .. }), "{err}");
        assert!(err.to_string().contains("vote"), "{err}");
    }
    assert_eq!(w.hard_state(), hs(2, Some(1)));
    // A new term may vote anew (or not at all).
    w.set_hard_state(hs(3, None)).unwrap();
    w.set_hard_state(hs(3, Some(2))).unwrap();
    drop(w);
    let mut w = Wal::open(dir.path(), Options::default()).unwrap();
    assert!(w.set_hard_state(hs(3, Some(1))).is_err());
    assert_eq!(w.hard_state(), hs(3, Some(2)));
}

#[test]
fn many_updates_alternate_slots_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), Options::default()).unwrap();
    for t in 1..=101 {
        w.set_hard_state(hs(t, (t % 3 != 0).then_some(t % 5)))
            .unwrap();
    }
    drop(w);
    let w = Wal::open(dir.path(), Options::default()).unwrap();
    assert_eq!(w.hard_state(), hs(101, Some(1)));
    assert_eq!(
        std::fs::metadata(dir.path().join("HEADER")).unwrap().len(),
        8192,
        "two slots, a 4 KiB page each"
    );
}
