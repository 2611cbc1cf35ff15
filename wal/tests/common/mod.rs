//! Helpers shared by the `raftwal` integration tests.
#![allow(dead_code)]

pub mod sim;

use std::path::Path;

use raftwal::io::Vfs;
use raftwal::{Entry, Options, Wal};
use raftwal_fault::model::Op;

/// Options with small segments so tests rotate often.
pub fn small_opts() -> Options {
    Options::default().with_segment_size(8192)
}

/// A deterministic payload for `(index, term)` of `len` bytes.
pub fn payload(index: u64, term: u64, len: usize) -> Vec<u8> {
    let mut x = index
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(term.wrapping_mul(0xc2b2_ae3d_27d4_eb4f));
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Entry `index` of `term` with a payload of `len` bytes.
pub fn ent(index: u64, term: u64, len: usize) -> Entry {
    Entry {
        index,
        term,
        data: payload(index, term, len),
    }
}

/// Entries `lo..=hi` of `term`, payload size varying with the index.
pub fn ents(lo: u64, hi: u64, term: u64) -> Vec<Entry> {
    (lo..=hi).map(|i| ent(i, term, (i % 97) as usize)).collect()
}

/// Issues `op` (a call of the torture's model) on `w`.
pub fn apply_op<V: Vfs>(w: &mut Wal<V>, op: &Op) -> raftwal::Result<()> {
    raftwal_fault::workload::apply_to(w, op)
}

/// The model tests' random options: 8 KiB segments, the default preparation or `Grow`,
/// a write buffer of 512 B, 4 KiB or 4 MiB, write-outs in 512 B or 256 KiB pieces or
/// whole, rotations ahead in `sync` or only in `append`.
pub fn random_model_options(rng: &mut rand::rngs::StdRng) -> Options {
    use rand::Rng;
    let prepare = if rng.gen_bool(0.7) {
        raftwal::SegmentPrepare::default()
    } else {
        raftwal::SegmentPrepare::Grow
    };
    Options::default()
        .with_segment_size(8192)
        .with_prepare(prepare)
        .with_write_buffer([512usize, 4096, 4 << 20][rng.gen_range(0..3)])
        .with_writeback_chunk([0u64, 512, 256 << 10][rng.gen_range(0..3)])
        .with_rotate_ahead(rng.gen_bool(0.5))
}

/// Asserts that `w` holds exactly `expected` (first index = `expected[0].index`).
pub fn assert_log<V: Vfs>(w: &Wal<V>, first: u64, expected: &[Entry]) {
    assert_eq!(w.first_index(), first, "first index");
    assert_eq!(
        w.last_index(),
        first + expected.len() as u64 - 1,
        "last index"
    );
    for e in expected {
        assert_eq!(&w.entry(e.index).unwrap(), e, "entry {}", e.index);
        assert_eq!(w.term(e.index).unwrap(), e.term, "term {}", e.index);
    }
    if let Some(last) = expected.last() {
        assert_eq!(w.last_term(), last.term, "last term");
    }
}

/// Names of the segment files in `dir`, sorted.
pub fn segment_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wal"))
        .collect();
    v.sort();
    v
}

/// Copies every regular file of `from` into `to` (created if missing), except `LOCK`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() && e.file_name() != "LOCK" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A temporary directory for a test WAL: on `/dev/shm` (tmpfs, where fsync is nearly free)
/// when it exists, so randomized tests can run many sequences; `WAL_TEST_TMPDIR` overrides.
pub fn fast_tempdir() -> tempfile::TempDir {
    if let Ok(d) = std::env::var("WAL_TEST_TMPDIR") {
        return tempfile::tempdir_in(d).unwrap();
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}
