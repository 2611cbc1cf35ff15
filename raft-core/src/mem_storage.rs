//! [`MemStorage`]: the lab's `Persister` semantics: whatever was saved survives a crash.

use std::sync::{Arc, Mutex, MutexGuard};

use raftwal::{Entry, HardState, SnapshotMeta};

use crate::error::StorageError;
use crate::storage::{PersistentState, Storage};

/// In-memory storage whose every call is immediately "durable". Clones share the same state,
/// so a test keeps a clone, drops the node (a crash) and restarts a node on the clone.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    inner: Arc<Mutex<MemState>>,
}

#[derive(Debug, Default)]
struct MemState {
    hard_state: HardState,
    snapshot: Option<(SnapshotMeta, Vec<u8>)>,
    base: SnapshotMeta,
    entries: Vec<Entry>,
    saves: u64,
}

impl MemStorage {
    /// Empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, MemState>, StorageError> {
        self.inner
            .lock()
            .map_err(|_| "MemStorage lock poisoned by a panic".into())
    }

    /// Bytes of the log above the base in a compact encoding (20 bytes of index, term and
    /// length per entry plus its data), the lab's `RaftStateSize` for this store.
    pub fn log_size_bytes(&self) -> u64 {
        self.lock()
            .map(|s| s.entries.iter().map(|e| 20 + e.data.len() as u64).sum())
            .unwrap_or(0)
    }

    /// Number of calls that changed state (the lab's `Persister.Save` count).
    pub fn saves(&self) -> u64 {
        self.lock().map(|s| s.saves).unwrap_or(0)
    }
}

impl Storage for MemStorage {
    fn read_persist(&mut self) -> Result<PersistentState, StorageError> {
        let s = self.lock()?;
        Ok(PersistentState {
            hard_state: s.hard_state,
            snapshot: s.snapshot.clone(),
            entries: s.entries.clone(),
        })
    }

    fn set_hard_state(&mut self, hs: HardState) -> Result<(), StorageError> {
        let mut s = self.lock()?;
        if hs.term < s.hard_state.term {
            return Err(format!("term goes back from {} to {}", s.hard_state.term, hs.term).into());
        }
        s.hard_state = hs;
        s.saves += 1;
        Ok(())
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let mut s = self.lock()?;
        let first = s.base.index + s.entries.len() as u64 + 1;
        for (want, e) in (first..).zip(entries) {
            if e.index != want {
                return Err(
                    format!("append of index {} where {want} was expected", e.index).into(),
                );
            }
        }
        s.entries.extend_from_slice(entries);
        s.saves += 1;
        Ok(())
    }

    fn truncate_suffix(&mut self, from: u64) -> Result<(), StorageError> {
        let mut s = self.lock()?;
        if from <= s.base.index {
            return Err(format!(
                "truncation from {from} at or below the base {}",
                s.base.index
            )
            .into());
        }
        let keep = (from - s.base.index - 1) as usize;
        s.entries.truncate(keep);
        s.saves += 1;
        Ok(())
    }

    fn save_snapshot(&mut self, meta: SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
        let mut s = self.lock()?;
        if meta.index < s.base.index {
            return Err(
                format!("snapshot at {} below the base {}", meta.index, s.base.index).into(),
            );
        }
        let last = s.base.index + s.entries.len() as u64;
        let held_term = if meta.index == s.base.index {
            Some(s.base.term)
        } else if meta.index <= last {
            Some(s.entries[(meta.index - s.base.index - 1) as usize].term)
        } else {
            None
        };
        if held_term == Some(meta.term) {
            let cut = (meta.index - s.base.index) as usize;
            s.entries.drain(..cut);
        } else {
            s.entries.clear();
        }
        s.base = meta;
        s.snapshot = Some((meta, data.to_vec()));
        s.saves += 1;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }

    fn last_index(&self) -> u64 {
        self.lock()
            .map(|s| s.base.index + s.entries.len() as u64)
            .unwrap_or(0)
    }
}
