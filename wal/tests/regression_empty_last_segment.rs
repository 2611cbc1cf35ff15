//! Regression: a last segment holding no record (a rotation's new segment whose records
//! never became durable, or whose torn first batch was cut) made `open` report an empty
//! log (`last_index` = the base), hiding every entry of the earlier segments and refusing
//! the next append at `last_index + 1`.
//!
//! Fix: `Wal::open` takes the last index from the last segment that holds a record.

mod common;

use common::{assert_log, ent, segment_files, small_opts};
use raftwal::Wal;

#[test]
fn rotation_then_drop_without_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    let mut all: Vec<_> = (1..=30).map(|i| ent(i, 1, 100)).collect();
    w.append_sync(&all).unwrap();
    let n = segment_files(dir.path()).len();
    // Rotates (the new segment is created durably) but is never synced.
    w.append(&[ent(31, 1, 3000)]).unwrap();
    assert_eq!(segment_files(dir.path()).len(), n + 1);
    drop(w);
    // Simulate the crash: the unsynced record never reached the disk.
    let last = dir.path().join(segment_files(dir.path()).last().unwrap());
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.set_len(64).unwrap();
    drop(f);
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 1, &all);
    let e = ent(31, 2, 10);
    w.append_sync(std::slice::from_ref(&e)).unwrap();
    all.push(e);
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 1, &all);
}
