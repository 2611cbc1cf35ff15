//! [`SimFile`]: an open handle on a [`crate::SimFs`] file.

use std::io;
use std::path::PathBuf;

use crate::disk::{no_space, FaultKind};
use crate::fault::{eio, Fault};
use crate::inode::{to_usize, PendingOp};
use crate::namespace::InodeId;
use crate::sim_fs::{Inner, SimFs};

/// An open simulated file. Invalid after a crash of its file system.
#[derive(Debug)]
pub struct SimFile {
    pub(crate) fs: SimFs,
    pub(crate) ino: InodeId,
    pub(crate) epoch: u64,
    pub(crate) path: PathBuf,
    pub(crate) writable: bool,
}

impl SimFile {
    /// Locks the file system and checks that this handle is still valid.
    fn state(&self) -> io::Result<std::sync::MutexGuard<'_, Inner>> {
        let st = self.fs.state();
        if st.disk.epoch != self.epoch {
            return Err(io::Error::other(format!(
                "{}: stale handle (the simulated machine crashed after it was opened)",
                self.path.display()
            )));
        }
        Ok(st)
    }

    fn writable_state(&self) -> io::Result<std::sync::MutexGuard<'_, Inner>> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{}: opened read-only", self.path.display()),
            ));
        }
        self.state()
    }

    fn sync(&self, what: &'static str) -> io::Result<()> {
        let hook = self.state()?.sync_hook.clone();
        if let Some(hook) = hook {
            // Outside the file system's lock: the hook may wait for other threads' I/O.
            (hook.0)();
        }
        let mut st = self.state()?;
        let path = st
            .disk
            .path_of(self.ino)
            .unwrap_or_else(|| self.path.clone());
        st.disk.counters.file_syncs += 1;
        st.disk.counters.file(&path).syncs += 1;
        match st.disk.fire(&path, FaultKind::Sync) {
            Some(Fault::SyncEio { failure, .. } | Fault::EverySyncEio { failure, .. }) => {
                st.disk.fail_sync(self.ino, failure);
                st.served(|| format!("{what} {} (EIO)", path.display()));
                return Err(eio(&format!("{what} {}", path.display())));
            }
            Some(Fault::SyncPanic { .. }) => {
                drop(st);
                panic!("injected panic inside {what} {}", path.display());
            }
            _ => {}
        }
        st.disk.inode_mut(self.ino)?.sync();
        st.served(|| format!("{what} {}", path.display()));
        Ok(())
    }

    /// Changes the length (set_len / allocate), subject to the space budget.
    fn resize(&self, len: u64, what: &'static str) -> io::Result<()> {
        let mut st = self.writable_state()?;
        let path = st
            .disk
            .path_of(self.ino)
            .unwrap_or_else(|| self.path.clone());
        let old = st.disk.inode_mut(self.ino)?.live.len() as u64;
        if st.disk.space_for(len.saturating_sub(old)).is_err() {
            st.disk.fault_counts.enospc += 1;
            st.served(|| format!("{what} {} {len} (ENOSPC)", path.display()));
            return Err(no_space(&path));
        }
        st.disk.inode_mut(self.ino)?.push(PendingOp::SetLen(len));
        st.served(|| format!("{what} {} {len}", path.display()));
        Ok(())
    }
}

impl raftwal::io::VfsFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut st = self.state()?;
        let path = st
            .disk
            .path_of(self.ino)
            .unwrap_or_else(|| self.path.clone());
        st.disk.counters.reads += 1;
        st.disk.counters.file(&path).reads += 1;
        let live_len = st.disk.inode_mut(self.ino)?.live.len();
        let start = to_usize(offset).min(live_len);
        let n = buf.len().min(live_len - start);
        if n > 0 && st.disk.read_fails(&path, self.ino, offset, n as u64) {
            return Err(eio(&format!("read {} at {offset}", path.display())));
        }
        st.disk.counters.bytes_read += n as u64;
        let live = &st.disk.inode_mut(self.ino)?.live;
        buf[..n].copy_from_slice(&live[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut st = self.writable_state()?;
        let path = st
            .disk
            .path_of(self.ino)
            .unwrap_or_else(|| self.path.clone());
        st.disk.counters.writes += 1;
        st.disk.counters.bytes_written += buf.len() as u64;
        let fc = st.disk.counters.file(&path);
        fc.writes += 1;
        fc.bytes_written += buf.len() as u64;
        let describe = |tag: &str| format!("write {} {}@{offset}{tag}", path.display(), buf.len());
        if st.disk.fire(&path, FaultKind::Write).is_some() {
            st.disk.fail_write(self.ino, buf, offset);
            st.served(|| describe(" (EIO)"));
            return Err(eio(&format!("write {}", path.display())));
        }
        let old = st.disk.inode_mut(self.ino)?.live.len() as u64;
        let growth = (offset + buf.len() as u64).saturating_sub(old);
        if let Err(fits) = st.disk.space_for(growth) {
            st.disk.short_write(self.ino, buf, offset, fits);
            st.served(|| describe(" (ENOSPC)"));
            return Err(no_space(&path));
        }
        st.disk.inode_mut(self.ino)?.push(PendingOp::Write {
            offset,
            data: buf.to_vec(),
        });
        st.disk.identities.saw_write(self.ino, &path, buf, offset);
        st.served(|| describe(""));
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let mut st = self.state()?;
        Ok(st.disk.inode_mut(self.ino)?.live.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.fs.state().disk.counters.set_lens += 1;
        self.resize(len, "set_len")
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        self.fs.state().disk.counters.allocates += 1;
        let old = self.len()?;
        if len <= old {
            return Ok(());
        }
        if !self.fs.state().disk.fallocate {
            // No fallocate: the space is claimed by writing zeros over it (a plain write,
            // pending until synced, torn like any other).
            return self.write_all_at(&vec![0u8; to_usize(len - old)], old);
        }
        self.resize(len, "allocate")
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync("fdatasync")
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync("fsync")
    }

    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        let mut st = self.state()?;
        st.disk.counters.writebacks += 1;
        let path = st
            .disk
            .path_of(self.ino)
            .unwrap_or_else(|| self.path.clone());
        st.served(|| format!("writeback {} {len}@{offset}", path.display()));
        Ok(())
    }
}
