//! The deterministic simulator and the lab's tester.
//!
//! - [`Tester`]: the lab's `config.go` — a cluster on a virtual clock, a network with the
//!   lab's `labrpc` behaviours (reliable/unreliable, long reordering, partitions; a request
//!   goes through if its link is up when sent, and its reply comes back whatever the links
//!   do by then), crashes as power cuts ([`StoreKind::Wal`]: `raftwal_fault::SimFs::crash`,
//!   some in the middle of a persist) or as the lab's `Persister` copy ([`StoreKind::Mem`]),
//!   and the lab's checks with its limits. No threads, no real time.
//! - The safety checker ([`CheckerMode`], on by default): Election Safety, one vote per
//!   term, Log Matching, Leader Completeness, Commitment, State Machine Safety, and that a
//!   restart loses nothing the node had sent, over every input and output of a whole run.
//! - [`Scenario`] and [`run_scenario`]: run one scenario over many seeds, print per-scenario
//!   figures, and on failure print the seed and the command that replays it.
//!
//! Environment read by [`run_scenario`]:
//! - `RAFT_SEEDS=N` — seeds per scenario and store (default [`DEFAULT_SEEDS`]);
//! - `RAFT_SEED=S` — run only seed `S` (replay);
//! - `RAFT_SEED_BASE=B` — seeds are `B+1 ..= B+N` (default 0);
//! - `RAFT_REPORT=path` — also append each summary line to `path`;
//! - `RAFT_MID_PERSIST_SHARE=x` — the share (0.0–1.0) of WAL crashes cut mid-persist, and of
//!   restarts whose recovery is cut once (default [`DEFAULT_MID_PERSIST_SHARE`]).

mod checker;
mod client;
mod storage;
mod tester;

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

pub use checker::CheckerMode;
pub use client::ClientId;
pub use storage::{
    segment_record_capacity, sim_wal_options, LogBytes, SimStorage, StoreKind, WAL_DIR,
};
pub use tester::{
    cmd, decode_snapshot, encode_snapshot, Driver, RunStats, SimOptions, TResult, Tester,
    BATCH_WINDOW_MS, DEFAULT_MID_PERSIST_SHARE, ELECTION_TIMEOUT_MS, MAX_LOG_SIZE, MAX_SIM_MS,
    SNAPSHOT_INTERVAL,
};

/// A bit of everything for `rounds` rounds: long reordering, one node crashed mid-persist
/// while five commands commit without it, restarted and reconnected, one more command on
/// all. Shared by the determinism and leader-no-op tests.
pub fn mixed_rounds(cfg: &mut Tester, rounds: u64) -> TResult<()> {
    let n = cfg.n();
    cfg.set_long_reordering(true);
    for round in 0..rounds {
        let victim = cfg.rand_below(n as u64) as usize;
        cfg.crash1(victim);
        for _ in 0..5 {
            let r = cfg.rand();
            cfg.one(cmd(r), n - 1, true)?;
        }
        cfg.start1(victim);
        cfg.connect(victim);
        cfg.one(cmd(round), n, true)?;
    }
    Ok(())
}

/// Seeds per scenario and store when `RAFT_SEEDS` is not set.
pub const DEFAULT_SEEDS: u64 = 10;

/// One lab scenario: its name and the cluster the lab's `make_config` builds for it.
#[derive(Clone, Copy)]
pub struct Scenario {
    /// The 6.5840 test name (without the part suffix), e.g. `"Figure8Unreliable"`.
    pub name: &'static str,
    /// Lab part: `"3A"`, `"3B"`, `"3C"` or `"3D"`.
    pub part: &'static str,
    /// Number of nodes.
    pub servers: usize,
    /// Start with an unreliable network.
    pub unreliable: bool,
    /// The service snapshots every [`SNAPSHOT_INTERVAL`] commands (3D's `applierSnap`).
    pub snapshots: bool,
    /// The test body.
    pub body: fn(&mut Tester) -> TResult<()>,
}

/// Outcome of one seed.
#[derive(Debug, Clone)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// `Err` with the failure message (a lab check, or the safety checker when it enforces).
    pub result: Result<(), String>,
    /// The first safety violation the checker found (also when it only observes).
    pub violation: Option<String>,
    /// Figures (up to the failure, if any).
    pub stats: RunStats,
    /// Wall-clock time of the run.
    pub wall: Duration,
}

/// Runs `scenario` on `store` with `seed` and the default options.
pub fn run_seed(scenario: &Scenario, store: StoreKind, seed: u64) -> SeedOutcome {
    run_seed_with(scenario, store, seed, SimOptions::default())
}

/// Runs `scenario` on `store` with `seed` and `opts`.
pub fn run_seed_with(
    scenario: &Scenario,
    store: StoreKind,
    seed: u64,
    opts: SimOptions,
) -> SeedOutcome {
    let t0 = Instant::now();
    let mut stats = RunStats::default();
    let mut violation = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut t = Tester::with_options(
            scenario.servers,
            scenario.unreliable,
            scenario.snapshots,
            store,
            seed,
            opts,
        );
        let r = (scenario.body)(&mut t).and_then(|()| t.end().map(|_| ()));
        stats = t.stats();
        violation = t.safety_violation().map(str::to_string);
        r
    }))
    .unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into());
        Err(format!("panicked: {msg}"))
    });
    SeedOutcome {
        seed,
        result,
        violation,
        stats,
        wall: t0.elapsed(),
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The seeds the environment asks for (see the module docs).
pub fn seeds_from_env() -> Vec<u64> {
    if let Some(s) = env_u64("RAFT_SEED") {
        return vec![s];
    }
    let n = env_u64("RAFT_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let base = env_u64("RAFT_SEED_BASE").unwrap_or(0);
    (base + 1..=base + n).collect()
}

/// Runs `scenario` over the environment's seeds on `store` through `driver`, prints one
/// summary line (pass count, mean/max simulated time, mean RPCs and bytes of requests and
/// replies, crash figures, the largest persisted log, wall time) and every failing seed
/// with the command that replays it, and panics if any seed failed. `test_file` and
/// `test_name` select this test, for the replay command.
pub fn run_scenario(
    scenario: &Scenario,
    store: StoreKind,
    driver: Driver,
    test_file: &str,
    test_name: &str,
) {
    let seeds = seeds_from_env();
    let opts = SimOptions {
        driver,
        ..SimOptions::from_env()
    };
    let t0 = Instant::now();
    let outcomes: Vec<SeedOutcome> = seeds
        .iter()
        .map(|&s| run_seed_with(scenario, store, s, opts))
        .collect();
    let wall = t0.elapsed();
    let passed: Vec<&SeedOutcome> = outcomes.iter().filter(|o| o.result.is_ok()).collect();
    let k = passed.len().max(1) as f64;
    let mean =
        |f: &dyn Fn(&RunStats) -> u64| passed.iter().map(|o| f(&o.stats) as f64).sum::<f64>() / k;
    let max = |f: &dyn Fn(&RunStats) -> u64| passed.iter().map(|o| f(&o.stats)).max().unwrap_or(0);
    let line = format!(
        "scenario {:<26} part {} store {:<9} seeds {:>5} passed {:>5} failed {:>3} | sim mean {:>6.1} s max {:>6.1} s | rpcs mean {:>7.0} | bytes mean {:>9.0} (replies {:>8.0}) | crashes mean {:>5.1} (mid-persist {:>4.1}, in Snapshot {:>4.1}, recovery cut {:>4.1}, torn tails recovered {:>4.1}) | log max {:>5} B, retained max {:>5} B | violations {} | wall {:>7.2} s",
        scenario.name,
        scenario.part,
        format!("{store}{}", driver.suffix()),
        outcomes.len(),
        passed.len(),
        outcomes.len() - passed.len(),
        mean(&|s| s.sim_ms) / 1000.0,
        max(&|s| s.sim_ms) as f64 / 1000.0,
        mean(&|s| s.rpcs),
        mean(&|s| s.bytes),
        mean(&|s| s.reply_bytes),
        mean(&|s| s.crashes),
        mean(&|s| s.mid_persist_crashes),
        mean(&|s| s.snapshot_cuts),
        mean(&|s| s.recovery_cuts),
        mean(&|s| s.torn_recoveries),
        max(&|s| s.log_live_max),
        max(&|s| s.log_retained_max),
        outcomes.iter().map(|o| o.stats.violations).sum::<u64>(),
        wall.as_secs_f64(),
    );
    eprintln!("{line}");
    if let Ok(path) = std::env::var("RAFT_REPORT") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
    let failures: Vec<&SeedOutcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    for o in &failures {
        eprintln!(
            "FAILED {} [{store}{}] seed {}: {}\n  replay: RAFT_SEED={} cargo test -p raftwal-raft --release --test {} -- {} --exact --nocapture",
            scenario.name,
            driver.suffix(),
            o.seed,
            o.result.as_ref().err().map(String::as_str).unwrap_or(""),
            o.seed,
            test_file,
            test_name
        );
    }
    if let Some(o) = failures.first() {
        panic!(
            "{} [{store}{}]: {} of {} seeds failed; first: seed {}: {}",
            scenario.name,
            driver.suffix(),
            failures.len(),
            outcomes.len(),
            o.seed,
            o.result.as_ref().err().map(String::as_str).unwrap_or("")
        );
    }
}

/// Declares, for each scenario, a test module with one test per store and driver:
/// `scenario_tests!(initial_election => INITIAL_ELECTION, ...)` gives
/// `initial_election::mem`, `initial_election::wal` and `initial_election::wal_batch` (the
/// WAL through [`Driver::Batch`]).
#[macro_export]
macro_rules! scenario_tests {
    ($($m:ident => $spec:expr),* $(,)?) => {
        $(
            mod $m {
                #[test]
                fn mem() {
                    $crate::sim::run_scenario(
                        &$spec,
                        $crate::sim::StoreKind::Mem,
                        $crate::sim::Driver::Single,
                        env!("CARGO_CRATE_NAME"),
                        concat!(stringify!($m), "::mem"),
                    );
                }
                #[test]
                fn wal() {
                    $crate::sim::run_scenario(
                        &$spec,
                        $crate::sim::StoreKind::Wal,
                        $crate::sim::Driver::Single,
                        env!("CARGO_CRATE_NAME"),
                        concat!(stringify!($m), "::wal"),
                    );
                }
                #[test]
                fn wal_batch() {
                    $crate::sim::run_scenario(
                        &$spec,
                        $crate::sim::StoreKind::Wal,
                        $crate::sim::Driver::Batch,
                        env!("CARGO_CRATE_NAME"),
                        concat!(stringify!($m), "::wal_batch"),
                    );
                }
            }
        )*
    };
}
