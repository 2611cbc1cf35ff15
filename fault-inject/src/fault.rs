//! Injected faults: I/O errors on chosen calls, a space budget, latent sector errors.

use std::io;

/// What happens to a file's dirty pages when an injected `fsync` failure fires. Linux has done
/// each of these (fsyncgate, PostgreSQL 2018; Rebello et al., ATC'20), so after a failed sync
/// the WAL can assume nothing about its unsynced data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncFailure {
    /// The pages stay dirty: a later crash may or may not persist them.
    KeepPending,
    /// The pages are marked clean without reaching the disk: reads still see the new data,
    /// but it is gone after a crash, and a later successful sync does not bring it back.
    MarkClean,
    /// Some of the pending writes reached the disk (a random subset), the rest are marked
    /// clean and lost.
    PersistSome,
    /// The dirty pages are dropped from the cache as well: reads see the old durable data.
    Invalidate,
    /// One of the above, chosen by the file system's seed.
    Random,
}

/// A fault to inject into a [`crate::SimFs`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Fail one write with EIO: the write after `after` matching writes succeeded. The failed
    /// write may have put a prefix of its data into the page cache (seeded).
    WriteEio {
        /// Matching writes to let through first.
        after: u64,
        /// Only writes to files whose path contains this string.
        path: Option<String>,
    },
    /// Fail one `sync_data`/`sync_all` with EIO, after `after` matching syncs succeeded.
    SyncEio {
        /// Matching syncs to let through first.
        after: u64,
        /// Only syncs of files whose path contains this string.
        path: Option<String>,
        /// What becomes of the file's dirty pages.
        failure: SyncFailure,
    },
    /// Fail every matching `sync_data`/`sync_all` with EIO until the fault is cleared (a
    /// device that has gone bad).
    EverySyncEio {
        /// Only syncs of files whose path contains this string.
        path: Option<String>,
        /// What becomes of the file's dirty pages at each failure.
        failure: SyncFailure,
    },
    /// Panic inside one `sync_data`/`sync_all`, after `after` syncs succeeded (a bug or an
    /// abort deep in a storage stack); the file's pages stay as they were.
    SyncPanic {
        /// Syncs to let through first.
        after: u64,
    },
    /// Fail one `sync_dir` with EIO after `after` directory syncs succeeded; the directory's
    /// pending operations stay pending.
    DirSyncEio {
        /// Directory syncs to let through first.
        after: u64,
    },
    /// A latent sector error: every read of the file whose path contains `path` (the file
    /// there when the fault is injected: the error belongs to its blocks, and follows it
    /// through renames; a new file at that path does not have it) that overlaps bytes
    /// `[offset, offset + len)` fails with EIO, until the fault is cleared.
    ReadEio {
        /// Path substring.
        path: String,
        /// First bad byte.
        offset: u64,
        /// Number of bad bytes.
        len: u64,
    },
}

/// How many faults of each kind fired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Writes failed with EIO.
    pub write_eio: u64,
    /// File syncs failed with EIO.
    pub sync_eio: u64,
    /// Directory syncs failed with EIO.
    pub dir_sync_eio: u64,
    /// Writes, length changes or allocations refused with ENOSPC.
    pub enospc: u64,
    /// Reads or maps failed with EIO.
    pub read_eio: u64,
    /// Bits flipped in durable data.
    pub bit_flips: u64,
}

impl FaultCounts {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &FaultCounts) {
        self.write_eio += other.write_eio;
        self.sync_eio += other.sync_eio;
        self.dir_sync_eio += other.dir_sync_eio;
        self.enospc += other.enospc;
        self.read_eio += other.read_eio;
        self.bit_flips += other.bit_flips;
    }

    /// Total of all kinds.
    pub fn total(&self) -> u64 {
        self.write_eio
            + self.sync_eio
            + self.dir_sync_eio
            + self.enospc
            + self.read_eio
            + self.bit_flips
    }
}

/// An installed fault and how many matching calls it has let through.
#[derive(Debug, Clone)]
pub(crate) struct ActiveFault {
    pub(crate) fault: Fault,
    pub(crate) seen: u64,
    /// For a latent sector error: the file it belongs to (if one matched at injection).
    pub(crate) ino: Option<crate::namespace::InodeId>,
}

/// Whether `path` matches an optional substring filter.
pub(crate) fn path_matches(filter: Option<&str>, path: &str) -> bool {
    filter.is_none_or(|f| path.contains(f))
}

/// An EIO error as the kernel reports it.
pub(crate) fn eio(what: &str) -> io::Error {
    let e = io::Error::from_raw_os_error(libc::EIO);
    io::Error::new(e.kind(), format!("{what}: {e} (injected)"))
}

/// An ENOSPC error as the kernel reports it.
pub(crate) fn enospc(what: &str) -> io::Error {
    let e = io::Error::from_raw_os_error(libc::ENOSPC);
    io::Error::new(e.kind(), format!("{what}: {e} (injected)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_the_kernel_kind() {
        assert_eq!(enospc("write").kind(), io::ErrorKind::StorageFull);
        assert!(eio("fsync").to_string().contains("injected"));
        assert!(path_matches(None, "/x"));
        assert!(path_matches(Some("wal"), "/d/1.wal"));
        assert!(!path_matches(Some("hdr"), "/d/1.wal"));
    }
}
