//! The recycle pool: compacted segment files kept to become future segments.
//!
//! In steady state a Raft log is compacted behind a moving snapshot point as fast as it
//! grows. Deleting each compacted segment costs an unlink (on a disk mounted with `discard`,
//! 6.1 ms for a written 16 MiB file with its directory fsync, measured on this project's
//! machine), and each new segment's blocks then have to be prepared again: zero-filled (a
//! second write of every segment) or left as unwritten extents (a journal commit per
//! `fdatasync` on ext4/xfs). Overwriting blocks that already hold data costs neither: it is
//! the disk's real limit (`raftwal bench`'s `raw-overwrite` loop).
//!
//! So a compaction renames a segment it frees to `<seq:020>.free` (its own sequence
//! number, unique) instead of deleting it, while the pool holds fewer than
//! `Options::recycle` files of `segment_size` to [`OVERSIZE`] × `segment_size` bytes (a
//! batch larger than a segment gets a segment of its own, as large as the batch: kept, it
//! serves the next such batch with written blocks too). The compaction does not wait for
//! the renames to be durable: its commit point is the header update, and a rename a crash
//! undoes leaves a compacted segment that recovery removes as stale. A rotation takes a
//! pool file before the spare: it fsyncs the directory if a file was freed since the last
//! directory fsync (so that no crash can turn the file back into the compacted segment
//! once the take writes into it), writes the new segment's header — a fresh sequence
//! number, never used before, and the *recycled* flag — at offset 0, `fdatasync`s, renames
//! the file to `<first-index>.wal` and fsyncs the directory, exactly as it takes the spare
//! (`crate::spare`). Records are written only after that.
//!
//! A header may also be *written ahead* (`Options::take_ahead`): after a sync that left
//! the active segment past half full, [`Pool::write_ahead`] does a take's directory fsync,
//! header write and `fdatasync` (with first index 0, left to the file name, and the
//! *written ahead* flag) but not its rename; the next rotation takes that file first
//! ([`Pool::take_ahead`]) and only renames it. At most one file holds such a header, and
//! recovery, which never reads pool files, counts one sequence number past what it sees.
//!
//! Why the old bytes never come back:
//! - A pool file is renamed only after the compaction's header update (its commit point),
//!   which carries the sequence high-water mark: the old segment's sequence is never given
//!   to another, so none of its old records verifies under the new segment's identity —
//!   every record checksum binds (sequence, first index).
//! - A file named `*.free` is not part of the log: recovery never reads it, whatever it
//!   holds (old records, the header of a take a crash interrupted, or one written ahead:
//!   the next take overwrites it). Open keeps pool files of the right size up to the pool's capacity and
//!   removes the others.
//! - In a recycled segment the bytes past its records are a previous segment's. Recovery
//!   ends such a segment cleanly where its records end at a batch boundary and nothing
//!   after that verifies as a record of this segment (see `docs/FORMAT.md`, "Recycle
//!   pool"); anything else is decided as in any segment.

use std::path::{Path, PathBuf};

use tracing::debug;

use crate::error::{Error, Result};
use crate::format::free_name;
use crate::io::{OpenMode, Vfs};

/// Largest pool file, in segment sizes: the pool's disk cost is at most `recycle` ×
/// `OVERSIZE` × `segment_size`, and reaches past `recycle` × `segment_size` only in a log
/// whose batches outgrow its segments.
pub(crate) const OVERSIZE: u64 = 4;

/// The pool of recycled files, owned by the [`crate::Wal`].
pub(crate) struct Pool<V: Vfs> {
    vfs: V,
    dir: PathBuf,
    /// Most files kept.
    capacity: usize,
    /// Smallest pool file (`segment_size`); the largest is `OVERSIZE` times that.
    size: u64,
    /// The files and their lengths.
    files: Vec<(PathBuf, u64)>,
    /// Whether a file may have been renamed into the pool since the last directory fsync
    /// (a crash could still undo it).
    unsynced: bool,
    /// The file whose header was written ahead, if any (out of `files`, still in the
    /// pool's count and under its pool name).
    ahead: Option<Ahead>,
}

/// A pool file whose new segment header is written and synced: only its rename into place
/// is left for the rotation that takes it.
#[derive(Debug, Clone)]
pub(crate) struct Ahead {
    pub path: PathBuf,
    /// The sequence number its header carries (used: never given to another segment).
    pub seq: u64,
    /// The sync group its header carries: at most its first record's.
    pub group_floor: u64,
}

impl<V: Vfs> Pool<V> {
    /// Takes stock of the pool files `listed` in `dir` at open: keeps those of a pool
    /// file's size up to `capacity`, and removes the rest (no directory fsync: a removal
    /// undone by a crash leaves a file the next open removes again).
    pub(crate) fn open(
        vfs: V,
        dir: &Path,
        capacity: usize,
        size: u64,
        mut listed: Vec<PathBuf>,
    ) -> Result<Self> {
        listed.sort();
        let mut files = Vec::new();
        for path in listed {
            let len = file_len(&vfs, &path)?;
            if let Some(len) = len.filter(|&l| files.len() < capacity && fits(size, l)) {
                files.push((path, len));
            } else {
                crate::io::remove_if_present(&vfs, &path)?;
            }
        }
        Ok(Pool {
            vfs,
            dir: dir.to_path_buf(),
            capacity,
            size,
            files,
            // Names listed at open may not be durable yet (a reopen without a crash).
            unsynced: true,
            ahead: None,
        })
    }

    /// Puts the compacted segment at `path` (sequence `seq`, file length `len`) into the
    /// pool if there is room and it has a pool file's size: renamed, not yet durable (the
    /// next take fsyncs the directory first). False if it was not taken (the caller deletes
    /// it).
    pub(crate) fn free(&mut self, path: &Path, seq: u64, len: u64) -> Result<bool> {
        let held = self.files.len() + usize::from(self.ahead.is_some());
        if held >= self.capacity || !fits(self.size, len) {
            return Ok(false);
        }
        let to = self.dir.join(free_name(seq));
        self.vfs
            .rename(path, &to)
            .map_err(|e| Error::io("rename", path, e))?;
        debug!(from = %path.display(), to = %to.display(), "segment recycled");
        self.files.push((to, len));
        self.unsynced = true;
        Ok(true)
    }

    /// Whether the pool holds a file (besides one taken ahead).
    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether a file's header was written ahead and waits for a rotation.
    pub(crate) fn has_ahead(&self) -> bool {
        self.ahead.is_some()
    }

    /// Writes the header of the next segment — sequence `seq`, first group at least
    /// `group_floor`, first index left to the file name (`seg::FLAG_AHEAD`) — into the pool
    /// file a first batch of `need` bytes of file would take, and `fdatasync`s it: the
    /// rotation that takes it then only renames it into place. Fsyncs the directory first
    /// if a file was freed since the last directory fsync, as a take does. Returns the
    /// directory fsyncs issued; `None` if the pool is empty.
    pub(crate) fn write_ahead(
        &mut self,
        seq: u64,
        group_floor: u64,
        need: u64,
    ) -> Result<Option<u64>> {
        let Some(path) = self.take(need) else {
            return Ok(None);
        };
        let len = file_len(&self.vfs, &path)?.unwrap_or(0);
        // Back in the pool's list until the header is durable: an error poisons the log,
        // and the file stays a pool file whatever its first bytes hold.
        self.files.push((path.clone(), len));
        let dir_syncs = u64::from(self.unsynced);
        if self.unsynced {
            crate::io::sync_dir(&self.vfs, &self.dir)?;
            self.unsynced = false;
        }
        let file = crate::file::WalFile::open(&self.vfs, &path, OpenMode::ReadWrite)?;
        file.write_all_at(&crate::format::encode_ahead_header(seq, group_floor), 0)?;
        file.sync_data()?;
        self.files.pop();
        debug!(file = %path.display(), seq, "segment header written ahead");
        self.ahead = Some(Ahead {
            path,
            seq,
            group_floor,
        });
        Ok(Some(dir_syncs))
    }

    /// The file taken ahead, if any. It is taken whatever the first batch's size (a
    /// larger batch grows the file; its written blocks still serve the first part), so
    /// that at most one sequence number is ever held by a pool file: recovery, which never
    /// reads pool files, counts exactly one as used beyond what it sees.
    pub(crate) fn take_ahead(&mut self) -> Option<Ahead> {
        self.ahead.take()
    }

    /// Whether a take must fsync the directory before it writes into a pool file.
    pub(crate) fn unsynced(&self) -> bool {
        self.unsynced
    }

    /// The directory was fsynced: every rename into the pool so far is durable.
    pub(crate) fn dir_synced(&mut self) {
        self.unsynced = false;
    }

    /// A pool file to turn into a segment whose records take `need` bytes of file: the
    /// smallest that holds them, else the largest (its written blocks still serve the
    /// first part). `None` if the pool is empty.
    pub(crate) fn take(&mut self, need: u64) -> Option<PathBuf> {
        let lens = self.files.iter().map(|f| f.1).enumerate();
        let at = match lens
            .clone()
            .filter(|&(_, len)| len >= need)
            .min_by_key(|f| f.1)
        {
            Some((at, _)) => at,
            None => lens.max_by_key(|f| f.1)?.0,
        };
        Some(self.files.swap_remove(at).0)
    }
}

/// Whether a file of `len` bytes belongs in a pool of `size`-byte segments.
fn fits(size: u64, len: u64) -> bool {
    (size..=size.saturating_mul(OVERSIZE)).contains(&len)
}

/// The length of the file at `path`, `None` if it is gone.
fn file_len<V: Vfs>(vfs: &V, path: &Path) -> Result<Option<u64>> {
    match vfs.open(path, OpenMode::Read) {
        Ok(f) => crate::file::WalFile::new(f, path.to_path_buf())
            .len()
            .map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("open", path, e)),
    }
}
