//! # raftwal-raft-rs — raft-rs 0.7 on the raftwal WAL
//!
//! [`RaftWalStorage`] is a [`raft::Storage`] over a [`raftwal::Wal`], and the write side
//! of raft-rs's `Ready` loop: [`RaftWalStorage::persist_ready`] (blocking: one
//! `fdatasync` per `Ready` that `must_sync`) and [`RaftWalStorage::persist_ready_async`]
//! (the `fdatasync` on a thread of its own, for `advance_append_async` +
//! `on_persist_ready`).
//!
//! ```
//! use raft::prelude::*;
//! use raft::storage::Storage;
//! use raftwal_raft_rs::{RaftWalStorage, StorageOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let mut store = RaftWalStorage::open(dir.path(), StorageOptions::default())?;
//! if !store.initial_state()?.initialized() {
//!     store.set_conf_state(ConfState::from((vec![1], vec![])))?; // a new one-node group
//! }
//! let config = Config { id: 1, ..Config::default() };
//! let logger = slog::Logger::root(slog::Discard, slog::o!());
//! let mut node = RawNode::new(&config, store, &logger)?;
//! node.campaign()?;
//! node.propose(vec![], b"x=1".to_vec())?;
//! while node.has_ready() {
//!     let mut rd = node.ready();
//!     // Messages of a leader may go out before persisting (`rd.take_messages()`).
//!     node.mut_store().persist_ready(&rd)?; // durable from here on
//!     // ... send rd.take_persisted_messages(), apply rd.take_committed_entries() ...
//!     let light = node.advance(rd);
//!     node.mut_store().persist_light_ready(&light)?;
//!     // ... send light's messages, apply its committed entries ...
//!     node.advance_apply();
//! }
//! assert_eq!(node.raft.raft_log.committed, 2); // the leader's empty entry, then x=1
//! # Ok(())
//! # }
//! ```
//!
//! ## What is stored where
//!
//! - **Term and vote**: the WAL's hard state ([`raftwal::Wal::set_hard_state`]), written
//!   durably (one HEADER `fdatasync`) before the Ready's entries, so no entry of a term is
//!   ever durable without the term and the vote cast in it.
//! - **Entries**: one WAL record each (index, term, and the entry type, context and data;
//!   two bytes of overhead: `codec`). A conflicting suffix is truncated durably before the
//!   new entries are appended; one `fdatasync` makes a Ready's entries durable.
//! - **Commit index and `ConfState`**: the WAL header's application metadata
//!   ([`raftwal::Wal::set_app_meta`], at most 256 bytes). A `ConfState` is written when the
//!   application sets it ([`RaftWalStorage::set_conf_state`], after
//!   `RawNode::apply_conf_change`) or a snapshot brings it; one that does not fit (above
//!   about 120 members with ids below 128, or 24 with random 64-bit ids) is refused with
//!   [`Error::ConfStateTooLarge`] and nothing is written. The commit index is written when
//!   it has run [`StorageOptions::commit_lag`] entries (default 1024) ahead of the durable
//!   one, with every `ConfState` and snapshot, and by [`RaftWalStorage::persist_commit`]:
//!   raft-rs does not require it synced (`must_sync` ignores it, `LightReady::commit_index`
//!   "is not required to save"), and a HEADER `fdatasync` per advance would double the
//!   cost of a Ready. After a crash the node starts from the durable commit index (never
//!   above its durable log, never below its snapshot) and learns the rest from the leader.
//!   An application whose state machine is durable restarts with `Config::applied` at
//!   most `initial_state().hard_state.commit` (raft-rs refuses an applied index above the
//!   commit index), and skips the committed entries it had applied already.
//! - **Snapshots**: the whole raft-rs `Snapshot` (metadata, `ConfState`, data) in the WAL's
//!   snapshot file ([`raftwal::Wal::save_snapshot`]), which moves the log base to it.
//!   [`RaftWalStorage::create_snapshot`] stores one the application made (and compacts the
//!   log to it); a snapshot from the leader is installed by `persist_ready`.
//!   `Storage::snapshot` serves the stored one, or `SnapshotTemporarilyUnavailable`.
//!
//! Guarantees, tested under power cuts at every I/O call of a Ready's persistence on the
//! simulated disk (`tests/power_cuts.rs`): term and vote never regress, the durable commit
//! index never regresses nor exceeds the log, every entry of a Ready whose `persist_ready`
//! returned (or whose number `poll_persisted` reported) is there after the crash, and a
//! truncated conflicting suffix never reappears. `tests/suite.rs` runs one storage suite
//! over this storage and over raft-rs's `MemStorage`, which agree case by case.
//!
//! ## The codec
//!
//! raft's default `protobuf-codec`: raft-proto's messages are rust-protobuf 2 messages,
//! the protobuf that raft-engine 0.4 stores, so the benchmark ([`mod@bench`]) hands
//! raft-engine raft-rs's own `Entry`, as TiKV does. Its build runs `protoc` from `PATH`
//! or, failing that, the one bundled in the `protobuf-build` crate (Linux, macOS and
//! Windows on the common architectures): no system `protoc` is needed, and CI installs
//! none. (`prost-codec` would build raft-proto's messages as prost types, which
//! raft-engine 0.4 cannot store.)
//!
//! ## The cluster and the benchmark
//!
//! [`cluster`] runs a raft-rs group in one process, every node on its own raftwal
//! directory (the `five_node` example and `tests/cluster.rs`); [`mod@bench`] measures
//! proposals/s and commit latency of one node and of a 3-node group, with raftwal and with
//! raft-engine (feature `raft-engine`, on by default) as the log store (the `bench`
//! example).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod async_persist;
pub mod bench;
pub mod cluster;
mod codec;
mod error;
mod meta;
mod persist;
mod snapshot;
mod storage;

pub use error::{Error, Result};
pub use storage::{RaftWalStorage, StorageOptions};
