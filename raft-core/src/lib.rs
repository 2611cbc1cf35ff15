//! # raftwal-raft — a sans-IO Raft persisting through the raftwal WAL
//!
//! The MIT 6.5840 Lab 3 Raft (3A elections, 3B replication, 3C persistence, 3D snapshots)
//! as a deterministic state machine:
//!
//! - [`Raft`] takes inputs — [`Raft::tick`], [`Raft::step`] (a message),
//!   [`Raft::propose`] (a command), [`Raft::snapshot`] (the service compacted) — and produces
//!   messages to send ([`Raft::take_messages`]) and commands/snapshots to apply
//!   ([`Raft::take_applies`]). It does no I/O of its own besides [`Storage`], so the same code
//!   runs in the deterministic simulator ([`sim`]) and in real time (`raftwal demo`).
//! - Persistence is incremental: each input ends with [`Raft::persist`], which writes only
//!   what changed since the last call (new entries, a truncation, term/vote, a snapshot) and
//!   syncs before any message that depends on it can leave the node. Restart rebuilds the
//!   node from storage in [`Raft::new`] (the lab's `readPersist`).
//! - Two stores: [`MemStorage`] (the lab's `Persister`: what was saved survives) and
//!   [`WalStorage`] over [`raftwal::Wal`], run through one shared test suite ([`suite`]).
//!
//! ```
//! use raftwal_raft::{Config, MemStorage, Raft};
//! let mut node = Raft::new(Config::new(0, 1, 7), MemStorage::new())?;
//! while !node.is_leader() {
//!     node.tick()?;
//! }
//! let (index, _term) = node.propose(b"x=1".to_vec())?.expect("leader");
//! assert_eq!(node.take_applies().last().map(|a| a.index()), Some(index));
//! # Ok::<(), raftwal_raft::Error>(())
//! ```

//! ## The scenario suite
//!
//! The 28 tests of 6.5840 Lab 3 (3A–3D) live in `tests/part3{a,b,c,d}.rs`, each over
//! [`MemStorage`], over [`WalStorage`] on a power-loss disk (`raftwal_fault::SimFs`; a share
//! of the crashes — half by default, `RAFT_MID_PERSIST_SHARE` — cut the power in the middle
//! of a persist, of the service's `Snapshot()` or of WAL recovery), and over the WAL through
//! [`Raft::handle_batch`] (group commit). The lab's checks run with the lab's limits (120 s
//! per test, `MAXLOGSIZE` on every server's persisted log, request and reply bytes), and a
//! global safety checker watches every run (see [`sim`]). Each test runs several seeds and
//! prints one line of figures per scenario, store and driver:
//!
//! ```text
//! cargo test -p raftwal-raft --release -- --nocapture                     # 10 seeds each
//! RAFT_SEEDS=1000 cargo test -p raftwal-raft --release -- --nocapture     # 1000 seeds each
//! RAFT_SEEDS=1000 RAFT_REPORT=/tmp/figures.txt cargo test -p raftwal-raft --release
//! RAFT_SEED=123 cargo test -p raftwal-raft --release --test part3c -- figure8_unreliable::wal --exact --nocapture
//! ```
//!
//! A failing seed is printed with the exact command that replays it (see [`sim`]).

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod apply;
mod config;
mod error;
mod log;
mod mem_storage;
mod message;
mod pending;
mod raft;
pub mod sim;
mod storage;
pub mod suite;
mod wal_storage;

pub use apply::Apply;
pub use config::{Bugs, Config};
pub use error::{Error, Result, StorageError};
pub use log::RaftLog;
pub use mem_storage::MemStorage;
pub use message::{
    AppendEntries, AppendEntriesReply, Conflict, Envelope, InstallSnapshot, InstallSnapshotReply,
    Message, RequestVote, RequestVoteReply,
};
pub use raft::{Input, NodeStats, Raft, Role};
pub use raftwal::{Entry, HardState, SnapshotMeta};
pub use storage::{PersistentState, Storage};
pub use wal_storage::WalStorage;
