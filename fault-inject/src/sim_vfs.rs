//! `SimFs` as the WAL's I/O seam: the `raftwal::io::Vfs` calls on the simulated machine.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::disk::FaultKind;
use crate::fault::eio;
use crate::lock::SimLock;
use crate::namespace::DirOp;
use crate::sim_file::SimFile;
use crate::sim_fs::SimFs;

impl raftwal::io::Vfs for SimFs {
    type File = SimFile;
    type Lock = SimLock;

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state();
        if st.disk.ns.dir_exists(dir) || st.disk.ns.live.entries.contains_key(dir) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists", dir.display()),
            ));
        }
        if !st.disk.ns.dir_exists(dir.parent().unwrap_or(Path::new(""))) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such parent directory", dir.display()),
            ));
        }
        st.disk.ns.record(DirOp::Mkdir {
            path: dir.to_path_buf(),
        });
        st.served(|| format!("mkdir {}", dir.display()));
        Ok(())
    }

    fn open(&self, path: &Path, mode: raftwal::io::OpenMode) -> io::Result<SimFile> {
        let mut st = self.state();
        let ino = match mode {
            raftwal::io::OpenMode::Read | raftwal::io::OpenMode::ReadWrite => {
                st.disk.lookup(path)?
            }
            raftwal::io::OpenMode::CreateNew => {
                let ino = st.disk.create(path)?;
                st.served(|| format!("create {}", path.display()));
                ino
            }
        };
        Ok(SimFile {
            fs: self.clone(),
            ino,
            epoch: st.disk.epoch,
            path: path.to_path_buf(),
            writable: mode != raftwal::io::OpenMode::Read,
        })
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state();
        let ino = st.disk.lookup(path)?;
        st.disk.ns.record(DirOp::Remove {
            path: path.to_path_buf(),
            ino,
        });
        st.disk.counters.removes += 1;
        st.served(|| format!("remove {}", path.display()));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state();
        let ino = st.disk.lookup(from)?;
        if !st.disk.ns.dir_exists(to.parent().unwrap_or(Path::new(""))) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such directory", to.display()),
            ));
        }
        st.disk.ns.record(DirOp::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            ino,
        });
        st.disk.counters.renames += 1;
        st.served(|| format!("rename {} -> {}", from.display(), to.display()));
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.state();
        if !st.disk.ns.dir_exists(dir) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such directory", dir.display()),
            ));
        }
        Ok(st.disk.ns.list(dir))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // "." is the current directory, which the simulation's relative paths live in.
        let dir = if dir == Path::new(".") {
            Path::new("")
        } else {
            dir
        };
        let mut st = self.state();
        st.disk.counters.dir_syncs += 1;
        if st.disk.fire(dir, FaultKind::DirSync).is_some() {
            st.disk.fault_counts.dir_sync_eio += 1;
            st.served(|| format!("sync_dir {} (EIO)", dir.display()));
            return Err(eio(&format!("fsync {}", dir.display())));
        }
        st.disk.ns.sync_dir(dir);
        st.served(|| format!("sync_dir {}", dir.display()));
        Ok(())
    }

    fn lock(&self, dir: &Path) -> io::Result<SimLock> {
        let mut st = self.state();
        if !st.disk.locks.insert(dir.to_path_buf()) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked", dir.display()),
            ));
        }
        Ok(SimLock::new(
            Arc::downgrade(&self.inner),
            dir.to_path_buf(),
            st.disk.epoch,
        ))
    }

    /// No: a seed must replay the same operations in the same order, so the WAL prepares
    /// its spare segment inline.
    fn background_io(&self) -> bool {
        false
    }
}
