//! [`WalStorage`]: persistence through the raftwal WAL.

use raftwal::io::Vfs;
use raftwal::{Entry, HardState, SnapshotMeta, Wal};

use crate::error::StorageError;
use crate::storage::{PersistentState, Storage};

/// Storage over a [`raftwal::Wal`]: term and vote in its header (one fdatasync per change),
/// entries appended in batches made durable by one `sync`, snapshots saved with the base.
pub struct WalStorage<V: Vfs> {
    wal: Wal<V>,
}

impl<V: Vfs> WalStorage<V> {
    /// Wraps an open WAL.
    pub fn new(wal: Wal<V>) -> Self {
        WalStorage { wal }
    }

    /// The WAL.
    pub fn wal(&self) -> &Wal<V> {
        &self.wal
    }

    /// Gives the WAL back.
    pub fn into_inner(self) -> Wal<V> {
        self.wal
    }
}

impl<V: Vfs> Storage for WalStorage<V> {
    fn read_persist(&mut self) -> Result<PersistentState, StorageError> {
        let hard_state = self.wal.hard_state();
        let meta = self.wal.snapshot_meta();
        let snapshot = match self.wal.snapshot()? {
            Some((m, data)) if m == meta => Some((m, data)),
            Some((m, _)) => {
                return Err(
                    format!("the WAL's base is {meta:?} but its snapshot covers {m:?}").into(),
                )
            }
            None if meta.index == 0 => None,
            None => {
                return Err(
                    format!("the WAL's base is {meta:?} but it holds no snapshot data").into(),
                )
            }
        };
        let entries = self
            .wal
            .entries(self.wal.first_index(), self.wal.last_index() + 1)?;
        Ok(PersistentState {
            hard_state,
            snapshot,
            entries,
        })
    }

    fn set_hard_state(&mut self, hs: HardState) -> Result<(), StorageError> {
        Ok(self.wal.set_hard_state(hs)?)
    }

    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        Ok(self.wal.append(entries)?)
    }

    fn truncate_suffix(&mut self, from: u64) -> Result<(), StorageError> {
        Ok(self.wal.truncate_suffix(from)?)
    }

    fn save_snapshot(&mut self, meta: SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
        Ok(self.wal.save_snapshot(meta, data)?)
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(self.wal.sync()?)
    }

    fn last_index(&self) -> u64 {
        self.wal.last_index()
    }
}
