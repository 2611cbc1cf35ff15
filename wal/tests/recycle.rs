//! The recycle pool (`Options::recycle`, docs/FORMAT.md "Recycle pool"): compaction renames
//! freed segments into the pool, rotation reuses them under a fresh identity, and recovery
//! reads a recycled segment's stale tail as the end of the log — while a torn write in it
//! is still cut, corruption of synced data still refused, and lazy open still taken.

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::{assert_log, ent};
use raftwal::{Entry, Error, Options, SegmentPrepare, Wal};

const SEG: u64 = 16 << 10;

fn opts() -> Options {
    Options::default()
        .with_segment_size(SEG)
        .with_prepare(SegmentPrepare::ZeroFill)
}

fn names(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Appends `n` entries of `len` bytes after the current end, one synced batch each.
fn fill(w: &mut Wal, n: u64, len: usize) -> Vec<Entry> {
    let lo = w.last_index() + 1;
    let es: Vec<Entry> = (lo..lo + n).map(|i| ent(i, 1, len)).collect();
    for e in &es {
        w.append_sync(std::slice::from_ref(e)).unwrap();
    }
    es
}

/// A log that has recycled: several segments written, compacted to the end but the last,
/// then written again into files taken from the pool. Returns the retained entries.
fn recycled_log(dir: &Path) -> (Wal, Vec<Entry>) {
    let mut w = Wal::open(dir, opts()).unwrap();
    let mut all = fill(&mut w, 120, 500);
    let keep_from = w.last_index() - 5;
    w.compact(keep_from).unwrap();
    all.retain(|e| e.index > keep_from);
    assert_eq!(names(dir, ".free").len(), 2, "the pool holds its capacity");
    // Fewer bytes than the recycled segments held: their old records follow the new ones.
    all.extend(fill(&mut w, 40, 300));
    assert!(w.stats().segments_from_pool >= 1, "{:?}", w.stats());
    (w, all)
}

#[test]
fn compaction_recycles_and_rotation_reuses_without_creating_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), opts()).unwrap();
    fill(&mut w, 120, 500);
    let before = w.stats();
    w.compact(w.last_index() - 5).unwrap();
    let st = w.stats();
    assert_eq!(st.segments_recycled - before.segments_recycled, 2);
    for p in names(dir.path(), ".free") {
        assert_eq!(std::fs::metadata(&p).unwrap().len(), SEG, "{}", p.display());
    }
    // The next two rotations take the pool's files; the spare serves the one after.
    let created = st.segments_created;
    while w.stats().segments_created < created + 3 {
        fill(&mut w, 1, 500);
    }
    let st = w.stats();
    assert_eq!(st.segments_from_pool, 2, "{st:?}");
    assert!(names(dir.path(), ".free").is_empty());
    assert_eq!(
        st.segments_from_spare - before.segments_from_spare,
        1,
        "{st:?}"
    );
}

#[test]
fn a_recycled_segment_ends_where_its_records_end_and_nothing_stale_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (w, all) = recycled_log(dir.path());
    let first = all[0].index;
    drop(w);
    let lens: Vec<u64> = names(dir.path(), ".wal")
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    let w = Wal::open(dir.path(), opts()).unwrap();
    let r = w.recovery_report();
    assert_eq!(r.torn_bytes_truncated, 0, "{r:?}");
    assert_log(&w, first, &all);
    assert!(w.entry(w.last_index() + 1).is_err());
    drop(w);
    let after: Vec<u64> = names(dir.path(), ".wal")
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    assert_eq!(
        lens, after,
        "open cut nothing: the recycled blocks stay written"
    );
}

#[test]
fn a_torn_batch_in_a_recycled_segment_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, mut all) = recycled_log(dir.path());
    // One more batch of three; then tear its first record's header on the disk.
    let lo = w.last_index() + 1;
    let batch: Vec<Entry> = (lo..lo + 3).map(|i| ent(i, 1, 200)).collect();
    w.append_sync(&batch).unwrap();
    drop(w);
    let last = names(dir.path(), ".wal").pop().unwrap();
    let at = record_offset(&last, lo);
    flip(&last, at + 10);
    let w = Wal::open(dir.path(), opts()).unwrap();
    assert!(w.recovery_report().torn_bytes_truncated > 0);
    assert_log(&w, all[0].index, &all);
    drop(w);
    // The cut holds: appending again and reopening shows no trace of the torn batch.
    let mut w = Wal::open(dir.path(), opts()).unwrap();
    all.extend(fill(&mut w, 1, 50));
    drop(w);
    let w = Wal::open(dir.path(), opts()).unwrap();
    assert_log(&w, all[0].index, &all);
}

#[test]
fn corruption_of_synced_data_in_a_recycled_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (w, all) = recycled_log(dir.path());
    drop(w);
    let last = names(dir.path(), ".wal").pop().unwrap();
    // A record two batches before the end: a later sync group's start proves it synced.
    let victim = all[all.len() - 3].index;
    let at = record_offset(&last, victim);
    flip(&last, at + 44);
    match Wal::open(dir.path(), opts()) {
        Err(Error::Corrupt { index, .. }) => assert_eq!(index, Some(victim)),
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn lazy_open_takes_its_shortcut_over_a_recycled_last_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut w, mut all) = recycled_log(dir.path());
    // Into the pool's second file: three segments, the last two recycled.
    while w.stats().segments_from_pool < 2 {
        all.extend(fill(&mut w, 1, 300));
    }
    all.extend(fill(&mut w, 3, 300));
    drop(w);
    assert_eq!(names(dir.path(), ".wal").len(), 3);
    let w = Wal::open(dir.path(), opts().with_lazy_open(true)).unwrap();
    assert!(w.recovery_report().segments_deferred >= 1);
    assert_log(&w, all[0].index, &all);
}

#[test]
fn open_keeps_the_pool_within_capacity_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _) = recycled_log(dir.path());
    drop(w);
    // Refill the pool, then plant a pool file of the wrong size.
    let mut w = Wal::open(dir.path(), opts()).unwrap();
    fill(&mut w, 80, 500);
    w.compact(w.last_index() - 1).unwrap();
    drop(w);
    assert_eq!(names(dir.path(), ".free").len(), 2);
    std::fs::write(dir.path().join("00000000000000099999.free"), b"short").unwrap();
    let w = Wal::open(dir.path(), opts().with_recycle(1)).unwrap();
    drop(w);
    let pool = names(dir.path(), ".free");
    assert_eq!(pool.len(), 1, "{pool:?}");
    assert_eq!(std::fs::metadata(&pool[0]).unwrap().len(), SEG);
    // Without recycling (or under Grow) open empties the pool and compaction deletes.
    let mut w = Wal::open(dir.path(), opts().with_recycle(0)).unwrap();
    assert!(names(dir.path(), ".free").is_empty());
    fill(&mut w, 80, 500);
    w.compact(w.last_index() - 1).unwrap();
    assert!(names(dir.path(), ".free").is_empty());
    assert_eq!(w.stats().segments_recycled, 0);
    drop(w);
    let grow = Options::default()
        .with_segment_size(SEG)
        .with_prepare(SegmentPrepare::Grow);
    let mut w = Wal::open(dir.path(), grow).unwrap();
    fill(&mut w, 80, 500);
    w.compact(w.last_index() - 1).unwrap();
    assert!(names(dir.path(), ".free").is_empty());
}

#[test]
fn segments_of_batches_larger_than_a_segment_are_recycled_for_such_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), opts()).unwrap();
    // 80 entries of 500 B, about 43 KiB: each batch gets a segment of its own, 2.7 x SEG.
    let big = |lo: u64| -> Vec<Entry> { (lo..lo + 80).map(|i| ent(i, 1, 500)).collect() };
    for _ in 0..4 {
        w.append_sync(&big(w.last_index() + 1)).unwrap();
    }
    w.compact(w.last_index() - 10).unwrap();
    let pool = names(dir.path(), ".free");
    assert_eq!(pool.len(), 2, "{pool:?}");
    for p in &pool {
        assert!(std::fs::metadata(p).unwrap().len() > 2 * SEG, "{p:?}");
    }
    let keep_from = w.first_index();
    let taken = w.stats().segments_from_pool;
    for _ in 0..2 {
        w.append_sync(&big(w.last_index() + 1)).unwrap();
    }
    assert_eq!(w.stats().segments_from_pool, taken + 2, "{:?}", w.stats());
    assert!(names(dir.path(), ".free").is_empty());
    // A segment past 4 x SEG (a 100 KiB batch) is deleted, not kept.
    let huge: Vec<Entry> = (w.last_index() + 1..w.last_index() + 201)
        .map(|i| ent(i, 1, 500))
        .collect();
    w.append_sync(&huge).unwrap();
    w.append_sync(&big(w.last_index() + 1)).unwrap();
    let last = w.last_index();
    w.compact(last - 90).unwrap();
    for p in names(dir.path(), ".free") {
        assert!(std::fs::metadata(&p).unwrap().len() <= 4 * SEG, "{p:?}");
    }
    drop(w);
    let w = Wal::open(dir.path(), opts()).unwrap();
    assert_eq!(w.recovery_report().torn_bytes_truncated, 0);
    assert!(w.first_index() > keep_from);
    assert_eq!(w.last_index(), last);
    assert_log(
        &w,
        w.first_index(),
        &(w.first_index()..=last)
            .map(|i| ent(i, 1, 500))
            .collect::<Vec<_>>(),
    );
}

#[test]
fn recycling_at_the_default_segment_size_with_megabyte_entries() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default().with_prepare(SegmentPrepare::ZeroFill);
    let mut w = Wal::open(dir.path(), o.clone()).unwrap();
    let batch = |lo: u64| -> Vec<Entry> { (lo..lo + 8).map(|i| ent(i, 1, 1 << 20)).collect() };
    // Two and a half 64 MiB segments, compacted, then a segment and a half more: the
    // recycled files hold 64 MiB of old records each.
    for _ in 0..20 {
        w.append_sync(&batch(w.last_index() + 1)).unwrap();
    }
    w.compact(w.last_index() - 4).unwrap();
    let keep_from = w.first_index();
    for _ in 0..12 {
        w.append_sync(&batch(w.last_index() + 1)).unwrap();
    }
    assert!(w.stats().segments_from_pool >= 1, "{:?}", w.stats());
    let last = w.last_index();
    drop(w);
    let w = Wal::open(dir.path(), o).unwrap();
    assert_eq!(w.recovery_report().torn_bytes_truncated, 0);
    assert_eq!((w.first_index(), w.last_index()), (keep_from, last));
    for i in [keep_from, last - 9, last] {
        assert_eq!(w.entry(i).unwrap(), ent(i, 1, 1 << 20));
    }
}

/// The file offset of entry `index`'s record in the segment at `path` (format 3 frames
/// from offset 4096: a 40-byte header holding the payload length at 4 and the index at 8,
/// the payload, zero padding to 8 bytes).
fn record_offset(path: &Path, index: u64) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let mut off = 4096usize;
    while off + 40 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap()) as usize;
        let at = u64::from_le_bytes(bytes[off + 8..off + 16].try_into().unwrap());
        if at == index {
            return off as u64;
        }
        off += (40 + len).div_ceil(8) * 8;
    }
    panic!("entry {index} not found in {}", path.display());
}

/// Flips one bit of the file at `path`, offset `at`.
fn flip(path: &Path, at: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    b[0] ^= 0x10;
    f.write_all_at(&b, at).unwrap();
}

/// A segment file's header: (sequence number, flags) — the u64 at 16 and the u32 at 12
/// (docs/FORMAT.md, "Segment header").
fn header_seq_and_flags(path: &Path) -> (u64, u32) {
    let mut b = [0u8; 64];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut b, 0)
        .unwrap();
    let seq = u64::from_le_bytes(b[16..24].try_into().unwrap());
    let flags = u32::from_le_bytes(b[12..16].try_into().unwrap());
    (seq, flags)
}

#[test]
fn a_sequence_number_written_ahead_is_never_given_again_after_a_reopen() {
    // `Options::take_ahead` writes the next segment's header into a pool file; a reopen
    // forgets it (recovery never reads pool files), and the number it carries must still
    // count as used: no later segment may take it.
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), opts()).unwrap();
    fill(&mut w, 120, 500);
    w.compact(w.last_index() - 5).unwrap();
    let written_ahead = |dir: &Path| {
        names(dir, ".free")
            .iter()
            .map(|p| header_seq_and_flags(p))
            .find(|&(_, flags)| flags & 2 != 0)
    };
    let mut ahead = None;
    for _ in 0..100 {
        fill(&mut w, 1, 500);
        ahead = written_ahead(dir.path());
        if ahead.is_some() {
            break;
        }
    }
    let (seq, _) = ahead.expect("a sync wrote a header ahead into the pool");
    drop(w);
    let mut w = Wal::open(dir.path(), opts()).unwrap();
    let created = w.stats().segments_created;
    while w.stats().segments_created < created + 3 {
        fill(&mut w, 1, 500);
    }
    let seqs: Vec<u64> = names(dir.path(), ".wal")
        .iter()
        .map(|p| header_seq_and_flags(p).0)
        .collect();
    let newest = &seqs[seqs.len() - 3..];
    assert!(
        newest.iter().all(|&s| s > seq),
        "segments made after the reopen carry {newest:?}; {seq} was written ahead before it"
    );
}
