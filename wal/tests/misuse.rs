//! Misuse of the API: clear errors, never a panic, never poisoning.

mod common;

use common::{ent, ents, small_opts};
use raftwal::{Error, Options, Wal};

#[test]
fn append_with_a_wrong_first_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    for bad in [0u64, 2, 100] {
        let err = w.append(&[ent(bad, 1, 1)]).unwrap_err();
        assert!(matches!(err, Error::InvalidAppend { .. }), "{err}");
        assert!(err.to_string().contains(&bad.to_string()), "{err}");
    }
    w.append_sync(&ents(1, 5, 1)).unwrap();
    for bad in [5u64, 1, 7] {
        assert!(matches!(
            w.append(&[ent(bad, 1, 1)]),
            Err(Error::InvalidAppend { .. })
        ));
    }
    // Not contiguous inside a batch: nothing of it is appended.
    let err = w.append(&[ent(6, 1, 1), ent(8, 1, 1)]).unwrap_err();
    assert!(matches!(err, Error::InvalidAppend { .. }), "{err}");
    assert_eq!(w.last_index(), 5);
    assert!(!w.is_poisoned());
    w.append_sync(&ents(6, 6, 1)).unwrap();
}

#[test]
fn terms_going_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    w.append_sync(&ents(1, 3, 5)).unwrap();
    let err = w.append(&[ent(4, 4, 1)]).unwrap_err();
    assert!(matches!(err, Error::InvalidAppend { .. }), "{err}");
    assert!(err.to_string().contains("term"), "{err}");
    let err = w
        .append(&[ent(4, 5, 1), ent(5, 6, 1), ent(6, 5, 1)])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidAppend { .. }), "{err}");
    assert_eq!(w.last_index(), 3);
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(w.last_index(), 3);
}

#[test]
fn reads_outside_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    assert!(matches!(w.entry(1), Err(Error::Unavailable { .. })));
    assert!(matches!(w.entry(0), Err(Error::Compacted { .. })));
    assert_eq!(w.term(0).unwrap(), 0);
    w.append_sync(&ents(1, 50, 1)).unwrap();
    w.compact(20).unwrap();
    let err = w.entry(20).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Compacted {
                index: 20,
                first_index: 21
            }
        ),
        "{err}"
    );
    assert!(matches!(w.term(19), Err(Error::Compacted { .. })));
    assert_eq!(w.term(20).unwrap(), 1);
    let err = w.entry(51).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unavailable {
                index: 51,
                last_index: 50
            }
        ),
        "{err}"
    );
    assert!(matches!(w.term(51), Err(Error::Unavailable { .. })));
    assert!(matches!(w.entries(15, 30), Err(Error::Compacted { .. })));
    assert!(matches!(w.entries(40, 52), Err(Error::Unavailable { .. })));
    assert_eq!(w.entries(30, 30).unwrap(), vec![]);
    assert_eq!(w.entries(30, 20).unwrap(), vec![]);
    assert_eq!(w.entries(21, 51).unwrap().len(), 30);
    assert!(matches!(w.entry(u64::MAX), Err(Error::Unavailable { .. })));
    assert!(!w.is_poisoned());
}

#[test]
fn truncation_at_or_below_the_base() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    assert!(matches!(
        w.truncate_suffix(0),
        Err(Error::InvalidArgument { .. })
    ));
    w.append_sync(&ents(1, 50, 1)).unwrap();
    w.compact(20).unwrap();
    for bad in [0u64, 1, 20] {
        let err = w.truncate_suffix(bad).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    }
    assert_eq!(w.last_index(), 50);
    assert!(!w.is_poisoned());
}

#[test]
fn segment_size_below_the_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let err = Wal::open(dir.path(), Options::default().with_segment_size(100)).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
}

#[test]
fn empty_append_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    w.append(&[]).unwrap();
    w.sync().unwrap();
    assert_eq!(w.last_index(), 0);
}

#[test]
fn snapshot_at_the_largest_index() {
    // Regression: a snapshot at index u64::MAX made `first_index` (and the next append's
    // index) overflow — a panic in debug builds. Now refused.
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    w.append_sync(&ents(1, 3, 1)).unwrap();
    let meta = raftwal::SnapshotMeta {
        index: u64::MAX,
        term: 1,
    };
    let err = w.save_snapshot(meta, b"x").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert_eq!((w.first_index(), w.last_index()), (1, 3));
    assert!(!w.is_poisoned());
    // The largest usable base is fine.
    w.save_snapshot(
        raftwal::SnapshotMeta {
            index: u64::MAX - 1,
            term: 1,
        },
        b"y",
    )
    .unwrap();
    assert_eq!(w.first_index(), u64::MAX);
    assert!(matches!(w.entry(u64::MAX), Err(Error::Unavailable { .. })));
    let err = w.append(&[ent(u64::MAX, 1, 1)]).unwrap_err();
    assert!(matches!(err, Error::InvalidAppend { .. }), "{err}");
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(w.last_index(), u64::MAX - 1);
}

/// Regression (defect 7 of the durability review): a `segment_size` above 4 GiB was
/// accepted, and the log was then stuck for good once a segment passed 4 GiB (every append
/// `InvalidAppend`, across reopens: record offsets are 32-bit). Refused at open now.
#[test]
fn a_segment_size_above_4_gib_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    for size in [(4u64 << 30), 5 << 30, u64::MAX] {
        let opts = Options::default()
            .with_segment_size(size)
            .with_prepare(raftwal::SegmentPrepare::Grow);
        match Wal::open(dir.path(), opts) {
            Err(Error::InvalidArgument { reason }) => {
                assert!(reason.contains("segment_size"), "{reason}")
            }
            other => panic!("segment_size {size}: expected a refusal, got {other:?}"),
        }
    }
    assert!(!dir.path().join("HEADER").exists(), "nothing created");
}
