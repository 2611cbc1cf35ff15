//! The raft-rs benchmark: proposals/s and commit latency of one raft-rs node and of a
//! 3-node in-process group, with raftwal ([`RaftWalStorage`]) and with tikv's raft-engine
//! (`RaftEngineStorage`, the store TiKV pairs with raft-rs) as the log store, in one run,
//! interleaved, with the same entry sizes.
//!
//! Each node runs on its own thread with its own store directory, and steps, ticks and
//! handles its `Ready`s with the blocking persistence (`persist_ready`: one `fdatasync` per
//! Ready that must sync; a leader sends its appends before persisting, a follower its
//! acknowledgements after). A client thread keeps [`BenchConfig::in_flight`] proposals
//! outstanding at node 1, the leader; a proposal's latency runs from the client's send to
//! the leader applying it (committed on a quorum). Syncs per proposal counts the stores'
//! syncs on every node over the measured proposals: the WAL's file syncs
//! ([`raftwal::Stats::file_syncs`]), raft-engine's `Engine::write(.., sync = true)` calls
//! (at most one `fdatasync` each; raft-engine exposes no count of its own).
//!
//! [`disk_limit`] measures the directory's limit in the same run: 4 KiB `pwrite` +
//! `fdatasync` in place, one writer, the most durable writes per second one node can see.
//!
//! [`run`] returns a [`BenchReport`]; the `bench` example prints it as a table.

mod group;
#[cfg(feature = "raft-engine")]
mod raft_engine_store;

use std::path::Path;
use std::time::{Duration, Instant};

use raft::eraftpb::ConfState;
use raft::{LightReady, Ready};

#[cfg(feature = "raft-engine")]
pub use raft_engine_store::RaftEngineStorage;

use crate::cluster::BoxError;
use crate::{RaftWalStorage, StorageOptions};

/// A log store the benchmark drives: a `raft::Storage` with a blocking `Ready` write side.
pub trait BenchStore: raft::Storage + Send + Sized + 'static {
    /// Opens (creating) the store of one node in `dir`, its group's voters set.
    fn open(dir: &Path, voters: &[u64]) -> Result<Self, BoxError>;
    /// Persists a Ready (durable when `must_sync`).
    fn persist_ready(&mut self, rd: &Ready) -> Result<(), BoxError>;
    /// Takes a LightReady's commit index.
    fn persist_light_ready(&mut self, light: &LightReady) -> Result<(), BoxError>;
    /// Syncs so far (see the module docs for what each store counts).
    fn syncs(&self) -> u64;
}

impl BenchStore for RaftWalStorage {
    fn open(dir: &Path, voters: &[u64]) -> Result<Self, BoxError> {
        let mut s = RaftWalStorage::open(dir, StorageOptions::default())?;
        s.set_conf_state(ConfState::from((voters.to_vec(), Vec::new())))?;
        Ok(s)
    }
    fn persist_ready(&mut self, rd: &Ready) -> Result<(), BoxError> {
        Ok(RaftWalStorage::persist_ready(self, rd)?)
    }
    fn persist_light_ready(&mut self, light: &LightReady) -> Result<(), BoxError> {
        Ok(RaftWalStorage::persist_light_ready(self, light)?)
    }
    fn syncs(&self) -> u64 {
        self.wal().stats().file_syncs
    }
}

/// The log stores compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Store {
    /// [`RaftWalStorage`].
    Raftwal,
    /// `RaftEngineStorage` (feature `raft-engine`).
    RaftEngine,
}

impl Store {
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Store::Raftwal => "raftwal",
            Store::RaftEngine => "raft-engine",
        }
    }
}

/// What to measure: every (group size, entry size, store) cell, `rounds` times,
/// interleaved.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Seconds each cell is measured, after [`BenchConfig::warmup`].
    pub seconds: f64,
    /// Unmeasured proposals before, per cell.
    pub warmup: Duration,
    /// Rounds over all cells.
    pub rounds: usize,
    /// Group sizes (1 and 3).
    pub nodes: Vec<usize>,
    /// Proposal payload sizes in bytes.
    pub entry_sizes: Vec<usize>,
    /// Proposals the client keeps outstanding.
    pub in_flight: usize,
    /// Stores, in order (raft-engine only with the feature).
    pub stores: Vec<Store>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            seconds: 5.0,
            warmup: Duration::from_millis(500),
            rounds: 3,
            nodes: vec![1, 3],
            entry_sizes: vec![256, 4096],
            in_flight: 1,
            stores: if cfg!(feature = "raft-engine") {
                vec![Store::Raftwal, Store::RaftEngine]
            } else {
                vec![Store::Raftwal]
            },
        }
    }
}

/// One measured cell.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The store.
    pub store: Store,
    /// Nodes in the group.
    pub nodes: usize,
    /// Payload bytes per proposal.
    pub entry_size: usize,
    /// Proposals outstanding.
    pub in_flight: usize,
    /// Proposals committed in the measured window.
    pub proposals: u64,
    /// Proposals per second.
    pub per_sec: f64,
    /// Median commit latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile commit latency, milliseconds.
    pub p99_ms: f64,
    /// Store syncs per proposal, over every node.
    pub syncs_per_proposal: f64,
}

/// Every cell of every round, and the disk's limit.
#[derive(Debug, Clone, Default)]
pub struct BenchReport {
    /// `pwrite` + `fdatasync` per second of 4 KiB in place, one writer ([`disk_limit`]).
    pub disk_limit: f64,
    /// The cells, in the order run.
    pub cells: Vec<Cell>,
}

impl BenchReport {
    /// The report as a Markdown table: medians over the rounds per (nodes, entry size,
    /// store), with the ratio of proposals/s to the disk limit.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!(
            "disk limit: {:.0} fdatasyncs/s (4 KiB pwrite + fdatasync in place)\n",
            self.disk_limit
        );
        out.push_str(
            "| nodes | entry | store | proposals/s | p50 ms | p99 ms | syncs/proposal | × disk limit |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        let mut cells: std::collections::BTreeMap<_, Vec<&Cell>> = Default::default();
        for c in &self.cells {
            cells
                .entry((c.nodes, c.entry_size, c.store))
                .or_default()
                .push(c);
        }
        for ((nodes, size, store), cs) in cells {
            let med = |f: &dyn Fn(&Cell) -> f64| {
                let mut v: Vec<f64> = cs.iter().map(|c| f(c)).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let rate = med(&|c| c.per_sec);
            let _ = writeln!(
                out,
                "| {nodes} | {size} B | {} | {rate:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
                store.name(),
                med(&|c| c.p50_ms),
                med(&|c| c.p99_ms),
                med(&|c| c.syncs_per_proposal),
                rate / self.disk_limit
            );
        }
        out
    }
}

/// Runs every cell `rounds` times in `dir` (a fresh subdirectory per cell).
pub fn run(dir: &Path, cfg: &BenchConfig) -> Result<BenchReport, BoxError> {
    let mut report = BenchReport {
        disk_limit: disk_limit(dir, Duration::from_secs(1))?,
        cells: Vec::new(),
    };
    let mut n = 0;
    for _ in 0..cfg.rounds {
        for &nodes in &cfg.nodes {
            for &entry_size in &cfg.entry_sizes {
                for &store in &cfg.stores {
                    n += 1;
                    let cell_dir = dir.join(format!("cell{n}"));
                    let cell = run_cell(&cell_dir, store, nodes, entry_size, cfg)?;
                    std::fs::remove_dir_all(&cell_dir)?;
                    report.cells.push(cell);
                }
            }
        }
    }
    Ok(report)
}

/// One cell: a group of `nodes` on `store`, measured.
pub fn run_cell(
    dir: &Path,
    store: Store,
    nodes: usize,
    entry_size: usize,
    cfg: &BenchConfig,
) -> Result<Cell, BoxError> {
    let spec = group::Spec {
        nodes,
        entry_size,
        in_flight: cfg.in_flight,
        warmup: cfg.warmup,
        measure: Duration::from_secs_f64(cfg.seconds),
    };
    let m = match store {
        Store::Raftwal => group::measure::<RaftWalStorage>(dir, &spec)?,
        #[cfg(feature = "raft-engine")]
        Store::RaftEngine => group::measure::<RaftEngineStorage>(dir, &spec)?,
        #[cfg(not(feature = "raft-engine"))]
        Store::RaftEngine => return Err("raft-engine: build with feature `raft-engine`".into()),
    };
    let mut lat = m.latencies;
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let proposals = lat.len() as u64;
    Ok(Cell {
        store,
        nodes,
        entry_size,
        in_flight: cfg.in_flight,
        proposals,
        per_sec: proposals as f64 / m.elapsed.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        syncs_per_proposal: m.syncs as f64 / proposals.max(1) as f64,
    })
}

/// `pwrite` + `fdatasync` of one 4 KiB block in place, per second, for `time` in a file
/// under `dir`.
pub fn disk_limit(dir: &Path, time: Duration) -> Result<f64, BoxError> {
    use std::os::unix::fs::FileExt;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("disk-limit");
    let f = std::fs::File::create(&path)?;
    let block = vec![7u8; 4096];
    f.write_all_at(&block, 0)?;
    f.sync_all()?;
    let (started, mut n) = (Instant::now(), 0u64);
    while started.elapsed() < time {
        f.write_all_at(&block, 0)?;
        f.sync_data()?;
        n += 1;
    }
    std::fs::remove_file(path)?;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}
