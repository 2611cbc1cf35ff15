//! `truncate_suffix`: within a segment, at a segment boundary, across several segments, then
//! appending new terms; durable across reopen.

mod common;

use common::{assert_log, ent, ents, segment_files, small_opts};
use raftwal::{Entry, Wal};

/// A WAL of `n` synced entries of term 1, ~100-byte payloads (about 30 per 8 KiB segment).
fn build(n: u64) -> (tempfile::TempDir, Wal, Vec<Entry>) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    let all: Vec<_> = (1..=n).map(|i| ent(i, 1, 100)).collect();
    for c in all.chunks(7) {
        w.append_sync(c).unwrap();
    }
    (dir, w, all)
}

fn check_truncate_then_append(from: u64) {
    let (dir, mut w, mut all) = build(200);
    w.truncate_suffix(from).unwrap();
    all.truncate(from as usize - 1);
    assert_log(&w, 1, &all);
    assert!(w.entry(from).is_err());
    // Durable without a sync.
    drop(w);
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 1, &all);
    let more: Vec<_> = (from..from + 40).map(|i| ent(i, 2, 90)).collect();
    w.append_sync(&more).unwrap();
    all.extend(more);
    assert_log(&w, 1, &all);
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 1, &all);
}

fn segment_firsts(dir: &std::path::Path) -> Vec<u64> {
    segment_files(dir)
        .iter()
        .map(|n| n.trim_end_matches(".wal").parse().unwrap())
        .collect()
}

#[test]
fn within_a_segment() {
    check_truncate_then_append(195);
    check_truncate_then_append(5);
}

#[test]
fn at_a_segment_boundary() {
    let (dir, _w, _) = build(200);
    let firsts = segment_firsts(dir.path());
    assert!(firsts.len() > 4);
    drop(_w);
    for &f in &firsts[1..] {
        check_truncate_then_append(f);
        check_truncate_then_append(f + 1);
        check_truncate_then_append(f - 1);
    }
}

#[test]
fn across_several_segments() {
    check_truncate_then_append(40);
    check_truncate_then_append(2);
}

#[test]
fn from_the_first_index_empties_the_log() {
    check_truncate_then_append(1);
}

#[test]
fn past_the_end_is_a_no_op_and_buffered_appends_are_synced_first() {
    let (dir, mut w, mut all) = build(50);
    w.truncate_suffix(51).unwrap();
    w.truncate_suffix(1000).unwrap();
    assert_log(&w, 1, &all);
    // Unsynced appends before a truncation: the kept part becomes durable.
    let more = ents(51, 80, 1);
    w.append(&more).unwrap();
    all.extend(more);
    w.truncate_suffix(70).unwrap();
    all.truncate(69);
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 1, &all);
}

#[test]
fn repeated_truncations_with_new_terms() {
    let (dir, mut w, mut all) = build(120);
    let mut term = 1;
    for from in [100u64, 90, 95, 30, 31, 50] {
        term += 1;
        w.truncate_suffix(from).unwrap();
        all.truncate(from as usize - 1);
        let add: Vec<_> = (from..from + 25).map(|i| ent(i, term, 150)).collect();
        w.append(&add).unwrap();
        all.extend(add);
        if term % 2 == 0 {
            w.sync().unwrap();
        } else {
            drop(w);
            w = Wal::open(dir.path(), small_opts()).unwrap();
            // The unsynced batch may or may not be there; put it back if not.
            let last = w.last_index();
            assert!(last == from - 1 || last == from + 24, "last {last}");
            if last == from - 1 {
                w.append_sync(&all[from as usize - 1..]).unwrap();
            }
        }
        assert_log(&w, 1, &all);
    }
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 1, &all);
}

#[test]
fn truncation_after_compaction_stays_above_the_base() {
    let (dir, mut w, mut all) = build(150);
    w.compact(50).unwrap();
    w.truncate_suffix(120).unwrap();
    all.truncate(119);
    assert_log(&w, 51, &all[50..]);
    w.truncate_suffix(51).unwrap();
    assert_eq!(w.last_index(), 50);
    assert_eq!(w.last_term(), 1);
    w.append_sync(&[ent(51, 3, 10)]).unwrap();
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(w.first_index(), 51);
    assert_eq!(w.last_index(), 51);
    assert_eq!(w.entry(51).unwrap(), ent(51, 3, 10));
}
