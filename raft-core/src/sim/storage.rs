//! The store a simulated node persists to, and the disk that outlives its crashes.

use std::fmt;
use std::path::Path;

use fault_inject::SimFs;
use wal::{Entry, HardState, Options, SnapshotMeta, Wal};

use crate::error::StorageError;
use crate::mem_storage::MemStorage;
use crate::storage::{PersistentState, Storage};
use crate::wal_storage::WalStorage;

/// Which store the simulated nodes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// [`MemStorage`]: a crash keeps what was saved (the lab's `Persister`).
    Mem,
    /// [`WalStorage`] over a [`SimFs`] per node: a crash is a power cut (`SimFs::crash`) that
    /// loses or tears unsynced writes, and restart runs WAL recovery.
    Wal,
}

impl StoreKind {
    /// `"mem"` or `"wal"`.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Mem => "mem",
            StoreKind::Wal => "wal",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The directory of a node's WAL on its simulated disk.
pub const WAL_DIR: &str = "/raft";

/// WAL options for the simulator: small segments, no preallocation (the simulated disk
/// lives in memory).
pub fn sim_wal_options() -> Options {
    Options {
        segment_size: 8 << 10,
        preallocate: false,
        write_buffer: 64 << 10,
        ..Options::default()
    }
}

/// What survives a node's crash.
#[derive(Clone)]
pub(crate) enum Disk {
    Mem(MemStorage),
    Wal(SimFs),
}

impl Disk {
    pub(crate) fn new(kind: StoreKind, seed: u64) -> Self {
        match kind {
            StoreKind::Mem => Disk::Mem(MemStorage::new()),
            StoreKind::Wal => {
                let fs = SimFs::new(seed);
                // Tear units from a header-slot fraction to a page: a power cut tears the last
                // unsynced write at this granularity.
                fs.set_sector_size([64, 512, 4096][(seed % 3) as usize]);
                Disk::Wal(fs)
            }
        }
    }

    /// Opens the node's storage (WAL recovery for the WAL).
    pub(crate) fn open(&self) -> Result<SimStorage, StorageError> {
        match self {
            Disk::Mem(m) => Ok(SimStorage::Mem(m.clone())),
            Disk::Wal(fs) => {
                let wal = Wal::open_with(fs.clone(), Path::new(WAL_DIR), sim_wal_options())?;
                Ok(SimStorage::Wal(Box::new(WalStorage::new(wal))))
            }
        }
    }

    /// The files in the WAL directory (none for MemStorage).
    pub(crate) fn files(&self) -> Vec<String> {
        match self {
            Disk::Mem(_) => Vec::new(),
            Disk::Wal(fs) => wal::Vfs::list(fs, Path::new(WAL_DIR)).unwrap_or_default(),
        }
    }

    /// A power cut (the WAL's unsynced writes are lost or torn); nothing for MemStorage.
    pub(crate) fn crash(&self, seed: u64) {
        if let Disk::Wal(fs) = self {
            fs.crash(seed);
        }
    }
}

/// A simulated node's storage: either store behind one type.
pub enum SimStorage {
    /// In memory.
    Mem(MemStorage),
    /// The WAL on a simulated disk.
    Wal(Box<WalStorage<SimFs>>),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            SimStorage::Mem($s) => $e,
            SimStorage::Wal($s) => $e,
        }
    };
}

impl Storage for SimStorage {
    fn read_persist(&mut self) -> Result<PersistentState, StorageError> {
        delegate!(self, s => s.read_persist())
    }
    fn set_hard_state(&mut self, hs: HardState) -> Result<(), StorageError> {
        delegate!(self, s => s.set_hard_state(hs))
    }
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        delegate!(self, s => s.append(entries))
    }
    fn truncate_suffix(&mut self, from: u64) -> Result<(), StorageError> {
        delegate!(self, s => s.truncate_suffix(from))
    }
    fn save_snapshot(&mut self, meta: SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
        delegate!(self, s => s.save_snapshot(meta, data))
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        delegate!(self, s => s.sync())
    }
    fn last_index(&self) -> u64 {
        delegate!(self, s => s.last_index())
    }
}
