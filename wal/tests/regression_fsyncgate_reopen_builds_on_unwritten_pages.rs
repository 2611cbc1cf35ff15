//! WAL bug (defect 1 of the durability review): after a failed fdatasync, a reopen without
//! a reboot built on bytes that never reached the disk.
//!
//! Linux (ext4, xfs) may mark the dirty pages of a failed fsync clean without writing them
//! (fsyncgate): reads still see them, a later fsync writes nothing. Open used to scan the
//! page cache and "defend" with one fdatasync per segment, which writes nothing for clean
//! pages. So:
//! - entries 1–4 synced; the sync of 5–8 fails; reopen shows 1–8; 9–12 appended and synced
//!   (acknowledged); a power cut leaves 1–4 and 9–12 with a hole: open refused, and
//!   `TruncateCorrupt` kept 4 (9–12 lost);
//! - a `truncate_suffix(11)` whose cut fails to reach the disk; reopen shows 1–10; 11–13
//!   appended and synced; a power cut brings the removed 14–20 back behind them (same
//!   segment identity, so they verify).
//!
//! Found by the torture once a handle reopened after an I/O error is worked on before the
//! power is cut (reverting the fix: seeds 4, 5, 13, 14, 27, 31, 47 and 95 of 0..150).
//! Fixed by open rewriting the last sync group it accepted (nothing on disk proves it
//! durable) and by the truncation fence (records past it in an older sync group are void).

mod common;

use common::sim::dir;
use raftwal::{Entry, Options, RecoveryMode, Wal};
use raftwal_fault::{CrashMode, Fault, SimFs, SyncFailure};

fn opts() -> Options {
    common::sim::opts(64 << 10)
}

fn entries(lo: u64, hi: u64, term: u64) -> Vec<Entry> {
    common::sim::entries(lo, hi, term, 200)
}

fn fs() -> SimFs {
    let fs = SimFs::new(5);
    fs.mkdir_durable(dir());
    fs
}

fn fail_next_segment_sync(fs: &SimFs, failure: SyncFailure) {
    fs.inject(Fault::SyncEio {
        after: 0,
        path: Some(".wal".into()),
        failure,
    });
}

fn check_after_cut(fs: &SimFs, want: &[Entry]) {
    fs.crash_with(CrashMode::LoseAll, 0);
    let w = Wal::open_with(fs.clone(), dir(), opts())
        .unwrap_or_else(|e| panic!("open after the power cut: {e}"));
    assert_eq!(w.last_index(), want.last().unwrap().index);
    assert_eq!(w.entries(1, w.last_index() + 1).unwrap(), want);
}

#[test]
fn entries_synced_on_a_handle_reopened_after_a_failed_fsync_survive_a_power_cut() {
    for failure in [SyncFailure::MarkClean, SyncFailure::PersistSome] {
        let fs = fs();
        let mut w = Wal::open_with(fs.clone(), dir(), opts()).unwrap();
        w.append_sync(&entries(1, 4, 1)).unwrap();
        fail_next_segment_sync(&fs, failure);
        assert!(w.append_sync(&entries(5, 8, 1)).is_err());
        drop(w);
        fs.clear_faults();
        // Reopen without a reboot: the cache shows 1–8.
        let mut w = Wal::open_with(fs.clone(), dir(), opts()).unwrap();
        assert_eq!(w.last_index(), 8, "{failure:?}");
        w.append_sync(&entries(9, 12, 1)).unwrap();
        drop(w);
        check_after_cut(&fs, &entries(1, 12, 1));
        // And the operator's mode finds nothing to cut either.
        let w = Wal::open_with(
            fs.clone(),
            dir(),
            opts().with_recovery(RecoveryMode::TruncateCorrupt),
        )
        .unwrap();
        assert_eq!(w.last_index(), 12);
    }
}

#[test]
fn entries_a_failed_truncation_removed_never_come_back_behind_new_ones() {
    for failure in [SyncFailure::MarkClean, SyncFailure::PersistSome] {
        for new_term in [1, 2] {
            let fs = fs();
            let mut w = Wal::open_with(fs.clone(), dir(), opts()).unwrap();
            // Two sync groups: the removed records are of the later one, which a reopen
            // that sees only 1–10 does not know of.
            w.append_sync(&entries(1, 10, 1)).unwrap();
            w.append_sync(&entries(11, 20, 1)).unwrap();
            // The cut's fsync fails: the truncation is recorded in the header, the cut
            // itself may never reach the disk.
            fail_next_segment_sync(&fs, failure);
            assert!(w.truncate_suffix(11).is_err());
            drop(w);
            fs.clear_faults();
            let mut w = Wal::open_with(fs.clone(), dir(), opts()).unwrap();
            assert_eq!(w.last_index(), 10, "{failure:?}");
            let new = entries(11, 13, new_term);
            w.append_sync(&new).unwrap();
            drop(w);
            let mut want = entries(1, 10, 1);
            want.extend(new);
            check_after_cut(&fs, &want);
        }
    }
}
