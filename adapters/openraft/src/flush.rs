//! The flush thread: makes appended entries durable off the async runtime and tells openraft
//! so, in order. Its `fdatasync`s run without the store's lock ([`raftwal::Wal::begin_sync`]),
//! so appends and readers never wait behind one.
//!
//! `append` buffers its entries in the WAL and hands the `LogFlushed` callback here. The
//! thread takes every callback queued, runs one [`raftwal::Wal::sync`] (one `fdatasync` for
//! all of them, however many appends they cover: group commit), and only then fires them,
//! in the order they were queued. A callback is queued after its entries were buffered, so
//! the sync that follows covers them. A failed sync poisons the WAL; every callback it was to
//! cover, and every later one, gets the error (openraft then stops the node).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use openraft::storage::LogFlushed;
use raftwal::io::Vfs;

use crate::log_store::{lock, lock_idle, LogConfig, Shared};

/// Owns the flush thread; dropping it stops and joins the thread.
pub(crate) struct Flusher<C: LogConfig, V: Vfs> {
    tx: Mutex<Option<Sender<LogFlushed<C>>>>,
    thread: Option<JoinHandle<()>>,
    _vfs: std::marker::PhantomData<fn() -> V>,
}

impl<C: LogConfig, V: Vfs> Flusher<C, V> {
    pub(crate) fn start(inner: Arc<Shared<V>>) -> Self {
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("raftwal-flush".into())
            .spawn(move || run(&inner, &rx))
            .expect("spawning the raftwal flush thread");
        Flusher {
            tx: Mutex::new(Some(tx)),
            thread: Some(thread),
            _vfs: std::marker::PhantomData,
        }
    }

    /// Queues `callback`: it fires after the next sync returns.
    pub(crate) fn flush(&self, callback: LogFlushed<C>) {
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match tx.as_ref() {
            Some(tx) => {
                if let Err(e) = tx.send(callback) {
                    e.0.log_io_completed(Err(stopped()));
                }
            }
            None => callback.log_io_completed(Err(stopped())),
        }
    }
}

fn stopped() -> std::io::Error {
    std::io::Error::other("the raftwal flush thread has stopped")
}

fn run<C: LogConfig, V: Vfs>(shared: &Shared<V>, rx: &Receiver<LogFlushed<C>>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        group.extend(rx.try_iter());
        let result = sync(shared);
        for cb in group {
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(std::io::Error::new(
                    e.io_kind().unwrap_or(std::io::ErrorKind::Other),
                    e.to_string(),
                )),
            };
            cb.log_io_completed(r);
        }
    }
}

/// One pipelined sync: the write-out under the lock, the `fdatasync`s without it (appends
/// and reads go on meanwhile; other writes wait for `idle`), the end under the lock.
fn sync<V: Vfs>(shared: &Shared<V>) -> raftwal::Result<()> {
    let pending = lock_idle(shared).wal.begin_sync()?;
    let waited = pending.wait();
    let ended = lock(shared).wal.end_sync(pending, waited);
    shared.idle.notify_all();
    ended
}

impl<C: LogConfig, V: Vfs> Drop for Flusher<C, V> {
    fn drop(&mut self) {
        self.tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
