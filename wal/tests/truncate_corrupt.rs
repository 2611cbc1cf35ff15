//! `RecoveryMode::TruncateCorrupt`: the operator's choice to cut the log at corruption of
//! synced data instead of refusing to open. The cut is at the last complete batch before
//! the damage, is durable (a strict reopen finds the same log), and is reported.

mod common;

use common::{assert_log, ent, segment_files, small_opts};
use raftwal::{Entry, Error, Options, RecoveryMode, Wal};

fn truncating() -> Options {
    small_opts().with_recovery(RecoveryMode::TruncateCorrupt)
}

/// Entries 1..=60 in batches of 5 (one sync each), ~4 segments.
fn build() -> (tempfile::TempDir, Vec<Entry>) {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    let all: Vec<_> = (1..=60).map(|i| ent(i, 1, 200)).collect();
    for c in all.chunks(5) {
        w.append_sync(c).unwrap();
    }
    assert!(segment_files(dir.path()).len() >= 3);
    (dir, all)
}

fn flip(path: &std::path::Path, off: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[off] ^= 0xff;
    std::fs::write(path, b).unwrap();
}

#[test]
fn a_damaged_record_cuts_the_log_before_its_batch() {
    let (dir, all) = build();
    let seg = dir.path().join(&segment_files(dir.path())[1]);
    let first: u64 = segment_files(dir.path())[1]
        .trim_end_matches(".wal")
        .parse()
        .unwrap();
    // The payload of the segment's third record.
    flip(&seg, 4096 + 2 * 232 + 40);
    let e = Wal::open(dir.path(), small_opts()).unwrap_err();
    assert!(
        matches!(e, Error::Corrupt { index: Some(i), .. } if i == first + 2),
        "{e}"
    );
    let w = Wal::open(dir.path(), truncating()).unwrap();
    let last = w.last_index();
    assert!(last < first + 2 && last % 5 == 0, "cut at {last}");
    assert_log(&w, 1, &all[..last as usize]);
    let cut = &w.recovery_report().corruption_truncated;
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert!(
        cut[0].path.ends_with(&segment_files(dir.path())[1]),
        "{cut:?}"
    );
    drop(w);
    // Durable: a strict reopen opens the same log, and appends continue.
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 1, &all[..last as usize]);
    w.append_sync(&[ent(last + 1, 2, 10)]).unwrap();
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(w.entry(last + 1).unwrap(), ent(last + 1, 2, 10));
}

#[test]
fn a_damaged_segment_header_cuts_the_log_before_the_segment() {
    // Regression: TruncateCorrupt refused to open when the damage was in a segment header
    // (only damaged records were cut).
    let (dir, all) = build();
    let names = segment_files(dir.path());
    let first: u64 = names[2].trim_end_matches(".wal").parse().unwrap();
    flip(&dir.path().join(&names[2]), 20); // the sequence number
    let e = Wal::open(dir.path(), small_opts()).unwrap_err();
    assert!(matches!(e, Error::Corrupt { offset: 0, .. }), "{e}");
    let w = Wal::open(dir.path(), truncating()).unwrap();
    assert_log(&w, 1, &all[..first as usize - 1]);
    let cut = &w.recovery_report().corruption_truncated;
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert!(
        cut[0].path.ends_with(&names[2]) && cut[0].offset == 0,
        "{cut:?}"
    );
    assert_eq!(segment_files(dir.path()), names[..2].to_vec());
    drop(w);
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 1, &all[..first as usize - 1]);
    w.append_sync(&[ent(first, 3, 10)]).unwrap();
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(w.last_index(), first);
}

#[test]
fn a_damaged_first_segment_header_leaves_an_empty_log() {
    let (dir, _) = build();
    flip(&dir.path().join("00000000000000000001.wal"), 30);
    let w = Wal::open(dir.path(), truncating()).unwrap();
    assert_eq!((w.first_index(), w.last_index()), (1, 0));
    assert!(segment_files(dir.path()).is_empty());
}

#[test]
fn a_file_that_is_not_ours_is_never_removed() {
    let (dir, _) = build();
    let names = segment_files(dir.path());
    flip(&dir.path().join(&names[1]), 0); // the magic
    let e = Wal::open(dir.path(), truncating()).unwrap_err();
    assert!(matches!(e, Error::NotAWalFile { .. }), "{e}");
    assert_eq!(segment_files(dir.path()), names);
}

#[test]
fn a_lost_header_is_still_refused() {
    let (dir, _) = build();
    std::fs::write(dir.path().join("HEADER"), vec![0x11; 1024]).unwrap();
    let e = Wal::open(dir.path(), truncating()).unwrap_err();
    assert!(e.is_corruption(), "{e}");
}
