//! Bad input in the WAL directory: files that are not ours, zero-length or garbage files,
//! a wrong format version, a segment whose header disagrees with its name, a missing
//! HEADER, a snapshot that does not match the header, a locked directory. Each is a clear
//! error naming the file — never a panic, never a silent reset.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use common::small_opts;
use raftwal::{Error, HardState, SnapshotMeta, Wal};

const SEG1: &str = "00000000000000000001.wal";

/// Opens `dir`, which must fail; returns the error (a panic fails the test with `what`).
fn open_err(dir: &Path, what: &str) -> Error {
    let r = catch_unwind(AssertUnwindSafe(|| Wal::open(dir, small_opts())))
        .unwrap_or_else(|_| panic!("{what}: open panicked"));
    match r {
        Ok(w) => panic!("{what}: open succeeded: {w:?}"),
        Err(e) => e,
    }
}

/// Asserts a corruption error that names `file` (and an offset).
fn assert_names(e: &Error, file: &str, what: &str) {
    let msg = e.to_string();
    assert!(e.is_corruption(), "{what}: not a corruption error: {msg}");
    assert!(msg.contains(file), "{what}: does not name {file}: {msg}");
    assert!(
        msg.contains("offset"),
        "{what}: does not name an offset: {msg}"
    );
}

/// A WAL with a vote and entries 1..=40 over a few segments.
fn populated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    w.set_hard_state(HardState {
        term: 2,
        vote: Some(1),
    })
    .unwrap();
    for lo in (1..=40).step_by(10) {
        let b: Vec<_> = (lo..lo + 10).map(|i| common::ent(i, 2, 300)).collect();
        w.append_sync(&b).unwrap();
    }
    assert!(common::segment_files(dir.path()).len() >= 3);
    dir
}

#[test]
fn a_foreign_file_named_like_a_segment() {
    // With a valid HEADER.
    let dir = tempfile::tempdir().unwrap();
    drop(Wal::open(dir.path(), small_opts()).unwrap());
    std::fs::write(
        dir.path().join(SEG1),
        b"these are my holiday notes, not a WAL",
    )
    .unwrap();
    let e = open_err(dir.path(), "garbage segment");
    assert_names(&e, SEG1, "garbage segment");
    // Garbage of at least a segment header's length.
    std::fs::write(dir.path().join(SEG1), vec![0x5a; 5000]).unwrap();
    let e = open_err(dir.path(), "long garbage segment");
    assert!(matches!(e, Error::NotAWalFile { .. }), "{e}");
    assert_names(&e, SEG1, "long garbage segment");
    // Nothing was removed or repaired.
    assert_eq!(
        std::fs::read(dir.path().join(SEG1)).unwrap(),
        vec![0x5a; 5000]
    );
}

#[test]
fn a_zero_length_segment() {
    let dir = tempfile::tempdir().unwrap();
    drop(Wal::open(dir.path(), small_opts()).unwrap());
    std::fs::write(dir.path().join(SEG1), b"").unwrap();
    let e = open_err(dir.path(), "zero-length segment");
    assert_names(&e, SEG1, "zero-length segment");
    // The last of several segments.
    let dir = populated();
    let last = common::segment_files(dir.path()).pop().unwrap();
    std::fs::write(dir.path().join(&last), b"").unwrap();
    let e = open_err(dir.path(), "zero-length last segment");
    assert_names(&e, &last, "zero-length last segment");
}

#[test]
fn a_garbage_header() {
    let dir = populated();
    for (what, bytes) in [
        ("garbage", vec![0xa7u8; 1024]),
        ("text", b"term=5 vote=3\n".repeat(100)),
        ("zeros", vec![0u8; 1024]),
        ("empty", vec![]),
        ("short", vec![0u8; 100]),
    ] {
        std::fs::write(dir.path().join("HEADER"), &bytes).unwrap();
        let e = open_err(dir.path(), what);
        assert_names(&e, "HEADER", what);
    }
}

#[test]
fn a_header_of_another_format_version() {
    let dir = populated();
    let path = dir.path().join("HEADER");
    let mut b = std::fs::read(&path).unwrap();
    for slot in 0..2u32 {
        let s = &mut b[slot as usize * 4096..slot as usize * 4096 + 512];
        s[8..12].copy_from_slice(&99u32.to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&slot.to_le_bytes());
        h.update(&s[..508]);
        let crc = h.finalize();
        s[508..512].copy_from_slice(&crc.to_le_bytes());
    }
    std::fs::write(&path, &b).unwrap();
    let e = open_err(dir.path(), "header version 99");
    assert!(matches!(e, Error::NotAWalFile { .. }), "{e}");
    assert_names(&e, "HEADER", "header version 99");
    assert!(e.to_string().contains("version 99"), "{e}");
}

#[test]
fn a_segment_of_another_format_version() {
    let dir = populated();
    let path = dir.path().join(SEG1);
    let mut b = std::fs::read(&path).unwrap();
    b[8..12].copy_from_slice(&7u32.to_le_bytes());
    let crc = crc32fast::hash(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    let e = open_err(dir.path(), "segment version 7");
    assert!(matches!(e, Error::NotAWalFile { .. }), "{e}");
    assert_names(&e, SEG1, "segment version 7");
}

#[test]
fn a_segment_whose_header_names_another_first_index() {
    let dir = populated();
    let segs = common::segment_files(dir.path());
    // Swap the names of the second and third segments' contents.
    let (a, b) = (dir.path().join(&segs[1]), dir.path().join(&segs[2]));
    let (ba, bb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, &bb).unwrap();
    std::fs::write(&b, &ba).unwrap();
    let e = open_err(dir.path(), "swapped segments");
    assert!(matches!(e, Error::Corrupt { offset: 24, .. }), "{e}");
    assert_names(&e, &segs[1], "swapped segments");
    assert!(e.to_string().contains("first index"), "{e}");
}

#[test]
fn a_segment_header_claiming_index_zero() {
    // Regression: a valid-looking segment header for first index 0 (named accordingly)
    // overflowed `Segment::last_index` (a panic in debug builds). Now a clear error.
    let dir = tempfile::tempdir().unwrap();
    drop(Wal::open(dir.path(), small_opts()).unwrap());
    let mut b = vec![0u8; 4096];
    b[..8].copy_from_slice(b"RWALSEG1");
    b[8..12].copy_from_slice(&2u32.to_le_bytes());
    b[16..24].copy_from_slice(&1u64.to_le_bytes());
    let crc = crc32fast::hash(&b[..60]);
    b[60..64].copy_from_slice(&crc.to_le_bytes());
    let name = "00000000000000000000.wal";
    std::fs::write(dir.path().join(name), &b).unwrap();
    let e = open_err(dir.path(), "index 0");
    assert!(matches!(e, Error::Corrupt { offset: 24, .. }), "{e}");
    assert_names(&e, name, "index 0");
}

#[test]
fn a_missing_header_while_segments_exist() {
    let dir = populated();
    std::fs::remove_file(dir.path().join("HEADER")).unwrap();
    let e = open_err(dir.path(), "missing HEADER");
    assert!(e.is_corruption(), "{e}");
    assert!(e.to_string().contains("HEADER"), "{e}");
    assert!(e.to_string().contains(SEG1), "{e}");
    // Refusing is durable: no new HEADER (term 0, no vote) was created behind our back.
    assert!(!dir.path().join("HEADER").exists());
    let e = open_err(dir.path(), "missing HEADER, again");
    assert!(e.is_corruption(), "{e}");
}

#[test]
fn a_snapshot_that_does_not_match_the_header() {
    let dir = populated();
    let mut w = Wal::open(dir.path(), small_opts()).unwrap();
    w.save_snapshot(SnapshotMeta { index: 15, term: 2 }, b"mine")
        .unwrap();
    drop(w);
    // A snapshot file of another base, under the right name.
    let other = tempfile::tempdir().unwrap();
    let mut o = Wal::open(other.path(), small_opts()).unwrap();
    o.save_snapshot(SnapshotMeta { index: 15, term: 9 }, b"theirs")
        .unwrap();
    drop(o);
    let name = "00000000000000000015.snap";
    let keep = std::fs::read(dir.path().join(name)).unwrap();
    std::fs::copy(other.path().join(name), dir.path().join(name)).unwrap();
    let e = open_err(dir.path(), "mismatched snapshot");
    assert_names(&e, name, "mismatched snapshot");
    assert!(e.to_string().contains("term 9"), "{e}");
    // Garbage, then missing.
    std::fs::write(dir.path().join(name), b"garbage").unwrap();
    let e = open_err(dir.path(), "short snapshot");
    assert_names(&e, name, "short snapshot");
    std::fs::write(dir.path().join(name), vec![0x33; 500]).unwrap();
    let e = open_err(dir.path(), "garbage snapshot");
    assert_names(&e, name, "garbage snapshot");
    std::fs::remove_file(dir.path().join(name)).unwrap();
    let e = open_err(dir.path(), "missing snapshot");
    assert_names(&e, name, "missing snapshot");
    // Restored, it opens.
    std::fs::write(dir.path().join(name), keep).unwrap();
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(w.snapshot().unwrap().unwrap().1, b"mine");
}

#[test]
fn unrelated_files_are_left_alone() {
    let dir = populated();
    for name in [
        "notes.txt",
        "1.wal",
        "00000000000000000001.wal.bak",
        "x.snap",
    ] {
        std::fs::write(dir.path().join(name), b"not ours").unwrap();
    }
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(w.last_index(), 40);
    drop(w);
    for name in [
        "notes.txt",
        "1.wal",
        "00000000000000000001.wal.bak",
        "x.snap",
    ] {
        assert!(dir.path().join(name).exists(), "{name} was removed");
    }
}

#[test]
fn a_locked_directory() {
    let dir = populated();
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    let e = Wal::open(dir.path(), small_opts()).unwrap_err();
    assert!(matches!(e, Error::Locked { .. }), "{e}");
    assert!(!e.is_corruption());
    assert!(
        e.to_string().contains(&dir.path().display().to_string()),
        "{e}"
    );
    drop(w);
    // Released on drop.
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_eq!(w.last_index(), 40);
}

#[test]
fn a_header_whose_base_is_the_largest_index() {
    // A header slot that verifies but holds base index u64::MAX (never written by the WAL:
    // `base + 1` would overflow) is treated as damaged.
    let dir = populated();
    let path = dir.path().join("HEADER");
    let mut b = std::fs::read(&path).unwrap();
    for slot in 0..2u32 {
        let s = &mut b[slot as usize * 4096..slot as usize * 4096 + 512];
        s[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&slot.to_le_bytes());
        h.update(&s[..508]);
        let crc = h.finalize();
        s[508..512].copy_from_slice(&crc.to_le_bytes());
    }
    std::fs::write(&path, &b).unwrap();
    let e = open_err(dir.path(), "base u64::MAX");
    assert_names(&e, "HEADER", "base u64::MAX");
}
