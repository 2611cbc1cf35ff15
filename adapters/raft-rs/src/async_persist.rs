//! The asynchronous write side: raft-rs's `advance_append_async` + `on_persist_ready`, on
//! the WAL's non-blocking durability ([`raftwal::Wal::begin_sync`]).
//!
//! [`RaftWalStorage::persist_ready_async`] does everything [`RaftWalStorage::persist_ready`]
//! does but the `fdatasync`: the entries are buffered (raft-rs reads them back at once, as
//! `advance_append_async` requires), and a sync of everything buffered so far is handed to
//! the storage's sync thread unless one is already running. While it runs the loop goes on:
//! later Readies append behind it, and the next sync, started when it completes, covers
//! them all (group commit across Readies). [`RaftWalStorage::poll_persisted`] (or
//! [`RaftWalStorage::wait_persisted`]) ends a completed sync and returns the number of the
//! last Ready it covers, for `RawNode::on_persist_ready`; only then may the
//! `persisted_messages` of the Readies up to it be sent.
//!
//! Every write but an append (a term or vote change, a snapshot, a truncation of a
//! conflicting suffix, a `ConfState`, a compaction) first waits for the running sync: those
//! writes are durable on their own, and the WAL refuses them while a sync is in flight.
//! The Ready number that sync covers is then reported by the next poll.

use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;

use raft::Ready;
use raftwal::io::{Vfs, VfsFile};
use raftwal::PendingSync;

use crate::storage::RaftWalStorage;
use crate::{Error, Result};

/// A sync handed to the thread: the Ready number and last index it makes durable.
struct Job<F: VfsFile> {
    pending: PendingSync<F>,
    number: u64,
    last_index: u64,
}

struct Done<F: VfsFile> {
    job: Job<F>,
    result: raftwal::Result<()>,
}

/// The sync thread: runs each job's `fdatasync`s and sends it back.
struct SyncThread<F: VfsFile> {
    tx: Option<Sender<Job<F>>>,
    rx: Receiver<Done<F>>,
    thread: Option<JoinHandle<()>>,
}

impl<F: VfsFile + 'static> SyncThread<F> {
    fn start() -> Self {
        let (tx, jobs) = channel::<Job<F>>();
        let (done, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("raftwal-raft-rs-sync".into())
            .spawn(move || {
                for job in jobs {
                    let result = job.pending.wait();
                    if done.send(Done { job, result }).is_err() {
                        return;
                    }
                }
            })
            .expect("spawning the raftwal sync thread");
        SyncThread {
            tx: Some(tx),
            rx,
            thread: Some(thread),
        }
    }
}

impl<F: VfsFile> Drop for SyncThread<F> {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The asynchronous write side's state.
pub(crate) struct Flight<V: Vfs> {
    thread: Option<SyncThread<V::File>>,
    /// The number of the last Ready persisted since no sync covers it yet.
    queued: Option<u64>,
    /// The sync running on the thread: its Ready number.
    running: Option<u64>,
    /// Readies durable up to this number, not yet reported.
    completed: Option<u64>,
}

impl<V: Vfs> Default for Flight<V> {
    fn default() -> Self {
        Flight {
            thread: None,
            queued: None,
            running: None,
            completed: None,
        }
    }
}

impl<V: Vfs> RaftWalStorage<V> {
    /// Persists a `Ready` like [`RaftWalStorage::persist_ready`] but without waiting for
    /// its `fdatasync` (see the module docs): call `RawNode::advance_append_async(rd)`
    /// next, and `on_persist_ready` with what [`RaftWalStorage::poll_persisted`] returns.
    pub fn persist_ready_async(&mut self, rd: &Ready) -> Result<()> {
        if let Some(hs) = rd.hs() {
            self.set_hard_state(hs)?;
        }
        if !rd.snapshot().is_empty() {
            self.apply_snapshot(rd.snapshot())?;
        }
        self.append(rd.entries())?;
        self.flight.queued = Some(rd.number());
        self.start_sync()
    }

    /// Ends a completed sync, if any, and returns the number of the last Ready now durable
    /// (for `RawNode::on_persist_ready`); starts the next sync if Readies wait for one.
    /// Never blocks.
    pub fn poll_persisted(&mut self) -> Result<Option<u64>> {
        self.finish_running(false)?;
        self.start_sync()?;
        Ok(self.flight.completed.take())
    }

    /// Like [`RaftWalStorage::poll_persisted`], but waits for the running sync.
    pub fn wait_persisted(&mut self) -> Result<Option<u64>> {
        self.finish_running(true)?;
        self.start_sync()?;
        Ok(self.flight.completed.take())
    }

    /// Ends the running sync, if any, waiting for it (its Ready number is reported by the
    /// next poll): every write but an append needs the WAL idle.
    pub(crate) fn wait_idle(&mut self) -> Result<()> {
        self.finish_running(true)
    }

    /// Whether a sync is running or Readies wait for one.
    pub fn persist_pending(&self) -> bool {
        self.flight.running.is_some() || self.flight.queued.is_some()
    }

    /// Starts a sync of everything appended, unless one is running or nothing waits.
    fn start_sync(&mut self) -> Result<()> {
        if self.flight.running.is_some() {
            return Ok(());
        }
        let Some(number) = self.flight.queued.take() else {
            return Ok(());
        };
        let pending = self.wal.begin_sync()?;
        let last_index = self.wal.last_index();
        if pending.files() == 0 {
            self.wal.end_sync(pending, Ok(()))?;
            return self.synced(number, last_index);
        }
        let thread = self.flight.thread.get_or_insert_with(SyncThread::start);
        let job = Job {
            pending,
            number,
            last_index,
        };
        match thread.tx.as_ref().map(|tx| tx.send(job)) {
            Some(Ok(())) => {
                self.flight.running = Some(number);
                Ok(())
            }
            Some(Err(e)) => {
                let job = e.0;
                let stopped = raftwal::Error::Internal {
                    reason: "the sync thread has stopped".into(),
                };
                self.wal.end_sync(job.pending, Err(stopped))?;
                Err(Error::invalid("sync", "the sync thread has stopped"))
            }
            None => unreachable!("the sync thread's sender lives as long as it"),
        }
    }

    /// Ends the running sync if it has completed (or, with `block`, once it has).
    fn finish_running(&mut self, block: bool) -> Result<()> {
        if self.flight.running.is_none() {
            return Ok(());
        }
        let thread = self
            .flight
            .thread
            .as_ref()
            .expect("a sync runs on the thread");
        let done = if block {
            thread.rx.recv().ok()
        } else {
            match thread.rx.try_recv() {
                Ok(d) => Some(d),
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => None,
            }
        };
        self.flight.running = None;
        let Some(Done { job, result }) = done else {
            return Err(Error::invalid("sync", "the sync thread has stopped"));
        };
        self.wal.end_sync(job.pending, result)?;
        self.synced(job.number, job.last_index)
    }

    /// Readies up to `number` are durable, entries up to `last_index`.
    fn synced(&mut self, number: u64, last_index: u64) -> Result<()> {
        self.durable_last = self.durable_last.max(last_index).min(self.wal.last_index());
        self.flight.completed = Some(number);
        self.maybe_persist_commit()
    }
}
