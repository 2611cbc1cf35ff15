//! `raftwal torture`: crash-recovery torture, on the simulated power-loss file system (the
//! default) or on the real disk with `--real DIR` (a child process killed with SIGKILL).
//!
//! The workload, the model of what was acknowledged and the invariant checker live in the
//! `raftwal-fault` crate (`torture`, `real_disk`); this file parses arguments, drives the loop,
//! shows progress and prints the summary.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use raftwal_fault::check::Violation;
use raftwal_fault::model::Model;
use raftwal_fault::real_disk::{self, verify_after_kill, RealLayout};
use raftwal_fault::torture::{Torture, TortureConfig, TortureStats};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::CmdResult;

/// Arguments of `raftwal torture`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Master seed; the whole run is a function of it (default: from the clock, printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of cycles (each: random operations, maybe an injected fault, a power cut or a
    /// SIGKILL, recovery, checks). Default 1000 (simulated) or 20 (real).
    #[arg(long, conflicts_with = "duration")]
    pub cycles: Option<u64>,
    /// Run for this many seconds instead of a number of cycles.
    #[arg(long)]
    pub duration: Option<u64>,
    /// Torture the real disk in DIR (must not hold a previous run): a child process runs the
    /// workload and is killed with SIGKILL at random moments.
    #[arg(long, value_name = "DIR")]
    pub real: Option<PathBuf>,
    /// Segment size in bytes (small, so runs rotate often).
    #[arg(long, default_value_t = 8192)]
    pub segment_size: u64,
    /// Longest the child runs before it is killed, in milliseconds (real mode).
    #[arg(long, default_value_t = 200)]
    pub max_kill_delay_ms: u64,
    /// Open the WAL with `Options::lazy_open` (sealed middle segments verified on first
    /// read instead of at open).
    #[arg(long)]
    pub lazy_open: bool,
    /// After an injected I/O error, cut the power at once instead of first reopening the WAL
    /// without a crash and working on it (simulated mode).
    #[arg(long)]
    pub crash_after_io_error: bool,
    /// Simulate a file system without `fallocate`: preallocation writes zeros, which a power
    /// cut tears like any write (simulated mode).
    #[arg(long)]
    pub no_fallocate: bool,
    /// Most entries per append (simulated mode).
    #[arg(long, default_value_t = 4)]
    pub max_batch: usize,
    /// Most payload bytes per entry (simulated mode; 1500 makes logs span several segments).
    #[arg(long, default_value_t = 300)]
    pub max_payload: usize,
    /// Where the child's journal of acknowledged calls lives (real mode; default
    /// DIR/journal.log). On a file system that simulates power loss, put it on an ordinary
    /// one.
    #[arg(long, value_name = "PATH", requires = "real")]
    pub journal: Option<PathBuf>,
    /// A shell command run after each kill, before the WAL is reopened (real mode): a power
    /// cut simulated below the WAL, e.g. a FUSE file system's drop-unsynced-data trigger or
    /// a dm-flakey table switch. It gets RAFTWAL_TORTURE_DIR, RAFTWAL_TORTURE_WAL and
    /// RAFTWAL_TORTURE_CYCLE; a non-zero exit stops the run.
    #[arg(long, value_name = "CMD", requires = "real")]
    pub after_kill: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Show the WAL's log messages (the injected faults' warnings, by the hundred) on the
    /// terminal instead of writing them to the log file.
    #[arg(long)]
    pub verbose: bool,
    /// Where the WAL's log messages go (default: `raftwal-torture-<pid>.log` in the system's
    /// temporary directory; the summary names it).
    #[arg(long, value_name = "PATH", conflicts_with = "verbose")]
    pub log: Option<PathBuf>,
}

impl Args {
    /// The file the WAL's log messages go to, unless `--verbose`.
    pub fn log_file(&self) -> Option<PathBuf> {
        if self.verbose {
            return None;
        }
        Some(self.log.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("raftwal-torture-{}.log", std::process::id()))
        }))
    }
}

/// Arguments of the hidden `raftwal torture-child`.
#[derive(clap::Args, Debug)]
pub struct ChildArgs {
    /// The torture directory (holds `wal/` and `journal.log`).
    #[arg(long)]
    pub dir: PathBuf,
    /// Seed of the workload.
    #[arg(long)]
    pub seed: u64,
    /// Segment size in bytes.
    #[arg(long, default_value_t = 8192)]
    pub segment_size: u64,
    /// Stop after this many calls if not killed first.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_ops: u64,
    /// Open with `Options::lazy_open`.
    #[arg(long)]
    pub lazy_open: bool,
    /// The journal's path (default DIR/journal.log).
    #[arg(long)]
    pub journal: Option<PathBuf>,
}

fn options(segment_size: u64, lazy_open: bool) -> raftwal::Options {
    raftwal::Options::default()
        .with_segment_size(segment_size)
        .with_lazy_open(lazy_open)
}

/// Runs `raftwal torture`.
pub fn run(args: Args) -> CmdResult {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let result = match args.real.clone() {
        Some(dir) => run_real(&args, seed, dir),
        None => run_sim(&args, seed),
    };
    if let Some(log) = args.log_file() {
        eprintln!(
            "the WAL's log messages (recoveries, injected faults): {}",
            log.display()
        );
    }
    result
}

/// How long to go: a number of cycles or a time budget.
struct Budget {
    cycles: Option<u64>,
    until: Option<Instant>,
    started: Instant,
}

impl Budget {
    fn new(args: &Args, default_cycles: u64) -> Self {
        let started = Instant::now();
        match args.duration {
            Some(secs) => Budget {
                cycles: None,
                until: Some(started + Duration::from_secs(secs)),
                started,
            },
            None => Budget {
                cycles: Some(args.cycles.unwrap_or(default_cycles)),
                until: None,
                started,
            },
        }
    }

    fn done(&self, cycles: u64) -> bool {
        match (self.cycles, self.until) {
            (Some(n), _) => cycles >= n,
            (None, Some(t)) => Instant::now() >= t,
            (None, None) => true,
        }
    }

    fn bar(&self, quiet: bool, args: &Args) -> Result<ProgressBar, super::CmdError> {
        if quiet {
            return Ok(ProgressBar::hidden());
        }
        let (len, template) = match (self.cycles, args.duration) {
            (Some(n), _) => (
                n,
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} cycles {msg}",
            ),
            (None, Some(s)) => (
                s,
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} s {msg}",
            ),
            (None, None) => (0, "{spinner} {msg}"),
        };
        let bar = ProgressBar::new(len);
        bar.set_style(ProgressStyle::with_template(template)?);
        Ok(bar)
    }

    fn tick(&self, bar: &ProgressBar) {
        match self.cycles {
            Some(_) => bar.inc(1),
            None => bar.set_position(self.started.elapsed().as_secs()),
        }
    }
}

fn run_sim(args: &Args, seed: u64) -> CmdResult {
    let mut cfg = TortureConfig::with_seed(seed);
    cfg.opts.segment_size = args.segment_size;
    cfg.opts.lazy_open = args.lazy_open;
    cfg.reopen_after_error = !args.crash_after_io_error;
    cfg.no_fallocate = args.no_fallocate;
    cfg.shape = raftwal_fault::workload::WorkloadShape {
        max_batch: args.max_batch,
        max_payload: args.max_payload,
    };
    let budget = Budget::new(args, 1000);
    let bar = budget.bar(args.quiet, args)?;
    let mut torture = match Torture::new(cfg) {
        Ok(t) => t,
        Err(v) => return Ok(report_violation(&bar, &v, seed, 1, args)),
    };
    while !budget.done(torture.stats().cycles) {
        if let Err(v) = torture.cycle() {
            let cycle = torture.stats().cycles + 1;
            print_summary(torture.stats(), seed, budget.started.elapsed());
            return Ok(report_violation(&bar, &v, seed, cycle, args));
        }
        budget.tick(&bar);
        let s = torture.stats();
        bar.set_message(format!(
            "{} crash states, {} entries verified",
            s.crash_states, s.entries_verified
        ));
    }
    bar.finish_and_clear();
    print_summary(torture.stats(), seed, budget.started.elapsed());
    Ok(ExitCode::SUCCESS)
}

fn report_violation(
    bar: &ProgressBar,
    v: &Violation,
    seed: u64,
    cycle: u64,
    args: &Args,
) -> ExitCode {
    bar.abandon();
    eprintln!("\nVIOLATION at cycle {cycle}: {}", v.what);
    eprintln!("  {}", v.context);
    eprintln!("seed {seed}; {}", reproduce_command(args, seed, cycle));
    ExitCode::from(1)
}

/// The command line that reruns a failed run up to its failing cycle. A real-disk run
/// cannot replay exactly (the kill moments are wall-clock), so it is told as a rerun on a
/// fresh directory with the same seed and knobs.
fn reproduce_command(args: &Args, seed: u64, cycle: u64) -> String {
    let mut cmd = format!(
        "raftwal torture --seed {seed} --cycles {cycle} --segment-size {}",
        args.segment_size
    );
    for (on, flag) in [
        (args.crash_after_io_error, " --crash-after-io-error"),
        (args.lazy_open, " --lazy-open"),
        (args.no_fallocate, " --no-fallocate"),
    ] {
        if on {
            cmd.push_str(flag);
        }
    }
    if (args.max_batch, args.max_payload) != (4, 300) {
        cmd.push_str(&format!(
            " --max-batch {} --max-payload {}",
            args.max_batch, args.max_payload
        ));
    }
    let Some(dir) = &args.real else {
        return format!("reproduce with:\n  {cmd}");
    };
    cmd.push_str(&format!(
        " --max-kill-delay-ms {} --real FRESH_DIR",
        args.max_kill_delay_ms
    ));
    if args.journal.is_some() {
        cmd.push_str(" --journal FRESH_JOURNAL");
    }
    if let Some(after) = &args.after_kill {
        cmd.push_str(&format!(" --after-kill '{}'", after.replace('\'', "'\\''")));
    }
    format!(
        "the failing state is kept in {}; rerun on a fresh directory (kill moments are \
         wall-clock, so a real-disk run does not replay exactly) with:\n  {cmd}",
        dir.display()
    )
}

fn print_summary(s: &TortureStats, seed: u64, elapsed: Duration) {
    let f = &s.faults;
    let rows: Vec<(&str, String)> = vec![
        ("seed", seed.to_string()),
        ("cycles", s.cycles.to_string()),
        ("wall time", format!("{:.1} s", elapsed.as_secs_f64())),
        (
            "operations (acknowledged)",
            format!("{} ({})", s.ops, s.acked_ops),
        ),
        ("power cuts", s.crashes.to_string()),
        ("distinct crash states", s.crash_states.to_string()),
        ("torn writes", s.torn_writes.to_string()),
        (
            "unsynced ops dropped by cuts",
            s.ops_lost_to_crashes.to_string(),
        ),
        ("recoveries checked", s.recoveries.to_string()),
        ("crashes during recovery", s.recovery_crashes.to_string()),
        (
            "recoveries that deferred segments (--lazy-open)",
            s.lazy_recoveries.to_string(),
        ),
        ("entries verified", s.entries_verified.to_string()),
        ("faults: write EIO", f.write_eio.to_string()),
        ("faults: fsync EIO", f.sync_eio.to_string()),
        ("faults: dir fsync EIO", f.dir_sync_eio.to_string()),
        ("faults: ENOSPC", f.enospc.to_string()),
        ("faults: read EIO", f.read_eio.to_string()),
        ("faults: bit flips", f.bit_flips.to_string()),
        (
            "power cuts written back page by page",
            s.page_crashes.to_string(),
        ),
        ("poisoned-handle checks", s.poison_checks.to_string()),
        (
            "handles reopened after an error and worked on",
            s.reopened_and_continued.to_string(),
        ),
        ("full-disk opens", s.full_disk_probes.to_string()),
        (
            "bit flips: detected/harmless",
            format!("{}/{}", s.flips_detected, s.flips_harmless),
        ),
        (
            "bit flips: torn-tail/header",
            format!(
                "{}/{}",
                s.flips_taken_for_torn_tail, s.flips_header_rollback
            ),
        ),
        ("violations", s.violations.len().to_string()),
    ];
    println!("\nraftwal torture (simulated power-loss file system)");
    print_rows(&rows);
}

fn print_rows(rows: &[(&str, String)]) {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let v = rows.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    println!("  {}", "-".repeat(w + v + 3));
    for (k, val) in rows {
        println!("  {k:<w$} | {val:>v$}");
    }
    println!("  {}", "-".repeat(w + v + 3));
}

fn run_real(args: &Args, seed: u64, root: PathBuf) -> CmdResult {
    let layout = RealLayout::new(&root, args.journal.as_deref());
    if layout.wal_dir.exists() || layout.journal.exists() {
        return Err(format!(
            "{} already holds a torture run (wal/), or {} exists; use an empty directory and a \
             new journal path",
            root.display(),
            layout.journal.display()
        )
        .into());
    }
    std::fs::create_dir_all(&layout.wal_dir)?;
    let exe = std::env::current_exe()?;
    let opts = options(args.segment_size, args.lazy_open);
    let budget = Budget::new(args, 20);
    let bar = budget.bar(args.quiet, args)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Model::default();
    let (mut cycles, mut acked_calls, mut entries, mut early_exits) = (0u64, 0u64, 0u64, 0u64);
    while !budget.done(cycles) {
        let child_seed: u64 = rng.gen();
        let delay = Duration::from_millis(rng.gen_range(1..=args.max_kill_delay_ms.max(1)));
        let mut child = Command::new(&exe)
            .arg("torture-child")
            .arg("--dir")
            .arg(&root)
            .arg("--seed")
            .arg(child_seed.to_string())
            .arg("--segment-size")
            .arg(args.segment_size.to_string())
            .args(args.lazy_open.then_some("--lazy-open"))
            .arg("--journal")
            .arg(&layout.journal)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        std::thread::sleep(delay);
        match child.try_wait()? {
            // The child stopped by itself: only a failure is unexpected.
            Some(status) if !status.success() => {
                let v = Violation {
                    seed,
                    what: format!("the workload child failed on its own ({status})"),
                    context: format!(
                        "child seed {child_seed}; run `raftwal torture-child --dir {} --journal {} \
                         --seed {child_seed} --segment-size {}{}` to see its error",
                        root.display(),
                        layout.journal.display(),
                        args.segment_size,
                        if args.lazy_open { " --lazy-open" } else { "" }
                    ),
                };
                return Ok(report_violation(&bar, &v, seed, cycles + 1, args));
            }
            Some(_) => early_exits += 1,
            None => {
                // std's Child::kill sends SIGKILL on Unix: no chance to flush or clean up.
                child.kill()?;
                child.wait()?;
            }
        }
        if let Some(cmd) = &args.after_kill {
            if let Err(what) = after_kill(cmd, &root, &layout, cycles + 1) {
                bar.abandon();
                return Err(what.into());
            }
        }
        match verify_after_kill(&layout, &opts, &mut model) {
            Ok(c) => {
                cycles += 1;
                acked_calls += c.acked_calls;
                entries += c.entries_verified;
                bar.set_message(c.summary);
                budget.tick(&bar);
            }
            Err(what) => {
                let v = Violation {
                    seed,
                    what,
                    context: format!(
                        "kill cycle {} (child seed {child_seed}, killed after {delay:?})",
                        cycles + 1
                    ),
                };
                return Ok(report_violation(&bar, &v, seed, cycles + 1, args));
            }
        }
    }
    bar.finish_and_clear();
    println!(
        "\nraftwal torture --real {} (SIGKILL of a child process)",
        root.display()
    );
    print_rows(&[
        ("seed", seed.to_string()),
        ("kill cycles", cycles.to_string()),
        (
            "wall time",
            format!("{:.1} s", budget.started.elapsed().as_secs_f64()),
        ),
        ("children done before the kill", early_exits.to_string()),
        ("calls acknowledged (journal)", acked_calls.to_string()),
        ("recoveries checked", cycles.to_string()),
        ("entries verified", entries.to_string()),
        ("violations", "0".to_string()),
    ]);
    Ok(ExitCode::SUCCESS)
}

/// Runs `--after-kill`'s command for cycle `cycle`.
fn after_kill(cmd: &str, root: &Path, layout: &RealLayout, cycle: u64) -> Result<(), String> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("RAFTWAL_TORTURE_DIR", root)
        .env("RAFTWAL_TORTURE_WAL", &layout.wal_dir)
        .env("RAFTWAL_TORTURE_CYCLE", cycle.to_string())
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("--after-kill: cannot run `{cmd}`: {e}"))?;
    if !status.success() {
        return Err(format!(
            "--after-kill: `{cmd}` failed ({status}) after kill cycle {cycle}; stopping"
        ));
    }
    Ok(())
}

/// Runs the child workload of `raftwal torture --real`.
pub fn run_child(args: ChildArgs) -> CmdResult {
    let layout = RealLayout::new(&args.dir, args.journal.as_deref());
    real_disk::run_child(
        &layout,
        args.seed,
        options(args.segment_size, args.lazy_open),
        args.max_ops,
    )?;
    Ok(ExitCode::SUCCESS)
}
