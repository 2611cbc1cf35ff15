//! WAL bug (fixed in 102ea4e, "make what open trusts durable first") found by `raftwal
//! torture` (seeds 3 and 1, on e9529ee..f16fc8b): after `compact` fails because the
//! header's fdatasync returned EIO, a reopen *without* a crash reads the new header (base
//! moved) from the page cache, and recovery deletes files that only that non-durable base
//! makes obsolete (whole segments below it, the superseded snapshot file), syncing the
//! directory. A power cut then brings back the old durable header: either acknowledged
//! entries are gone (seed 3: base 525, entries 526..=529 lost) or open refuses to start
//! ("the header's snapshot file is missing", seed 1).
//!
//! docs/FAULT-MODEL.md row "fsync / write returns EIO: ... re-verify on reopen": recovery must make
//! the header it trusts durable (rewrite the slot and fdatasync it, since after fsyncgate the
//! cached page may be clean but never written) before deleting anything on its strength.

mod common;

use raftwal::{Entry, Options, Wal};
use raftwal_fault::{CrashMode, Fault, SimFs, SyncFailure};

fn opts() -> Options {
    common::sim::opts(8192)
}

fn entry(index: u64) -> Entry {
    common::sim::entry(index, 1, 500)
}

fn scenario(failure: SyncFailure) {
    let dir = common::sim::dir();
    let fs = SimFs::new(7);
    fs.mkdir_durable(dir);
    let mut w = Wal::open_with(fs.clone(), dir, opts()).unwrap();
    let acked: Vec<Entry> = (1..=24).map(entry).collect();
    for chunk in acked.chunks(4) {
        w.append(chunk).unwrap();
        w.sync().unwrap();
    }
    fs.inject(Fault::SyncEio {
        after: 0,
        path: Some("HEADER".into()),
        failure,
    });
    assert!(w.compact(20).is_err(), "the header fdatasync fails");
    drop(w);
    fs.clear_faults();
    // Reopen without a crash: must lose nothing acknowledged ...
    let w = Wal::open_with(fs.clone(), dir, opts()).unwrap();
    assert_eq!(w.last_index(), 24);
    drop(w);
    // ... and neither must a power cut afterwards.
    fs.crash_with(CrashMode::LoseAll, 0);
    let w = Wal::open_with(fs.clone(), dir, opts())
        .unwrap_or_else(|e| panic!("open after the cut failed ({failure:?}): {e}"));
    assert_eq!(w.last_index(), 24, "{failure:?}");
    let first = w.first_index();
    assert_eq!(
        w.entries(first, 25).unwrap(),
        acked[(first - 1) as usize..].to_vec(),
        "{failure:?}: acknowledged entries changed or lost"
    );
}

#[test]
fn compact_with_failed_header_fsync_then_reopen_then_power_cut_keeps_acked_entries_keep_pending() {
    scenario(SyncFailure::KeepPending);
}

#[test]
fn compact_with_failed_header_fsync_then_reopen_then_power_cut_keeps_acked_entries_mark_clean() {
    scenario(SyncFailure::MarkClean);
}

#[test]
fn torture_seed_3_cycle_55() {
    if let Err(v) = raftwal_fault::torture::run(3, 55) {
        panic!("{v}");
    }
}

#[test]
fn torture_seed_1_cycle_87() {
    if let Err(v) = raftwal_fault::torture::run(1, 87) {
        panic!("{v}");
    }
}
