//! # raftwal-fault — a power-loss file system for crash-testing raftwal
//!
//! [`SimFs`] implements the WAL's I/O seam ([`raftwal::io::Vfs`],
//! [`raftwal::io::VfsFile`]) in memory, with a page cache a power cut can tear, as `docs/FAULT-MODEL.md` of the repository describes:
//!
//! - per file, the durable image and the ordered list of unsynced operations; `sync_data` /
//!   `sync_all` make them durable, reads see the cache;
//! - directory entries (create, rename, remove, `mkdir`) durable only after `sync_dir` of
//!   their own directory;
//! - [`SimFs::crash`] / [`SimFs::crash_with`]: write by write (any subset of each file's
//!   unsynced writes, one torn at sector granularity) or page by page ([`Writeback`]: whole
//!   dirty pages lost, written as of one of their writes, or torn in any subset of sectors),
//!   with powersafe or shorn overwrite semantics ([`Overwrite`]); unsynced directory
//!   operations undone independently; handles die, locks go;
//! - a file system without `fallocate` ([`SimFs::set_fallocate`]);
//! - injected faults ([`Fault`]): EIO on the n-th write or sync (with fsyncgate semantics for
//!   the dirty pages, [`SyncFailure`]), ENOSPC past a space budget, latent sector errors on
//!   reads, bit flips in durable data;
//! - [`Counters`] of every call, to assert I/O costs.
//!
//! On top of it, the crash-testing machinery shared by the tests and `raftwal torture`:
//! a seeded [`workload`] against a [`model`] of what was acknowledged, the [`check`]er of the
//! fault model's invariants after every recovery, the exhaustive crash-state [`explore`]r
//! (ALICE's method), the randomized [`torture`] loop and the [`real_disk`] torture.
//!
//! Everything is deterministic from seeds.

#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod check;
mod counters;
mod crash;
mod disk;
pub mod explore;
mod fault;
mod identity;
mod inode;
pub mod journal;
mod lock;
pub mod model;
mod namespace;
pub mod real_disk;
mod sim_file;
mod sim_fs;
mod sim_vfs;
pub mod sync_gate;
pub mod torture;
pub mod workload;

pub use counters::{Counters, FileCounters};
pub use crash::{
    CrashMode, CrashPlan, CrashReport, FileCrash, FileCrashReport, Overwrite, PageCrash, PageFate,
    PendingFile, PendingState, TornFill, TornWrite, Writeback,
};
pub use fault::{Fault, FaultCounts, SyncFailure};
pub use inode::PendingOp;
pub use lock::SimLock;
pub use namespace::{DirOp, InodeId};
pub use sim_file::SimFile;
pub use sim_fs::{BitFlip, Checkpoint, SimFs, SECTOR_SIZE};
