//! `raftwal bench`: what a Raft server pays to persist, side by side in one run.
//!
//! The same workload (entries of one size, appended in batches, each batch made durable
//! before the next) runs on:
//!
//! 1. `raw`: a plain loop of `pwrite` + `fdatasync` of the same bytes in the same batches to
//!    a `fallocate`d file, the limit no WAL can beat (the reference of every ratio);
//!    `raw-again` runs the same loop once more in its own files, an A/A control: its ratio to
//!    `raw` is what the disk's noise alone does to a ratio;
//! 2. `raw-overwrite`: the same loop overwriting already-written blocks (the floor for a WAL
//!    that pre-zeroes or recycles segments; shown for information);
//! 3. `raftwal` ([`raftwal::Wal`]; several writers through [`raftwal::group_commit::GroupCommit`]);
//! 4. `raft-engine` (tikv's, with the `raft-engine` feature).
//!
//! Cell by cell, every system is set up once (untimed), then short slices of the systems
//! alternate, repetition after repetition in rotating order, each slice continuing its
//! system's log where the last one stopped. So drift (other load, page-cache state, device
//! write-back: this project's virtual disk moves by tens of percent over seconds) hits all of
//! them alike, and many short paired slices average it out.
//! Then logs of growing size are reopened, warm and cold, to measure recovery. Results go to
//! stdout as a table, and to `--out` as CSV and an SVG plot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use raftwal_benches::raw::{OverwriteArea, RawMode, RawSession};
use raftwal_benches::workload::{self, Budget, Cell, Sample, Session};

use super::CmdResult;

mod cpu;
mod fsinfo;
mod recovery;
mod report;
mod steady_report;
mod svg;

/// Arguments of `raftwal bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory for the data files. Default: a fresh temporary directory under the current
    /// directory, or under /var/tmp when the current directory is on tmpfs (a RAM-backed file
    /// system measures nothing about persistence). Removed afterwards.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Where to write bench.csv, recovery.csv and throughput.svg.
    #[arg(long, default_value = "bench-out")]
    pub out: PathBuf,
    /// Short slices, one repetition, small recovery logs: the whole run in under a minute.
    #[arg(long)]
    pub quick: bool,
    /// Seconds per measured slice [default: 0.25, --quick 0.12].
    #[arg(long)]
    pub slice_secs: Option<f64>,
    /// Slices per system and cell, alternating between the systems [default: 20, --quick 1].
    #[arg(long)]
    pub reps: Option<usize>,
    /// The grid, the budgets and the recovery sizes (boxed: they are the bulk of the
    /// arguments).
    #[command(flatten)]
    pub grid: Box<GridArgs>,
    /// Print every slice's result as it completes (shows the spread between repetitions).
    #[arg(long)]
    pub verbose: bool,
    /// Run raftwal with `SegmentPrepare::Grow` (no preallocation: segments grow by appending;
    /// overrides --prepare).
    #[arg(long)]
    pub no_preallocate: bool,
    /// raftwal's `Options::segment_size` in bytes [default: the WAL's default, 64 MiB].
    #[arg(long)]
    pub segment_size: Option<u64>,
    /// raftwal's `Options::prepare`: how the next segment's space is prepared.
    #[arg(long, value_enum, default_value_t = Prepare::Background)]
    pub prepare: Prepare,
}

/// `--prepare` values, mapping to [`raftwal::SegmentPrepare`].
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prepare {
    /// `fallocate` each segment at rotation (unwritten extents).
    Allocate,
    /// Zero-fill a spare segment inline, right after each rotation.
    Zero,
    /// Zero-fill a spare segment on a background thread, paced (the default).
    Background,
}

impl From<Prepare> for raftwal::SegmentPrepare {
    fn from(p: Prepare) -> Self {
        match p {
            Prepare::Allocate => raftwal::SegmentPrepare::Allocate,
            Prepare::Zero => raftwal::SegmentPrepare::ZeroFill,
            Prepare::Background => raftwal::SegmentPrepare::ZeroFillBackground,
        }
    }
}

/// What to measure: cells, systems, budgets, recovery log sizes.
#[derive(clap::Args, Debug)]
pub struct GridArgs {
    /// Entry sizes in bytes [default: 64,256,1024,4096,65536].
    #[arg(long, value_delimiter = ',')]
    pub entry_sizes: Vec<usize>,
    /// Entries per fdatasync [default: 1,8,64,512].
    #[arg(long, value_delimiter = ',')]
    pub batches: Vec<usize>,
    /// Concurrent writers sharing fdatasyncs (256-byte entries, one per commit)
    /// [default: 1,4,16].
    #[arg(long, value_delimiter = ',')]
    pub writers: Vec<usize>,
    /// Cap on payload bytes per slice, in MiB (bounds disk use, and keeps a slice within a
    /// burst-credited disk's burst) [default: 512, --quick 256].
    #[arg(long)]
    pub max_slice_mib: Option<u64>,
    /// After each slice, stay idle for the bytes it wrote divided by this rate (MiB/s), so
    /// a disk that absorbs bursts into a cache or on credits (cloud volumes: this project's
    /// machine writes ~600 MiB at ~2 GB/s, then ~330 MB/s until it has drained) starts every
    /// slice in the same state; 0 disables [default: 256, --quick 0].
    #[arg(long)]
    pub cooldown_mib_per_sec: Option<f64>,
    /// Retained log sizes for the recovery (open time) measurements, in MiB
    /// [default: 16,256,1024; --quick 16,128].
    #[arg(long, value_delimiter = ',')]
    pub recovery_mib: Vec<u64>,
    /// Entry size of the recovery logs, in bytes.
    #[arg(long, default_value_t = 1024)]
    pub recovery_entry_size: usize,
    /// Skip the recovery measurements.
    #[arg(long)]
    pub no_recovery: bool,
    /// Systems to run, of raw, raw-again, raw-overwrite, raftwal, raft-engine [default: all
    /// built], raftwal-ahead (raftwal with `Options::rotate_ahead` on) and
    /// raftwal-no-take-ahead (raftwal with `Options::take_ahead` off), the last two only
    /// when named: A/Bs of one option, interleaved with the rest.
    #[arg(long, value_delimiter = ',')]
    pub systems: Vec<String>,
    /// raft-engine's `batch_compression_threshold` in bytes (its default, 8192, LZ4-compresses
    /// every larger batch; 0 disables compression).
    #[arg(long, default_value_t = 8192)]
    pub raft_engine_compression_threshold: u64,
    /// Steady state: each log keeps about this many MiB of payload, compacted behind a
    /// moving snapshot point inside the timed loop (raftwal `compact`; raft-engine
    /// `compact_to` + `purge_expired_files`, with recycling active), after an untimed
    /// warm-up until compaction recurs. Ratios are then to `raw-overwrite` (writing over
    /// written blocks: the limit of a log that reuses its space); one writer per log, so
    /// the concurrent cells are left out; systems default to raw-overwrite, raftwal and
    /// raft-engine.
    #[arg(long)]
    pub steady_retain_mib: Option<u64>,
    /// Instead of the grid: raft-rs 0.7 proposals through a single node and a 3-node
    /// in-process group, on raftwal and on raft-engine (the store TiKV pairs with raft-rs),
    /// this many seconds per cell, interleaved over `--reps` rounds (default 3), for
    /// `--entry-sizes` (default 256,4096). Proposals/s, p50/p99 commit latency,
    /// fdatasyncs per proposal, and the disk's fdatasyncs/s measured in the same run.
    #[arg(long, value_name = "SECONDS")]
    pub raft_rs: Option<f64>,
}

/// The systems measured, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    /// pwrite + fdatasync into a fallocated file.
    Raw,
    /// The same loop again, in its own files: an A/A control. Its ratio to `raw` is what
    /// this disk's noise alone does to a ratio in this run.
    RawAgain,
    /// pwrite + fdatasync overwriting written blocks.
    RawOverwrite,
    /// raftwal.
    Raftwal,
    /// raftwal with `Options::rotate_ahead` on (rotations prepared beside a sync).
    RaftwalAhead,
    /// raftwal with `Options::take_ahead` off (pool headers written at rotation).
    RaftwalNoTakeAhead,
    /// tikv's raft-engine.
    RaftEngine,
}

impl System {
    /// The name in the table and the CSV.
    pub fn name(self) -> &'static str {
        match self {
            System::Raw => "raw",
            System::RawAgain => "raw-again",
            System::RawOverwrite => "raw-overwrite",
            System::Raftwal => "raftwal",
            System::RaftwalAhead => "raftwal-ahead",
            System::RaftwalNoTakeAhead => "raftwal-no-take-ahead",
            System::RaftEngine => "raft-engine",
        }
    }
}

/// Everything one run decided before measuring.
struct Plan {
    budget: Budget,
    reps: usize,
    grid: Vec<Cell>,
    concurrent: Vec<Cell>,
    systems: Vec<System>,
    recovery_mib: Vec<u64>,
    recovery_entry_size: usize,
    verbose: bool,
    /// The steady state's retained log, if this run measures one.
    steady: Option<raftwal_benches::steady::Steady>,
    /// The system every ratio is to: `raw`, or `raw-overwrite` in a steady state.
    reference: System,
    wal_opts: raftwal::Options,
    #[cfg(feature = "raft-engine")]
    engine_opts: raftwal_benches::raft_engine::EngineOptions,
}

/// `raftwal bench --raft-rs SECONDS`: the raft-rs section (see `raftwal_raft_rs::bench`).
fn raft_rs(args: &Args, seconds: f64) -> CmdResult {
    let mut cfg = raftwal_raft_rs::bench::BenchConfig {
        seconds,
        ..Default::default()
    };
    if let Some(reps) = args.reps {
        cfg.rounds = reps;
    }
    if !args.grid.entry_sizes.is_empty() {
        cfg.entry_sizes = args.grid.entry_sizes.clone();
    }
    let (base, place) = fsinfo::choose_dir(args.dir.as_deref())?;
    let work = tempfile::Builder::new()
        .prefix("raftwal-bench-")
        .tempdir_in(&base)?;
    println!("raftwal bench --raft-rs: {}", describe_machine());
    println!("data directory: {} ({place})", work.path().display());
    println!(
        "{seconds} s per cell after {} ms of warm-up, {} round(s), nodes {:?}, entries {:?} B, \
         {} proposal(s) in flight, stores {:?}",
        cfg.warmup.as_millis(),
        cfg.rounds,
        cfg.nodes,
        cfg.entry_sizes,
        cfg.in_flight,
        cfg.stores
    );
    let report = raftwal_raft_rs::bench::run(work.path(), &cfg)
        .map_err(|e| format!("raft-rs bench: {e}"))?;
    print!("{}", report.table());
    Ok(std::process::ExitCode::SUCCESS)
}

/// Runs `raftwal bench`.
pub fn run(args: Args) -> CmdResult {
    if let Some(seconds) = args.grid.raft_rs {
        return raft_rs(&args, seconds);
    }
    let plan = plan(&args)?;
    let (base, place) = fsinfo::choose_dir(args.dir.as_deref())?;
    let work = tempfile::Builder::new()
        .prefix("raftwal-bench-")
        .tempdir_in(&base)?;
    std::fs::create_dir_all(&args.out)?;

    println!("raftwal bench: {}", describe_machine());
    println!("data directory: {} ({place})", work.path().display());
    println!(
        "slices of {:.2} s (at least 3 batches, at most {} MiB, then idle {}), {} repetition(s), round-robin over {}",
        plan.budget.time.as_secs_f64(),
        plan.budget.max_bytes >> 20,
        if plan.budget.cooldown_mib_per_sec > 0.0 {
            format!("1 s per {:.0} MiB written", plan.budget.cooldown_mib_per_sec)
        } else {
            "no time".to_owned()
        },
        plan.reps,
        plan.systems
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(st) = plan.steady {
        println!(
            "steady state: each log compacted back to {} MiB of payload once it holds half as \
             much again, warmed up (untimed) first; ratios to {}; single-writer cells only",
            st.retain_bytes >> 20,
            plan.reference.name()
        );
    }
    #[cfg(feature = "raft-engine")]
    if plan.systems.contains(&System::RaftEngine) {
        println!(
            "raft-engine 0.4: default Config{}, batch_compression_threshold = {} B",
            if plan.steady.is_some() {
                " but recycling active (purge_threshold = 2 × the retained size, \
                 target_file_size = raftwal's segment size)"
            } else {
                ""
            },
            plan.engine_opts.compression_threshold
        );
    }
    println!(
        "raftwal: segment_size = {} MiB, preallocate = {}, prepare = {:?}, rotate_ahead = {}",
        plan.wal_opts.segment_size >> 20,
        plan.wal_opts.prepare.preallocates(),
        plan.wal_opts.prepare,
        plan.wal_opts.rotate_ahead
    );

    println!("load average at start: {}", loadavg());
    let started = Instant::now();
    let results = measure(&plan, work.path())?;
    let recovery = if plan.recovery_mib.is_empty() {
        Vec::new()
    } else {
        recovery::measure(&plan, work.path())?
    };
    let total = started.elapsed();
    println!("load average at end: {}", loadavg());

    let table = report::Report::new(&plan, &results);
    println!();
    print!("{}", table.table());
    print!("{}", table.cpu());
    println!();
    if plan.steady.is_some() {
        print!("{}", steady_report::summary(&table));
    } else {
        print!("{}", table.goals());
    }
    if !recovery.is_empty() {
        println!();
        print!("{}", recovery::table(&recovery));
    }
    let csv = args.out.join("bench.csv");
    std::fs::write(&csv, table.csv())?;
    let svg_path = args.out.join("throughput.svg");
    std::fs::write(&svg_path, svg::plot(&plan, &results, &describe_machine()))?;
    let mut written = vec![csv.display().to_string(), svg_path.display().to_string()];
    if !recovery.is_empty() {
        let rcsv = args.out.join("recovery.csv");
        std::fs::write(&rcsv, recovery::csv(&recovery))?;
        written.push(rcsv.display().to_string());
    }
    println!();
    println!(
        "wrote {} (run took {:.1} s)",
        written.join(", "),
        total.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn plan(args: &Args) -> Result<Plan, super::CmdError> {
    let quick = args.quick;
    let slice = args.slice_secs.unwrap_or(if quick { 0.12 } else { 0.25 });
    if !(slice.is_finite() && slice >= 0.0) {
        return Err("--slice-secs must be a non-negative number".into());
    }
    let or = |v: &Vec<usize>, d: &[usize]| if v.is_empty() { d.to_vec() } else { v.clone() };
    let sizes = or(&args.grid.entry_sizes, &workload::ENTRY_SIZES);
    let batches = or(&args.grid.batches, &workload::BATCH_SIZES);
    let writers = or(&args.grid.writers, &workload::WRITERS);
    if sizes
        .iter()
        .chain(&batches)
        .chain(&writers)
        .any(|&n| n == 0)
    {
        return Err("entry sizes, batch sizes and writer counts must be positive".into());
    }
    let grid = sizes
        .iter()
        .flat_map(|&s| batches.iter().map(move |&b| Cell::single(s, b)))
        .collect();
    let steady = args
        .grid
        .steady_retain_mib
        .map(|mib| raftwal_benches::steady::Steady {
            retain_bytes: mib.max(1) << 20,
        });
    let concurrent = writers
        .iter()
        .filter(|&&w| w > 1 && steady.is_none())
        .map(|&w| Cell {
            entry_size: 256,
            batch: 1,
            writers: w,
        })
        .collect();
    let mut systems = vec![
        System::Raw,
        System::RawAgain,
        System::RawOverwrite,
        System::Raftwal,
    ];
    if cfg!(feature = "raft-engine") {
        systems.push(System::RaftEngine);
    }
    for option in [System::RaftwalAhead, System::RaftwalNoTakeAhead] {
        if args.grid.systems.iter().any(|n| n == option.name()) {
            systems.push(option);
        }
    }
    if steady.is_some() && args.grid.systems.is_empty() {
        // A growing log's limit (writing into fresh blocks) is not this state's.
        systems.retain(|s| !matches!(s, System::Raw | System::RawAgain));
    }
    let reference = if steady.is_some() {
        System::RawOverwrite
    } else {
        System::Raw
    };
    if !args.grid.systems.is_empty() {
        for name in &args.grid.systems {
            if !systems.iter().any(|s| s.name() == name) {
                return Err(format!("unknown or unbuilt system {name:?}").into());
            }
        }
        systems.retain(|s| args.grid.systems.iter().any(|n| n == s.name()));
    }
    if !systems.contains(&reference) {
        return Err(format!(
            "ratios are to {}: include it in --systems",
            reference.name()
        )
        .into());
    }
    let recovery_mib = if args.grid.no_recovery {
        Vec::new()
    } else if !args.grid.recovery_mib.is_empty() {
        args.grid.recovery_mib.clone()
    } else if quick {
        vec![16, 128]
    } else {
        vec![16, 256, 1024]
    };
    let mut wal_opts = raftwal::Options::default();
    if let Some(s) = args.segment_size {
        wal_opts.segment_size = s;
    }
    wal_opts.prepare = if args.no_preallocate {
        raftwal::SegmentPrepare::Grow
    } else {
        args.prepare.into()
    };
    #[cfg(feature = "raft-engine")]
    let wal_opts_segment_size = wal_opts.segment_size;
    Ok(Plan {
        budget: Budget {
            time: Duration::from_secs_f64(slice),
            min_batches: 3,
            max_bytes: args
                .grid
                .max_slice_mib
                .unwrap_or(if quick { 256 } else { 512 })
                << 20,
            cooldown_mib_per_sec: args
                .grid
                .cooldown_mib_per_sec
                .unwrap_or(if quick { 0.0 } else { 256.0 })
                .max(0.0),
        },
        reps: args.reps.unwrap_or(if quick { 1 } else { 20 }).max(1),
        grid,
        concurrent,
        systems,
        recovery_mib,
        recovery_entry_size: args.grid.recovery_entry_size.max(1),
        verbose: args.verbose,
        steady,
        reference,
        wal_opts,
        #[cfg(feature = "raft-engine")]
        engine_opts: raftwal_benches::raft_engine::EngineOptions {
            compression_threshold: args.grid.raft_engine_compression_threshold,
            steady: steady.map(|st| (st, wal_opts_segment_size)),
        },
    })
}

/// Results of every (cell, system), summed over repetitions.
pub type Results = HashMap<(Cell, System), Sample>;

fn measure(plan: &Plan, work: &Path) -> Result<Results, super::CmdError> {
    let cells: Vec<Cell> = plan.grid.iter().chain(&plan.concurrent).copied().collect();
    let slices = plan.reps * cells.len() * plan.systems.len();
    let bar = ProgressBar::new(slices as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40.cyan/blue}] {pos}/{len} slices  ETA {eta}  {msg}",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    bar.set_message("pre-zeroing the raw-overwrite file");
    let area = if plan.systems.contains(&System::RawOverwrite) {
        // Big enough for the largest batch several times over.
        let largest = cells
            .iter()
            .map(|c| c.batch * c.writers * workload::frame_len(c.entry_size))
            .max()
            .unwrap_or(0) as u64;
        Some(OverwriteArea::create(work, (largest * 4).max(64 << 20))?)
    } else {
        None
    };
    let mut results = Results::new();
    let n = plan.systems.len();
    for (c, cell) in cells.iter().enumerate() {
        // Every system is set up on the cell (untimed), then their slices alternate, each
        // repetition in a rotated order so that none always runs first.
        let mut sessions = Vec::with_capacity(n);
        for &system in &plan.systems {
            bar.set_message(format!("{} {}: setting up", cell.label(), system.name()));
            let dir = work.join(format!("cell-{c}-{}", system.name()));
            std::fs::create_dir_all(&dir)?;
            let session = open_session(plan, system, cell, &dir, area.as_ref())
                .map_err(|e| format!("{} on {}: {e}", system.name(), cell.label()))?;
            sessions.push((system, dir, session));
        }
        for rep in 0..plan.reps {
            for k in 0..n {
                let (system, _, session) = &mut sessions[(c + rep + k) % n];
                bar.set_message(format!(
                    "{} rep {} {}",
                    cell.label(),
                    rep + 1,
                    system.name()
                ));
                let cpu_before = cpu::process_cpu();
                let mut sample = session
                    .slice(&plan.budget)
                    .map_err(|e| format!("{} on {}: {e}", system.name(), cell.label()))?;
                sample.cpu = cpu_before
                    .zip(cpu::process_cpu())
                    .map(|(b, a)| a.saturating_sub(b));
                plan.budget.cool_down(sample.payload_bytes);
                if plan.verbose {
                    let line = format!(
                        "rep {} {:<14} {:<13} {:>12.0} entries/s  {} batches  p50 {:?}",
                        rep + 1,
                        cell.label(),
                        system.name(),
                        sample.entries_per_sec(),
                        sample.batches,
                        sample.latencies.clone().quantile(0.5),
                    );
                    if bar.is_hidden() {
                        eprintln!("{line}");
                    } else {
                        bar.println(line);
                    }
                }
                results.entry((*cell, *system)).or_default().merge(&sample);
                bar.inc(1);
            }
        }
        for (_, dir, session) in sessions {
            drop(session);
            std::fs::remove_dir_all(&dir)?;
        }
        // Commit the deletions (and their discards) now, not in the next cell's slices.
        raftwal_benches::cache::settle(work)?;
    }
    bar.finish_and_clear();
    Ok(results)
}

/// Sets `system` up on `cell` in `dir`, ready for its first slice.
fn open_session<'a>(
    plan: &Plan,
    system: System,
    cell: &Cell,
    dir: &Path,
    area: Option<&'a OverwriteArea>,
) -> raftwal_benches::Result<Box<dyn Session + 'a>> {
    Ok(match system {
        System::Raw | System::RawAgain => {
            Box::new(RawSession::open(cell, RawMode::Fallocate, dir, None)?)
        }
        System::RawOverwrite => Box::new(RawSession::open(cell, RawMode::Overwrite, dir, area)?),
        System::Raftwal | System::RaftwalAhead | System::RaftwalNoTakeAhead => {
            let opts = match system {
                System::RaftwalAhead => plan.wal_opts.clone().with_rotate_ahead(true),
                System::RaftwalNoTakeAhead => plan.wal_opts.clone().with_take_ahead(false),
                _ => plan.wal_opts.clone(),
            };
            Box::new(raftwal_benches::raftwal::WalSession::open(
                cell,
                dir,
                &opts,
                &plan.budget,
                plan.steady,
            )?)
        }
        #[cfg(feature = "raft-engine")]
        System::RaftEngine => Box::new(raftwal_benches::raft_engine::EngineSession::open(
            cell,
            dir,
            &plan.engine_opts,
            &plan.budget,
        )?),
        #[cfg(not(feature = "raft-engine"))]
        System::RaftEngine => return Err("built without the raft-engine feature".into()),
    })
}

/// The 1, 5 and 15 minute load averages: how busy the machine was besides this run.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Kernel, CPU count and model, for the record.
fn describe_machine() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "?".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("Linux {kernel}, {cpus} CPUs ({cpu})")
}
