//! [`WalFile`]: an open file that carries its path, so every failed call is an
//! [`Error::Io`] naming the operation and the file — written once here instead of at each
//! call site.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::io::{OpenMode, Vfs, VfsFile};

/// An open file and the path it was opened at.
#[derive(Debug)]
pub(crate) struct WalFile<F> {
    file: F,
    path: PathBuf,
}

impl<F: VfsFile> WalFile<F> {
    /// Opens `path` on `vfs`.
    pub(crate) fn open<V: Vfs<File = F>>(vfs: &V, path: &Path, mode: OpenMode) -> Result<Self> {
        let op = match mode {
            OpenMode::CreateNew => "create",
            OpenMode::Read | OpenMode::ReadWrite => "open",
        };
        let file = vfs.open(path, mode).map_err(|e| Error::io(op, path, e))?;
        Ok(Self::new(file, path.to_path_buf()))
    }

    /// Wraps an already open `file`, known by `path`.
    pub(crate) fn new(file: F, path: PathBuf) -> Self {
        WalFile { file, path }
    }

    /// The path the file was opened at (renames update it, see [`WalFile::renamed`]).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The same open file, known by its new name after a rename.
    pub(crate) fn renamed(self, to: PathBuf) -> Self {
        WalFile {
            file: self.file,
            path: to,
        }
    }

    /// The underlying file (for readers that report their own errors).
    pub(crate) fn raw(&self) -> &F {
        &self.file
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| self.err("read", e))
    }

    /// Writes all of `buf` at `offset` (not durable until synced).
    pub(crate) fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| self.err("write", e))
    }

    /// The file's length.
    pub(crate) fn len(&self) -> Result<u64> {
        self.file.len().map_err(|e| self.err("stat", e))
    }

    /// Truncates or extends the file to `len` bytes.
    pub(crate) fn set_len(&self, len: u64) -> Result<()> {
        self.file.set_len(len).map_err(|e| self.err("truncate", e))
    }

    /// Reserves space up to `len` bytes.
    pub(crate) fn allocate(&self, len: u64) -> Result<()> {
        self.file.allocate(len).map_err(|e| self.err("allocate", e))
    }

    /// `fdatasync`.
    pub(crate) fn sync_data(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| self.err("fdatasync", e))
    }

    /// `fsync`.
    pub(crate) fn sync_all(&self) -> Result<()> {
        self.file.sync_all().map_err(|e| self.err("fsync", e))
    }

    /// Starts writeback of `len` bytes at `offset` (a hint: nothing is durable before a
    /// sync).
    pub(crate) fn start_writeback(&self, offset: u64, len: u64) -> Result<()> {
        self.file
            .start_writeback(offset, len)
            .map_err(|e| self.err("fadvise", e))
    }

    fn err(&self, op: &'static str, e: std::io::Error) -> Error {
        Error::io(op, &self.path, e)
    }
}
