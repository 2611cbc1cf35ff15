//! Benchmarks of the raftwal WAL, and the workload code the `raftwal bench` CLI shares with
//! them.
//!
//! - [`workload`]: the cells of the grid (entry size × batch size × writers), the time/byte
//!   budget of one measured slice, deterministic incompressible payloads, and a slice's result.
//! - [`latency`]: percentiles of per-batch latencies.
//! - [`raw`]: the physical limit: a plain loop of `pwrite` + `fdatasync` of the same bytes in
//!   the same batches to a preallocated file.
//! - [`raftwal`](mod@raftwal): the same workload through `raftwal::Wal` (and `raftwal::GroupCommit` for
//!   several writers).
//! - `raft_engine` (feature `raft-engine`): the same workload through tikv's raft-engine.
//! - [`steady`]: the steady state (the retained log capped by compaction behind a moving
//!   snapshot point): when to compact, and what compactions cost.
//! - [`recovery`]: logs of a given size, reopened warm or cold, for open-time measurements.
//! - [`fixtures`]: fresh bench directories and filled logs for the criterion benches.
//! - [`cache`]: dropping a directory's pages from the page cache (`posix_fadvise`).
//!
//! The criterion benches, one file per component, are in `benches/`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cache;
pub mod fixtures;
pub mod latency;
#[cfg(feature = "raft-engine")]
pub mod raft_engine;
pub mod raftwal;
pub mod raw;
pub mod recovery;
pub mod steady;
pub mod workload;

/// The error type of the runners: anything printable.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
/// What the runners return.
pub type Result<T, E = BoxError> = std::result::Result<T, E>;
