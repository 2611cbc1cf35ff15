//! `Options::lazy_open`: open reads only the first and the last segment when the log ends
//! cleanly in a segment holding a sync-group start; the sealed segments between are verified
//! on first read, where damage is reported as corruption naming file and offset. Anything
//! else falls back to the full scan.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_log, ent};
use raftwal::{Entry, Error, Options, Wal};

fn opts(lazy_open: bool) -> Options {
    Options::default()
        .with_segment_size(16 << 10)
        .with_lazy_open(lazy_open)
}

/// `n` entries of `term` after `w`'s end, one synced batch of `per_batch` at a time.
fn append(w: &mut Wal, n: u64, term: u64, per_batch: u64, all: &mut Vec<Entry>) {
    let mut next = w.last_index() + 1;
    let end = next + n;
    while next < end {
        let hi = (next + per_batch).min(end);
        let es: Vec<Entry> = (next..hi)
            .map(|i| ent(i, term, 380 + (i % 7) as usize))
            .collect();
        w.append_sync(&es).unwrap();
        all.extend(es);
        next = hi;
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

/// A log of 400 entries in about ten 16 KiB segments, synced a batch of three at a time.
fn build() -> (tempfile::TempDir, Vec<Entry>) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), opts(false)).unwrap();
    let mut all = Vec::new();
    append(&mut w, 400, 1, 3, &mut all);
    drop(w);
    assert!(segments(dir.path()).len() >= 8);
    (dir, all)
}

#[test]
fn a_lazy_open_defers_the_middle_segments_and_reads_the_same_log() {
    let (dir, all) = build();
    let n = segments(dir.path()).len();
    let w = Wal::open(dir.path(), opts(true)).unwrap();
    let r = w.recovery_report();
    assert_eq!(r.segments, n);
    assert_eq!(r.segments_deferred, n - 2, "{r:?}");
    assert_eq!(r.entries, all.len() as u64);
    assert!(
        r.bytes_scanned < all.iter().map(|e| e.data.len() as u64).sum::<u64>() / 2,
        "{r:?}"
    );
    // Every entry and term reads back (the deferred segments are indexed and verified as
    // they are first touched).
    assert_log(&w, 1, &all);
    drop(w);
    // A full open of the same directory agrees.
    let w = Wal::open(dir.path(), opts(false)).unwrap();
    assert_eq!(w.recovery_report().segments_deferred, 0);
    assert_log(&w, 1, &all);
}

#[test]
fn appending_truncating_and_compacting_work_on_a_lazily_opened_log() {
    let (dir, mut all) = build();
    let mut w = Wal::open(dir.path(), opts(true)).unwrap();
    assert!(w.recovery_report().segments_deferred > 0);
    // A follower's conflicting suffix reaching back into a deferred segment.
    let from = 120;
    w.truncate_suffix(from).unwrap();
    all.truncate((from - 1) as usize);
    assert_eq!(w.last_index(), from - 1);
    // New entries of a later term continue in that segment.
    append(&mut w, 60, 2, 5, &mut all);
    assert_log(&w, 1, &all);
    // Compaction by index needs no segment read.
    let term_of_50 = w.term(50).unwrap();
    w.compact(50).unwrap();
    drop(w);
    for lazy in [true, false] {
        let w = Wal::open(dir.path(), opts(lazy)).unwrap();
        assert_eq!(w.snapshot_meta().term, term_of_50);
        assert_log(&w, 51, &all[50..]);
    }
}

#[test]
fn truncating_at_a_segment_boundary_makes_the_deferred_segment_writable() {
    let (dir, mut all) = build();
    // The first index of the fourth segment: truncating there leaves the deferred third
    // segment last, to be appended to from the end of its records.
    let from = first_index_of(&segments(dir.path())[3]);
    let mut w = Wal::open(dir.path(), opts(true)).unwrap();
    w.truncate_suffix(from).unwrap();
    all.truncate((from - 1) as usize);
    assert_eq!(segments(dir.path()).len(), 3);
    // Small entries fit in what the third segment has left: they go right after its last
    // record (a wrong end would leave a gap or overwrite records, and the reopens below
    // would see it).
    for i in from..from + 5 {
        let e = ent(i, 3, 8);
        w.append_sync(std::slice::from_ref(&e)).unwrap();
        all.push(e);
    }
    assert_eq!(
        segments(dir.path()).len(),
        3,
        "the small entries started a new segment"
    );
    append(&mut w, 30, 3, 4, &mut all);
    assert_log(&w, 1, &all);
    drop(w);
    let w = Wal::open(dir.path(), opts(false)).unwrap();
    assert_log(&w, 1, &all);
}

/// Regression (torture seed 2037 of `random_workloads_with_lazy_open`): a deferred segment
/// made writable by a truncation, appended to and sealed by a rotation, then made the last
/// segment again by a truncation at the next segment's first index, was cut at the end its
/// lazy index had found at open, dropping every entry appended to it since: durable ones.
#[test]
fn a_segment_made_writable_keeps_its_end_through_later_truncations() {
    let (dir, mut all) = build();
    let from = first_index_of(&segments(dir.path())[3]);
    let mut w = Wal::open(dir.path(), opts(true)).unwrap();
    w.truncate_suffix(from).unwrap();
    all.truncate((from - 1) as usize);
    // Entries into what the third segment has left, then enough to rotate past it.
    for i in from..from + 5 {
        let e = ent(i, 3, 8);
        w.append_sync(std::slice::from_ref(&e)).unwrap();
        all.push(e);
    }
    append(&mut w, 60, 3, 4, &mut all);
    let segs = segments(dir.path());
    assert!(segs.len() >= 5, "{segs:?}");
    // Truncating at the fourth segment's first index leaves the third one last again, with
    // everything appended to it.
    let next = first_index_of(&segs[3]);
    assert!(next >= from + 5);
    truncate_append_and_reopen(w, dir.path(), next, 1, &mut all);
}

/// Regression (torture seed 3182 of the lazy-open shape, a sweep after 8a020dd): a deferred
/// segment left alone by a compaction and a truncation at its first index had its index
/// built by the truncation, and kept the end that build found after its records changed.
/// Appends into it, a rotation, then a truncation at the next segment's first index cut it
/// at that stale end, through records already synced.
#[test]
fn a_deferred_segment_rewritten_after_a_truncation_keeps_its_new_end() {
    let (dir, mut all) = build();
    let start = first_index_of(&segments(dir.path())[3]);
    let mut w = Wal::open(dir.path(), opts(true)).unwrap();
    assert!(w.recovery_report().segments_deferred > 3);
    // The fourth segment becomes the first (its index still unbuilt), then the only one.
    w.compact(start - 1).unwrap();
    all.drain(..(start - 1) as usize);
    w.truncate_suffix(start).unwrap();
    all.clear();
    assert_eq!(segments(dir.path()).len(), 1);
    // New records into it, smaller than the old ones so they pack further, until it
    // rotates: its records now end past where the old ones did.
    let mut next = start;
    while segments(dir.path()).len() < 2 {
        let es: Vec<Entry> = (next..next + 10).map(|i| ent(i, 3, 8)).collect();
        w.append_sync(&es).unwrap();
        all.extend(es);
        next += 10;
    }
    let segs = segments(dir.path());
    assert!(segs.len() >= 2, "{segs:?}");
    let next = first_index_of(&segs[1]);
    truncate_append_and_reopen(w, dir.path(), next, start, &mut all);
}

/// Truncates `w` (whose log starts at `first` and holds `all`) at `next`, appends a few
/// entries, and checks the log before and after reopening it, fully and lazily.
fn truncate_append_and_reopen(mut w: Wal, dir: &Path, next: u64, first: u64, all: &mut Vec<Entry>) {
    w.truncate_suffix(next).unwrap();
    all.truncate((next - first) as usize);
    assert_log(&w, first, all);
    append(&mut w, 10, 4, 3, all);
    assert_log(&w, first, all);
    drop(w);
    for lazy in [false, true] {
        let w = Wal::open(dir, opts(lazy)).unwrap();
        assert_log(&w, first, all);
    }
}

fn first_index_of(segment: &Path) -> u64 {
    let name = segment.file_stem().unwrap().to_string_lossy().into_owned();
    name.parse().unwrap()
}

#[test]
fn damage_in_a_deferred_segment_is_reported_when_it_is_read() {
    let (dir, all) = build();
    let segs = segments(dir.path());
    let victim = &segs[3];
    let first: u64 = victim
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .parse()
        .unwrap();
    // Flip a payload byte of the segment's first record (offset 4096 + 40-byte header).
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[4096 + 40] ^= 0x10;
    std::fs::write(victim, &bytes).unwrap();

    // The full open refuses, naming the file.
    match Wal::open(dir.path(), opts(false)) {
        Err(Error::Corrupt { path, offset, .. }) => {
            assert_eq!(&path, victim);
            assert_eq!(offset, 4096);
        }
        other => panic!("full open: expected corruption, got {other:?}"),
    }
    // The lazy open starts; reading into the damaged segment reports the same place, every
    // time, and the rest of the log reads normally.
    let w = Wal::open(dir.path(), opts(true)).unwrap();
    assert!(w.recovery_report().segments_deferred > 0);
    for _ in 0..2 {
        match w.entry(first + 1) {
            Err(Error::Corrupt {
                path,
                offset,
                index,
                ..
            }) => {
                assert_eq!(&path, victim);
                assert_eq!(offset, 4096);
                assert_eq!(index, Some(first));
            }
            other => panic!("lazy read: expected corruption, got {other:?}"),
        }
    }
    assert!(w.term(first).unwrap_err().is_corruption());
    assert_eq!(w.entry(1).unwrap(), all[0]);
    assert_eq!(w.entry(400).unwrap(), all[399]);
}

#[test]
fn without_a_group_start_in_the_last_segment_open_scans_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), opts(false)).unwrap();
    let mut all = Vec::new();
    append(&mut w, 200, 1, 3, &mut all);
    // One sync group that starts in the active segment and spills over two new ones: the
    // records of the last two segments all belong to a group that began before them.
    let n_before = segments(dir.path()).len();
    let lo = w.last_index() + 1;
    let mut k = lo;
    while segments(dir.path()).len() < n_before + 2 {
        let e = ent(k, 1, 500);
        w.append(std::slice::from_ref(&e)).unwrap();
        all.push(e);
        k += 1;
    }
    w.sync().unwrap();
    drop(w);
    let w = Wal::open(dir.path(), opts(true)).unwrap();
    assert_eq!(w.recovery_report().segments_deferred, 0);
    assert_log(&w, 1, &all);
}

#[test]
fn an_empty_last_segment_left_by_a_rotation_ahead_still_defers() {
    // Synced batches of ten ~390-byte entries in 16 KiB segments, compacted back to the
    // last 100 entries once 150 are held: with files in the recycle pool, the sync of the second batch in a
    // segment prepares the next one (`Options::rotate_ahead`). Stopped right after one, the
    // last segment is empty, and the group start proving the deferred segments synced is
    // in the one before it.
    let dir = tempfile::tempdir().unwrap();
    let o = opts(false).with_rotate_ahead(true);
    let mut w = Wal::open(dir.path(), o).unwrap();
    let mut all = Vec::new();
    let mut ahead = 0;
    for round in 0.. {
        assert!(round < 200, "no rotation ahead: {:?}", w.stats());
        if ahead == 3 {
            break;
        }
        let before = w.stats().segments_ahead;
        append(&mut w, 10, 1, 10, &mut all);
        if w.last_index() - w.first_index() > 150 {
            w.compact(w.last_index() - 100).unwrap();
        }
        if w.stats().segments_ahead > before {
            ahead += 1;
        }
    }
    let (first, last) = (w.first_index(), w.last_index());
    all.retain(|e| e.index >= first);
    drop(w);
    let segs = segments(dir.path());
    // The last segment starts past the log's end: it holds no entry.
    assert_eq!(first_index_of(segs.last().unwrap()), last + 1);
    let w = Wal::open(dir.path(), opts(true)).unwrap();
    let r = w.recovery_report();
    assert_eq!(r.segments_deferred, segs.len() - 3, "{r:?}");
    assert_log(&w, first, &all);
}

#[test]
fn a_torn_tail_falls_back_to_the_full_scan_and_is_cut() {
    let (dir, all) = build();
    let segs = segments(dir.path());
    let last = segs.last().unwrap();
    // Garbage after the last record of the last segment: a torn, unsynced append.
    let w = Wal::open(dir.path(), opts(false)).unwrap();
    drop(w);
    let mut bytes = std::fs::read(last).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let end = end.next_multiple_of(8);
    bytes[end..end + 64].fill(0xA5);
    std::fs::write(last, &bytes).unwrap();
    let w = Wal::open(dir.path(), opts(true)).unwrap();
    let r = w.recovery_report();
    assert_eq!(r.segments_deferred, 0, "{r:?}");
    assert!(r.torn_bytes_truncated > 0, "{r:?}");
    assert_log(&w, 1, &all);
}
