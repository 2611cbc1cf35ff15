//! Exhaustive crash-state exploration (ALICE's method) of a short workload.
//!
//! The workload runs once on a recording [`SimFs`]; after every mutating I/O call the machine
//! is checkpointed. At every checkpoint a bounded set of crash plans is applied: every subset
//! of the unsynced operations (files and directory entries) when there are few enough,
//! otherwise prefixes and a sample; plus each write torn at sector granularity with zeros
//! and with garbage. Every distinct resulting durable image is recovered and checked
//! against the model of what was acknowledged at that point; then recovery itself is
//! crashed at each of its I/O calls and run again, which must converge to the same state.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use raftwal::{Options, Wal};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::check::{check, Recovered, Violation};
use crate::crash::{
    CrashMode, CrashPlan, Overwrite, PageCrash, PageFate, PendingFile, PendingState, TornFill,
    TornWrite, Writeback,
};
use crate::model::{Model, Op};
use crate::sim_fs::SimFs;
use crate::workload::Runner;

/// Bounds of an exploration.
#[derive(Debug, Clone)]
pub struct ExploreConfig {
    /// Seed of sampling and garbage bytes.
    pub seed: u64,
    /// WAL options (small segments, so the workload rotates).
    pub opts: Options,
    /// Most crash plans per crash point (all subsets when `2^choices` fits in half of it).
    pub plans_per_point: usize,
    /// Crash plans per I/O call of recovery (crash during recovery, then recover again).
    pub recovery_plans: usize,
    /// The WAL directory in the simulated file system.
    pub dir: PathBuf,
    /// Tear unit of the simulated disk (512; 64 tears inside a header slot).
    pub sector_size: u64,
    /// How unsynced data reaches the disk: write by write, or page by page (then the crash
    /// plans are page plans: every dirty page lost, whole or torn).
    pub writeback: Writeback,
    /// Whether the file system has `fallocate` (without it, preallocation writes zeros,
    /// which a crash tears like any write).
    pub fallocate: bool,
    /// What a torn write can damage.
    pub overwrite: Overwrite,
}

impl Default for ExploreConfig {
    fn default() -> Self {
        ExploreConfig {
            seed: 1,
            // Appends are written out at once, so several writes await one sync.
            opts: Options::default()
                .with_segment_size(8192)
                .with_write_buffer(256)
                // One write per write-out; `every_crash_state_between_write_out_pieces`
                // explores the pieces of `Options::writeback_chunk`.
                .with_writeback_chunk(0),
            plans_per_point: 256,
            recovery_plans: 4,
            dir: PathBuf::from("/wal"),
            sector_size: crate::sim_fs::SECTOR_SIZE,
            writeback: Writeback::Writes,
            fallocate: true,
            overwrite: Overwrite::Powersafe,
        }
    }
}

/// What an exploration covered and found.
#[derive(Debug, Clone, Default)]
pub struct ExploreReport {
    /// Mutating I/O calls of the workload (crash points, plus the start).
    pub crash_points: usize,
    /// The I/O calls, in order (`"write /wal/...wal 120@64"`).
    pub trace: Vec<String>,
    /// Crash plans applied.
    pub plans: u64,
    /// Distinct durable images produced by crashes of the workload.
    pub distinct_states: usize,
    /// Distinct (image, acknowledged state) pairs recovered and checked.
    pub checked: u64,
    /// Distinct durable images produced by crashes during recovery.
    pub recovery_crash_states: usize,
    /// Recoveries run (opens of the WAL).
    pub recoveries: u64,
    /// Entries read back and verified.
    pub entries_verified: u64,
    /// Broken invariants (at most the first few dozen are kept).
    pub violations: Vec<Violation>,
}

/// One workload call, with the I/O calls it made and the model around it.
struct Span {
    start: u64,
    end: u64,
    before: Model,
    after: Model,
    op: Op,
}

const MAX_VIOLATIONS: usize = 20;

/// Runs `ops` once, then crashes it at every I/O call in every bounded way and checks every
/// distinct recovery.
pub fn explore(ops: &[Op], cfg: &ExploreConfig) -> ExploreReport {
    let mut report = ExploreReport::default();
    let fs = SimFs::new(cfg.seed);
    fs.set_sector_size(cfg.sector_size);
    fs.set_writeback(cfg.writeback);
    fs.set_fallocate(cfg.fallocate);
    fs.set_overwrite(cfg.overwrite);
    if let Some(parent) = cfg.dir.parent() {
        fs.mkdir_durable(parent);
    }
    fs.start_recording();
    let mut runner = Runner::new(fs.clone(), &cfg.dir, cfg.opts.clone());
    let mut spans = Vec::new();
    for op in ops {
        let start = fs.io_calls();
        let before = runner.model.clone();
        if let Err(e) = runner.apply(op) {
            report.violations.push(violation(
                cfg.seed,
                format!("workload call `{op}` failed with no fault injected: {e}"),
                before.summary(),
            ));
            break;
        }
        spans.push(Span {
            start,
            end: fs.io_calls(),
            before,
            after: runner.model.clone(),
            op: op.clone(),
        });
    }
    drop(runner);
    if let Some(what) = fs.identity_reuse() {
        report
            .violations
            .push(violation(cfg.seed, what, "in the workload's run".into()));
    }
    let checkpoints = fs.take_recording();
    report.crash_points = checkpoints.len();
    report.trace = checkpoints.iter().map(|c| c.what.clone()).collect();

    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut images = HashSet::new();
    let mut checked = HashSet::new();
    let mut recovery_images = HashSet::new();
    for cp in &checkpoints {
        let model = model_at(&spans, cp.io_call);
        let pending = cp.to_fs().pending();
        for plan in enumerate_plans(&pending, cfg.plans_per_point, &mut rng) {
            report.plans += 1;
            let crashed = cp.to_fs();
            let crash = crashed.crash_with(CrashMode::Plan(plan), rng.gen());
            let image = crashed.durable_hash();
            images.insert(image);
            if !checked.insert((image, fingerprint(&model))) {
                continue;
            }
            report.checked += 1;
            let context = || {
                format!(
                    "after I/O call #{} `{}`; {crash}; {}",
                    cp.io_call,
                    cp.what,
                    model.summary()
                )
            };
            match recover_and_check(&crashed, &cfg.dir, &cfg.opts, &model) {
                Ok((rec, n)) => {
                    report.recoveries += 1;
                    report.entries_verified += n;
                    if let Err(what) = crash_recovery(
                        &crashed,
                        cfg,
                        &model,
                        &rec,
                        &mut rng,
                        &mut recovery_images,
                        &mut report,
                    ) {
                        if report.violations.len() < MAX_VIOLATIONS {
                            report.violations.push(violation(cfg.seed, what, context()));
                        }
                    }
                }
                Err(what) => {
                    report.recoveries += 1;
                    if report.violations.len() < MAX_VIOLATIONS {
                        report.violations.push(violation(cfg.seed, what, context()));
                    }
                }
            }
        }
    }
    report.distinct_states = images.len();
    report.recovery_crash_states = recovery_images.len();
    report
}

fn violation(seed: u64, what: String, context: String) -> Violation {
    Violation {
        seed,
        what,
        context,
    }
}

/// The model at the crash point right after I/O call `k`: the call in progress is in flight.
fn model_at(spans: &[Span], k: u64) -> Model {
    if let Some(s) = spans.iter().find(|s| s.start < k && k <= s.end) {
        let mut m = s.before.clone();
        m.begin(&s.op);
        return m;
    }
    spans
        .iter()
        .rev()
        .find(|s| s.end <= k)
        .map_or_else(Model::default, |s| s.after.clone())
}

fn fingerprint(m: &Model) -> u64 {
    let mut h = DefaultHasher::new();
    (m.hard.term, m.hard.vote, m.base.index, m.base.term).hash(&mut h);
    (m.acked_last, m.last, m.log.len()).hash(&mut h);
    m.in_flight.as_ref().map(ToString::to_string).hash(&mut h);
    h.finish()
}

/// Opens the WAL on a fork of `fs` and checks it against `model`.
pub fn recover_and_check(
    fs: &SimFs,
    dir: &Path,
    opts: &Options,
    model: &Model,
) -> Result<(Recovered, u64), String> {
    let fork = fs.fork();
    let wal = Wal::open_with(fork.clone(), dir, opts.clone())
        .map_err(|e| format!("open failed after a crash with no corruption injected: {e}"))?;
    let rec =
        Recovered::read(&wal).map_err(|e| format!("reading the recovered WAL failed: {e}"))?;
    let n = check(model, &rec).map_err(|e| format!("{e}; {}", rec.summary()))?;
    if let Some(what) = fork.identity_reuse() {
        return Err(format!("recovery: {what}"));
    }
    Ok((rec, n))
}

/// Crashes recovery of `fs` at each of its I/O calls (a few plans each), recovers again and
/// requires the same state as an uninterrupted recovery.
fn crash_recovery(
    fs: &SimFs,
    cfg: &ExploreConfig,
    model: &Model,
    clean: &Recovered,
    rng: &mut StdRng,
    images: &mut HashSet<u64>,
    report: &mut ExploreReport,
) -> Result<(), String> {
    let rec_fs = fs.fork();
    rec_fs.start_recording();
    let opened = Wal::open_with(rec_fs.clone(), &cfg.dir, cfg.opts.clone());
    drop(opened);
    let checkpoints = rec_fs.take_recording();
    for cp in checkpoints.iter().skip(1) {
        let pending = cp.to_fs().pending();
        for plan in enumerate_plans(&pending, cfg.recovery_plans, rng) {
            let crashed = cp.to_fs();
            let crash = crashed.crash_with(CrashMode::Plan(plan), rng.gen());
            if !images.insert(crashed.durable_hash()) {
                continue;
            }
            let (rec, n) =
                recover_and_check(&crashed, &cfg.dir, &cfg.opts, model).map_err(|e| {
                    format!(
                        "after a crash during recovery (at its call `{}`; {crash}): {e}",
                        cp.what
                    )
                })?;
            report.recoveries += 1;
            report.entries_verified += n;
            if &rec != clean {
                return Err(format!(
                    "recovery does not converge: crashed during recovery at `{}` ({crash}), the \
                     second recovery gives [{}], an uninterrupted one [{}]",
                    cp.what,
                    rec.summary(),
                    clean.summary()
                ));
            }
        }
    }
    Ok(())
}

/// A bounded set of crash plans for `pending`: every subset of the choices when `2^choices`
/// fits in half the budget (else none/all, every prefix and random subsets), then each
/// write torn at its first, middle and last sector with zeros, garbage and old bytes (with
/// the earlier operations of its file kept, and alone; later ones lost), then random plans
/// up to `budget`.
pub fn enumerate_plans(pending: &PendingState, budget: usize, rng: &mut StdRng) -> Vec<CrashPlan> {
    if let Writeback::Pages { page } = pending.writeback {
        return enumerate_page_plans(pending, page, budget, rng);
    }
    let budget = budget.max(1);
    let mut plans: Vec<CrashPlan> = Vec::new();
    let mut seen: HashSet<CrashPlan> = HashSet::new();
    let mut add = |p: CrashPlan, plans: &mut Vec<CrashPlan>| {
        if plans.len() < budget && seen.insert(p.clone()) {
            plans.push(p);
        }
    };
    let n = pending.choices();
    let half = (budget / 2).max(1);
    if n < 63 && (1u64 << n) as usize <= half {
        for mask in 0..(1u64 << n) {
            add(pending.plan_from_mask(mask), &mut plans);
        }
    } else {
        add(pending.plan_from_mask(0), &mut plans);
        add(pending.plan_from_mask(u64::MAX), &mut plans);
        for k in 1..n.min(63) {
            add(pending.plan_from_mask((1u64 << k) - 1), &mut plans);
        }
        let mut tries = 0;
        while plans.len() < half && tries < 4 * half {
            tries += 1;
            add(pending.plan_from_mask(rng.gen()), &mut plans);
        }
    }
    let all = pending.plan_from_mask(u64::MAX);
    for f in &pending.files {
        for (op, &sectors) in f.op_sectors.iter().enumerate() {
            if sectors == 0 {
                continue;
            }
            let mut cuts = vec![0, sectors / 2, sectors - 1];
            cuts.dedup();
            // The torn write with the file's earlier operations kept, and alone (the earlier
            // ones lost: a length change that never reached the disk leaves old bytes
            // around the torn write, which an `Old` fill keeps).
            for alone in [false, true] {
                for &cut in &cuts {
                    for fill in [TornFill::Zeros, TornFill::Garbage, TornFill::Old] {
                        let mut plan = all.clone();
                        if let Some(fc) = plan.files.get_mut(&f.ino) {
                            for (i, k) in fc.keep.iter_mut().enumerate() {
                                *k = if alone { i == op } else { i <= op };
                            }
                            fc.torn = Some(TornWrite {
                                op,
                                sectors_kept: cut,
                                fill,
                            });
                        }
                        add(plan, &mut plans);
                    }
                }
            }
        }
    }
    let mut tries = 0;
    while plans.len() < budget && tries < 2 * budget {
        tries += 1;
        add(pending.random_plan(rng, None), &mut plans);
    }
    plans
}

/// A bounded set of page-level crash plans: no page written, every page written whole (with
/// the directory operations all kept and all undone), then for each dirty page of each file
/// (others written whole): that page lost, torn in its first half of sectors (zeros) and in
/// its second half (garbage), and written as of its first write; then random page crashes
/// up to `budget`.
pub fn enumerate_page_plans(
    pending: &PendingState,
    page: u64,
    budget: usize,
    rng: &mut StdRng,
) -> Vec<CrashPlan> {
    let budget = budget.max(1);
    let mut plans: Vec<CrashPlan> = Vec::new();
    let mut seen: HashSet<CrashPlan> = HashSet::new();
    let mut add = |p: CrashPlan, plans: &mut Vec<CrashPlan>| {
        if plans.len() < budget && seen.insert(p.clone()) {
            plans.push(p);
        }
    };
    let per_page = pending.sectors_per_page(page);
    let first_half = (1u64 << (per_page / 2).max(1)) - 1;
    let all = if per_page == 64 {
        u64::MAX
    } else {
        (1u64 << per_page) - 1
    };
    let whole = |f: &PendingFile| PageCrash {
        resizes_kept: f.resizes,
        pages: f
            .dirty_pages
            .iter()
            .map(|&(p, n)| {
                let fate = PageFate {
                    writes: n,
                    lost_sectors: 0,
                    fill: TornFill::Zeros,
                };
                (p, fate)
            })
            .collect(),
    };
    let base = |keep_dirs: bool| CrashPlan {
        pages: pending.files.iter().map(|f| (f.ino, whole(f))).collect(),
        dir_keep: vec![keep_dirs; pending.dir_ops.len()],
        ..CrashPlan::default()
    };
    add(
        CrashPlan {
            pages: pending
                .files
                .iter()
                .map(|f| (f.ino, PageCrash::default()))
                .collect(),
            ..CrashPlan::default()
        },
        &mut plans,
    );
    add(base(true), &mut plans);
    add(base(false), &mut plans);
    for f in &pending.files {
        for &(p, n) in &f.dirty_pages {
            let variants = [
                None,
                Some((n, first_half, TornFill::Zeros)),
                Some((n, all & !first_half, TornFill::Garbage)),
                Some((1, 0, TornFill::Zeros)),
            ];
            for v in variants {
                let mut plan = base(rng.gen_bool(0.5));
                if let Some(pc) = plan.pages.get_mut(&f.ino) {
                    match v {
                        None => {
                            pc.pages.remove(&p);
                        }
                        Some((writes, lost_sectors, fill)) => {
                            pc.pages.insert(
                                p,
                                PageFate {
                                    writes,
                                    lost_sectors,
                                    fill,
                                },
                            );
                        }
                    }
                }
                add(plan, &mut plans);
            }
        }
    }
    let mut tries = 0;
    while plans.len() < budget && tries < 2 * budget {
        tries += 1;
        add(pending.random_plan(rng, None), &mut plans);
    }
    plans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_pending_sets_are_enumerated_completely_with_tears() {
        let pending = PendingState {
            files: vec![PendingFile {
                ino: 1,
                path: None,
                op_sectors: vec![2, 1, 0],
                dirty_pages: vec![],
                resizes: 1,
            }],
            ..PendingState::default()
        };
        let plans = enumerate_plans(&pending, 64, &mut StdRng::seed_from_u64(0));
        let subsets = plans.iter().filter(|p| p.files[&1].torn.is_none()).count();
        assert!(subsets >= 8);
        let torn = plans.iter().filter(|p| p.files[&1].torn.is_some()).count();
        assert!(
            torn >= 6,
            "two cuts x two fills of op 0, one cut x two fills of op 1"
        );
        assert!(plans.len() <= 64);
    }

    #[test]
    fn large_pending_sets_are_sampled_within_budget() {
        let pending = PendingState {
            files: vec![PendingFile {
                ino: 1,
                path: None,
                op_sectors: vec![1; 30],
                dirty_pages: vec![],
                resizes: 0,
            }],
            ..PendingState::default()
        };
        let a = enumerate_plans(&pending, 100, &mut StdRng::seed_from_u64(3));
        let b = enumerate_plans(&pending, 100, &mut StdRng::seed_from_u64(3));
        assert_eq!(a.len(), 100);
        assert_eq!(a, b);
    }
}
