//! [`WalLogStore`]: openraft's `RaftLogStorage` and `RaftLogReader` over a raftwal
//! [`Wal`].
//!
//! Index mapping: openraft's log starts at index 0, the WAL's at 1, so openraft entry `i`
//! is WAL entry `i + 1`, and the WAL's base (last compacted index) `b` stands for openraft's
//! index `b - 1`. Each WAL entry holds the whole serialized openraft entry (its log id with
//! the leader's node id, and its payload); the WAL's term is the leader's term, which never
//! decreases along a log.
//!
//! What openraft needs beyond the WAL's own contract, and where it is handled:
//! - **vote, committed and purged log ids** live in the WAL header's application metadata
//!   ([`crate::meta`]), written with one `fdatasync`;
//! - **purge past the last entry** ([`raftwal::Wal::compact_to`]); reads clamp to the live
//!   range and missing entries are absent, never errors;
//! - **an empty log accepts an append at any index** (openraft's suite starts some logs at
//!   1 or 2): the WAL's base is moved there first;
//! - **write I/O is serialized**: every vote, committed-id, truncation or purge syncs the
//!   appends before it, so it never becomes durable ahead of them;
//! - **durability off the async runtime**: `append` buffers and returns; a flush thread
//!   ([`crate::flush`]) syncs and fires openraft's `LogFlushed` callbacks in order, only
//!   after the `fdatasync` that covers the entries returned;
//! - **readers never wait behind a sync**: [`WalLogReader`] (one per replication task)
//!   reads through the WAL's [`WalReader`] and takes no lock of the store's, so neither the
//!   flush thread's `fdatasync` nor the header syncs of `save_vote`, `save_committed`,
//!   `truncate` and `purge` (which hold the store's lock) delay it.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, StorageIOError};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, RaftTypeConfig, StorageError, Vote};
use raftwal::io::{StdVfs, Vfs};
use raftwal::{Options, SnapshotMeta, Wal, WalReader};

use crate::flush::Flusher;
use crate::meta::Meta;

/// The type configurations the log store serves: `u64` node ids and openraft's own entry
/// type (whose payload must serialize, openraft's `serde` feature).
pub trait LogConfig: RaftTypeConfig<NodeId = u64, Entry = Entry<Self>> {}

impl<C: RaftTypeConfig<NodeId = u64, Entry = Entry<C>>> LogConfig for C {}

type Result<T> = std::result::Result<T, StorageError<u64>>;

/// The WAL and the metadata decoded from its header, behind one lock.
pub(crate) struct Inner<V: Vfs> {
    pub(crate) wal: Wal<V>,
    meta: Meta,
}

/// What every handle (store, readers, the flush thread) shares. The lock is held by
/// writers — for buffering, write-outs and the vote's, committed id's, truncation's and
/// purge's syncs — never across the flush thread's `fdatasync`; `idle` is signalled when a
/// sync in flight ends. Readers take no lock of the store's: they read through a
/// [`WalReader`] and `purged_floor`.
pub(crate) struct Shared<V: Vfs> {
    pub(crate) inner: Mutex<Inner<V>>,
    pub(crate) idle: Condvar,
    /// The first openraft index above the purged log id (0 if none), for readers.
    purged_floor: AtomicU64,
    /// The WAL's reader, cloned into each [`WalLogReader`].
    reader: WalReader<V>,
}

/// A raftwal-backed openraft log store. Cloning gives another handle on the same log.
pub struct WalLogStore<C: LogConfig, V: Vfs = StdVfs> {
    inner: Arc<Shared<V>>,
    flusher: Arc<Flusher<C, V>>,
}

impl<C: LogConfig, V: Vfs> Clone for WalLogStore<C, V> {
    fn clone(&self) -> Self {
        WalLogStore {
            inner: Arc::clone(&self.inner),
            flusher: Arc::clone(&self.flusher),
        }
    }
}

/// A reader of the same log (openraft's `get_log_reader`), for replication tasks. It
/// takes no lock of the store's and never waits behind a sync: it reads through the WAL's
/// own [`WalReader`].
pub struct WalLogReader<C: LogConfig, V: Vfs = StdVfs> {
    inner: Arc<Shared<V>>,
    reader: WalReader<V>,
    _config: PhantomData<fn() -> C>,
}

impl<C: LogConfig> WalLogStore<C, StdVfs> {
    /// Opens (creating if needed) the log store's WAL in `dir` on the real file system.
    pub fn open(
        dir: impl AsRef<Path>,
        options: Options,
    ) -> std::result::Result<Self, crate::Error> {
        Self::open_with(StdVfs, dir, options)
    }
}

impl<C: LogConfig, V: Vfs> WalLogStore<C, V> {
    /// Opens (creating if needed) the log store's WAL in `dir` on `vfs` (recovery runs
    /// here), and starts its flush thread.
    pub fn open_with(
        vfs: V,
        dir: impl AsRef<Path>,
        options: Options,
    ) -> std::result::Result<Self, crate::Error> {
        let wal = Wal::open_with(vfs, dir, options)?;
        let meta = Meta::decode(wal.app_meta()).map_err(|reason| crate::Error::Metadata {
            dir: wal.dir().to_path_buf(),
            reason,
        })?;
        let inner = Arc::new(Shared {
            reader: wal.reader(),
            purged_floor: AtomicU64::new(floor(&meta)),
            inner: Mutex::new(Inner { wal, meta }),
            idle: Condvar::new(),
        });
        let flusher = Arc::new(Flusher::start(Arc::clone(&inner)));
        Ok(WalLogStore { inner, flusher })
    }

    /// Runs `f` on the WAL (statistics, inspection).
    pub fn with_wal<R>(&self, f: impl FnOnce(&Wal<V>) -> R) -> R {
        f(&lock(&self.inner).wal)
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        lock(&self.inner)
    }

    fn reader(&self) -> WalLogReader<C, V> {
        WalLogReader {
            inner: Arc::clone(&self.inner),
            reader: self.inner.reader.clone(),
            _config: PhantomData,
        }
    }

    /// The lock, once no sync is in flight (for every write but an append).
    fn lock_idle(&self) -> MutexGuard<'_, Inner<V>> {
        lock_idle(&self.inner)
    }
}

pub(crate) fn lock<V: Vfs>(shared: &Shared<V>) -> MutexGuard<'_, Inner<V>> {
    shared
        .inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn lock_idle<V: Vfs>(shared: &Shared<V>) -> MutexGuard<'_, Inner<V>> {
    let mut g = lock(shared);
    while g.wal.sync_in_flight() {
        g = shared
            .idle
            .wait(g)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
    g
}

/// The first openraft index above the purged log id (0 if none).
fn floor(meta: &Meta) -> u64 {
    meta.purged.map_or(0, |p| p.index + 1)
}

/// A WAL error as openraft's storage error.
fn write_err(e: raftwal::Error) -> StorageError<u64> {
    StorageIOError::write_logs(&e).into()
}

fn read_err(e: raftwal::Error) -> StorageError<u64> {
    StorageIOError::read_logs(&e).into()
}

impl<V: Vfs> Inner<V> {
    /// The live openraft index range `[lo, hi)`: above the purged id and the WAL's base, up
    /// to the WAL's last entry.
    fn live(&self) -> (u64, u64) {
        let lo = floor(&self.meta).max(self.wal.first_index() - 1);
        (lo, self.wal.last_index().max(lo))
    }

    /// Persists `meta` after syncing every buffered append (write I/O is serialized).
    fn save_meta(&mut self, meta: Meta) -> Result<()> {
        if meta == self.meta {
            return Ok(());
        }
        self.wal.sync().map_err(write_err)?;
        self.wal
            .set_app_meta(&meta.encode())
            .map_err(|e| StorageError::from(StorageIOError::write_vote(&e)))?;
        self.meta = meta;
        Ok(())
    }

    /// Buffers `entries` in the WAL (no sync).
    fn append<C: LogConfig>(&mut self, entries: impl IntoIterator<Item = Entry<C>>) -> Result<()> {
        let mut batch = Vec::new();
        for e in entries {
            let (lo, hi) = self.live();
            let index = e.log_id.index;
            if self.meta.purged.is_some_and(|p| index <= p.index) {
                continue; // at or below the purge point: covered by a snapshot already
            }
            let next = hi + batch.len() as u64;
            // The WAL's next entry is openraft index `wal.last_index()`. With nothing live
            // it can be behind `next`: a crash between `purge`'s metadata write and its
            // compaction past the end of the log leaves the WAL ending below the purge point.
            if batch.is_empty() && lo == hi && index >= next && index != self.wal.last_index() {
                // Nothing is live: the log may start anywhere. Move the WAL's base there.
                let base = SnapshotMeta {
                    index,
                    term: e.log_id.leader_id.term,
                };
                self.wal.compact_to(base).map_err(write_err)?;
            } else if index != next {
                let msg = format!("append at index {index}, the log's next index is {next}");
                return Err(StorageIOError::write_log_entry(e.log_id, AnyError::error(msg)).into());
            }
            let data = serde_json::to_vec(&e)
                .map_err(|err| StorageIOError::write_log_entry(e.log_id, &err))?;
            batch.push(raftwal::Entry {
                index: index + 1,
                term: e.log_id.leader_id.term,
                data,
            });
            if batch.len() >= 1024 {
                self.wal.append(&batch).map_err(write_err)?;
                batch.clear();
            }
        }
        self.wal.append(&batch).map_err(write_err)
    }
}

fn decode<C: LogConfig>(e: &raftwal::Entry) -> Result<Entry<C>> {
    serde_json::from_slice(&e.data)
        .map_err(|err| StorageIOError::read_log_at_index(e.index - 1, &err).into())
}

/// `[start, end)` of a range of openraft indexes.
fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let lo = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let hi = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (lo, hi)
}

/// Bytes of payload one `limited_get_log_entries` call reads at most (at least one entry).
const READ_BUDGET: u64 = 4 << 20;

/// Times a read retries when a concurrent purge or truncation moved the live range under
/// it (each retry reads the new range).
const READ_RETRIES: usize = 8;

impl<C: LogConfig, V: Vfs> WalLogReader<C, V> {
    /// The live openraft index range `[lo, hi)` as the reader sees it now.
    fn live(&self) -> Result<(u64, u64)> {
        let floor = self.inner.purged_floor.load(Ordering::Acquire);
        let first = self.reader.first_index().map_err(read_err)?;
        let last = self.reader.last_index().map_err(read_err)?;
        let lo = floor.max(first - 1);
        Ok((lo, last.max(lo)))
    }

    /// Entries `[lo, hi)` clamped to the live range, at most `max_bytes` of payload (at
    /// least one entry). A purge or truncation racing with the read moves the range: the
    /// read is retried on the new one, so it returns the log before or after it.
    fn read(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry<C>>> {
        let mut tries = 0;
        loop {
            let (live_lo, live_hi) = self.live()?;
            let (lo, hi) = (lo.max(live_lo), hi.min(live_hi));
            if lo >= hi {
                return Ok(Vec::new());
            }
            match self.reader.entries_bounded(lo + 1, hi + 1, max_bytes) {
                Ok(raw) => return raw.iter().map(decode::<C>).collect(),
                Err(raftwal::Error::Compacted { .. } | raftwal::Error::Unavailable { .. })
                    if tries < READ_RETRIES =>
                {
                    tries += 1;
                }
                Err(e) => return Err(read_err(e)),
            }
        }
    }
}

impl<C: LogConfig, V: Vfs> RaftLogReader<C> for WalLogReader<C, V> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>> {
        let (lo, hi) = bounds(&range);
        self.read(lo, hi, u64::MAX)
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<Entry<C>>> {
        self.read(start, end, READ_BUDGET)
    }
}

impl<C: LogConfig, V: Vfs> RaftLogReader<C> for WalLogStore<C, V> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>> {
        let (lo, hi) = bounds(&range);
        self.reader().read(lo, hi, u64::MAX)
    }

    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<Entry<C>>> {
        self.reader().read(start, end, READ_BUDGET)
    }
}

impl<C: LogConfig, V: Vfs> RaftLogStorage<C> for WalLogStore<C, V> {
    type LogReader = WalLogReader<C, V>;

    async fn get_log_state(&mut self) -> Result<LogState<C>> {
        let g = self.lock();
        let (lo, hi) = g.live();
        let last = if hi > lo {
            let e = g.wal.entry(hi).map_err(read_err)?;
            Some(decode::<C>(&e)?.log_id)
        } else {
            g.meta.purged
        };
        Ok(LogState {
            last_purged_log_id: g.meta.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<()> {
        let mut g = self.lock_idle();
        let meta = Meta {
            vote: Some(*vote),
            ..g.meta
        };
        g.save_meta(meta)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>> {
        Ok(self.lock().meta.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<()> {
        let mut g = self.lock_idle();
        let meta = Meta {
            committed,
            ..g.meta
        };
        g.save_meta(meta)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>> {
        Ok(self.lock().meta.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut g = self.lock();
        let (lo, hi) = g.live();
        if lo == hi && g.wal.sync_in_flight() {
            // An empty log may need its base moved first, which waits for the sync to end.
            drop(g);
            g = self.lock_idle();
        }
        g.append(entries)?;
        drop(g);
        // Readable now; durable when the flush thread's fdatasync returns.
        self.flusher.flush(callback);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<()> {
        let mut g = self.lock_idle();
        let from = (log_id.index + 1).max(g.wal.first_index());
        if from <= g.wal.last_index() {
            g.wal.truncate_suffix(from).map_err(write_err)?;
        }
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<()> {
        let mut g = self.lock_idle();
        // The metadata first: once it says purged, the prefix is hidden whatever the WAL
        // still holds (a crash before the compaction leaves entries that are never read).
        if g.meta.purged < Some(log_id) {
            let meta = Meta {
                purged: Some(log_id),
                ..g.meta
            };
            g.save_meta(meta)?;
            self.inner
                .purged_floor
                .store(floor(&g.meta), Ordering::Release);
        }
        let index = log_id.index + 1;
        if index < g.wal.first_index() {
            return Ok(());
        }
        let r = if index <= g.wal.last_index() {
            g.wal.compact(index)
        } else {
            g.wal.compact_to(SnapshotMeta {
                index,
                term: log_id.leader_id.term,
            })
        };
        r.map_err(write_err)
    }
}
