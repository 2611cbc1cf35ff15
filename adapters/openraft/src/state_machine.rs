//! [`KvStateMachine`]: a small key-value state machine for openraft, with durable snapshots.
//!
//! The map lives in memory; what is durable is its latest snapshot, in a checksummed file
//! beside the WAL ([`crate::snapshot_file`]). After a restart the state machine is that
//! snapshot, and openraft re-applies the committed entries after it from the log.
//!
//! Snapshots are kept beside the WAL rather than through the WAL's own snapshot support
//! (`Wal::save_snapshot`) because openraft keeps the two apart: the state machine builds and
//! installs snapshots on its own schedule, and the log store purges its prefix later (or
//! never, `max_in_snapshot_log_to_keep`); `save_snapshot` would move the log's base at
//! once, coupling them.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use raftwal::io::{StdVfs, Vfs};
use serde::{Deserialize, Serialize};

use crate::snapshot_file::SnapshotFile;
use crate::{KvConfig, KvRequest, KvResponse};

type Result<T> = std::result::Result<T, StorageError<u64>>;
type Meta = SnapshotMeta<u64, BasicNode>;

/// What a snapshot holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KvData {
    /// The last entry applied.
    pub last_applied: Option<LogId<u64>>,
    /// The membership as of `last_applied`.
    pub last_membership: StoredMembership<u64, BasicNode>,
    /// The map.
    pub map: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    meta: Meta,
    data: KvData,
}

struct Inner<V: Vfs> {
    data: KvData,
    /// The current snapshot: its meta and serialized body.
    snapshot: Option<(Meta, Vec<u8>)>,
    file: SnapshotFile<V>,
    built: u64,
}

/// The key-value state machine. Cloning gives another handle on the same one.
pub struct KvStateMachine<V: Vfs = StdVfs> {
    inner: Arc<Mutex<Inner<V>>>,
}

impl<V: Vfs> Clone for KvStateMachine<V> {
    fn clone(&self) -> Self {
        KvStateMachine {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl KvStateMachine<StdVfs> {
    /// Opens the state machine whose snapshots live in `dir`.
    pub fn open(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        Self::open_with(StdVfs, dir)
    }
}

impl<V: Vfs> KvStateMachine<V> {
    /// Opens the state machine whose snapshots live in `dir` on `vfs`: it starts as the
    /// latest durable snapshot (empty if none).
    pub fn open_with(vfs: V, dir: impl AsRef<Path>) -> std::io::Result<Self> {
        let file = SnapshotFile::new(vfs, dir.as_ref())?;
        let (data, snapshot) = match file.read()? {
            None => (KvData::default(), None),
            Some(body) => {
                let s: SnapshotBody = serde_json::from_slice(&body).map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
                })?;
                (s.data, Some((s.meta, body)))
            }
        };
        let inner = Inner {
            data,
            snapshot,
            file,
            built: 0,
        };
        Ok(KvStateMachine {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    /// A copy of the state (for checks and examples).
    pub fn data(&self) -> KvData {
        self.lock().data.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<V: Vfs> Inner<V> {
    /// Makes `meta` + `data` the current snapshot, durably.
    fn store(&mut self, meta: Meta, data: KvData) -> Result<Vec<u8>> {
        let sig = Some(meta.signature());
        let body = serde_json::to_vec(&SnapshotBody {
            meta: meta.clone(),
            data,
        })
        .map_err(|e| StorageIOError::write_snapshot(sig.clone(), &e))?;
        self.file
            .write(&body)
            .map_err(|e| StorageIOError::write_snapshot(sig, &e))?;
        self.snapshot = Some((meta, body.clone()));
        Ok(body)
    }
}

impl<V: Vfs> RaftSnapshotBuilder<KvConfig> for KvStateMachine<V> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<KvConfig>> {
        let mut g = self.lock();
        g.built += 1;
        let data = g.data.clone();
        let id = data.last_applied.map_or(0, |l| l.index);
        let meta = Meta {
            last_log_id: data.last_applied,
            last_membership: data.last_membership.clone(),
            snapshot_id: format!("{id}-{}", g.built),
        };
        let body = g.store(meta.clone(), data)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(body)),
        })
    }
}

impl<V: Vfs> RaftStateMachine<KvConfig> for KvStateMachine<V> {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>)> {
        let g = self.lock();
        Ok((g.data.last_applied, g.data.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<KvResponse>>
    where
        I: IntoIterator<Item = Entry<KvConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut g = self.lock();
        let mut out = Vec::new();
        for e in entries {
            g.data.last_applied = Some(e.log_id);
            let previous = match e.payload {
                EntryPayload::Blank => None,
                EntryPayload::Normal(KvRequest::Set { key, value }) => {
                    g.data.map.insert(key, value)
                }
                EntryPayload::Normal(KvRequest::Delete { key }) => g.data.map.remove(&key),
                EntryPayload::Membership(m) => {
                    g.data.last_membership = StoredMembership::new(Some(e.log_id), m);
                    None
                }
            };
            out.push(KvResponse { previous });
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let sig = Some(meta.signature());
        let body: SnapshotBody = serde_json::from_slice(snapshot.get_ref())
            .map_err(|e| StorageIOError::read_snapshot(sig, &e))?;
        let mut g = self.lock();
        g.store(meta.clone(), body.data.clone())?;
        g.data = body.data;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<KvConfig>>> {
        let g = self.lock();
        Ok(g.snapshot.as_ref().map(|(meta, body)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(body.clone())),
        }))
    }
}
