//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the WAL. Each variant carries the context needed to act on
/// it: the file, the offset, the index, the expected and found values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What the WAL was doing (`"open"`, `"write"`, `"fdatasync"`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Another handle (in this or another process) holds the directory's lock.
    #[error("{dir} is locked by another raftwal handle (one process per WAL directory)")]
    Locked {
        /// The WAL directory.
        dir: PathBuf,
    },
    /// An earlier write or sync failed, so the state of unsynced data is unknown
    /// (fsyncgate): every later write is refused until the WAL is reopened and re-verified.
    #[error("the WAL is poisoned by an earlier I/O failure ({cause}); reopen it to recover")]
    Poisoned {
        /// The failure that poisoned the WAL.
        cause: String,
        /// That failure's I/O error kind, if it was one (`StorageFull` for a full disk,
        /// `Other` for EIO...), so a caller can tell ENOSPC from a failing device.
        kind: Option<std::io::ErrorKind>,
    },
    /// Durable data failed verification: a checksum mismatch, a record that cannot be one, a
    /// gap in indices, a missing file. Never repaired silently.
    #[error("corruption in {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The file holding the bad bytes.
        path: PathBuf,
        /// Byte offset of the bad record or field in that file.
        offset: u64,
        /// The log index involved, when known.
        index: Option<u64>,
        /// What is wrong.
        reason: String,
    },
    /// A file in the WAL directory is not a raftwal file, or of an unsupported format version.
    #[error("{path} is not a raftwal file this version can read: {reason}")]
    NotAWalFile {
        /// The file.
        path: PathBuf,
        /// Why (wrong magic, wrong version, too short).
        reason: String,
    },
    /// Both header slots are invalid: the term and vote cannot be recovered, so the WAL
    /// refuses to start rather than reset them.
    #[error("{path}: both header slots are invalid ({slot_a}; {slot_b}); refusing to reset term and vote")]
    HeaderLost {
        /// The header file.
        path: PathBuf,
        /// Why slot A is invalid.
        slot_a: String,
        /// Why slot B is invalid.
        slot_b: String,
    },
    /// The newest header slot is damaged or unreadable, and the log holds a record written
    /// after that slot's update had returned: falling back to the older slot would silently
    /// lose an acknowledged term or vote (a Raft node could then vote twice in one term).
    #[error(
        "{path}: header slot {slot} is damaged ({reason}), but {evidence}; refusing to fall \
         back to the older slot's term and vote"
    )]
    HeaderRolledBack {
        /// The header file.
        path: PathBuf,
        /// The damaged slot.
        slot: u32,
        /// What is wrong with it.
        reason: String,
        /// The record that proves the damaged slot held acknowledged state.
        evidence: String,
    },
    /// An append whose first index is not `last_index + 1`, entries that are not contiguous,
    /// or terms that go backwards.
    #[error("invalid append: {reason}")]
    InvalidAppend {
        /// What is wrong.
        reason: String,
    },
    /// A term or vote change Raft forbids: the term decreasing, or the vote of a term changing.
    #[error("invalid hard state change: {reason}")]
    InvalidHardState {
        /// What is wrong.
        reason: String,
    },
    /// The requested index is at or below the snapshot base (compacted away).
    #[error("index {index} is compacted (the log starts at {first_index})")]
    Compacted {
        /// The requested index.
        index: u64,
        /// The first index still in the log.
        first_index: u64,
    },
    /// The requested index is past the last index.
    #[error("index {index} is past the end of the log (last index {last_index})")]
    Unavailable {
        /// The requested index.
        index: u64,
        /// The last index in the log.
        last_index: u64,
    },
    /// A [`crate::WalReader`] read after its `Wal` was dropped (the directory may belong to
    /// another handle by now: reopen, and take a new reader).
    #[error("the WAL this reader belongs to was closed")]
    Closed,
    /// An argument out of range (a truncation below the base, a snapshot that goes backwards).
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
    /// An internal invariant of the WAL does not hold: a bug in raftwal, not damage on disk
    /// nor misuse of the API. Please report it.
    #[error("internal error (a bug in raftwal): {reason}")]
    Internal {
        /// What does not hold.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        index: Option<u64>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            path: path.into(),
            offset,
            index,
            reason: reason.into(),
        }
    }

    /// The I/O error kind behind this error: of the failed call itself, or of the failure
    /// that poisoned the WAL.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Error::Io { source, .. } => Some(source.kind()),
            Error::Poisoned { kind, .. } => *kind,
            _ => None,
        }
    }

    /// True for errors that mean durable data is damaged (as opposed to I/O failures or
    /// misuse of the API).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Corrupt { .. }
                | Error::NotAWalFile { .. }
                | Error::HeaderLost { .. }
                | Error::HeaderRolledBack { .. }
        )
    }
}
