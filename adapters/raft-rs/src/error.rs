//! The crate's error type, and how it reaches raft-rs.

use std::path::PathBuf;

use raft::StorageError;

/// Everything the storage can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The WAL failed: I/O (the WAL is then poisoned: reopen), corruption, a locked
    /// directory, an index outside the log.
    #[error(transparent)]
    Wal(#[from] raftwal::Error),
    /// The storage's metadata in the WAL header cannot be read by this version, or does not
    /// fit the log it describes.
    #[error("{dir}: {reason}")]
    Metadata {
        /// The WAL directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A `ConfState` whose encoding does not fit in the WAL header beside the commit index
    /// (see the crate docs for the sizes that fit). Nothing was written.
    #[error(
        "the ConfState takes {bytes} bytes of metadata; the WAL header holds {max} (fewer \
         members, or smaller node ids)"
    )]
    ConfStateTooLarge {
        /// The metadata's size with this `ConfState`.
        bytes: usize,
        /// What the header holds.
        max: usize,
    },
    /// A record in the WAL that is not a raft-rs entry written by this crate.
    #[error("entry {index}: {reason}")]
    Entry {
        /// Its index.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// The stored snapshot does not decode as a raft-rs `Snapshot`.
    #[error("stored snapshot at index {index}: {reason}")]
    Snapshot {
        /// Its index.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// A write raft-rs's contract rules out: entries leaving a gap after the last index or
    /// overwriting compacted ones, a snapshot older than the log, a snapshot past the commit
    /// index, a compaction past the end.
    #[error("{op}: {reason}")]
    Invalid {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            op,
            reason: reason.into(),
        }
    }
}

/// raft-rs's view: an index outside the log is `Compacted` or `Unavailable` (what raft-rs
/// acts on), everything else is `StorageError::Other` carrying this error.
impl From<Error> for raft::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Wal(raftwal::Error::Compacted { .. }) => {
                raft::Error::Store(StorageError::Compacted)
            }
            Error::Wal(raftwal::Error::Unavailable { .. }) => {
                raft::Error::Store(StorageError::Unavailable)
            }
            e => raft::Error::Store(StorageError::Other(Box::new(e))),
        }
    }
}
