//! WAL bug found by a torture sweep (seeds 3760, 4878 and 4902 of the
//! `random_workloads_with_lazy_open` shape with `--crash-after-io-error`, lazy open on or off;
//! wal at 8a020dd): open refused a state every step of which was legal.
//!
//! 1. A truncation cut a segment inside a batch (the header records the kept end, so the
//!    batch left open is known to be complete) and a later truncation in the next segment
//!    replaced that mark.
//! 2. A snapshot moved the base past both segments and removed them, but the directory fsync
//!    failed: a power cut then undid the older segment's removal and kept the newer one's.
//!    (A compaction no longer fsyncs the directory for its removals at all: they wait for
//!    the next directory fsync, so this state follows any snapshot or compaction.)
//! 3. Recovery found the older segment last, ending inside a batch that no header mark
//!    explained, and took the truncation mark as proof the entries had been synced:
//!    "corruption … batch ends before its last record". The entries it lacked are all at or
//!    below the snapshot base: nothing retained was missing.
//!
//! The scenario below builds that state and crashes with every subset of the pending
//! directory operations; every crash state must open to the acknowledged state.
//!
//! Since compaction keeps the last segment while the log continues from it (see
//! `regression_header_rot_after_a_compaction.rs`), a snapshot at the log's end no longer
//! removes both segments; one whose term conflicts with the log's still does (the log then
//! restarts in a fresh segment), and that is the snapshot installed here.

use std::path::Path;

use raftwal::{Entry, Options, SnapshotMeta, Wal};
use raftwal_fault::{CrashMode, SimFs};

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![index as u8; 900],
    }
}

fn batch(lo: u64, hi: u64) -> Vec<Entry> {
    (lo..=hi).map(entry).collect()
}

#[test]
fn a_segment_whose_removal_was_lost_may_end_inside_a_compacted_batch() {
    let dir = Path::new("/wal");
    // 8 KiB segments: 4 KiB of records, four 936-byte frames.
    let opts = Options::default().with_segment_size(8192);
    let fs = SimFs::new(3760);
    fs.mkdir_durable(dir);
    let mut w = Wal::open_with(fs.clone(), dir, opts.clone()).unwrap();
    w.append_sync(&batch(1, 4)).unwrap();
    // Cut inside the batch: 1.wal keeps 1..=2, its batch left open (mark: 2).
    w.truncate_suffix(3).unwrap();
    // Three frames do not fit after two: a new segment, 3.wal.
    w.append_sync(&batch(3, 5)).unwrap();
    assert!(fs.contents(&dir.join("00000000000000000003.wal")).is_some());
    // Cut inside that batch: the mark becomes 4.
    w.truncate_suffix(5).unwrap();
    // A snapshot at 4 whose term conflicts with the log's removes both segments (into the
    // recycle pool); the directory fsyncs it does make the snapshot file's rename and the
    // fresh segment 5.wal durable, not the removals, which wait for the next one.
    w.save_snapshot(SnapshotMeta { index: 4, term: 2 }, b"state at 4")
        .unwrap();
    drop(w);

    let pending = fs.pending();
    let n = pending.dir_ops.len();
    let removals = pending
        .dir_ops
        .iter()
        .filter(|op| format!("{op:?}").contains(".wal"))
        .count();
    assert_eq!(removals, 2, "{:?}", pending.dir_ops);
    let mut older_segment_back = 0;
    for mask in 0..(1u64 << n) {
        let crashed = fs.fork();
        let mut plan = crashed.pending().plan_from_mask(u64::MAX);
        plan.dir_keep = (0..n).map(|i| mask & (1 << i) != 0).collect();
        let report = crashed.crash_with(CrashMode::Plan(plan), 0);
        let exists = |name: &str| crashed.contents(&dir.join(name)).is_some();
        if exists("00000000000000000001.wal") && !exists("00000000000000000003.wal") {
            older_segment_back += 1;
        }
        let w = Wal::open_with(crashed.clone(), dir, opts.clone())
            .unwrap_or_else(|e| panic!("dir ops kept {mask:#b} ({report}): open failed: {e}"));
        // The header update was durable before the removals: the snapshot is the base, and
        // the log (all of it compacted) ends there.
        assert_eq!(
            w.snapshot_meta(),
            SnapshotMeta { index: 4, term: 2 },
            "dir ops kept {mask:#b}"
        );
        assert_eq!(
            (w.last_index(), w.last_term()),
            (4, 2),
            "dir ops kept {mask:#b}"
        );
        drop(w);
        // And it keeps working: the next entry appends and reads back after a reopen.
        let next = Entry {
            term: 2,
            ..entry(5)
        };
        let mut w = Wal::open_with(crashed.clone(), dir, opts.clone()).unwrap();
        w.append_sync(std::slice::from_ref(&next)).unwrap();
        drop(w);
        let w = Wal::open_with(crashed, dir, opts.clone()).unwrap();
        assert_eq!(w.entry(5).unwrap(), next);
    }
    assert!(
        older_segment_back > 0,
        "no crash state brought back 1.wal without 3.wal"
    );
}
