//! # raftwal — a segmented, checksummed write-ahead log for Raft state
//!
//! Raft (Figure 2 of the extended paper) requires `currentTerm`, `votedFor` and `log[]` to be
//! on stable storage before a server answers an RPC. This crate keeps them there:
//!
//! - **term and vote** (and the snapshot base) in a small header file with two checksummed
//!   slots, updated with exactly one `fdatasync` per term/vote change
//!   ([`Wal::set_hard_state`]; a new base or a truncation writes both, an `fdatasync` each);
//! - **log entries** in segment files, every record checksummed together with its segment's
//!   identity and its index, appended in batches made durable with one `fdatasync` per
//!   [`Wal::sync`] however many batches were appended (group commit);
//! - **snapshots** ([`Wal::save_snapshot`]) that move the log base and delete whole segments;
//! - **readers on other threads** ([`Wal::reader`], [`WalReader`]) that see every appended
//!   entry and never wait behind a sync.
//!
//! On open, recovery rebuilds exactly the durable state: a torn tail (a write that was never
//! acknowledged) is cut, corruption of synced data is reported with its file and offset and
//! never silently dropped. An I/O error poisons the handle. One process per directory.
//!
//! ```
//! use raftwal::{Entry, HardState, Options, Wal};
//! let dir = tempfile::tempdir()?;
//! let mut log = Wal::open(dir.path(), Options::default())?;
//! log.set_hard_state(HardState { term: 1, vote: Some(2) })?;
//! log.append(&[Entry { index: 1, term: 1, data: b"x=1".to_vec() }])?;
//! log.sync()?; // durable from here on
//! drop(log);
//! let log = Wal::open(dir.path(), Options::default())?;
//! assert_eq!(log.entry(1)?.data, b"x=1");
//! assert_eq!(log.hard_state().vote, Some(2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With the `metrics` feature the WAL publishes its counters, `fdatasync` latency and
//! group-commit sizes through the `metrics` facade (names and kinds: [`metrics`]).
//!
//! The byte layout, the fsync order of every operation and the argument for why recovery is
//! correct are in `docs/FORMAT.md` of the repository.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod file;
mod format;
pub mod group_commit;
mod header;
pub mod inspect;
pub mod io;
mod log_reader;
pub mod metrics;
mod pending_sync;
mod reader;
mod recovery;
mod recycle;
mod segment;
mod snapshot;
mod spare;
mod types;
mod wal;

pub use error::{Error, Result};
pub use group_commit::GroupCommit;
pub use header::APP_META_MAX;
pub use log_reader::WalReader;
pub use pending_sync::PendingSync;
pub use types::{
    Damage, Entry, HardState, Options, RecoveryMode, RecoveryReport, SegmentPrepare, SnapshotMeta,
    Stats,
};
pub use wal::Wal;
