//! Poisoning: after a failed write or sync the state of unsynced data is unknown
//! (fsyncgate), so every later write is refused with `Error::Poisoned`; reads keep working;
//! a reopen recovers the acknowledged state.
//!
//! The failures are `raftwal_fault::SimFs` faults (EIO on the next file sync or write); the
//! reopen follows a power cut, so it sees only what reached the simulated disk.

mod common;

use common::sim::dir;
use common::{assert_log, ent, small_opts};
use raftwal::{Entry, Error, HardState, SnapshotMeta, Wal};
use raftwal_fault::{Fault, SimFs, SyncFailure};

/// A file system whose next file sync fails with EIO, dropping the dirty pages (fsyncgate).
fn fail_next_sync(fs: &SimFs) {
    fs.inject(Fault::SyncEio {
        after: 0,
        path: None,
        failure: SyncFailure::MarkClean,
    });
}

fn fail_next_write(fs: &SimFs) {
    fs.inject(Fault::WriteEio {
        after: 0,
        path: None,
    });
}

/// Cuts power and reopens: what the WAL finds is what reached the disk.
fn crash_and_reopen(fs: &SimFs, w: Wal<SimFs>) -> Wal<SimFs> {
    drop(w);
    fs.clear_faults();
    fs.crash(7);
    Wal::open_with(fs.clone(), dir(), small_opts()).unwrap()
}

/// Every mutating call must return `Error::Poisoned`, and reads of `acked` keep working.
fn assert_poisoned(w: &mut Wal<SimFs>, acked: &[Entry]) {
    assert!(w.is_poisoned());
    let next = w.last_index() + 1;
    let term = w.last_term();
    let hs = w.hard_state();
    let results: Vec<(&str, raftwal::Result<()>)> = vec![
        ("append", w.append(&[ent(next, term, 10)])),
        ("sync", w.sync()),
        ("append_sync", w.append_sync(&[ent(next, term, 10)])),
        (
            "set_hard_state",
            w.set_hard_state(HardState {
                term: hs.term + 1,
                vote: None,
            }),
        ),
        ("truncate_suffix", w.truncate_suffix(2)),
        ("compact", w.compact(1)),
        (
            "save_snapshot",
            w.save_snapshot(SnapshotMeta { index: 1, term: 1 }, b"x"),
        ),
    ];
    for (what, r) in results {
        match r {
            Err(Error::Poisoned { cause, .. }) => {
                assert!(cause.contains("injected"), "{cause}")
            }
            other => panic!("{what} on a poisoned WAL: {other:?}"),
        }
    }
    for e in acked {
        assert_eq!(
            &w.entry(e.index).unwrap(),
            e,
            "read {} after poisoning",
            e.index
        );
    }
    assert_eq!(w.hard_state(), hs);
}

fn acked_wal(fs: &SimFs) -> (Wal<SimFs>, Vec<Entry>) {
    fs.mkdir_durable(dir());
    let mut w = Wal::open_with(fs.clone(), dir(), small_opts()).unwrap();
    w.set_hard_state(HardState {
        term: 1,
        vote: Some(1),
    })
    .unwrap();
    let acked: Vec<_> = (1..=60).map(|i| ent(i, 1, 120)).collect();
    for c in acked.chunks(6) {
        w.append_sync(c).unwrap();
    }
    (w, acked)
}

#[test]
fn a_failed_segment_sync_poisons_and_reopen_recovers_the_acknowledged_state() {
    let fs = SimFs::new(1);
    let (mut w, acked) = acked_wal(&fs);
    w.append(&[ent(61, 1, 50), ent(62, 1, 50)]).unwrap();
    fail_next_sync(&fs);
    let e = w.sync().unwrap_err();
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
    assert_poisoned(&mut w, &acked);
    let w = crash_and_reopen(&fs, w);
    // The unacknowledged batch may or may not have reached the disk; the rest is intact.
    let mut all = acked.clone();
    if w.last_index() == 62 {
        all.extend([ent(61, 1, 50), ent(62, 1, 50)]);
    }
    assert_log(&w, 1, &all);
}

#[test]
fn a_failed_write_poisons() {
    let fs = SimFs::new(1);
    let (mut w, acked) = acked_wal(&fs);
    w.append(&[ent(61, 1, 50)]).unwrap();
    fail_next_write(&fs);
    let e = w.sync().unwrap_err();
    assert!(matches!(e, Error::Io { op: "write", .. }), "{e}");
    assert_poisoned(&mut w, &acked);
    let w = crash_and_reopen(&fs, w);
    assert_log(&w, 1, &acked);
}

#[test]
fn a_failed_header_sync_poisons() {
    let fs = SimFs::new(1);
    let (mut w, acked) = acked_wal(&fs);
    fail_next_sync(&fs);
    let e = w
        .set_hard_state(HardState {
            term: 2,
            vote: Some(2),
        })
        .unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert_poisoned(&mut w, &acked);
    let w = crash_and_reopen(&fs, w);
    let hs = w.hard_state();
    assert!(
        hs == HardState {
            term: 1,
            vote: Some(1)
        } || hs
            == HardState {
                term: 2,
                vote: Some(2)
            },
        "{hs:?}"
    );
    assert_log(&w, 1, &acked);
}

#[test]
fn a_failed_sync_during_rotation_truncation_or_compaction_poisons() {
    for (what, op) in [
        ("rotation", 0),
        ("truncate_suffix", 1),
        ("compact", 2),
        ("save_snapshot", 3),
    ] {
        let fs = SimFs::new(op);
        let (mut w, acked) = acked_wal(&fs);
        fail_next_sync(&fs);
        let r = match op {
            0 => w.append(&[ent(61, 1, 4000)]), // needs a new segment
            1 => w.truncate_suffix(30),
            2 => w.compact(30),
            _ => w.save_snapshot(SnapshotMeta { index: 30, term: 1 }, b"s"),
        };
        assert!(matches!(r, Err(Error::Io { .. })), "{what}: {r:?}");
        // Reads of what is still in the log work.
        let keep = if op == 1 { &acked[..29] } else { &acked[30..] };
        assert_poisoned(&mut w, keep);
        let w = crash_and_reopen(&fs, w);
        // Every acknowledged entry still in the log's range is intact.
        assert!(w.last_index() >= if op == 1 { 29 } else { 60 }, "{what}");
        for e in &acked {
            if e.index >= w.first_index() && e.index <= w.last_index() {
                assert_eq!(&w.entry(e.index).unwrap(), e, "{what}");
            }
        }
    }
}
