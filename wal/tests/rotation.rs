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

/// Appends `n` batches of two 1.5 KiB entries, each synced and then compacted back to the
/// last four entries (so compacted segments fill the recycle pool), after `next`; returns
/// the entries and, per batch, what its append and sync cost: [file syncs, directory syncs,
/// writes, segments prepared ahead].
fn synced_batches(w: &mut Wal, next: &mut u64, n: usize) -> (Vec<raftwal::Entry>, Vec<[u64; 4]>) {
    let mut all = Vec::new();
    let mut costs = Vec::new();
    for _ in 0..n {
        let b = vec![ent(*next, 1, 1500), ent(*next + 1, 1, 1500)];
        *next += 2;
        let before = w.stats();
        w.append(&b).unwrap();
        w.sync().unwrap();
        let after = w.stats();
        costs.push([
            after.file_syncs - before.file_syncs,
            after.dir_syncs - before.dir_syncs,
            after.writes - before.writes,
            after.segments_ahead - before.segments_ahead,
        ]);
        all.extend(b);
        let to = w.last_index().saturating_sub(4);
        if to >= w.first_index() {
            w.compact(to).unwrap();
        }
    }
    (all, costs)
}

/// Asserts that `w` holds the entries of `all` from its first index on.
fn assert_tail(w: &Wal, all: &[raftwal::Entry]) {
    let first = w.first_index();
    let tail: Vec<_> = all.iter().filter(|e| e.index >= first).cloned().collect();
    assert_log(w, first, &tail);
}

/// 16 KiB segments hold 12 KiB of records: three 3 KiB batches, then a fourth would not fit.
fn ahead_opts() -> Options {
    Options::default()
        .with_segment_size(16384)
        .with_rotate_ahead(true)
}

#[test]
fn a_sync_prepares_the_next_segment_so_the_next_batch_costs_one_fdatasync() {
    // Once compactions have put files in the pool, the sync of each segment's third batch
    // prepares the next segment beside its fdatasync.
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), ahead_opts()).unwrap();
    let mut next = 1;
    let (all, costs) = synced_batches(&mut w, &mut next, 40);
    let first_ahead = costs
        .iter()
        .position(|c| c[3] == 1)
        .expect("a rotation ahead");
    for (i, &[files, dirs, writes, ahead]) in costs.iter().enumerate().skip(first_ahead) {
        if ahead == 1 {
            // The group's fdatasync and the new segment's header fdatasync and directory
            // fsync (two when a compaction freed a file since the last one), side by side.
            assert_eq!(files, 2, "batch {i}: {costs:?}");
            assert!((1..=2).contains(&dirs), "batch {i}: {costs:?}");
        } else {
            assert_eq!((files, dirs, ahead), (1, 0, 0), "batch {i}: {costs:?}");
        }
        assert_eq!(writes, 1, "batch {i}: {costs:?}");
    }
    let st = w.stats();
    assert!(st.segments_ahead >= 8, "{st:?}");
    assert!(st.segments_from_pool >= st.segments_ahead, "{st:?}");
    assert_tail(&w, &all);
    drop(w);
    let w = Wal::open(dir.path(), ahead_opts()).unwrap();
    assert_eq!(w.recovery_report().torn_bytes_truncated, 0);
    assert_tail(&w, &all);
}

#[test]
fn without_rotate_ahead_the_rotating_batch_pays_the_header_sync_and_directory_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ahead_opts().with_rotate_ahead(false);
    let mut w = Wal::open(dir.path(), opts).unwrap();
    let mut next = 1;
    let (_, costs) = synced_batches(&mut w, &mut next, 40);
    let rotating = costs
        .iter()
        .skip(1)
        .filter(|c| c[0] == 2 && c[1] >= 1)
        .count();
    assert!(rotating >= 8, "{costs:?}");
    assert!(costs.iter().all(|c| c[3] == 0), "{costs:?}");
}

#[test]
fn the_log_goes_on_after_a_rotation_ahead_through_reopen_truncation_and_compaction() {
    // A rotation ahead leaves an empty active segment: reopened, truncated into the sealed
    // segment before it, compacted past its end, and appended to in each case.
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), ahead_opts()).unwrap();
    let mut next = 1;
    let mut all = Vec::new();
    // Up to a sync that rotated ahead: the last segment is empty.
    while w.stats().segments_ahead == 0 {
        let (more, _) = synced_batches(&mut w, &mut next, 1);
        all.extend(more);
    }
    drop(w);
    // Reopened with the empty segment last: appends go into it.
    let mut w = Wal::open(dir.path(), ahead_opts()).unwrap();
    assert_tail(&w, &all);
    let created = w.stats().segments_created;
    let (more, _) = synced_batches(&mut w, &mut next, 1);
    all.extend(more);
    assert_eq!(w.stats().segments_created, created, "{:?}", w.stats());
    // Truncated into the sealed segment right after a rotation ahead.
    while w.stats().segments_ahead == 0 {
        let (more, _) = synced_batches(&mut w, &mut next, 1);
        all.extend(more);
    }
    w.truncate_suffix(next - 3).unwrap();
    all.truncate(all.len() - 3);
    next -= 3;
    let (more, _) = synced_batches(&mut w, &mut next, 1);
    all.extend(more);
    assert_tail(&w, &all);
    // Compacted past the end right after a rotation ahead.
    let ahead = w.stats().segments_ahead;
    while w.stats().segments_ahead == ahead {
        let (more, _) = synced_batches(&mut w, &mut next, 1);
        all.extend(more);
    }
    let meta = raftwal::SnapshotMeta {
        index: next + 5,
        term: 2,
    };
    w.compact_to(meta).unwrap();
    let b = vec![ent(next + 6, 2, 100)];
    w.append_sync(&b).unwrap();
    drop(w);
    let w = Wal::open(dir.path(), ahead_opts()).unwrap();
    assert_log(&w, next + 6, &b);
}
