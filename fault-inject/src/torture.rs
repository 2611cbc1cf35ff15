//! The randomized torture loop shared by the tests and `raftwal torture`.
//!
//! Each cycle arms, with some probability, one I/O fault (EIO on a write, a file sync or a
//! directory sync; ENOSPC past a space budget), runs a random stretch of operations, then
//! cuts the power and recovers. After an I/O error it checks that the handle refuses every
//! later write (`Error::Poisoned`); then, unless configured to crash at once, it reopens the
//! WAL *without* a crash — as an application that restarts its handle does — requires the
//! reopened state to hold everything acknowledged, takes that state as acknowledged (open
//! stood behind it), keeps working on the reopened handle (appends, syncs, truncations,
//! snapshots), and only then cuts the power: what open accepted from the page cache must
//! have been made durable, or the work built on it is lost (fsyncgate).
//!
//! Power cuts use, at random, the write-by-write or the page-level writeback model
//! ([`crate::Writeback`]), on a file system with or without `fallocate`. Around each
//! recovery it also probes, on forks of the machine: a crash during recovery (which must
//! converge), latent sector errors on read (transient and persistent, in segments and in
//! the header), bit flips in durable data (the exact state or a corruption error — with
//! `lazy_open`, also after further operations on the lazily opened handle), and an open on
//! a full disk (which must open, serve reads and compact).

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use raftwal::io::Vfs;
use raftwal::{Options, SnapshotMeta, Wal};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::check::{check, must_reach, promote, Recovered, Violation};
use crate::crash::{CrashMode, Overwrite, Writeback};
use crate::fault::{Fault, FaultCounts, SyncFailure};
use crate::model::{Model, Op};
use crate::namespace::InodeId;
use crate::sim_fs::SimFs;
use crate::workload::{
    next_entries, next_hard_state, random_op, tail_truncation, Runner, WorkloadShape,
};

/// Knobs of a torture run.
#[derive(Debug, Clone)]
pub struct TortureConfig {
    /// Master seed: the whole run is a function of it.
    pub seed: u64,
    /// WAL options.
    pub opts: Options,
    /// Most operations per cycle.
    pub max_ops_per_cycle: u32,
    /// Probability that a cycle arms an I/O fault.
    pub fault_rate: f64,
    /// Probability of a crash-during-recovery probe per recovery.
    pub recovery_crash_rate: f64,
    /// Probability of a bit-flip probe per recovery.
    pub bit_flip_rate: f64,
    /// Probability of a read-EIO probe per recovery.
    pub read_eio_rate: f64,
    /// After an I/O error, reopen the WAL once *without* a crash (checking it lost nothing
    /// acknowledged) before cutting the power. Off, the run models a process that restarts
    /// (or a machine that reboots) right after a failed fsync, as PostgreSQL does.
    pub reopen_after_error: bool,
    /// Shape of appends.
    pub shape: WorkloadShape,
    /// The WAL directory in the simulated file system (created by the WAL; only its
    /// top-level ancestor exists at the start).
    pub dir: PathBuf,
    /// Probability that a power cut writes back dirty data page by page (else write by
    /// write).
    pub page_writeback_rate: f64,
    /// What a torn write can damage (powersafe overwrite by default).
    pub overwrite: Overwrite,
    /// The simulated file system lacks `fallocate`: preallocation writes zeros, which tear.
    pub no_fallocate: bool,
    /// Probability of a full-disk probe per recovery: open with no free space, read, compact.
    pub full_disk_rate: f64,
}

impl TortureConfig {
    /// The defaults with `seed`. One seed in three rotates only in `append`
    /// (`Options::rotate_ahead` off), the others also ahead in `sync`.
    pub fn with_seed(seed: u64) -> Self {
        let mut cfg = TortureConfig {
            seed,
            ..TortureConfig::default()
        };
        cfg.opts.rotate_ahead = seed % 3 != 0;
        cfg
    }
}

impl Default for TortureConfig {
    fn default() -> Self {
        TortureConfig {
            seed: 0,
            opts: Options::default()
                .with_segment_size(8192)
                .with_write_buffer(1024)
                .with_writeback_chunk(512),
            max_ops_per_cycle: 30,
            fault_rate: 0.3,
            recovery_crash_rate: 0.25,
            bit_flip_rate: 0.1,
            read_eio_rate: 0.05,
            reopen_after_error: true,
            shape: WorkloadShape::default(),
            dir: PathBuf::from("/data/node/wal"),
            page_writeback_rate: 0.3,
            overwrite: Overwrite::Powersafe,
            no_fallocate: false,
            full_disk_rate: 0.05,
        }
    }
}

/// Totals of a torture run.
#[derive(Debug, Clone, Default)]
pub struct TortureStats {
    /// Cycles completed.
    pub cycles: u64,
    /// WAL operations issued.
    pub ops: u64,
    /// Operations acknowledged (returned `Ok`).
    pub acked_ops: u64,
    /// Power cuts (main line, plus those during recovery probes).
    pub crashes: u64,
    /// Distinct durable images left by the main-line power cuts.
    pub crash_states: usize,
    /// Power cuts that tore a write.
    pub torn_writes: u64,
    /// Unsynced operations the power cuts dropped.
    pub ops_lost_to_crashes: u64,
    /// Recoveries (opens) checked.
    pub recoveries: u64,
    /// Crashes during recovery followed by a second recovery.
    pub recovery_crashes: u64,
    /// Recoveries that accepted sealed segments unread (`Options::lazy_open`): their
    /// entries were verified by the reads of the check that followed.
    pub lazy_recoveries: u64,
    /// Entries read back and verified.
    pub entries_verified: u64,
    /// Faults fired, by kind.
    pub faults: FaultCounts,
    /// Failed calls after which the handle was checked to refuse writes.
    pub poison_checks: u64,
    /// Bit-flip probes.
    pub flip_probes: u64,
    /// ... in which open or a read reported corruption.
    pub flips_detected: u64,
    /// ... in which the flip did not matter (exact state recovered).
    pub flips_harmless: u64,
    /// ... in which the flip hit the last record of the last segment and recovery took it
    /// for a torn append (inherently ambiguous without an extra sync per batch).
    pub flips_taken_for_torn_tail: u64,
    /// ... in which the flip hit the newest header slot and recovery fell back to the older
    /// one (the two-slot design cannot tell bit rot from a torn slot update).
    pub flips_header_rollback: u64,
    /// Read-EIO probes (transient and persistent).
    pub read_eio_probes: u64,
    /// Power cuts that wrote back page by page.
    pub page_crashes: u64,
    /// Reopens without a crash after an I/O error that were then worked on and crashed.
    pub reopened_and_continued: u64,
    /// Full-disk probes.
    pub full_disk_probes: u64,
    /// Compacted segments freed into the recycle pool, on the main line.
    pub segments_recycled: u64,
    /// Segments made from recycled files, on the main line.
    pub segments_from_pool: u64,
    /// Of those, segments whose header a sync had written ahead, on the main line.
    pub segments_taken_ahead: u64,
    /// Broken invariants.
    pub violations: Vec<Violation>,
}

/// A torture run in progress.
pub struct Torture {
    cfg: TortureConfig,
    fs: SimFs,
    runner: Runner<SimFs>,
    rng: StdRng,
    stats: TortureStats,
    images: HashSet<u64>,
    history: VecDeque<String>,
    /// Faults fired on the forks of probes (not counted by the main file system).
    probe_faults: FaultCounts,
    /// Every segment sequence number seen after a recovery, and the file that carried it:
    /// an identity must never be given to another segment.
    identities: HashMap<u64, InodeId>,
    /// The call the next cycle starts with, chosen with the fault armed for it.
    aimed: Option<Op>,
    /// The last call that returned was a truncation, compaction or snapshot.
    last_op_reshaped: bool,
}

const HISTORY: usize = 40;

impl Torture {
    /// A new run: an empty simulated disk and a freshly opened WAL.
    pub fn new(cfg: TortureConfig) -> Result<Self, Violation> {
        let fs = SimFs::new(cfg.seed);
        fs.set_fallocate(!cfg.no_fallocate);
        fs.set_overwrite(cfg.overwrite);
        let runner = Runner::new(fs.clone(), &cfg.dir, cfg.opts.clone());
        let mut t = Torture {
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
            fs,
            runner,
            stats: TortureStats::default(),
            images: HashSet::new(),
            history: VecDeque::new(),
            probe_faults: FaultCounts::default(),
            identities: HashMap::new(),
            aimed: None,
            last_op_reshaped: false,
        };
        // The WAL creates its directory (and the missing ones above it): only the top exists.
        if let Some(top) = t
            .cfg
            .dir
            .ancestors()
            .filter(|a| a.parent().is_some())
            .last()
        {
            t.fs.mkdir_durable(top);
        }
        let opened = t.runner.open().map(|_| ());
        opened.map_err(|e| t.violation(format!("first open failed: {e}")))?;
        Ok(t)
    }

    /// Totals so far.
    pub fn stats(&self) -> &TortureStats {
        &self.stats
    }

    /// Runs one cycle. A panic inside the WAL is caught and reported as a violation.
    pub fn cycle(&mut self) -> Result<(), Violation> {
        let result = catch_unwind(AssertUnwindSafe(|| self.cycle_inner()));
        let result = match result {
            Ok(r) => r,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "non-string panic".into());
                Err(self.violation(format!("panic: {msg}")))
            }
        };
        self.stats.faults = self.fs.fault_counts();
        self.stats.faults.add(&self.probe_faults);
        self.stats.crash_states = self.images.len();
        let r = self.runner.recycled;
        self.stats.segments_recycled = r.freed;
        self.stats.segments_from_pool = r.from_pool;
        self.stats.segments_taken_ahead = r.taken_ahead;
        match result {
            Ok(()) => {
                self.stats.cycles += 1;
                Ok(())
            }
            Err(v) => {
                self.stats.violations.push(v.clone());
                Err(v)
            }
        }
    }

    fn note(&mut self, event: String) {
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(event);
    }

    fn violation(&self, what: String) -> Violation {
        let mut context = format!(
            "cycle {}; {}",
            self.stats.cycles + 1,
            self.runner.model.summary()
        );
        context.push_str("\n  recent history:");
        for h in &self.history {
            context.push_str("\n    ");
            context.push_str(h);
        }
        Violation {
            seed: self.cfg.seed,
            what,
            context,
        }
    }

    fn cycle_inner(&mut self) -> Result<(), Violation> {
        if self.rng.gen_bool(self.cfg.fault_rate) {
            self.arm_fault();
        }
        let n = self.rng.gen_range(1..=self.cfg.max_ops_per_cycle.max(1));
        if let Some((op, err)) = self.run_ops(n)? {
            return self.after_io_error(&op, &err);
        }
        self.disarm();
        self.crash_and_recover()
    }

    /// Issues `n` random operations. Returns the call an injected fault made fail, if one
    /// did; a failure without a fault, or a fault swallowed by an `Ok`, is a violation.
    fn run_ops(&mut self, n: u32) -> Result<Option<(Op, raftwal::Error)>, Violation> {
        for _ in 0..n {
            let op = match self.aimed.take() {
                Some(op) => op,
                None => random_op(&self.runner.model, &mut self.rng, &self.cfg.shape),
            };
            let before = io_faults(&self.fs.fault_counts());
            self.stats.ops += 1;
            let result = self.runner.apply(&op);
            self.last_op_reshaped = matches!(
                op,
                Op::TruncateSuffix(_) | Op::Compact(_) | Op::SaveSnapshot(..) | Op::CompactTo(_)
            ) && result.is_ok();
            let fired = io_faults(&self.fs.fault_counts()) > before;
            self.check_identities()?;
            match result {
                Ok(()) => {
                    self.stats.acked_ops += 1;
                    self.note(format!("{op}: ok"));
                    if fired {
                        return Err(self.violation(format!(
                            "an injected I/O error during `{op}` was swallowed: the call returned Ok \
                             (never retry-and-continue after a failed write or fsync)"
                        )));
                    }
                }
                Err(e) => {
                    self.note(format!("{op}: {e}"));
                    if !fired {
                        return Err(
                            self.violation(format!("`{op}` failed with no fault injected: {e}"))
                        );
                    }
                    return Ok(Some((op, e)));
                }
            }
        }
        Ok(None)
    }

    fn arm_fault(&mut self) {
        let fault = match self.rng.gen_range(0..5) {
            0 => Fault::WriteEio {
                after: self.rng.gen_range(0..12),
                path: None,
            },
            1 => Fault::SyncEio {
                after: self.rng.gen_range(0..6),
                path: None,
                failure: SyncFailure::Random,
            },
            2 => Fault::DirSyncEio {
                after: self.rng.gen_range(0..3),
            },
            3 if self.runner.model.last > self.runner.model.base.index => {
                // A conflicting-suffix truncation whose cut fails to reach the disk: the
                // stale records stay there, behind what the reopen goes on writing.
                let from = tail_truncation(&self.runner.model, &mut self.rng);
                self.aimed = Some(Op::TruncateSuffix(from));
                Fault::SyncEio {
                    after: 0,
                    path: Some(".wal".into()),
                    failure: SyncFailure::Random,
                }
            }
            _ => {
                let budget = self.fs.live_bytes() + self.rng.gen_range(0..6000);
                self.note(format!("armed: space budget {budget} bytes"));
                self.fs.set_space_budget(Some(budget));
                return;
            }
        };
        self.note(format!("armed: {fault:?}"));
        self.fs.inject(fault);
    }

    fn disarm(&mut self) {
        self.fs.clear_faults();
        self.fs.set_space_budget(None);
    }

    /// After a failed call: later writes refused, reads still served, reopen loses nothing
    /// acknowledged, and then a power cut and a checked recovery.
    fn after_io_error(&mut self, failed: &Op, err: &raftwal::Error) -> Result<(), Violation> {
        self.stats.poison_checks += 1;
        let model = self.runner.model.clone();
        let probes = [
            Op::Append(next_entries(&model, &mut self.rng.clone(), 1, 1..=8)),
            Op::Sync,
            Op::SetHardState(next_hard_state(model.hard, &mut self.rng.clone())),
        ];
        for probe in &probes {
            match self.runner.call(probe) {
                Err(raftwal::Error::Poisoned { .. }) => {}
                other => {
                    return Err(self.violation(format!(
                        "after `{failed}` failed ({err}), `{probe}` was not refused with \
                         Error::Poisoned: {other:?}"
                    )))
                }
            }
        }
        // An acknowledged entry the failed call does not remove or compact away.
        let mut i = model.acked_last;
        let mut floor = model.base.index;
        match failed {
            Op::TruncateSuffix(from) => i = i.min(from.saturating_sub(1)),
            Op::Compact(c) => floor = floor.max(*c),
            Op::SaveSnapshot(m, _) | Op::CompactTo(m) => {
                floor = floor.max(m.index);
                if model.snapshot_conflicts(m) {
                    i = i.min(m.index.saturating_sub(1));
                }
            }
            _ => {}
        }
        if i > floor {
            let got = self.runner.wal.as_ref().map(|w| w.entry(i));
            let want = model.log.get(&i);
            let ok = matches!((&got, want), (Some(Ok(g)), Some(w)) if g == w);
            let enospc = matches!(err, raftwal::Error::Io { source, .. }
                if source.kind() == std::io::ErrorKind::StorageFull);
            if !ok && enospc {
                return Err(self.violation(format!(
                    "after ENOSPC ({err}) reads no longer work: entry({i}) gave {got:?}"
                )));
            }
        }
        self.disarm();
        if !self.cfg.reopen_after_error {
            return self.crash_and_recover();
        }
        // Reopen without a crash: nothing acknowledged may be missing, and what open
        // returns is what the WAL now stands behind — the page cache may hold pages a failed
        // fsync marked clean, which open must have made durable before returning. So the
        // reopened state becomes the acknowledged one, and work continues on it before the
        // power is cut.
        self.runner.wal = None;
        self.last_op_reshaped = false;
        match self.runner.open() {
            Ok(_) => {
                self.stats.recoveries += 1;
                let rec = self.read_recovered("reopen after an I/O error")?;
                let n = check(&self.runner.model, &rec).map_err(|e| {
                    self.violation(format!(
                        "reopen after `{failed}` failed ({err}): {e}; {}",
                        rec.summary()
                    ))
                })?;
                self.stats.entries_verified += n;
                self.note(format!("reopened without crash: {}", rec.summary()));
                promote(&mut self.runner.model, &rec);
            }
            Err(e) => {
                return Err(self.violation(format!(
                    "reopen after `{failed}` failed ({err}) was refused: {e}"
                )))
            }
        }
        self.stats.reopened_and_continued += 1;
        let n = self.rng.gen_range(1..=self.cfg.max_ops_per_cycle.max(1));
        if let Some((op, e)) = self.run_ops(n)? {
            return Err(self.violation(format!(
                "`{op}` on the handle reopened after an I/O error failed: {e}"
            )));
        }
        self.crash_and_recover()
    }

    fn read_recovered(&self, when: &str) -> Result<Recovered, Violation> {
        let Some(w) = self.runner.wal.as_ref() else {
            return Err(self.violation(format!("{when}: no WAL open")));
        };
        Recovered::read(w)
            .map_err(|e| self.violation(format!("{when}: reading the recovered WAL failed: {e}")))
    }

    fn crash_and_recover(&mut self) -> Result<(), Violation> {
        self.runner.wal = None;
        let sector = if self.rng.gen_bool(0.2) { 64 } else { 512 };
        self.fs.set_sector_size(sector);
        let pages = self.rng.gen_bool(self.cfg.page_writeback_rate);
        self.fs.set_writeback(if pages {
            self.stats.page_crashes += 1;
            Writeback::Pages { page: 4096 }
        } else {
            Writeback::Writes
        });
        let report = self.fs.crash(self.rng.gen());
        self.stats.crashes += 1;
        self.stats.torn_writes += u64::from(report.torn());
        self.stats.ops_lost_to_crashes += report.ops_lost() as u64;
        self.images.insert(self.fs.durable_hash());
        self.note(report.to_string());

        if self.rng.gen_bool(self.header_rot_rate()) {
            self.probe_header_rot_before_recovery()?;
        }
        let clean = self.probe_recovery_crash()?;
        let opened = self.runner.open().map(|_| ());
        self.last_op_reshaped = false;
        opened.map_err(|e| {
            self.violation(format!(
                "open failed after a crash with no corruption injected: {e}"
            ))
        })?;
        self.stats.recoveries += 1;
        if self
            .runner
            .wal
            .as_ref()
            .is_some_and(|w| w.recovery_report().segments_deferred > 0)
        {
            self.stats.lazy_recoveries += 1;
        }
        let rec = self.read_recovered("recovery")?;
        let n = check(&self.runner.model, &rec)
            .map_err(|e| self.violation(format!("after recovery: {e}; {}", rec.summary())))?;
        if let Some(clean) = clean {
            if clean != rec {
                return Err(self.violation(format!(
                    "recovery is not deterministic: [{}] then [{}]",
                    clean.summary(),
                    rec.summary()
                )));
            }
        }
        self.stats.entries_verified += n;
        self.note(rec.summary());
        self.check_identities()?;
        promote(&mut self.runner.model, &rec);
        if self.rng.gen_bool(self.cfg.bit_flip_rate) {
            self.probe_bit_flip()?;
        }
        if self.rng.gen_bool(self.cfg.read_eio_rate) {
            self.probe_read_eio()?;
        }
        if self.rng.gen_bool(self.cfg.full_disk_rate) {
            self.probe_full_disk()?;
        }
        Ok(())
    }

    /// On a fork: recover with recording, crash at a random I/O call of recovery, recover
    /// again; both must agree. Returns the uninterrupted recovery's state if probed.
    fn probe_recovery_crash(&mut self) -> Result<Option<Recovered>, Violation> {
        if !self.rng.gen_bool(self.cfg.recovery_crash_rate) {
            return Ok(None);
        }
        let fork = self.fs.fork();
        fork.start_recording();
        let clean = match Wal::open_with(fork.clone(), &self.cfg.dir, self.cfg.opts.clone()) {
            Ok(w) => Recovered::read(&w).ok(),
            Err(_) => None, // reported by the main-line recovery
        };
        let checkpoints = fork.take_recording();
        let Some(clean) = clean else { return Ok(None) };
        if checkpoints.len() < 2 {
            return Ok(Some(clean));
        }
        let cp = &checkpoints[self.rng.gen_range(1..checkpoints.len())];
        let crashed = cp.to_fs();
        let report = crashed.crash(self.rng.gen());
        self.stats.crashes += 1;
        self.stats.recovery_crashes += 1;
        let again = Wal::open_with(crashed, &self.cfg.dir, self.cfg.opts.clone())
            .and_then(|w| Recovered::read(&w));
        self.stats.recoveries += 1;
        match again {
            Ok(rec) if rec == clean => Ok(Some(clean)),
            Ok(rec) => Err(self.violation(format!(
                "recovery does not converge: crashed during recovery at `{}` ({report}), then \
                 [{}]; uninterrupted [{}]",
                cp.what,
                rec.summary(),
                clean.summary()
            ))),
            Err(e) => Err(self.violation(format!(
                "open failed after a crash during recovery at `{}` ({report}): {e}; the \
                 recovery's I/O calls: [{}]",
                cp.what,
                checkpoints
                    .iter()
                    .skip(1)
                    .map(|c| c.what.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
        }
    }

    /// On a fork holding only durable data: flip one bit in a WAL file; open must return the
    /// exact state or a corruption error.
    /// No segment sequence number is ever carried by two different durable segment files:
    /// the records of a removed segment must never verify in a later one. (A segment whose
    /// creation never became durable never held a record, so its number may come back.)
    fn check_identities(&mut self) -> Result<(), Violation> {
        // Every header ever written, pool files' included (recovery never reads those).
        if let Some(what) = self.fs.identity_reuse() {
            return Err(self.violation(what));
        }
        let names = self.fs.list(&self.cfg.dir).unwrap_or_default();
        for name in names.iter().filter(|n| n.ends_with(".wal")) {
            let path = self.cfg.dir.join(name);
            let (Some(ino), Some(bytes)) = (
                self.fs.durable_inode(&path),
                self.fs.durable_contents(&path),
            ) else {
                continue;
            };
            let Some(seq) = bytes.get(16..24).and_then(|b| b.try_into().ok()) else {
                continue;
            };
            let seq = u64::from_le_bytes(seq);
            match self.identities.insert(seq, ino) {
                Some(other) if other != ino => {
                    return Err(self.violation(format!(
                        "segment sequence {seq} is reused by {name}, a different file from the \
                         segment that had it"
                    )))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Opens and reads a machine whose disk had `where_` flipped: `None` if open reported
    /// the damage (counted as detected), a violation if it failed any other way.
    fn open_after_flip(
        &mut self,
        fork: SimFs,
        opts: Options,
        where_: &str,
    ) -> Result<Option<Recovered>, Violation> {
        match Wal::open_with(fork, &self.cfg.dir, opts).and_then(|w| Recovered::read(&w)) {
            Ok(rec) => Ok(Some(rec)),
            Err(e) if e.is_corruption() => {
                self.stats.flips_detected += 1;
                Ok(None)
            }
            Err(e) => Err(self.violation(format!(
                "after flipping {where_}, open failed with an error that is not a corruption \
                 error: {e}"
            ))),
        }
    }

    /// How often bit rot hits the newest header slot before a recovery: half the flip rate,
    /// and half the time when that slot is what the last call wrote — a truncation,
    /// compaction or snapshot (done or in flight) with nothing appended since. The slot
    /// then holds the only record of how that call reshaped the log (a batch's new end, a
    /// new base), which is what a fall-back to the older slot must not lose.
    fn header_rot_rate(&self) -> f64 {
        let model = &self.runner.model;
        let reshaped = match &model.in_flight {
            Some(op) => matches!(
                op,
                Op::TruncateSuffix(_) | Op::Compact(_) | Op::SaveSnapshot(..) | Op::CompactTo(_)
            ),
            None => !model.appended_since_header && self.last_op_reshaped,
        };
        if reshaped && self.cfg.bit_flip_rate > 0.0 {
            0.5
        } else {
            self.cfg.bit_flip_rate / 2.0
        }
    }

    /// On a fork of the crashed machine, before recovery: bit rot in the newest header
    /// slot (the one the last term/vote change, truncation, compaction or snapshot wrote;
    /// after an open both slots agree). Open must return the exact state, report the damage,
    /// or fall back to the older slot only when nothing on disk proves the newer one was
    /// acknowledged (no entry synced after it).
    fn probe_header_rot_before_recovery(&mut self) -> Result<(), Violation> {
        self.stats.flip_probes += 1;
        let fork = self.fs.fork();
        let header = self.cfg.dir.join("HEADER");
        let Some(bytes) = fork.durable_contents(&header).filter(|b| b.len() >= 8192) else {
            return Ok(());
        };
        let seq =
            |at: usize| u64::from_le_bytes(bytes[at + 16..at + 24].try_into().unwrap_or([0; 8]));
        let newest = if seq(0) > seq(4096) { 0 } else { 4096 };
        let offset = newest + self.rng.gen_range(0..512);
        let bit = self.rng.gen_range(0..8);
        if fork.flip_bit(&header, offset, bit).is_err() {
            return Ok(());
        }
        self.probe_faults.bit_flips += 1;
        let model = self.runner.model.clone();
        let where_ = format!("bit {bit} of HEADER byte {offset} before recovery");
        let opts = self.cfg.opts.clone();
        let Some(rec) = self.open_after_flip(fork, opts, &where_)? else {
            return Ok(());
        };
        if check(&model, &rec).is_ok() {
            self.stats.flips_harmless += 1;
            return Ok(());
        }
        if is_older_header(&model, &rec) && !model.synced_since_header {
            // The documented window: nothing on disk proves the newer slot was
            // acknowledged, so open recovers under the older one (its term, vote and base;
            // never without an acknowledged entry).
            self.stats.flips_header_rollback += 1;
            return Ok(());
        }
        Err(self.violation(format!(
            "after flipping {where_} (the newest slot), open returned a state the older slot \
             does not explain, or fell back although entries synced after the newer slot's \
             update prove it was acknowledged: {} ({})",
            rec.summary(),
            check(&model, &rec).err().unwrap_or_default()
        )))
    }

    fn probe_bit_flip(&mut self) -> Result<(), Violation> {
        self.stats.flip_probes += 1;
        let fork = self.fs.fork();
        fork.crash_with(CrashMode::LoseAll, 0);
        let names = fork.list(&self.cfg.dir).unwrap_or_default();
        let files: Vec<(String, u64)> = names
            .iter()
            .filter_map(|n| {
                let len = fork.durable_contents(&self.cfg.dir.join(n))?.len() as u64;
                (len > 0).then(|| (n.clone(), len))
            })
            .collect();
        if files.is_empty() {
            return Ok(());
        }
        let (name, len) = files[self.rng.gen_range(0..files.len())].clone();
        let offset = if name == "HEADER" && len >= 8192 {
            // A slot's bytes (the rest of each page is zeros nobody reads).
            self.rng.gen_range(0..2u64) * 4096 + self.rng.gen_range(0..512)
        } else {
            self.rng.gen_range(0..len)
        };
        let bit = self.rng.gen_range(0..8);
        let path = self.cfg.dir.join(&name);
        if fork.flip_bit(&path, offset, bit).is_err() {
            return Ok(());
        }
        self.probe_faults.bit_flips += 1;
        let mut model = self.runner.model.clone();
        let where_ = format!("bit {bit} of byte {offset} of {name}");
        if self.cfg.opts.lazy_open {
            // A lazily opened handle defers reading the middle segments: work on it first
            // (the damage may sit in a segment no call reads until a truncation, compaction
            // or snapshot decides from it), then look at what it left with a full scan.
            let segment_first = name.strip_suffix(".wal").and_then(|n| n.parse().ok());
            if let Some(done) =
                self.lazy_work_after_flip(&fork, &mut model, &where_, segment_first)?
            {
                return Ok(done);
            }
        }
        let full = self.cfg.opts.clone().with_lazy_open(false);
        let Some(rec) = self.open_after_flip(fork, full, &where_)? else {
            return Ok(());
        };
        if check(&model, &rec).is_ok() && rec.hard == model.hard {
            self.stats.flips_harmless += 1;
            return Ok(());
        }
        if name == "HEADER" && is_older_header(&model, &rec) {
            if model.synced_since_header {
                return Err(self.violation(format!(
                    "after flipping {where_}, open fell back to an older header slot ({}) \
                     although entries synced after the last header update prove the newer \
                     slot was acknowledged",
                    rec.summary()
                )));
            }
            self.stats.flips_header_rollback += 1;
            return Ok(());
        }
        if rec.hard == model.hard && lost_tail_within_last_group(&model, &rec) {
            self.stats.flips_taken_for_torn_tail += 1;
            return Ok(());
        }
        Err(self.violation(format!(
            "after flipping {where_} (files: {}), open silently returned a different state: {} ({}); \
             expected {}",
            names.join(" "),
            rec.summary(),
            check(&model, &rec).err().unwrap_or_default(),
            model.summary()
        )))
    }

    /// After a bit flip, on a lazily opened handle: a few random operations, each of which
    /// must succeed, or fail with a corruption error (then the probe ends: detected). Their
    /// effects join `model`. `Some(())` if the probe is over. When the flip hit a segment
    /// starting at `segment_first`, the first operation is, half the time, a snapshot,
    /// compaction or truncation at that index: a call that decides from the damaged
    /// segment without reading an entry of it first.
    fn lazy_work_after_flip(
        &mut self,
        fork: &SimFs,
        model: &mut Model,
        where_: &str,
        segment_first: Option<u64>,
    ) -> Result<Option<()>, Violation> {
        let mut runner = Runner::new(fork.clone(), &self.cfg.dir, self.cfg.opts.clone());
        runner.model = model.clone();
        match runner.open() {
            Ok(_) => {}
            Err(e) if e.is_corruption() => {
                self.stats.flips_detected += 1;
                return Ok(Some(()));
            }
            Err(e) => {
                return Err(self.violation(format!(
                    "after flipping {where_}, a lazy open failed with an error that is not a \
                     corruption error: {e}"
                )))
            }
        }
        let visible = runner
            .wal
            .as_ref()
            .map(|w| (w.hard_state(), w.snapshot_meta(), w.last_index()));
        if visible != Some((model.hard, model.base, model.acked_last)) {
            // The flip changed what open shows (a torn-looking tail cut, an older header
            // slot): classified by the full scan below.
            return Ok(None);
        }
        let mut rng = StdRng::seed_from_u64(self.rng.gen());
        let mut aimed = segment_first
            .filter(|&i| i > model.base.index && i <= model.acked_last && rng.gen_bool(0.5))
            .map(|i| aimed_at(model, i, &mut rng));
        for _ in 0..rng.gen_range(1..=6) {
            let op = aimed
                .take()
                .unwrap_or_else(|| random_op(&runner.model, &mut rng, &self.cfg.shape));
            match runner.apply(&op) {
                Ok(()) => {}
                Err(e) if e.is_corruption() => {
                    self.stats.flips_detected += 1;
                    return Ok(Some(()));
                }
                Err(e) => {
                    return Err(self.violation(format!(
                        "after flipping {where_}, `{op}` on the lazily opened WAL failed with \
                         an error that is not a corruption error: {e}"
                    )))
                }
            }
        }
        // Unsynced appends die with the handle, as in a crash.
        runner.wal = None;
        fork.crash_with(CrashMode::LoseAll, 0);
        *model = runner.model.clone();
        Ok(None)
    }

    /// On a fork holding only durable data: the disk is full (no byte left). Open must
    /// succeed, every read must work, and a compaction must succeed (it frees space);
    /// appends may then fail for space, never silently.
    fn probe_full_disk(&mut self) -> Result<(), Violation> {
        self.stats.full_disk_probes += 1;
        let fork = self.fs.fork();
        fork.crash_with(CrashMode::LoseAll, 0);
        fork.set_space_budget(Some(fork.live_bytes()));
        let mut runner = Runner::new(fork.clone(), &self.cfg.dir, self.cfg.opts.clone());
        runner.model = self.runner.model.clone();
        if let Err(e) = runner.open() {
            return Err(self.violation(format!("open on a full disk failed: {e}")));
        }
        let rec = match runner.wal.as_ref().map(Recovered::read) {
            Some(Ok(rec)) => rec,
            other => return Err(self.violation(format!("reads on a full disk failed: {other:?}"))),
        };
        check(&runner.model, &rec)
            .map_err(|e| self.violation(format!("open on a full disk: {e}")))?;
        let model = &runner.model;
        if model.acked_last > model.base.index {
            let op = Op::Compact(model.acked_last);
            if let Err(e) = runner.apply(&op) {
                return Err(self.violation(format!("`{op}` on a full disk failed: {e}")));
            }
        }
        self.probe_faults.enospc += fork.fault_counts().enospc;
        Ok(())
    }

    /// On a fork holding only durable data: a latent sector error in a segment or in the
    /// header, transient or persistent. Open or reads may fail with an I/O error, but
    /// whatever is returned must be right; one unreadable header slot must not stop open;
    /// with the error persisting the WAL must keep working; once the error is gone,
    /// everything acknowledged must still be there.
    fn probe_read_eio(&mut self) -> Result<(), Violation> {
        self.stats.read_eio_probes += 1;
        let fork = self.fs.fork();
        fork.crash_with(CrashMode::LoseAll, 0);
        let names = fork.list(&self.cfg.dir).unwrap_or_default();
        let segs: Vec<(String, u64)> = names
            .iter()
            .filter(|n| n.ends_with(".wal") || n.as_str() == "HEADER")
            .filter_map(|n| {
                Some((
                    n.clone(),
                    fork.contents(&self.cfg.dir.join(n))?.len() as u64,
                ))
            })
            .filter(|(_, len)| *len > 0)
            .collect();
        if segs.is_empty() {
            return Ok(());
        }
        // A third of the probes aim at a HEADER slot's sector: an unreadable slot makes open
        // rewrite the header whole, a path worth following (see
        // `rot_a_slot_of_a_rewritten_header`).
        let header = segs.iter().find(|(n, _)| n == "HEADER").cloned();
        let (name, len) = match header {
            Some(h) if self.rng.gen_bool(0.33) => h,
            _ => segs[self.rng.gen_range(0..segs.len())].clone(),
        };
        let offset = if name == "HEADER" && self.rng.gen_bool(0.75) {
            [0, 4096][self.rng.gen_range(0..2)]
        } else {
            self.rng.gen_range(0..len) / 512 * 512
        };
        fork.inject(Fault::ReadEio {
            path: name.clone(),
            offset,
            len: 512,
        });
        let model = self.runner.model.clone();
        let at = format!("{name}@{offset}");
        let persistent = self.rng.gen_bool(0.5);
        let unopened = (name == "HEADER").then(|| fork.fork());
        match Wal::open_with(fork.clone(), &self.cfg.dir, self.cfg.opts.clone()) {
            Ok(w) => {
                self.check_reads_under_eio(&w, &model, &at)?;
                drop(w);
                if let Some(copy) = unopened {
                    self.rot_a_slot_of_a_rewritten_header(copy, &model, &at)?;
                }
                if persistent {
                    self.work_under_persistent_eio(&fork.fork(), &model, &at)?;
                }
            }
            Err(raftwal::Error::Io { .. }) if name != "HEADER" => {}
            Err(e) => {
                return Err(self.violation(format!(
                    "with a read error at {at}, open failed with something other than an \
                     I/O error on a segment: {e}"
                )))
            }
        }
        self.probe_faults.read_eio += fork.fault_counts().read_eio;
        fork.clear_faults();
        let rec = Wal::open_with(fork, &self.cfg.dir, self.cfg.opts.clone())
            .and_then(|w| Recovered::read(&w))
            .map_err(|e| {
                self.violation(format!(
                    "after a transient read error at {name}@{offset}, reopen failed: {e}"
                ))
            })?;
        check(&model, &rec).map_err(|e| {
            self.violation(format!(
                "after a transient read error at {name}@{offset}, acknowledged state lost: {e}"
            ))
        })?;
        Ok(())
    }
}

impl Torture {
    /// With a read error in place: every read returns the right data or an I/O error.
    fn check_reads_under_eio<V: Vfs>(
        &self,
        w: &Wal<V>,
        model: &Model,
        at: &str,
    ) -> Result<(), Violation> {
        let header_rollback = |hs: raftwal::HardState| {
            hs.term < model.hard.term || (hs.term == model.hard.term && hs.vote.is_none())
        };
        if w.hard_state() != model.hard && !header_rollback(w.hard_state()) {
            return Err(self.violation(format!(
                "with a read error at {at}, the hard state is {:?}, acknowledged {:?}",
                w.hard_state(),
                model.hard
            )));
        }
        for i in w.first_index()..=w.last_index() {
            match (w.entry(i), model.log.get(&i)) {
                (Ok(got), Some(want)) if &got == want => {}
                (Err(raftwal::Error::Io { .. }), _) => {}
                (got, want) => {
                    return Err(self.violation(format!(
                        "with a read error at {at}, entry({i}) gave {got:?}, appended {want:?}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// With the read error persisting: append and sync on a fresh handle must work, and a
    /// reopen must still hold them (or fail with an I/O error).
    fn work_under_persistent_eio(
        &mut self,
        fork: &SimFs,
        model: &Model,
        at: &str,
    ) -> Result<(), Violation> {
        let mut runner = Runner::new(fork.clone(), &self.cfg.dir, self.cfg.opts.clone());
        runner.model = model.clone();
        if runner.open().is_err() {
            return Ok(()); // reported above: opening once worked, the read error is in a
                           // segment a later open reads again
        }
        let mut rng = StdRng::seed_from_u64(self.rng.gen());
        let op = Op::Append(next_entries(&runner.model, &mut rng, 2, 0..=64));
        for op in [op, Op::Sync] {
            if let Err(e) = runner.apply(&op) {
                return Err(self.violation(format!(
                    "with a persistent read error at {at}, `{op}` failed: {e}"
                )));
            }
        }
        runner.wal = None;
        match Wal::open_with(fork.clone(), &self.cfg.dir, self.cfg.opts.clone()) {
            Ok(w) => self.check_reads_under_eio(&w, &runner.model, at),
            Err(raftwal::Error::Io { .. }) => Ok(()),
            Err(e) => Err(self.violation(format!(
                "with a persistent read error at {at}, reopen failed with something other \
                 than an I/O error: {e}"
            ))),
        }
    }
}

impl Torture {
    /// On a copy of the machine with a HEADER sector unreadable: open (which then rewrites
    /// the header whole), a synced append, a power cut, then bit rot in either slot. The
    /// rewrite gave both slots the same state, so open must recover the acknowledged state
    /// from the other — never refuse it as a rollback.
    fn rot_a_slot_of_a_rewritten_header(
        &mut self,
        fs: SimFs,
        model: &Model,
        at: &str,
    ) -> Result<(), Violation> {
        let mut runner = Runner::new(fs.clone(), &self.cfg.dir, self.cfg.opts.clone());
        runner.model = model.clone();
        if runner.open().is_err() {
            return Ok(()); // judged by the caller on its own copy
        }
        let mut rng = StdRng::seed_from_u64(self.rng.gen());
        let op = Op::Append(next_entries(&runner.model, &mut rng, 2, 0..=64));
        for op in [op, Op::Sync] {
            if runner.apply(&op).is_err() {
                return Ok(()); // a persistent read error may fail it: judged by the caller
            }
        }
        runner.wal = None;
        fs.clear_faults();
        fs.crash(self.rng.gen());
        let header = self.cfg.dir.join("HEADER");
        let slot = if self.rng.gen_bool(0.5) { 0 } else { 4096 };
        let offset = slot + self.rng.gen_range(0..512);
        if fs
            .flip_bit(&header, offset, self.rng.gen_range(0..8))
            .is_err()
        {
            return Ok(());
        }
        self.probe_faults.bit_flips += 1;
        let rec = Wal::open_with(fs, &self.cfg.dir, self.cfg.opts.clone())
            .and_then(|w| Recovered::read(&w))
            .map_err(|e| {
                self.violation(format!(
                    "the header rewritten at open after a read error at {at}, then bit rot \
                     at HEADER byte {offset}: open refused although the other slot holds the \
                     same state: {e}"
                ))
            })?;
        check(&runner.model, &rec).map(drop).map_err(|e| {
            self.violation(format!(
                "the header rewritten at open after a read error at {at}, then bit rot at \
                 HEADER byte {offset}: {e}; {}",
                rec.summary()
            ))
        })
    }
}

/// A snapshot, compaction or truncation at `index` (which the model holds).
fn aimed_at(model: &Model, index: u64, rng: &mut StdRng) -> Op {
    let term = model.term(index).unwrap_or(model.base.term);
    match rng.gen_range(0..3) {
        0 => Op::SaveSnapshot(SnapshotMeta { index, term }, b"aimed".to_vec()),
        1 => Op::Compact(index),
        _ => Op::TruncateSuffix(index),
    }
}

/// Whether `rec` is the acknowledged state seen through an older header slot: term and base
/// no newer, no acknowledged entry lost (the older slot's base is below them: they must all
/// be there), and every entry the model still knows unchanged.
fn is_older_header(model: &Model, rec: &Recovered) -> bool {
    (rec.app == model.app || rec.app == model.prev_app)
        && rec.hard.term <= model.hard.term
        && rec.base.index <= model.base.index
        && rec.last >= must_reach(model)
        && rec
            .entries
            .iter()
            .all(|e| e.index <= model.base.index || model.log.get(&e.index) == Some(e))
}

/// Whether `rec` is the acknowledged state minus a suffix of entries of the last group made
/// durable together: the damaged record was taken for a torn append. Records of one unsynced
/// group may reach the disk in any order, so valid records after a bad one prove nothing
/// unless they belong to a later group; without a durable record of how far each group was
/// synced, damage in the last group is indistinguishable from a torn append.
fn lost_tail_within_last_group(model: &Model, rec: &Recovered) -> bool {
    let kept_ok = rec
        .entries
        .iter()
        .all(|e| model.log.get(&e.index) == Some(e));
    kept_ok
        && rec.base == model.base
        && rec.last < model.acked_last
        && rec.last + 1 >= model.last_group_start()
}

fn io_faults(c: &FaultCounts) -> u64 {
    c.write_eio + c.sync_eio + c.dir_sync_eio + c.enospc
}

/// Runs `cycles` cycles of seed `seed` with default knobs; returns the totals, or the first
/// violation.
pub fn run(seed: u64, cycles: u64) -> Result<TortureStats, Box<Violation>> {
    let mut t = Torture::new(TortureConfig::with_seed(seed)).map_err(Box::new)?;
    for _ in 0..cycles {
        t.cycle().map_err(Box::new)?;
    }
    Ok(t.stats().clone())
}

/// The model type re-exported for users of the loop.
pub type TortureModel = Model;
