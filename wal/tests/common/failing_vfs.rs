//! A `Vfs` wrapper around `wal::io::StdVfs` that fails the next file sync or write with EIO
//! on request — enough for poisoning tests, and independent of the `fault-inject` crate.
#![allow(dead_code)]

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use wal::io::{OpenMode, StdVfs, Vfs, VfsFile};
use wal::io::{StdFile, StdLock};

/// Counters shared by a `FailingVfs` and its files: the call numbers (from 1) at which the
/// next file sync / write fails (0 = never).
#[derive(Default)]
pub struct Plan {
    syncs: AtomicU64,
    writes: AtomicU64,
    fail_sync_at: AtomicU64,
    fail_write_at: AtomicU64,
    /// Every file sync fails while set.
    fail_every_sync: AtomicBool,
    /// Extra time every file sync takes, in microseconds (a slow disk).
    sync_delay_us: AtomicU64,
    /// The next file sync panics (a bug or an abort deep in a storage stack).
    panic_next_sync: AtomicBool,
}

#[derive(Clone, Default)]
pub struct FailingVfs {
    plan: Arc<Plan>,
}

impl FailingVfs {
    /// Fails the next file sync (`sync_data` or `sync_all`) of any file.
    pub fn fail_next_sync(&self) {
        let n = self.plan.syncs.load(Ordering::SeqCst);
        self.plan.fail_sync_at.store(n + 1, Ordering::SeqCst);
    }
    /// Makes the next file sync panic.
    pub fn panic_next_sync(&self) {
        self.plan.panic_next_sync.store(true, Ordering::SeqCst);
    }
    /// Fails the next file write.
    pub fn fail_next_write(&self) {
        let n = self.plan.writes.load(Ordering::SeqCst);
        self.plan.fail_write_at.store(n + 1, Ordering::SeqCst);
    }
}

pub struct FailingFile {
    inner: StdFile,
    plan: Arc<Plan>,
}

fn eio() -> io::Error {
    io::Error::other("injected EIO")
}

impl FailingFile {
    fn sync_hit(&self) -> bool {
        let delay = self.plan.sync_delay_us.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_micros(delay));
        }
        if self.plan.panic_next_sync.swap(false, Ordering::SeqCst) {
            panic!("injected panic inside a file sync");
        }
        let n = self.plan.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        n == self.plan.fail_sync_at.load(Ordering::SeqCst)
            || self.plan.fail_every_sync.load(Ordering::SeqCst)
    }
}

impl VfsFile for FailingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let n = self.plan.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.plan.fail_write_at.load(Ordering::SeqCst) {
            // A failed write may leave part of its data behind.
            let _ = self.inner.write_all_at(&buf[..buf.len() / 2], offset);
            return Err(eio());
        }
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.inner.allocate(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.sync_hit() {
            return Err(eio());
        }
        self.inner.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        if self.sync_hit() {
            return Err(eio());
        }
        self.inner.sync_all()
    }
}

impl Vfs for FailingVfs {
    type File = FailingFile;
    type Lock = StdLock;

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        StdVfs.create_dir(dir)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<FailingFile> {
        Ok(FailingFile {
            inner: StdVfs.open(path, mode)?,
            plan: self.plan.clone(),
        })
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        StdVfs.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdVfs.rename(from, to)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdVfs.list(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        StdVfs.sync_dir(dir)
    }
    fn lock(&self, dir: &Path) -> io::Result<StdLock> {
        StdVfs.lock(dir)
    }
    /// No: faults are armed by counting calls, which a background thread would race.
    fn background_io(&self) -> bool {
        false
    }
}

impl FailingVfs {
    /// Fails the file sync `k + 1` calls from now.
    pub fn fail_sync_after(&self, k: u64) {
        let n = self.plan.syncs.load(Ordering::SeqCst);
        self.plan.fail_sync_at.store(n + 1 + k, Ordering::SeqCst);
    }
    /// Fails the file write `k + 1` calls from now.
    pub fn fail_write_after(&self, k: u64) {
        let n = self.plan.writes.load(Ordering::SeqCst);
        self.plan.fail_write_at.store(n + 1 + k, Ordering::SeqCst);
    }
    /// Makes every file sync fail (`true`) or succeed again (`false`).
    pub fn fail_every_sync(&self, on: bool) {
        self.plan.fail_every_sync.store(on, Ordering::SeqCst);
    }
    /// Makes every file sync take `delay` longer (a slow disk).
    pub fn set_sync_delay(&self, delay: std::time::Duration) {
        self.plan
            .sync_delay_us
            .store(delay.as_micros() as u64, Ordering::SeqCst);
    }
    /// Disarms any pending failure.
    pub fn disarm(&self) {
        self.plan.fail_sync_at.store(0, Ordering::SeqCst);
        self.plan.fail_write_at.store(0, Ordering::SeqCst);
    }
}
