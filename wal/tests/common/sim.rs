//! What the tests on `raftwal_fault::SimFs` share: the WAL directory on the simulated
//! machine, options with a segment size, and entries whose bytes name their index (so a
//! misplaced one is seen at once).

use std::path::Path;

use raftwal::{Entry, Options};
use raftwal_fault::SimFs;

/// The WAL directory on the simulated machine.
pub fn dir() -> &'static Path {
    Path::new("/wal")
}

/// Default options with segments of `segment_size` bytes (8 KiB holds 4 KiB of records).
pub fn opts(segment_size: u64) -> Options {
    Options::default().with_segment_size(segment_size)
}

/// Entry `index` of term `term`: `len` bytes, each the index's low byte.
pub fn entry(index: u64, term: u64, len: usize) -> Entry {
    Entry {
        index,
        term,
        data: vec![index as u8; len],
    }
}

/// Entries `lo..=hi` of term `term`, `len` bytes each.
pub fn entries(lo: u64, hi: u64, term: u64, len: usize) -> Vec<Entry> {
    (lo..=hi).map(|i| entry(i, term, len)).collect()
}

/// The byte offset in `HEADER` of the slot with the highest durable sequence number (the
/// sequence is the u64 at offset 16 of each slot; docs/FORMAT.md).
pub fn newest_slot(fs: &SimFs) -> u64 {
    let b = fs.durable_contents(&dir().join("HEADER")).unwrap();
    let seq = |at: usize| u64::from_le_bytes(b[at + 16..at + 24].try_into().unwrap());
    if seq(0) > seq(4096) {
        0
    } else {
        4096
    }
}
