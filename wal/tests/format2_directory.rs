//! A directory written by format 2 (the previous version, fixture `fixtures/format2/`,
//! written by that version's code: 8 KiB segments, a truncation, a snapshot at 12, term 3)
//! opens with this version: nothing refused, nothing misread. Its segments stay as they are
//! and are read only (appends go to a new segment in the current format); its header is
//! rewritten in the current layout at the first open.

use std::path::Path;

use raftwal::{Entry, Error, HardState, Options, SnapshotMeta, Wal};

/// The fixture's payload for entry `index` of `term` (as its writer made them).
fn payload(index: u64, term: u64) -> Vec<u8> {
    let len = if index % 10 == 0 {
        0
    } else {
        (index * 37 % 301) as usize
    };
    (0..len)
        .map(|k| (index * 31 + term * 7 + k as u64) as u8)
        .collect()
}

fn term_of(index: u64) -> u64 {
    match index {
        ..=20 => 1,
        21..=45 => 2,
        _ => 3,
    }
}

fn expected(lo: u64, hi: u64) -> Vec<Entry> {
    (lo..=hi)
        .map(|i| Entry {
            index: i,
            term: term_of(i),
            data: payload(i, term_of(i)),
        })
        .collect()
}

fn opts() -> Options {
    Options::default().with_segment_size(8192)
}

fn copy_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format2");
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
    }
    dir
}

fn assert_fixture_state(w: &Wal) {
    assert_eq!(
        w.hard_state(),
        HardState {
            term: 3,
            vote: Some(2)
        }
    );
    assert_eq!(w.snapshot_meta(), SnapshotMeta { index: 12, term: 1 });
    assert_eq!(
        w.snapshot().unwrap().map(|(_, d)| d),
        Some(b"state machine at 12".to_vec())
    );
    assert_eq!(w.first_index(), 13);
    assert_eq!(w.last_index(), 60);
    assert_eq!(w.entries(13, 61).unwrap(), expected(13, 60));
}

#[test]
fn a_format_2_directory_opens_with_every_entry_and_upgrades_its_header() {
    let dir = copy_fixture();
    assert_eq!(
        std::fs::metadata(dir.path().join("HEADER")).unwrap().len(),
        1024
    );
    let insp = raftwal::inspect::inspect(&raftwal::io::StdVfs, dir.path()).unwrap();
    assert!(insp.is_ok(), "{:?}", insp.finding);
    assert_eq!((insp.first_index, insp.last_index), (13, 60));
    let w = Wal::open(dir.path(), opts()).unwrap();
    assert_fixture_state(&w);
    drop(w);
    assert_eq!(
        std::fs::metadata(dir.path().join("HEADER")).unwrap().len(),
        8192,
        "rewritten in the current layout"
    );
    for lazy in [false, true] {
        let w = Wal::open(dir.path(), opts().with_lazy_open(lazy)).unwrap();
        assert_fixture_state(&w);
    }
}

#[test]
fn appends_after_a_format_2_log_go_to_a_new_segment_and_survive_reopen() {
    let dir = copy_fixture();
    let mut w = Wal::open(dir.path(), opts()).unwrap();
    let more: Vec<Entry> = (61..=70)
        .map(|i| Entry {
            index: i,
            term: 3,
            data: vec![i as u8; 100],
        })
        .collect();
    w.append_sync(&more).unwrap();
    assert!(dir.path().join("00000000000000000061.wal").exists());
    // A truncation into a format-2 segment, then new entries after it.
    w.truncate_suffix(50).unwrap();
    let again: Vec<Entry> = (50..=55)
        .map(|i| Entry {
            index: i,
            term: 4,
            data: vec![i as u8; 300],
        })
        .collect();
    w.append_sync(&again).unwrap();
    drop(w);
    let w = Wal::open(dir.path(), opts()).unwrap();
    assert_eq!(w.last_index(), 55);
    assert_eq!(w.entries(13, 50).unwrap(), expected(13, 49));
    assert_eq!(w.entries(50, 56).unwrap(), again);
}

#[test]
fn a_torn_tail_in_a_format_2_segment_is_cut_and_damage_is_refused() {
    // Garbage after the last record of the last segment: a torn tail, cut.
    let dir = copy_fixture();
    let last = dir.path().join("00000000000000000042.wal");
    let mut b = std::fs::read(&last).unwrap();
    let end = b.iter().rposition(|&x| x != 0).unwrap() + 1;
    let end = end.div_ceil(8) * 8;
    for (k, x) in b[end..end + 600].iter_mut().enumerate() {
        *x = (k * 13 + 7) as u8;
    }
    std::fs::write(&last, &b).unwrap();
    let w = Wal::open(dir.path(), opts()).unwrap();
    assert_fixture_state(&w);
    assert!(w.recovery_report().torn_bytes_truncated > 0);
    drop(w);

    // A flipped byte in a synced record of a middle segment: corruption, named.
    let dir = copy_fixture();
    let mid = dir.path().join("00000000000000000021.wal");
    let mut b = std::fs::read(&mid).unwrap();
    b[4096 + 40] ^= 0x20;
    std::fs::write(&mid, &b).unwrap();
    match Wal::open(dir.path(), opts()) {
        Err(Error::Corrupt { path, offset, .. }) => {
            assert_eq!(path, mid);
            assert_eq!(offset, 4096);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}
