//! The spare segment (`segment.spare`, see `SegmentPrepare`): rotations take it, the next one
//! is prepared, reopening keeps a complete one and discards anything else, and a spare is
//! never read as part of the log.

mod common;

use std::path::Path;

use common::ent;
use raftwal::{Entry, Options, SegmentPrepare, Wal};

fn opts(prepare: SegmentPrepare) -> Options {
    Options::default()
        .with_segment_size(16 << 10)
        .with_prepare(prepare)
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Appends `n` synced entries of 500 bytes after the current end.
fn fill(w: &mut Wal, n: u64) -> Vec<Entry> {
    let lo = w.last_index() + 1;
    let es: Vec<Entry> = (lo..lo + n).map(|i| ent(i, 1, 500)).collect();
    for e in &es {
        w.append_sync(std::slice::from_ref(e)).unwrap();
    }
    es
}

fn assert_log(w: &Wal, all: &[Entry]) {
    assert_eq!(w.last_index(), all.len() as u64);
    for e in all {
        assert_eq!(&w.entry(e.index).unwrap(), e);
    }
}

#[test]
fn every_segment_comes_from_a_zeroed_spare_in_both_zero_modes() {
    for prepare in [SegmentPrepare::ZeroFill, SegmentPrepare::ZeroFillBackground] {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::open(dir.path(), opts(prepare)).unwrap();
        // A fresh log fills its first spare at open: it is on disk, at full size.
        let spare = dir.path().join("segment.spare");
        assert_eq!(std::fs::metadata(&spare).unwrap().len(), 16 << 10);
        let all = fill(&mut w, 200);
        let st = w.stats();
        assert!(st.segments_created >= 6, "{prepare:?}: {st:?}");
        assert_eq!(st.segments_from_spare, st.segments_created, "{prepare:?}");
        if prepare == SegmentPrepare::ZeroFill {
            // Inline fills always run to the end (the background one may be hurried).
            assert!(
                st.spare_bytes_zeroed >= (16 << 10) * st.segments_created,
                "{prepare:?}: {st:?}"
            );
        } else {
            assert!(st.spare_bytes_zeroed > 0, "{prepare:?}: {st:?}");
        }
        assert_log(&w, &all);
        drop(w);
        // Reopen: the log is intact and a complete spare is kept, not refilled.
        let w = Wal::open(dir.path(), opts(prepare)).unwrap();
        assert_log(&w, &all);
        assert!(
            files(dir.path()).contains(&"segment.spare".to_string()),
            "{:?}",
            files(dir.path())
        );
    }
}

#[test]
fn allocate_mode_keeps_no_spare_and_removes_an_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), opts(SegmentPrepare::ZeroFill)).unwrap();
    let mut all = fill(&mut w, 50);
    drop(w);
    assert!(dir.path().join("segment.spare").exists());
    let mut w = Wal::open(dir.path(), opts(SegmentPrepare::Allocate)).unwrap();
    assert!(!dir.path().join("segment.spare").exists());
    all.extend(fill(&mut w, 50));
    assert_eq!(w.stats().segments_from_spare, 0);
    assert!(w.stats().segments_created > 0);
    assert_log(&w, &all);
}

#[test]
fn a_spare_of_another_size_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    drop(Wal::open(dir.path(), opts(SegmentPrepare::ZeroFill)).unwrap());
    let spare = dir.path().join("segment.spare");
    std::fs::write(&spare, b"a partial spare from another configuration").unwrap();
    let mut w = Wal::open(dir.path(), opts(SegmentPrepare::ZeroFill)).unwrap();
    let all = fill(&mut w, 100);
    assert_log(&w, &all);
    assert_eq!(std::fs::metadata(&spare).unwrap().len(), 16 << 10);
    assert_eq!(w.stats().segments_from_spare, w.stats().segments_created);
}

#[test]
fn a_spare_holding_a_segment_header_is_not_part_of_the_log() {
    // A crash between writing the header into the spare and its rename leaves a spare that
    // looks like a segment. It must not be read as one, and the next take overwrites it.
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), opts(SegmentPrepare::ZeroFill)).unwrap();
    let all = fill(&mut w, 60);
    drop(w);
    let segs: Vec<String> = files(dir.path())
        .into_iter()
        .filter(|n| n.ends_with(".wal"))
        .collect();
    let last = std::fs::read(dir.path().join(segs.last().unwrap())).unwrap();
    let spare = dir.path().join("segment.spare");
    let mut bytes = std::fs::read(&spare).unwrap();
    let n = last.len().min(bytes.len());
    bytes[..n].copy_from_slice(&last[..n]);
    std::fs::write(&spare, &bytes).unwrap();
    let mut w = Wal::open(dir.path(), opts(SegmentPrepare::ZeroFill)).unwrap();
    assert_log(&w, &all);
    let mut all = all;
    all.extend(fill(&mut w, 60));
    assert_log(&w, &all);
    drop(w);
    let w = Wal::open(dir.path(), opts(SegmentPrepare::ZeroFill)).unwrap();
    assert_log(&w, &all);
    assert_eq!(w.recovery_report().torn_bytes_truncated, 0);
}

#[test]
fn dropping_the_log_stops_a_background_fill_and_releases_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let big = Options::default()
        .with_segment_size(64 << 20)
        .with_prepare(SegmentPrepare::ZeroFillBackground);
    for round in 0..3 {
        let mut w = Wal::open(dir.path(), big.clone()).unwrap();
        let lo = w.last_index() + 1;
        w.append_sync(&[ent(lo, 1, 10)]).unwrap();
        // Dropped while the next spare may still be filling: reopening at once must find
        // the directory unlocked and no thread writing into it.
        drop(w);
        let w = Wal::open(dir.path(), big.clone()).unwrap();
        assert_eq!(w.last_index(), round + 1);
        drop(w);
    }
    // A cancelled fill removes its `.tmp`; none is left behind.
    let left = files(dir.path());
    assert!(!left.iter().any(|n| n.ends_with(".tmp")), "{left:?}");
}

/// Polls `cond` every millisecond for up to ten seconds (the filler is a real thread).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "timed out waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Segment size of the paced-fill tests: several 1 MiB fill chunks.
const SEG: u64 = 8 << 20;

/// A fresh directory and background-fill options with [`SEG`] segments.
fn paced_log() -> (tempfile::TempDir, Options) {
    let o = Options::default()
        .with_segment_size(SEG)
        .with_prepare(SegmentPrepare::ZeroFillBackground);
    (tempfile::tempdir().unwrap(), o)
}

#[test]
fn background_fill_keeps_pace_with_the_log_and_completes_by_half_full() {
    const MIB: u64 = 1 << 20;
    let (dir, o) = paced_log();
    let mut w = Wal::open(dir.path(), o.clone()).unwrap();
    let tmp = dir.path().join("segment.spare.tmp");
    let spare = dir.path().join("segment.spare");
    let tmp_len = || std::fs::metadata(&tmp).map_or(0, |m| m.len());
    // The first spare was filled at open and taken by the first append; the next one starts
    // with one chunk and then waits for the log.
    let mut all = Vec::new();
    let mut next = 1u64;
    let mut append = |w: &mut Wal, bytes: u64, all: &mut Vec<Entry>| {
        let n = bytes / 4096;
        let es: Vec<Entry> = (next..next + n).map(|i| ent(i, 1, 4096 - 40)).collect();
        next += n;
        w.append_sync(&es).unwrap();
        all.extend(es);
    };
    // 64 KiB written: 2 × 64 KiB plus one 1 MiB chunk may be zeroed, so two chunks are.
    append(&mut w, 64 << 10, &mut all);
    eventually("two chunks are zeroed", || tmp_len() == 2 * MIB);
    // An unpaced filler would finish 8 MiB in well under this; the paced one stays put.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(tmp_len(), 2 * MIB, "the filler ran ahead of the log");
    assert!(!spare.exists());
    // A quarter of the segment written: half the spare (plus a chunk) may be zeroed.
    append(&mut w, SEG / 4, &mut all);
    eventually("the filler catches up", || tmp_len() >= SEG / 2);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(
        tmp_len() <= SEG / 2 + 2 * MIB && !spare.exists(),
        "zeroed {} of {SEG} with a quarter of the segment written",
        tmp_len()
    );
    // Half full: the spare completes without a rotation hurrying it.
    append(&mut w, SEG / 4, &mut all);
    eventually("the spare is complete", || spare.exists());
    assert_eq!(std::fs::metadata(&spare).unwrap().len(), SEG);
    let zeroed_before = w.stats().spare_bytes_zeroed;
    // Fill the segment past its end: the rotation takes the complete spare.
    append(&mut w, SEG / 2, &mut all);
    let st = w.stats();
    assert_eq!(st.segments_from_spare, 2, "{st:?}");
    assert_eq!(st.spare_bytes_zeroed - zeroed_before, SEG, "{st:?}");
    assert_log(&w, &all);
    drop(w);
    let w = Wal::open(dir.path(), o).unwrap();
    assert_log(&w, &all);
}

#[test]
fn a_rotation_hurries_a_paced_fill_and_the_new_segment_works() {
    let (dir, o) = paced_log();
    let mut w = Wal::open(dir.path(), o.clone()).unwrap();
    let mut all = vec![ent(1, 1, 100)];
    w.append_sync(&all).unwrap();
    // The active segment holds 136 bytes: the filler zeroes a chunk or two and parks. A
    // batch of (almost) a whole segment does not fit beside them: the rotation cannot wait
    // for the fill (it would take until the log was half full) and hurries it.
    let n = (SEG - 4096) / 4096;
    let big: Vec<Entry> = (2..2 + n).map(|i| ent(i, 1, 4096 - 40)).collect();
    w.append_sync(&big).unwrap();
    all.extend(big);
    let st = w.stats();
    assert_eq!(st.segments_from_spare, 2, "{st:?}");
    // The first spare (filled at open) was zeroed whole, the hurried one only in part.
    assert!(
        st.spare_bytes_zeroed >= SEG && st.spare_bytes_zeroed < 2 * SEG,
        "{st:?}"
    );
    assert_log(&w, &all);
    drop(w);
    let w = Wal::open(dir.path(), o).unwrap();
    assert_log(&w, &all);
}
