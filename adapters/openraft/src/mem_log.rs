//! [`MemLogStore`]: an in-memory openraft log store with the same rules as
//! [`crate::WalLogStore`] (contiguous appends, purge past the end, reads clamped to the live
//! range) and no disk at all: the ceiling a durable log store is measured against
//! (`examples/bench.rs`). Nothing survives a restart; never use it for data.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote,
};

use crate::log_store::LogConfig;

type Result<T> = std::result::Result<T, StorageError<u64>>;

struct Inner<C: LogConfig> {
    purged: Option<LogId<u64>>,
    log: BTreeMap<u64, Entry<C>>,
    vote: Option<Vote<u64>>,
    committed: Option<LogId<u64>>,
}

/// An in-memory log store (see the module docs). Clones share the log.
pub struct MemLogStore<C: LogConfig> {
    inner: Arc<Mutex<Inner<C>>>,
}

impl<C: LogConfig> Clone for MemLogStore<C> {
    fn clone(&self) -> Self {
        MemLogStore {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: LogConfig> Default for MemLogStore<C> {
    fn default() -> Self {
        MemLogStore {
            inner: Arc::new(Mutex::new(Inner {
                purged: None,
                log: BTreeMap::new(),
                vote: None,
                committed: None,
            })),
        }
    }
}

impl<C: LogConfig> MemLogStore<C> {
    fn lock(&self) -> MutexGuard<'_, Inner<C>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<C: LogConfig> RaftLogReader<C> for MemLogStore<C>
where
    C::D: Clone,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>> {
        Ok(self
            .lock()
            .log
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl<C: LogConfig> RaftLogStorage<C> for MemLogStore<C>
where
    C::D: Clone,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>> {
        let g = self.lock();
        let last = g.log.values().next_back().map(|e| e.log_id).or(g.purged);
        Ok(LogState {
            last_purged_log_id: g.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<()> {
        self.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<()> {
        self.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>> {
        Ok(self.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        {
            let mut g = self.lock();
            for e in entries {
                let index = e.log_id.index;
                if g.purged.is_some_and(|p| index <= p.index) {
                    continue;
                }
                if let Some(&last) = g.log.keys().next_back() {
                    if index != last + 1 {
                        let msg = format!("append at index {index} after {last}");
                        return Err(StorageIOError::write_log_entry(
                            e.log_id,
                            AnyError::error(msg),
                        )
                        .into());
                    }
                }
                g.log.insert(index, e);
            }
        }
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<()> {
        let _ = self.lock().log.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<()> {
        let mut g = self.lock();
        if g.purged < Some(log_id) {
            g.purged = Some(log_id);
        }
        g.log = g.log.split_off(&(log_id.index + 1));
        Ok(())
    }
}
