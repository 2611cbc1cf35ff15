//! The store a simulated node persists to, and the disk that outlives its crashes.

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use raftwal::{Entry, HardState, Options, SnapshotMeta, Wal};
use raftwal_fault::SimFs;

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
    Options::default()
        .with_segment_size(8 << 10)
        .with_prepare(raftwal::SegmentPrepare::Grow)
        .with_write_buffer(64 << 10)
}

/// The record bytes one segment of the simulator's WAL holds when it is full of the
/// scenarios' commands (8 bytes each), measured once through the WAL itself: a fresh WAL on
/// a simulated disk takes one-entry batches until it starts a second segment; the figure is
/// what the first one held then. Because the WAL deletes segments whole, once every entry
/// in them is at or below the snapshot base, the compacted entries still on disk are those
/// of the oldest retained segment only, so `retained - live` never exceeds this.
pub fn segment_record_capacity() -> Result<u64, String> {
    static CAP: OnceLock<Result<u64, String>> = OnceLock::new();
    CAP.get_or_init(|| {
        let fs = SimFs::new(0);
        let dir = Path::new(WAL_DIR);
        let err = |e: raftwal::Error| format!("measuring the WAL's segment capacity: {e}");
        let mut wal = Wal::open_with(fs.clone(), dir, sim_wal_options()).map_err(err)?;
        let mut cap = 0;
        for index in 1..1_000_000u64 {
            let e = Entry {
                index,
                term: 1,
                data: index.to_le_bytes().to_vec(),
            };
            wal.append_sync(&[e]).map_err(err)?;
            let segments = raftwal::io::Vfs::list(&fs, dir)
                .unwrap_or_default()
                .iter()
                .filter(|f| f.ends_with(".wal"))
                .count();
            if segments > 1 {
                return Ok(cap);
            }
            cap = wal.record_bytes(0).map_err(err)?;
        }
        Err("the WAL never started a second segment".into())
    })
    .clone()
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
            Disk::Mem(m) => Ok(SimStorage::new(Store::Mem(m.clone()))),
            Disk::Wal(fs) => {
                let wal = Wal::open_with(fs.clone(), Path::new(WAL_DIR), sim_wal_options())?;
                Ok(SimStorage::new(Store::Wal(Box::new(WalStorage::new(wal)))))
            }
        }
    }

    /// The persisted log of a node that is down, as its restart would find it: over the
    /// WAL, measured on a copy of the disk after that copy's recovery (the disk itself is
    /// not touched).
    pub(crate) fn log_bytes(&self) -> Result<LogBytes, StorageError> {
        match self {
            Disk::Mem(m) => Disk::Mem(m.clone()).open()?.log_bytes(),
            Disk::Wal(fs) => Disk::Wal(fs.fork()).open()?.log_bytes(),
        }
    }

    /// The files in the WAL directory (none for MemStorage).
    pub(crate) fn files(&self) -> Vec<String> {
        match self {
            Disk::Mem(_) => Vec::new(),
            Disk::Wal(fs) => raftwal::io::Vfs::list(fs, Path::new(WAL_DIR)).unwrap_or_default(),
        }
    }

    /// A power cut (the WAL's unsynced writes are lost or torn); nothing for MemStorage.
    pub(crate) fn crash(&self, seed: u64) {
        if let Disk::Wal(fs) = self {
            fs.crash(seed);
        }
    }
}

/// The persisted log of one node as its store holds it, in bytes (see
/// [`SimStorage::log_bytes`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogBytes {
    /// The live log: entries above the snapshot base (what a restart reads back). The lab's
    /// `MAXLOGSIZE` bound is held on this figure.
    pub live: u64,
    /// Everything the store keeps: over the WAL, the record frames of every retained
    /// segment, compacted entries still in the oldest segment included (headers aside).
    pub retained: u64,
}

/// One entry written to storage, as the safety checker sees it: index, term, data hash.
pub(crate) type Written = (u64, u64, u64);

enum Store {
    Mem(MemStorage),
    Wal(Box<WalStorage<SimFs>>),
}

/// A simulated node's storage: either store behind one type, with a journal of the entries
/// written (drained by the simulator's safety checker).
pub struct SimStorage {
    store: Store,
    journal: Vec<Written>,
}

impl SimStorage {
    fn new(store: Store) -> Self {
        SimStorage {
            store,
            journal: Vec::new(),
        }
    }

    /// The WAL, when this is the WAL store.
    pub fn wal(&self) -> Option<&WalStorage<SimFs>> {
        match &self.store {
            Store::Wal(w) => Some(w),
            Store::Mem(_) => None,
        }
    }

    /// The persisted log's size: over the WAL, measured through it
    /// ([`raftwal::Wal::record_bytes`]); over MemStorage, its compact size (20 bytes of index,
    /// term and length per entry plus the data).
    pub fn log_bytes(&self) -> Result<LogBytes, StorageError> {
        match &self.store {
            Store::Mem(m) => {
                let live = m.log_size_bytes();
                Ok(LogBytes {
                    live,
                    retained: live,
                })
            }
            Store::Wal(w) => {
                let wal = w.wal();
                Ok(LogBytes {
                    live: wal.record_bytes(wal.first_index())?,
                    retained: wal.record_bytes(0)?,
                })
            }
        }
    }

    pub(crate) fn take_journal(&mut self) -> Vec<Written> {
        std::mem::take(&mut self.journal)
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match &mut $self.store {
            Store::Mem($s) => $e,
            Store::Wal($s) => $e,
        }
    };
}

/// The checker's hash of a command.
pub(crate) fn data_hash(data: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

impl Storage for SimStorage {
    fn read_persist(&mut self) -> Result<PersistentState, StorageError> {
        delegate!(self, s => s.read_persist())
    }
    fn set_hard_state(&mut self, hs: HardState) -> Result<(), StorageError> {
        delegate!(self, s => s.set_hard_state(hs))
    }
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        self.journal.extend(
            entries
                .iter()
                .map(|e| (e.index, e.term, data_hash(&e.data))),
        );
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
        match &self.store {
            Store::Mem(s) => s.last_index(),
            Store::Wal(s) => s.last_index(),
        }
    }
}
