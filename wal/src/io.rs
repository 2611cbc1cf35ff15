//! The I/O seam: every file-system call the WAL makes goes through [`Vfs`] and [`VfsFile`].
//!
//! Two implementations exist: [`StdVfs`] here (real files, `pread`/`pwrite`, `fdatasync`,
//! `fallocate`, `flock`) and the in-memory power-loss file system of the `raftwal-fault`
//! crate. The WAL is generic over `V: Vfs` (static dispatch), so the real
//! path pays nothing for the seam.
//!
//! Durability contract the WAL relies on, and which every implementation must model:
//! - data written with [`VfsFile::write_all_at`] is durable only after [`VfsFile::sync_data`]
//!   (or [`VfsFile::sync_all`]) on that file returned `Ok`;
//! - a created, renamed or removed directory entry is durable only after [`Vfs::sync_dir`] on
//!   its directory returned `Ok`;
//! - after an error from a write or a sync, the state of the file's unsynced data is unknown.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use fs2::FileExt as _;

use crate::file::WalFile;

/// How [`Vfs::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// An existing file, read-only.
    Read,
    /// An existing file, read and write.
    ReadWrite,
    /// A new file, read and write; fails with [`io::ErrorKind::AlreadyExists`] if it exists.
    CreateNew,
}

/// A file system: directory operations and opening files.
pub trait Vfs: Clone + Send + Sync + 'static {
    /// An open file.
    type File: VfsFile;
    /// An exclusive lock on a directory, held until dropped.
    type Lock: Send + Sync;

    /// Creates the directory `dir` (one level): fails with [`io::ErrorKind::AlreadyExists`]
    /// if it exists and [`io::ErrorKind::NotFound`] if its parent does not. The new entry is
    /// durable only after [`Vfs::sync_dir`] on the parent.
    fn create_dir(&self, dir: &Path) -> io::Result<()>;
    /// Opens the file at `path`.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Self::File>;
    /// Removes the file at `path` (durable after [`Vfs::sync_dir`]).
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Atomically renames `from` to `to`, replacing `to` (durable after [`Vfs::sync_dir`]).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// The names of the regular files in `dir`, sorted.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Makes the directory's entries (creates, renames, removes) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `dir` for this process. A lock already held (by this or
    /// another process) fails with [`io::ErrorKind::WouldBlock`].
    fn lock(&self, dir: &Path) -> io::Result<Self::Lock>;
    /// Whether the WAL may do I/O on this file system from a background thread (preparing
    /// the spare segment, see [`crate::SegmentPrepare::ZeroFillBackground`]). A simulated file
    /// system that must replay the same operations in the same order for a given seed
    /// returns `false`, and the WAL then does that work inline, deterministically.
    fn background_io(&self) -> bool {
        true
    }
}

/// An open file with positional I/O.
#[allow(clippy::len_without_is_empty)] // a file's length, not a collection's
pub trait VfsFile: Send + Sync {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at EOF).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`, extending the file if needed. Not durable until synced.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// The file's current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Truncates or extends (with zeros) the file to `len` bytes. Not durable until synced.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Reserves space so the file is at least `len` bytes long (zeros past the old end), so
    /// later writes below `len` neither fail for space nor grow the file.
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// `fdatasync`: makes written data (and the length, if it changed) durable.
    fn sync_data(&self) -> io::Result<()>;
    /// `fsync`: makes data and all metadata durable.
    fn sync_all(&self) -> io::Result<()>;
    /// Asks the kernel to start writing `len` bytes at `offset` to the device now, without
    /// waiting: a hint that makes nothing durable (only `sync_data` does). The default does
    /// nothing.
    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes at `offset`, or fails with
    /// [`io::ErrorKind::UnexpectedEof`].
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file ended before the requested range",
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Creates `dir` and its missing parents; returns the directories it created, parents
/// first (each durable only once its own parent is synced).
pub(crate) fn create_dirs<V: Vfs>(vfs: &V, dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    match vfs.create_dir(dir) {
        Ok(()) => Ok(vec![dir.to_path_buf()]),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Vec::new()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) else {
                return Err(e);
            };
            let mut made = create_dirs(vfs, parent)?;
            match vfs.create_dir(dir) {
                Ok(()) => made.push(dir.to_path_buf()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            Ok(made)
        }
        Err(e) => Err(e),
    }
}

/// Makes the entries of `dir` and of the directories in `created` durable: syncs the parent
/// of each, deepest first.
pub(crate) fn sync_parents<V: Vfs>(
    vfs: &V,
    dir: &Path,
    created: &[std::path::PathBuf],
) -> crate::Result<()> {
    let mut parents: Vec<&Path> = Vec::new();
    for d in std::iter::once(dir).chain(created.iter().rev().map(|p| p.as_path())) {
        let parent = match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            Some(_) => Path::new("."),
            None => continue,
        };
        if !parents.contains(&parent) {
            parents.push(parent);
        }
    }
    for p in parents {
        sync_dir(vfs, p)?;
    }
    Ok(())
}

/// Creates the file `path` in `dir` durably, the one way the WAL creates files: under
/// `path.tmp` (a stale one a crash left is removed first), filled by `fill`, fsynced,
/// renamed into place, then `dir` fsynced. A crash at any point leaves no file at `path`
/// or the complete one; recovery removes a `.tmp` left behind. Returns the open file.
pub(crate) fn create_durably<V: Vfs>(
    vfs: &V,
    dir: &Path,
    path: &Path,
    fill: impl FnOnce(&WalFile<V::File>) -> crate::Result<()>,
) -> crate::Result<WalFile<V::File>> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(crate::format::TMP_SUFFIX);
    let tmp = std::path::PathBuf::from(tmp);
    remove_if_present(vfs, &tmp)?;
    let file = WalFile::open(vfs, &tmp, OpenMode::CreateNew)?;
    fill(&file)?;
    file.sync_all()?;
    rename_durably(vfs, dir, &tmp, path)?;
    Ok(file.renamed(path.to_path_buf()))
}

/// Renames `from` to `to` in `dir` and fsyncs `dir`: the new name is durable on return.
pub(crate) fn rename_durably<V: Vfs>(
    vfs: &V,
    dir: &Path,
    from: &Path,
    to: &Path,
) -> crate::Result<()> {
    vfs.rename(from, to)
        .map_err(|e| crate::Error::io("rename", from, e))?;
    sync_dir(vfs, dir)
}

/// Removes `path` (if it exists) from `dir` and fsyncs `dir`: its absence is durable on
/// return.
pub(crate) fn remove_durably<V: Vfs>(vfs: &V, dir: &Path, path: &Path) -> crate::Result<()> {
    remove_if_present(vfs, path)?;
    sync_dir(vfs, dir)
}

/// Removes `path` if it exists (durable only after [`sync_dir`]).
pub(crate) fn remove_if_present<V: Vfs>(vfs: &V, path: &Path) -> crate::Result<()> {
    match vfs.remove(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(crate::Error::io("remove", path, e)),
    }
}

/// Makes the entries of `dir` (creates, renames, removes) durable.
pub(crate) fn sync_dir<V: Vfs>(vfs: &V, dir: &Path) -> crate::Result<()> {
    vfs.sync_dir(dir)
        .map_err(|e| crate::Error::io("fsync dir", dir, e))
}

/// The real file system (`std::fs`, `fs2`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StdVfs;

/// A real file.
#[derive(Debug)]
pub struct StdFile {
    file: File,
}

/// An exclusive `flock` on a directory's `LOCK` file, released when dropped.
#[derive(Debug)]
pub struct StdLock {
    _file: File,
}

/// Name of the lock file inside a WAL directory.
pub const LOCK_FILE: &str = "LOCK";

impl Vfs for StdVfs {
    type File = StdFile;
    type Lock = StdLock;

    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir(dir)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<StdFile> {
        let mut opts = OpenOptions::new();
        match mode {
            OpenMode::Read => opts.read(true),
            OpenMode::ReadWrite => opts.read(true).write(true),
            OpenMode::CreateNew => opts.read(true).write(true).create_new(true),
        };
        Ok(StdFile {
            file: opts.open(path)?,
        })
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock(&self, dir: &Path) -> io::Result<StdLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))?;
        match file.try_lock_exclusive() {
            Ok(()) => Ok(StdLock { _file: file }),
            Err(e) if e.kind() == fs2::lock_contended_error().kind() => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the directory is locked by another WAL handle",
            )),
            Err(e) => Err(e),
        }
    }
}

impl VfsFile for StdFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        if len > self.len()? {
            self.file.allocate(len)?;
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn start_writeback(&self, offset: u64, len: u64) -> io::Result<()> {
        start_writeback(&self.file, offset, len)
    }
}

/// Linux: `posix_fadvise(POSIX_FADV_DONTNEED)` starts writeback of the range's dirty pages
/// (`WB_SYNC_NONE`: it does not wait for it) before dropping the range's *clean* pages from
/// the cache — for a range just written, only pages whose writeback already completed
/// (rare; their next read goes to the disk). (`sync_file_range` would say it directly but
/// has no safe binding, and this crate forbids `unsafe`.)
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    use rustix::fs::{fadvise, Advice};
    let Some(len) = std::num::NonZeroU64::new(len) else {
        return Ok(());
    };
    fadvise(file, offset, Some(len), Advice::DontNeed).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let vfs = StdVfs;
        let _held = vfs.lock(dir.path()).unwrap();
        let err = vfs.lock(dir.path()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn allocate_extends_with_zeros_and_reads_see_writes() {
        let dir = tempfile::tempdir().unwrap();
        let vfs = StdVfs;
        let f = vfs
            .open(&dir.path().join("f"), OpenMode::CreateNew)
            .unwrap();
        f.write_all_at(b"abc", 0).unwrap();
        f.allocate(4096).unwrap();
        assert_eq!(f.len().unwrap(), 4096);
        let mut head = [0u8; 8];
        f.read_exact_at(&mut head, 0).unwrap();
        assert_eq!(&head, b"abc\0\0\0\0\0");
        let mut buf = [0u8; 2];
        f.read_exact_at(&mut buf, 1).unwrap();
        assert_eq!(&buf, b"bc");
        assert!(f.read_exact_at(&mut buf, 4095).is_err());
    }
}
