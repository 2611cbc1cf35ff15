//! Pipelined durability (`Wal::begin_sync`, `PendingSync::wait`, `Wal::end_sync`): the
//! `fdatasync`s run without borrowing the `Wal`; appends made meanwhile are buffered, never
//! written before the sync returns, and covered by the next one.

mod common;

use common::sim::{dir, entries, opts};
use raftwal::{Error, HardState, Wal};
use raftwal_fault::{CrashMode, Fault, SimFs, SyncFailure};

fn fresh(seed: u64, segment_size: u64) -> (SimFs, Wal<SimFs>) {
    let fs = SimFs::new(seed);
    fs.mkdir_durable(dir());
    let w = Wal::open_with(fs.clone(), dir(), opts(segment_size)).unwrap();
    (fs, w)
}

/// A copy of the machine after a power cut that loses every unsynced write, reopened.
fn after_losing_unsynced(fs: &SimFs, segment_size: u64) -> Wal<SimFs> {
    let copy = fs.fork();
    copy.crash_with(CrashMode::LoseAll, 0);
    Wal::open_with(copy, dir(), opts(segment_size)).unwrap()
}

#[test]
fn what_was_appended_before_begin_is_durable_once_wait_returns() {
    let (fs, mut w) = fresh(1, 1 << 20);
    w.append(&entries(1, 5, 1, 100)).unwrap();
    let pending = w.begin_sync().unwrap();
    assert!(w.sync_in_flight());
    // Appends and reads go on while the sync is in flight.
    w.append(&entries(6, 8, 1, 100)).unwrap();
    assert_eq!(w.entry(7).unwrap(), entries(7, 7, 1, 100)[0]);
    pending.wait().unwrap();
    assert_eq!(after_losing_unsynced(&fs, 1 << 20).last_index(), 5);
    w.end_sync(pending, Ok(())).unwrap();
    assert!(!w.sync_in_flight());
    w.sync().unwrap();
    assert_eq!(after_losing_unsynced(&fs, 1 << 20).last_index(), 8);
}

#[test]
fn appends_during_a_sync_are_not_written_until_it_ends_even_across_a_rotation() {
    // 8 KiB segments hold about 40 records of 100 bytes: 200 entries rotate several times.
    let (fs, mut w) = fresh(2, 8192);
    w.append(&entries(1, 3, 1, 100)).unwrap();
    let pending = w.begin_sync().unwrap();
    let written = w.stats().bytes_written;
    for i in 4..=200 {
        w.append(&entries(i, i, 1, 100)).unwrap();
    }
    assert_eq!(
        w.stats().bytes_written,
        written,
        "a record of the next sync group reached the file while a sync was in flight"
    );
    pending.wait().unwrap();
    w.end_sync(pending, Ok(())).unwrap();
    w.sync().unwrap();
    let r = after_losing_unsynced(&fs, 8192);
    assert_eq!(r.last_index(), 200);
    assert_eq!(r.entries(1, 201).unwrap(), entries(1, 200, 1, 100));
}

#[test]
fn other_writes_wait_for_the_sync_to_end() {
    let (_fs, mut w) = fresh(3, 1 << 20);
    w.append_sync(&entries(1, 5, 1, 10)).unwrap();
    let pending = w.begin_sync().unwrap();
    let hs = HardState {
        term: 2,
        vote: Some(1),
    };
    for (what, r) in [
        ("sync", w.sync()),
        ("set_hard_state", w.set_hard_state(hs)),
        ("set_app_meta", w.set_app_meta(b"x")),
        ("truncate_suffix", w.truncate_suffix(3)),
        ("compact", w.compact(2)),
        ("begin_sync", w.begin_sync().map(drop)),
    ] {
        assert!(
            matches!(r, Err(Error::InvalidArgument { .. })),
            "{what}: {r:?}"
        );
    }
    assert!(!w.is_poisoned());
    let r = pending.wait();
    w.end_sync(pending, r).unwrap();
    w.set_hard_state(hs).unwrap();
    w.truncate_suffix(3).unwrap();
    assert_eq!(w.last_index(), 2);
}

#[test]
fn a_failed_wait_poisons_at_end_sync_and_reopen_keeps_what_was_acknowledged() {
    let (fs, mut w) = fresh(4, 1 << 20);
    w.append_sync(&entries(1, 5, 1, 10)).unwrap();
    w.append(&entries(6, 7, 1, 10)).unwrap();
    fs.inject(Fault::SyncEio {
        after: 0,
        path: None,
        failure: SyncFailure::MarkClean,
    });
    let pending = w.begin_sync().unwrap();
    let r = pending.wait();
    assert!(r.is_err());
    let e = w.end_sync(pending, r).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Io {
                op: "fdatasync",
                ..
            }
        ),
        "{e}"
    );
    assert!(w.is_poisoned());
    assert!(matches!(
        w.append(&entries(8, 8, 1, 10)),
        Err(Error::Poisoned { .. })
    ));
    drop(w);
    fs.clear_faults();
    fs.crash(9);
    let w = Wal::open_with(fs, dir(), opts(1 << 20)).unwrap();
    assert!(w.last_index() >= 5);
    assert_eq!(w.entries(1, 6).unwrap(), entries(1, 5, 1, 10));
}

#[test]
fn a_pending_sync_runs_on_another_thread_while_the_log_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let w = std::sync::Arc::new(std::sync::Mutex::new(
        Wal::open(dir.path(), raftwal::Options::default()).unwrap(),
    ));
    for round in 0..20u64 {
        let lo = round * 10 + 1;
        let pending = {
            let mut g = w.lock().unwrap();
            g.append(&entries(lo, lo + 9, 1, 64)).unwrap();
            g.begin_sync().unwrap()
        };
        let syncer = std::thread::spawn(move || {
            let r = pending.wait();
            (pending, r)
        });
        // The lock is free during the fdatasync: reads and appends need not wait for it.
        assert_eq!(
            w.lock().unwrap().entry(lo).unwrap(),
            entries(lo, lo, 1, 64)[0]
        );
        let (pending, r) = syncer.join().unwrap();
        w.lock().unwrap().end_sync(pending, r).unwrap();
    }
    let w = std::sync::Arc::into_inner(w).unwrap().into_inner().unwrap();
    drop(w);
    let w = Wal::open(dir.path(), raftwal::Options::default()).unwrap();
    assert_eq!(w.last_index(), 200);
}
