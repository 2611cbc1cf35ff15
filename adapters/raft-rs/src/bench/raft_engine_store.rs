//! [`RaftEngineStorage`]: a `raft::Storage` over tikv's raft-engine, the way TiKV keeps a
//! raft-rs log there: entries through `LogBatch::add_entries` with a `MessageExt` for
//! raft-rs's own `Entry` (raft-engine drops a conflicting suffix itself when an append
//! overlaps it), the `HardState` and `ConfState` as messages under keys of the group, and
//! one `Engine::write` per Ready — entries and hard state in one batch, synced when the
//! Ready must sync. The commit index alone goes in with the next batch, as TiKV's raft
//! state does. No snapshots: the benchmark never compacts.

use std::path::Path;

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, LightReady, RaftState, Ready, StorageError, NO_LIMIT};
use raft_engine::{Config, Engine, LogBatch, MessageExt};

use super::BenchStore;
use crate::cluster::BoxError;

/// The one group every node's engine holds.
const GROUP: u64 = 1;
const HARD_STATE: &[u8] = b"hard_state";
const CONF_STATE: &[u8] = b"conf_state";

/// raft-rs's `Entry` in raft-engine.
#[derive(Clone, Copy)]
struct EntryExt;

impl MessageExt for EntryExt {
    type Entry = Entry;
    fn index(e: &Entry) -> u64 {
        e.index
    }
}

/// A raft-rs log store on raft-engine (see the module docs).
pub struct RaftEngineStorage {
    engine: Engine,
    hard_state: HardState,
    /// The hard state changed since the last batch (the commit index alone).
    hs_dirty: bool,
    conf_state: ConfState,
    syncs: u64,
}

fn other(e: raft_engine::Error) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(e)))
}

impl RaftEngineStorage {
    /// Opens (creating) the engine in `dir`, with raft-engine's default configuration.
    pub fn open_dir(dir: &Path) -> Result<Self, BoxError> {
        std::fs::create_dir_all(dir)?;
        let cfg = Config {
            dir: dir.to_str().ok_or("non-UTF-8 directory")?.to_owned(),
            ..Config::default()
        };
        let engine = Engine::open(cfg)?;
        let hard_state = engine.get_message(GROUP, HARD_STATE)?.unwrap_or_default();
        let conf_state = engine.get_message(GROUP, CONF_STATE)?.unwrap_or_default();
        Ok(RaftEngineStorage {
            engine,
            hard_state,
            hs_dirty: false,
            conf_state,
            syncs: 0,
        })
    }

    fn write(&mut self, batch: &mut LogBatch, sync: bool) -> Result<(), BoxError> {
        if self.hs_dirty {
            batch.put_message(GROUP, HARD_STATE.to_vec(), &self.hard_state)?;
            self.hs_dirty = false;
        }
        if batch.is_empty() {
            return Ok(());
        }
        self.engine.write(batch, sync)?;
        self.syncs += u64::from(sync);
        Ok(())
    }
}

impl BenchStore for RaftEngineStorage {
    fn open(dir: &Path, voters: &[u64]) -> Result<Self, BoxError> {
        let mut s = Self::open_dir(dir)?;
        s.conf_state = ConfState::from((voters.to_vec(), Vec::new()));
        let mut batch = LogBatch::default();
        batch.put_message(GROUP, CONF_STATE.to_vec(), &s.conf_state)?;
        s.write(&mut batch, true)?;
        Ok(s)
    }

    fn persist_ready(&mut self, rd: &Ready) -> Result<(), BoxError> {
        let mut batch = LogBatch::default();
        if let Some(hs) = rd.hs() {
            self.hard_state = hs.clone();
            self.hs_dirty = true;
        }
        batch.add_entries::<EntryExt>(GROUP, rd.entries())?;
        self.write(&mut batch, rd.must_sync())
    }

    fn persist_light_ready(&mut self, light: &LightReady) -> Result<(), BoxError> {
        if let Some(commit) = light.commit_index() {
            self.hard_state.commit = commit;
            self.hs_dirty = true;
        }
        Ok(())
    }

    fn syncs(&self) -> u64 {
        self.syncs
    }
}

impl raft::Storage for RaftEngineStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first_index()? {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last_index()? + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let max = match max_size.into() {
            None | Some(NO_LIMIT) => None,
            Some(m) => Some(usize::try_from(m).unwrap_or(usize::MAX)),
        };
        let mut out = Vec::with_capacity((high - low) as usize);
        self.engine
            .fetch_entries_to::<EntryExt>(GROUP, low, high, max, &mut out)
            .map_err(other)?;
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == 0 {
            return Ok(0);
        }
        match self
            .engine
            .get_entry::<EntryExt>(GROUP, idx)
            .map_err(other)?
        {
            Some(e) => Ok(e.term),
            None if idx < self.first_index()? => Err(raft::Error::Store(StorageError::Compacted)),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.engine.first_index(GROUP).unwrap_or(1))
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.engine.last_index(GROUP).unwrap_or(0))
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}
