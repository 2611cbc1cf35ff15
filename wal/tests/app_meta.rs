//! Application metadata in the HEADER (`Wal::set_app_meta`), moving the base past the end
//! (`Wal::compact_to`) and byte-bounded reads (`Wal::entries_bounded`): the WAL features
//! a Raft adapter builds on, each through power cuts on the simulated disk.

mod common;

use common::sim::{dir, entries, newest_slot, opts};
use raftwal::{Error, SnapshotMeta, Wal, APP_META_MAX};
use raftwal_fault::SimFs;

fn fresh(seed: u64) -> (SimFs, Wal<SimFs>) {
    let fs = SimFs::new(seed);
    fs.mkdir_durable(dir());
    let w = Wal::open_with(fs.clone(), dir(), opts(8192)).unwrap();
    (fs, w)
}

fn crash_and_reopen(fs: &SimFs, w: Wal<SimFs>, seed: u64) -> Wal<SimFs> {
    drop(w);
    fs.crash(seed);
    Wal::open_with(fs.clone(), dir(), opts(8192)).unwrap()
}

#[test]
fn app_meta_is_durable_when_set_returns_and_costs_one_fdatasync() {
    let (fs, mut w) = fresh(1);
    assert_eq!(w.app_meta(), b"");
    let syncs = w.stats().file_syncs;
    w.set_app_meta(b"vote=(5,node 2,committed)").unwrap();
    assert_eq!(w.stats().file_syncs - syncs, 1);
    w.set_app_meta(b"vote=(5,node 2,committed)").unwrap();
    assert_eq!(
        w.stats().file_syncs - syncs,
        1,
        "an unchanged blob is not rewritten"
    );
    let w = crash_and_reopen(&fs, w, 2);
    assert_eq!(w.app_meta(), b"vote=(5,node 2,committed)");
}

#[test]
fn app_meta_of_the_largest_size_fits_and_a_larger_one_is_refused() {
    let (fs, mut w) = fresh(3);
    w.set_app_meta(&[0xab; APP_META_MAX]).unwrap();
    let err = w.set_app_meta(&[1; APP_META_MAX + 1]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert!(!w.is_poisoned());
    let w = crash_and_reopen(&fs, w, 4);
    assert_eq!(w.app_meta(), &[0xab; APP_META_MAX][..]);
}

#[test]
fn a_crash_during_set_app_meta_leaves_the_old_or_the_new_blob() {
    for seed in 0..200 {
        let (fs, mut w) = fresh(seed);
        w.set_app_meta(b"old").unwrap();
        // Cut power right after the slot write, before its fdatasync returns.
        fs.inject(raftwal_fault::Fault::SyncEio {
            after: 0,
            path: Some("HEADER".into()),
            failure: raftwal_fault::SyncFailure::Random,
        });
        assert!(w.set_app_meta(b"new").is_err());
        fs.clear_faults();
        let w = crash_and_reopen(&fs, w, seed);
        assert!(
            w.app_meta() == b"old" || w.app_meta() == b"new",
            "seed {seed}: {:?}",
            w.app_meta()
        );
    }
}

#[test]
fn app_meta_survives_rot_of_either_slot_after_a_reshaping_call() {
    for rotten_newest in [true, false] {
        let (fs, mut w) = fresh(5);
        w.append_sync(&entries(1, 20, 1, 100)).unwrap();
        w.set_app_meta(b"purged=(1,0,9)").unwrap();
        w.compact(10).unwrap(); // writes both slots, carrying the blob
        let newest = newest_slot(&fs);
        drop(w);
        fs.crash(6);
        let slot = if rotten_newest { newest } else { 4096 - newest };
        fs.flip_bit(&dir().join("HEADER"), slot + 90, 1).unwrap();
        let w = Wal::open_with(fs.clone(), dir(), opts(8192)).unwrap();
        assert_eq!(w.app_meta(), b"purged=(1,0,9)");
        assert_eq!(w.first_index(), 11);
    }
}

#[test]
fn compact_to_past_the_end_discards_the_log_and_the_next_append_follows_it() {
    let (fs, mut w) = fresh(7);
    w.append_sync(&entries(1, 10, 1, 50)).unwrap();
    let meta = SnapshotMeta { index: 20, term: 2 };
    w.compact_to(meta).unwrap();
    assert_eq!(
        (w.first_index(), w.last_index(), w.last_term()),
        (21, 20, 2)
    );
    assert!(matches!(w.entry(5), Err(Error::Compacted { .. })));
    assert_eq!(w.snapshot().unwrap(), None);
    let mut w = crash_and_reopen(&fs, w, 8);
    assert_eq!(w.snapshot_meta(), meta);
    assert_eq!(w.last_index(), 20);
    w.append_sync(&entries(21, 22, 2, 50)).unwrap();
    let w = crash_and_reopen(&fs, w, 9);
    assert_eq!(w.entry(22).unwrap(), entries(22, 22, 2, 50)[0]);
}

#[test]
fn compact_to_inside_the_log_keeps_a_matching_suffix_and_drops_a_conflicting_one() {
    let (_fs, mut w) = fresh(10);
    w.append_sync(&entries(1, 10, 1, 50)).unwrap();
    w.compact_to(SnapshotMeta { index: 4, term: 1 }).unwrap();
    assert_eq!((w.first_index(), w.last_index()), (5, 10));
    w.compact_to(SnapshotMeta { index: 6, term: 3 }).unwrap();
    assert_eq!((w.first_index(), w.last_index(), w.last_term()), (7, 6, 3));
    let err = w
        .compact_to(SnapshotMeta { index: 5, term: 3 })
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
}

#[test]
fn bounded_reads_stop_at_the_budget_but_return_at_least_one_entry() {
    let (_fs, mut w) = fresh(11);
    w.append_sync(&entries(1, 10, 1, 100)).unwrap();
    assert_eq!(w.entries_bounded(1, 11, 350).unwrap().len(), 3);
    assert_eq!(w.entries_bounded(1, 11, 300).unwrap().len(), 3);
    let one = w.entries_bounded(4, 11, 10).unwrap();
    assert_eq!(one, entries(4, 4, 1, 100), "at least one entry");
    assert_eq!(w.entries_bounded(1, 11, u64::MAX).unwrap().len(), 10);
    assert!(w.entries_bounded(5, 5, 0).unwrap().is_empty());
    assert!(matches!(
        w.entries_bounded(5, 12, 1000),
        Err(Error::Unavailable { .. })
    ));
}
