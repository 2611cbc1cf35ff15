//! # raftwal-openraft — openraft 0.9 on the raftwal WAL
//!
//! A log store ([`WalLogStore`]: openraft's `RaftLogStorage` + `RaftLogReader`) over a
//! [`raftwal::Wal`], and a small key-value state machine ([`KvStateMachine`]) whose
//! snapshots are durable files beside it. The log store serves any type configuration with
//! `u64` node ids and openraft's own entry type; the state machine is for [`KvConfig`].
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use raftwal_openraft::router::Router;
//! use raftwal_openraft::{KvConfig, KvStateMachine, WalLogStore};
//!
//! # async fn node() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Arc::new(openraft::Config::default().validate()?);
//! let log: WalLogStore<KvConfig> = WalLogStore::open("/var/lib/node1/log", Default::default())?;
//! let sm = KvStateMachine::open("/var/lib/node1/sm")?;
//! let network = Router::default(); // in-process; a real deployment implements RaftNetwork
//! let raft = openraft::Raft::new(1, config, network.clone(), log, sm).await?;
//! network.add(1, raft.clone());
//! # Ok(())
//! # }
//! ```
//!
//! Guarantees (tested under power cuts on the simulated disk, `tests/power_cuts.rs`):
//! a `LogFlushed` callback fires only after the `fdatasync` covering its entries returned;
//! a saved vote or committed id never regresses; truncated entries never reappear; a vote
//! saved after appends is durable only with them. openraft's own storage suite
//! (`openraft::testing::Suite::test_all`) passes unmodified (`tests/suite.rs`).
//!
//! Costs: an append is one `fdatasync` shared by every append queued meanwhile (the flush
//! thread); `save_vote`, `save_committed` and `purge` are one header `fdatasync` each (the
//! committed id too: openraft calls it before every apply batch, and it must never regress
//! across a crash).
//!
//! A port to openraft 0.10 would change: `truncate(log_id)` becomes `truncate_after(Option<
//! LogId>)` (keep entries up to and including the id: `truncate_suffix(index + 2)` in WAL
//! terms, `None` empties the log); the append callback becomes `IOFlushed` (same contract:
//! fire after the covering `fdatasync`); storage errors become `std::io::Error`, so the
//! `StorageIOError` wrapping here goes; the vote and leader-id types move behind the type
//! config. The WAL features used stay the same.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// openraft's trait methods return its `StorageError` (over 200 bytes); helpers return it too.
#![allow(clippy::result_large_err)]

pub mod demo;
mod flush;
mod log_store;
mod mem_log;
mod meta;
pub mod router;
mod snapshot_file;
mod state_machine;

use std::path::PathBuf;

pub use log_store::{LogConfig, WalLogReader, WalLogStore};
pub use mem_log::MemLogStore;
pub use state_machine::{KvData, KvStateMachine};

/// A write to the key-value state machine.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum KvRequest {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
}

/// What a write returns: the key's previous value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KvResponse {
    /// The value the key had before (`None` if it had none).
    pub previous: Option<String>,
}

openraft::declare_raft_types!(
    /// The type configuration of the key-value state machine: `u64` node ids, openraft's
    /// `BasicNode`, in-memory snapshot data.
    pub KvConfig:
        D = KvRequest,
        R = KvResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<KvConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Errors opening a log store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The WAL failed to open (recovery refused, I/O error, locked directory).
    #[error(transparent)]
    Wal(#[from] raftwal::Error),
    /// The log store's metadata in the WAL header cannot be read by this version.
    #[error("{dir}: {reason}")]
    Metadata {
        /// The WAL directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
}
