//! Regression: `truncate_suffix` cutting inside an append batch lost the kept part of the
//! batch on reopen. The last kept record lacked the batch-end bit, so recovery took the
//! batch for a torn write and cut back to the previous batch end — dropping entries that
//! were synced and acknowledged, and that the truncation had kept.
//!
//! Fix: `truncate_suffix` records the kept end (`from - 1`) in the header before cutting, and
//! recovery treats that record as a batch end; a batch left open at the end of a sealed
//! segment is accepted when the next segment continues at the next index. (An earlier fix
//! rewrote the record's batch-end bit in place; a torn rewrite of that synced record could
//! lose acknowledged entries — see fault-inject's regression_truncate_suffix_torn_rewrite.)

mod common;

use common::{assert_log, ent, small_opts};
use raftwal::Wal;

#[test]
fn kept_part_of_a_batch_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    let all: Vec<_> = (1..=10).map(|i| ent(i, 1, 8)).collect();
    w.append_sync(&all).unwrap(); // one batch
    w.truncate_suffix(6).unwrap();
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 1, &all[..5]);
    assert_eq!(w.recovery_report().torn_bytes_truncated, 0);
}

#[test]
fn kept_part_of_a_batch_then_rotation_survives_reopen() {
    // The truncated segment ends with the kept part of a batch and the next append goes to
    // a new segment: before the fix this was reported as corruption.
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    let mut all: Vec<_> = (1..=30).map(|i| ent(i, 1, 100)).collect();
    w.append_sync(&all).unwrap();
    w.truncate_suffix(29).unwrap();
    all.truncate(28);
    let more: Vec<_> = (29..=60).map(|i| ent(i, 2, 100)).collect();
    w.append_sync(&more).unwrap();
    all.extend(more);
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 1, &all);
}

#[test]
fn two_truncations_inside_batches_with_a_rotation_between() {
    // The mark of a batch cut short must live as long as the record: an older cut-short
    // batch at the end of a sealed segment stays complete after a later truncation.
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    let mut all: Vec<_> = (1..=25).map(|i| ent(i, 1, 100)).collect();
    w.append_sync(&all).unwrap();
    w.truncate_suffix(20).unwrap();
    all.truncate(19);
    let more: Vec<_> = (20..=35).map(|i| ent(i, 2, 100)).collect();
    let segs = common::segment_files(dir.path()).len();
    w.append_sync(&more).unwrap();
    assert_eq!(common::segment_files(dir.path()).len(), segs + 1, "rotated");
    all.extend(more);
    w.truncate_suffix(30).unwrap();
    all.truncate(29);
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 1, &all);
}
