//! [`RaftWalStorage`]: the read side, raft-rs's [`raft::Storage`] over a [`Wal`], and
//! opening one.
//!
//! `entries(low, high, max_size)` reads through [`Wal::entries_bounded`] with `max_size`
//! as its byte budget, then trims with raft-rs's own `limit_size` (which counts each
//! entry's protobuf size). A record's payload is never larger than its entry's protobuf
//! size ([`crate::codec`]), so the WAL's read is a superset of what `limit_size` keeps and
//! the result is exactly raft-rs's: the same entries `MemStorage` would return.

use std::path::Path;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError, NO_LIMIT};
use raftwal::io::{StdVfs, Vfs};
use raftwal::Wal;

use crate::async_persist::Flight;
use crate::meta::Meta;
use crate::{codec, snapshot, Error, Result};

/// How the storage opens its WAL and when it makes the commit index durable.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StorageOptions {
    /// The WAL's own options.
    pub wal: raftwal::Options,
    /// How many entries the durable commit index may trail the one raft-rs reported before
    /// a persist call writes it (one HEADER `fdatasync`); default 1024, 0 writes every
    /// advance. raft-rs never requires the commit index to be synced (`Ready::must_sync`
    /// ignores it); after a crash the node starts from the durable one, never above its
    /// log, and learns the rest from the leader. See the crate docs for `Config::applied`.
    pub commit_lag: u64,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            wal: raftwal::Options::default(),
            commit_lag: 1024,
        }
    }
}

impl StorageOptions {
    /// Sets [`StorageOptions::wal`].
    pub fn with_wal(mut self, wal: raftwal::Options) -> Self {
        self.wal = wal;
        self
    }

    /// Sets [`StorageOptions::commit_lag`].
    pub fn with_commit_lag(mut self, entries: u64) -> Self {
        self.commit_lag = entries;
        self
    }
}

/// A raft-rs [`raft::Storage`] on a [`Wal`], with the write side of raft-rs's `Ready`
/// loop: [`RaftWalStorage::persist_ready`] (blocking) and
/// [`RaftWalStorage::persist_ready_async`] (the `fdatasync` off the loop's thread).
///
/// Hand it to `RawNode::new` and reach it again through `RawNode::mut_store`. Term and vote
/// live in the WAL's hard state; the commit index and the `ConfState` in its application
/// metadata; snapshots (metadata and data, protobuf-encoded) in the WAL's snapshot file.
pub struct RaftWalStorage<V: Vfs = StdVfs> {
    pub(crate) wal: Wal<V>,
    /// raft-rs's hard state as last handed over (the commit index may be ahead of the
    /// durable one).
    pub(crate) hard_state: HardState,
    pub(crate) conf_state: ConfState,
    /// What the WAL header's metadata holds.
    pub(crate) durable: Meta,
    /// The last index known durable: the commit index is never written above it.
    pub(crate) durable_last: u64,
    pub(crate) commit_lag: u64,
    /// The asynchronous write side's state (see [`RaftWalStorage::persist_ready_async`]).
    pub(crate) flight: Flight<V>,
}

impl RaftWalStorage {
    /// Opens (creating if needed) the storage in `dir` on the real file system; recovery
    /// runs here.
    pub fn open(dir: impl AsRef<Path>, opts: StorageOptions) -> Result<Self> {
        Self::open_with(StdVfs, dir, opts)
    }
}

impl<V: Vfs> RaftWalStorage<V> {
    /// Opens (creating if needed) the storage in `dir` on `vfs`.
    pub fn open_with(vfs: V, dir: impl AsRef<Path>, opts: StorageOptions) -> Result<Self> {
        let mut wal = Wal::open_with(vfs, dir.as_ref(), opts.wal)?;
        let metadata = |reason: String| Error::Metadata {
            dir: dir.as_ref().to_path_buf(),
            reason,
        };
        let mut durable = Meta::decode(wal.app_meta()).map_err(metadata)?;
        if let Some(repaired) = snapshot::newer_than_meta(&wal, &durable)? {
            // A power cut fell between a snapshot's installation and the metadata update
            // after it: the snapshot's commit index and ConfState are the current ones.
            wal.set_app_meta(&repaired.encode().map_err(too_large)?)?;
            durable = repaired;
        }
        let base = wal.snapshot_meta().index;
        let commit = durable.commit.max(base);
        if commit > wal.last_index() {
            return Err(metadata(format!(
                "commit index {commit} past the last index {}",
                wal.last_index()
            )));
        }
        let hs = wal.hard_state();
        let hard_state = HardState {
            term: hs.term,
            vote: hs.vote.unwrap_or(0),
            commit,
            ..HardState::default()
        };
        Ok(RaftWalStorage {
            hard_state,
            conf_state: durable.conf_state.clone(),
            durable,
            durable_last: wal.last_index(),
            commit_lag: opts.commit_lag,
            flight: Flight::default(),
            wal,
        })
    }

    /// The WAL (its counters: [`Wal::stats`]; its directory; its reader for other threads).
    pub fn wal(&self) -> &Wal<V> {
        &self.wal
    }

    /// raft-rs's hard state as this storage holds it (the commit index as last handed over).
    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The current `ConfState`.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// The commit index the WAL holds durably (at most [`StorageOptions::commit_lag`]
    /// behind [`RaftWalStorage::hard_state`]'s after each persist call).
    pub fn durable_commit(&self) -> u64 {
        self.durable.commit
    }

    /// The last index known durable: every entry up to it survives a crash (with
    /// [`RaftWalStorage::persist_ready_async`], later entries may still be in flight).
    pub fn durable_last_index(&self) -> u64 {
        self.durable_last
    }

    fn bounded(&self, low: u64, high: u64, max_size: Option<u64>) -> Result<Vec<Entry>> {
        let budget = match max_size {
            None | Some(NO_LIMIT) => u64::MAX,
            Some(m) => m,
        };
        let mut out = Vec::new();
        for w in self.wal.entries_bounded(low, high, budget)? {
            let index = w.index;
            out.push(codec::decode(w).map_err(|reason| Error::Entry { index, reason })?);
        }
        raft::util::limit_size(&mut out, max_size);
        Ok(out)
    }
}

pub(crate) fn too_large(bytes: usize) -> Error {
    Error::ConfStateTooLarge {
        bytes,
        max: raftwal::APP_META_MAX,
    }
}

fn store(e: StorageError) -> raft::Error {
    raft::Error::Store(e)
}

impl<V: Vfs> raft::Storage for RaftWalStorage<V> {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    /// `[low, high)`, at most `max_size` bytes of entries (raft-rs's measure) but at least
    /// one. `low` below the first index is `Compacted`; `high` past the last index + 1 is
    /// `Unavailable` (where `MemStorage` panics).
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.wal.first_index() {
            return Err(store(StorageError::Compacted));
        }
        if high > self.wal.last_index() + 1 {
            return Err(store(StorageError::Unavailable));
        }
        if low >= high {
            return Ok(Vec::new());
        }
        Ok(self.bounded(low, high, max_size.into())?)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        Ok(self.wal.term(idx).map_err(Error::from)?)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.wal.first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.wal.last_index())
    }

    /// The snapshot last stored ([`RaftWalStorage::create_snapshot`], or installed from the
    /// leader), read back and verified; `SnapshotTemporarilyUnavailable` if there is none
    /// (a [`RaftWalStorage::compact`] past it removes it) or it is older than
    /// `request_index` — the application then creates one, and raft-rs asks again.
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        match snapshot::load(&self.wal)? {
            Some(s) if s.get_metadata().index >= request_index => Ok(s),
            _ => Err(store(StorageError::SnapshotTemporarilyUnavailable)),
        }
    }
}
