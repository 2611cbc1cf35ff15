//! Compaction: `compact`, `save_snapshot` keeping the suffix when the term at `meta.index`
//! matches, discarding the log when it conflicts or lies past the end; whole segments
//! deleted; `snapshot()` reads back; reopen.

mod common;

use common::{assert_log, ent, segment_files, small_opts};
use raftwal::{Entry, Error, SnapshotMeta, Wal};

fn build(n: u64) -> (tempfile::TempDir, Wal, Vec<Entry>) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    let all: Vec<_> = (1..=n).map(|i| ent(i, 1 + i / 50, 100)).collect();
    for c in all.chunks(5) {
        w.append_sync(c).unwrap();
    }
    (dir, w, all)
}

fn meta(index: u64, term: u64) -> SnapshotMeta {
    SnapshotMeta { index, term }
}

#[test]
fn compact_deletes_whole_segments_and_keeps_the_suffix() {
    let (dir, mut w, all) = build(300);
    let before = segment_files(dir.path());
    w.compact(150).unwrap();
    assert_eq!(w.snapshot_meta(), meta(150, 4));
    assert_eq!(w.term(150).unwrap(), 4);
    assert_log(&w, 151, &all[150..]);
    assert!(matches!(w.entry(150), Err(Error::Compacted { .. })));
    assert!(w.snapshot().unwrap().is_none());
    let after = segment_files(dir.path());
    assert!(after.len() < before.len(), "{before:?} -> {after:?}");
    // Every remaining segment except the first starts above the base; the first holds 151.
    let firsts: Vec<u64> = after
        .iter()
        .map(|n| n.trim_end_matches(".wal").parse().unwrap())
        .collect();
    assert!(firsts[0] <= 151 && firsts.get(1).is_none_or(|&f| f > 151));
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(w.snapshot_meta(), meta(150, 4));
    assert_log(&w, 151, &all[150..]);
}

#[test]
fn compact_to_the_last_index_empties_the_log_and_appends_continue() {
    let (dir, mut w, _) = build(100);
    w.compact(100).unwrap();
    assert_eq!(
        (w.first_index(), w.last_index(), w.last_term()),
        (101, 100, 3)
    );
    // The last segment stays (its entries all compacted): appends continue in it.
    assert_eq!(segment_files(dir.path()).len(), 1);
    w.append_sync(&[ent(101, 3, 5), ent(102, 4, 5)]).unwrap();
    assert_eq!(segment_files(dir.path()).len(), 1);
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 101, &[ent(101, 3, 5), ent(102, 4, 5)]);
}

#[test]
fn compact_outside_the_log_is_an_error() {
    let (_dir, mut w, _) = build(100);
    w.compact(40).unwrap();
    assert!(matches!(w.compact(101), Err(Error::Unavailable { .. })));
    assert!(matches!(w.compact(30), Err(Error::Compacted { .. })));
    w.compact(40).unwrap(); // no-op at the base
    assert!(!w.is_poisoned());
}

#[test]
fn save_snapshot_with_matching_term_keeps_the_suffix() {
    let (dir, mut w, all) = build(300);
    w.save_snapshot(meta(120, 3), b"state@120").unwrap();
    assert_eq!(
        w.snapshot().unwrap(),
        Some((meta(120, 3), b"state@120".to_vec()))
    );
    assert_log(&w, 121, &all[120..]);
    drop(w);
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(
        w.snapshot().unwrap(),
        Some((meta(120, 3), b"state@120".to_vec()))
    );
    assert_log(&w, 121, &all[120..]);
    // A later snapshot replaces the earlier file.
    w.save_snapshot(meta(200, 5), &[7u8; 5000]).unwrap();
    let snaps: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".snap"))
        .collect();
    assert_eq!(snaps, vec!["00000000000000000200.snap".to_string()]);
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(w.snapshot().unwrap(), Some((meta(200, 5), vec![7u8; 5000])));
    assert_log(&w, 201, &all[200..]);
}

#[test]
fn save_snapshot_with_conflicting_term_discards_the_log() {
    let (dir, mut w, _) = build(300);
    w.save_snapshot(meta(120, 9), b"other").unwrap();
    assert_eq!(
        (w.first_index(), w.last_index(), w.last_term()),
        (121, 120, 9)
    );
    // The old segments are gone; a fresh one starts after the snapshot.
    assert_eq!(
        segment_files(dir.path()),
        vec!["00000000000000000121.wal".to_string()]
    );
    w.append_sync(&[ent(121, 9, 3)]).unwrap();
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(w.snapshot_meta(), meta(120, 9));
    assert_log(&w, 121, &[ent(121, 9, 3)]);
    assert_eq!(w.snapshot().unwrap().unwrap().1, b"other");
}

#[test]
fn save_snapshot_past_the_end_discards_the_log() {
    let (dir, mut w, _) = build(100);
    w.append(&[ent(101, 3, 3)]).unwrap(); // unsynced, superseded anyway
    w.save_snapshot(meta(500, 7), b"far").unwrap();
    assert_eq!(
        (w.first_index(), w.last_index(), w.last_term()),
        (501, 500, 7)
    );
    assert!(matches!(w.entry(100), Err(Error::Compacted { .. })));
    assert!(matches!(w.entry(501), Err(Error::Unavailable { .. })));
    assert_eq!(w.term(500).unwrap(), 7);
    w.append_sync(&[ent(501, 7, 3)]).unwrap();
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 501, &[ent(501, 7, 3)]);
    assert_eq!(
        w.snapshot().unwrap().unwrap(),
        (meta(500, 7), b"far".to_vec())
    );
}

#[test]
fn snapshot_going_backwards_is_refused() {
    let (_dir, mut w, _) = build(100);
    w.save_snapshot(meta(60, 2), b"a").unwrap();
    let err = w.save_snapshot(meta(59, 2), b"b").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    let err = w.save_snapshot(meta(60, 3), b"b").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert_eq!(w.snapshot().unwrap().unwrap().1, b"a");
    // The same base again just replaces the data.
    w.save_snapshot(meta(60, 2), b"c").unwrap();
    assert_eq!(w.snapshot().unwrap().unwrap().1, b"c");
    assert!(!w.is_poisoned());
}

#[test]
fn compact_after_save_snapshot_forgets_the_snapshot() {
    let (dir, mut w, all) = build(200);
    w.save_snapshot(meta(50, 2), b"s").unwrap();
    w.compact(120).unwrap();
    assert!(w.snapshot().unwrap().is_none());
    assert!(!dir.path().join("00000000000000000050.snap").exists());
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert!(w.snapshot().unwrap().is_none());
    assert_log(&w, 121, &all[120..]);
}

#[test]
fn snapshot_on_an_empty_wal() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    w.save_snapshot(meta(10, 2), b"").unwrap();
    assert_eq!(w.snapshot().unwrap(), Some((meta(10, 2), vec![])));
    drop(w);
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(w.last_index(), 10);
    w.append_sync(&[ent(11, 2, 1)]).unwrap();
    assert_eq!(w.entry(11).unwrap(), ent(11, 2, 1));
}
