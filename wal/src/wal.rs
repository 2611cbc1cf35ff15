//! [`Wal`]: the log handle and its Raft operations.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::io::{StdVfs, Vfs};
use crate::types::{Entry, HardState, Options, RecoveryReport, SnapshotMeta, Stats};

/// A write-ahead log for one Raft server's persistent state, in one directory.
pub struct Wal<V: Vfs = StdVfs> {
    vfs: V,
    dir: PathBuf,
}

impl Wal<StdVfs> {
    /// Opens (creating if needed) the WAL in `dir` on the real file system, running recovery.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Self> {
        Self::open_with(StdVfs, dir, opts)
    }
}

impl<V: Vfs> Wal<V> {
    /// Opens (creating if needed) the WAL in `dir` on `vfs`, running recovery.
    pub fn open_with(vfs: V, dir: impl AsRef<Path>, opts: Options) -> Result<Self> {
        let _ = (vfs, dir, opts);
        todo!()
    }
    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// What recovery found and repaired when this handle was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        todo!()
    }
    /// Counters since open.
    pub fn stats(&self) -> Stats {
        todo!()
    }
    /// Current term and vote.
    pub fn hard_state(&self) -> HardState {
        todo!()
    }
    /// Durably records term and vote (one fdatasync). Term never decreases; a term's vote,
    /// once cast, never changes.
    pub fn set_hard_state(&mut self, hs: HardState) -> Result<()> {
        let _ = hs;
        todo!()
    }
    /// The log base (last index/term covered by the snapshot; 0/0 if none).
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        todo!()
    }
    /// Reads back the latest snapshot's data, verified.
    pub fn snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>> {
        todo!()
    }
    /// Durably saves a snapshot and moves the log base to it (see docs).
    pub fn save_snapshot(&mut self, meta: SnapshotMeta, data: &[u8]) -> Result<()> {
        let _ = (meta, data);
        todo!()
    }
    /// Moves the log base to `index` without storing snapshot data.
    pub fn compact(&mut self, index: u64) -> Result<()> {
        let _ = index;
        todo!()
    }
    /// First index in the log (`snapshot_meta().index + 1`).
    pub fn first_index(&self) -> u64 {
        todo!()
    }
    /// Last index in the log (the base index when the log is empty).
    pub fn last_index(&self) -> u64 {
        todo!()
    }
    /// Term at `index` (the base term for the base index).
    pub fn term(&self, index: u64) -> Result<u64> {
        let _ = index;
        todo!()
    }
    /// Appends a batch of contiguous entries starting at `last_index() + 1`. Not durable
    /// until [`Wal::sync`].
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        let _ = entries;
        todo!()
    }
    /// Makes every appended batch durable: one fdatasync per file written.
    pub fn sync(&mut self) -> Result<()> {
        todo!()
    }
    /// Reads one entry, verified.
    pub fn entry(&self, index: u64) -> Result<Entry> {
        let _ = index;
        todo!()
    }
    /// Reads entries `[lo, hi)`, verified.
    pub fn entries(&self, lo: u64, hi: u64) -> Result<Vec<Entry>> {
        let _ = (lo, hi);
        todo!()
    }
    /// Durably removes entries `from..` (a follower's conflicting suffix).
    pub fn truncate_suffix(&mut self, from: u64) -> Result<()> {
        let _ = from;
        todo!()
    }
}
