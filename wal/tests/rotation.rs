//! Rotation: entries spanning many small segments, reads from sealed and active segments,
//! and the fdatasync count of `sync()` (group commit).

mod common;

use common::{assert_log, ent, ents, segment_files, small_opts};
use raftwal::{Options, Wal};

#[test]
fn entries_span_many_segments_and_read_back_before_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    let mut all = Vec::new();
    let mut next = 1;
    for batch in 0..60u64 {
        let n = 1 + batch % 9;
        let b: Vec<_> = (next..next + n)
            .map(|i| ent(i, 1 + batch / 20, (i * 37 % 700) as usize))
            .collect();
        next += n;
        w.append(&b).unwrap();
        all.extend(b);
        if batch % 3 == 0 {
            w.sync().unwrap();
        }
        // Reads work for sealed, active-written and still-buffered entries alike.
        let mid = all[all.len() / 2].clone();
        assert_eq!(w.entry(mid.index).unwrap(), mid);
        assert_eq!(&w.entry(next - 1).unwrap(), all.last().unwrap());
    }
    w.sync().unwrap();
    let segs = segment_files(dir.path());
    assert!(segs.len() >= 10, "expected many segments, got {segs:?}");
    assert!(w.stats().segments_created as usize >= segs.len());
    assert_log(&w, 1, &all);
    assert_eq!(w.entries(1, next).unwrap(), all);
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(w.recovery_report().segments, segs.len());
    assert_eq!(w.recovery_report().entries, all.len() as u64);
    assert_eq!(w.recovery_report().torn_bytes_truncated, 0);
    assert_log(&w, 1, &all);
}

#[test]
fn a_batch_larger_than_a_segment_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    let mut all = ents(1, 3, 1);
    w.append_sync(&all).unwrap();
    let big: Vec<_> = (4..=8).map(|i| ent(i, 1, 2000)).collect();
    w.append_sync(&big).unwrap();
    all.extend(big);
    let tail = ents(9, 12, 2);
    w.append_sync(&tail).unwrap();
    all.extend(tail);
    assert_log(&w, 1, &all);
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 1, &all);
    assert!(segment_files(dir.path()).len() >= 3);
}

#[test]
fn one_fdatasync_per_sync_without_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), Options::default().with_segment_size(1 << 20)).unwrap();
    w.append_sync(&ents(1, 1, 1)).unwrap(); // creates the first segment
    for (round, next) in (2..22).enumerate() {
        let before = w.stats();
        w.append(&ents(next, next, 1)).unwrap();
        w.sync().unwrap();
        let after = w.stats();
        assert_eq!(after.file_syncs - before.file_syncs, 1, "round {round}");
        assert_eq!(after.dir_syncs, before.dir_syncs);
        assert_eq!(after.writes - before.writes, 1);
    }
    // A sync with nothing appended costs nothing.
    let before = w.stats();
    w.sync().unwrap();
    assert_eq!(w.stats(), before);
}

#[test]
fn group_commit_n_appends_one_sync_one_fdatasync() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), Options::default().with_segment_size(1 << 20)).unwrap();
    w.append_sync(&ents(1, 1, 1)).unwrap();
    let before = w.stats();
    let mut next = 2;
    for _ in 0..50 {
        w.append(&ents(next, next + 2, 1)).unwrap();
        next += 3;
    }
    assert_eq!(
        w.stats().file_syncs,
        before.file_syncs,
        "append never syncs"
    );
    w.sync().unwrap();
    let after = w.stats();
    assert_eq!(after.file_syncs - before.file_syncs, 1);
    assert_eq!(
        after.writes - before.writes,
        1,
        "one pwrite for all batches"
    );
    assert_eq!(after.entries_appended - before.entries_appended, 150);
    drop(w);
    let w = Wal::open(dir.path(), Options::default()).unwrap();
    assert_eq!(w.last_index(), next - 1);
}

#[test]
fn sync_after_rotation_syncs_each_written_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    w.append_sync(&ents(1, 1, 1)).unwrap();
    let before = w.stats();
    // ~3 segments worth of appends, one sync.
    let mut next = 2;
    while w.stats().segments_created < before.segments_created + 2 {
        w.append(&[ent(next, 1, 500)]).unwrap();
        next += 1;
    }
    let mid = w.stats();
    w.sync().unwrap();
    let after = w.stats();
    let written_files = after.segments_created - before.segments_created + 1;
    // Rotation syncs the new segment's header when it creates it; `sync` then syncs each
    // file that received records exactly once.
    assert_eq!(after.file_syncs - mid.file_syncs, written_files);
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(w.last_index(), next - 1);
    for i in 2..next {
        assert_eq!(w.entry(i).unwrap(), ent(i, 1, 500));
    }
}

#[test]
fn appends_after_reopen_continue_in_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for round in 0..5u64 {
        let mut w = Wal::open(dir.path(), small_opts()).unwrap();
        assert_eq!(w.last_index(), all.len() as u64);
        let lo = all.len() as u64 + 1;
        let b = ents(lo, lo + 20, round + 1);
        w.append_sync(&b).unwrap();
        all.extend(b);
        assert_log(&w, 1, &all);
    }
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 1, &all);
}

#[test]
fn reopening_with_another_segment_size_or_preallocation() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for (round, (size, prealloc)) in [
        (8192u64, true),
        (1 << 20, false),
        (16384, true),
        (8192, false),
    ]
    .into_iter()
    .enumerate()
    {
        let opts = Options::default()
            .with_segment_size(size)
            .with_prepare(if prealloc {
                raftwal::SegmentPrepare::default()
            } else {
                raftwal::SegmentPrepare::Grow
            });
        let mut w = Wal::open(dir.path(), opts.clone()).unwrap();
        assert_log(&w, 1, &all);
        let lo = all.len() as u64 + 1;
        let b: Vec<_> = (lo..lo + 40)
            .map(|i| ent(i, round as u64 + 1, 150))
            .collect();
        for c in b.chunks(4) {
            w.append_sync(c).unwrap();
        }
        all.extend(b);
        drop(w);
        let w = Wal::open(dir.path(), opts).unwrap();
        assert_log(&w, 1, &all);
    }
}
