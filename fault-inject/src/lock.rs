//! [`SimLock`]: the exclusive per-directory lock of a [`crate::SimFs`].

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError, Weak};

use crate::sim_fs::Inner;

/// Held while the WAL has the directory open; released on drop (or by a crash).
#[derive(Debug)]
pub struct SimLock {
    fs: Weak<Mutex<Inner>>,
    dir: PathBuf,
    epoch: u64,
}

impl SimLock {
    pub(crate) fn new(fs: Weak<Mutex<Inner>>, dir: PathBuf, epoch: u64) -> Self {
        SimLock { fs, dir, epoch }
    }
}

impl Drop for SimLock {
    fn drop(&mut self) {
        if let Some(fs) = self.fs.upgrade() {
            let mut st = fs.lock().unwrap_or_else(PoisonError::into_inner);
            // A crash already released every lock of the old epoch (and someone else may
            // hold this directory now).
            if st.disk.epoch == self.epoch {
                st.disk.locks.remove(&self.dir);
            }
        }
    }
}
