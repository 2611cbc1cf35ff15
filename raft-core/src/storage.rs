//! [`Storage`]: where a node's persistent state goes.

use raftwal::{Entry, HardState, SnapshotMeta};

use crate::error::StorageError;

/// Everything a node persists, as read back on restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersistentState {
    /// Term and vote.
    pub hard_state: HardState,
    /// The latest snapshot and the log base it defines (`None`: base 0/0).
    pub snapshot: Option<(SnapshotMeta, Vec<u8>)>,
    /// The log entries after the base, contiguous.
    pub entries: Vec<Entry>,
}

/// A node's stable storage. The node calls these in the order its state changed, then
/// [`Storage::sync`]; nothing it sends depends on state that has not been synced.
///
/// Semantics every implementation follows (the shared test suite in [`crate::suite`] checks
/// them):
/// - [`Storage::set_hard_state`], [`Storage::truncate_suffix`] and [`Storage::save_snapshot`]
///   are durable when they return;
/// - [`Storage::append`] is durable after the next [`Storage::sync`];
/// - [`Storage::save_snapshot`] moves the log base to `meta`: if the log holds the entry at
///   `meta.index` with term `meta.term`, the entries after it are kept; otherwise the whole
///   log is discarded (the log then starts empty after `meta.index`).
pub trait Storage {
    /// Reads back everything persisted (the lab's `readPersist`).
    fn read_persist(&mut self) -> Result<PersistentState, StorageError>;
    /// Durably records term and vote.
    fn set_hard_state(&mut self, hs: HardState) -> Result<(), StorageError>;
    /// Appends contiguous entries after the last one (durable after [`Storage::sync`]).
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError>;
    /// Durably removes entries `from..`.
    fn truncate_suffix(&mut self, from: u64) -> Result<(), StorageError>;
    /// Durably saves a snapshot and moves the log base (see the trait docs).
    fn save_snapshot(&mut self, meta: SnapshotMeta, data: &[u8]) -> Result<(), StorageError>;
    /// Makes every append durable.
    fn sync(&mut self) -> Result<(), StorageError>;
    /// Index of the last entry held (the base index when the log is empty).
    fn last_index(&self) -> u64;
}
