//! [`Tester`]: the lab's `config.go` over the deterministic simulator.
//!
//! A virtual clock in milliseconds, `n` nodes ticking every [`Config::TICK_MS`] (each with
//! its own phase), a network of one-way messages with the lab's `labrpc` behaviours, the
//! lab's checks (`check_one_leader`, `check_terms`, `check_no_leader`, `n_committed`, `one`,
//! `wait`, `LogSize`) and its apply checker, and beside them the global safety checker
//! ([`crate::sim::CheckerMode`]). Blocking helpers (`one`, `sleep`, ...) run the event loop
//! for simulated time; concurrent clients (the lab's goroutines) are tasks the loop polls.
//! Everything is drawn from one seeded RNG, so a run is a function of its seed.
//!
//! ## The network (labrpc)
//!
//! A request is counted (RPCs, bytes) when sent, and goes through only if the link is up
//! at that moment — both ends connected (labrpc checks `enabled` once, when the request
//! enters the network). Once through, it reaches the node it was sent to even if a link
//! goes down meanwhile, unless that node crashed since (labrpc calls the handler of the
//! server object it looked up; a replaced server's replies are dropped). The reply is
//! handed back whatever the links do by then — labrpc never checks `enabled` on the way
//! back, so a long-delayed reply arrives after a disconnect — unless the caller crashed
//! since (its old instance is gone). A reply's bytes are counted when it is handed back, as
//! labrpc does. Unreliable: 10% of requests and 10% of replies dropped, requests delayed
//! 0–27 ms; long reordering: two thirds of the replies delayed 200–2200 ms. Every message
//! also takes 1–3 ms.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use raftwal_fault::Checkpoint;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::apply::Apply;
use crate::config::{Bugs, Config};
use crate::message::{Envelope, Message};
use crate::raft::{Input, Raft};
use crate::sim::checker::{Checker, CheckerMode};
use crate::sim::client::{Client, ClientId};
use crate::sim::storage::{segment_record_capacity, Disk, SimStorage, StoreKind};

/// The lab's `RaftElectionTimeout` (1 s).
pub const ELECTION_TIMEOUT_MS: u64 = 1000;
/// The lab's `SnapShotInterval`: the service snapshots at every index `i` with
/// `(i + 1) % 10 == 0`.
pub const SNAPSHOT_INTERVAL: u64 = 10;
/// The lab's `MAXLOGSIZE` bound on the persisted log after snapshots, in bytes.
pub const MAX_LOG_SIZE: usize = 2000;
/// The lab's limit on one test: a run taking more simulated time than this fails ("test
/// took longer than 120 seconds").
pub const MAX_SIM_MS: u64 = 120_000;
/// With [`Driver::Batch`], messages reaching a node within this many milliseconds of the
/// first one are handled in one `handle_batch`.
pub const BATCH_WINDOW_MS: u64 = 2;
/// The share of WAL crashes that cut the power in the middle of an input (and of restarts
/// whose recovery is cut once) unless `RAFT_MID_PERSIST_SHARE` says otherwise.
pub const DEFAULT_MID_PERSIST_SHARE: f64 = 0.5;

/// Result of a tester call: the failure message on error.
pub type TResult<T> = Result<T, String>;

/// How the simulator hands inputs to the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    /// One input at a time: `tick`, `step`, `propose`, each with its own persist.
    #[default]
    Single,
    /// Group commit through [`Raft::handle_batch`], as the demo does: messages that reach a
    /// node within [`BATCH_WINDOW_MS`] are handled together with its next tick or proposal
    /// (or alone when the window closes), one persist for the lot.
    Batch,
}

impl Driver {
    /// `""` or `"+batch"`, appended to the store's name in reports.
    pub fn suffix(self) -> &'static str {
        match self {
            Driver::Single => "",
            Driver::Batch => "+batch",
        }
    }
}

/// How a run is set up beyond the lab's `make_config` arguments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimOptions {
    /// Single inputs or batches.
    pub driver: Driver,
    /// The safety checker's mode (on, failing the run, by default).
    pub checker: CheckerMode,
    /// Over the WAL: the share of crashes that cut the power in the middle of an input (a
    /// message, a proposal, an election, and the service's `Snapshot()` calls it leads to),
    /// and, separately, the share of restarts whose WAL recovery is itself cut once.
    pub mid_persist_share: f64,
    /// Planted bugs for every node (the checker's own tests; all off by default).
    pub bugs: Bugs,
    /// [`Config::leader_noop`] for every node (off by default, as in the lab).
    pub leader_noop: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            driver: Driver::Single,
            checker: CheckerMode::Enforce,
            mid_persist_share: DEFAULT_MID_PERSIST_SHARE,
            bugs: Bugs::default(),
            leader_noop: false,
        }
    }
}

impl SimOptions {
    /// The defaults, with `RAFT_MID_PERSIST_SHARE` (0.0–1.0) if set.
    pub fn from_env() -> Self {
        let mut o = SimOptions::default();
        if let Some(s) = std::env::var("RAFT_MID_PERSIST_SHARE")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
        {
            o.mid_persist_share = s.clamp(0.0, 1.0);
        }
        o
    }
}

/// Figures of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunStats {
    /// Simulated milliseconds.
    pub sim_ms: u64,
    /// Requests sent (RequestVote, AppendEntries, InstallSnapshot): the lab's `rpcTotal`.
    pub rpcs: u64,
    /// Bytes of requests sent plus replies handed back: the lab's `bytesTotal`.
    pub bytes: u64,
    /// Of `bytes`, those of replies.
    pub reply_bytes: u64,
    /// Highest index committed.
    pub max_index: u64,
    /// Node crashes.
    pub crashes: u64,
    /// Crashes that cut the power in the middle of a node's input (WAL only).
    pub mid_persist_crashes: u64,
    /// Of those, cuts that struck inside the service's `Snapshot()`.
    pub snapshot_cuts: u64,
    /// Restarts whose WAL recovery was itself cut by a power failure (then run again).
    pub recovery_cuts: u64,
    /// Restarts whose WAL recovery cut a torn tail or removed files that never became
    /// durable (WAL only).
    pub torn_recoveries: u64,
    /// Largest live persisted log measured by the 3D check (any server, crashed included).
    pub log_live_max: u64,
    /// Largest log the store retained at those checks (compacted frames included).
    pub log_retained_max: u64,
    /// Safety violations the checker found.
    pub violations: u64,
    /// The service's `Snapshot()` calls.
    pub snapshots: u64,
}

struct InFlight {
    env: Envelope,
    /// The incarnation of the receiving node this message is for.
    to_inc: u64,
    /// The sender's incarnation when it sent it.
    from_inc: u64,
}

/// One simulated cluster and its checks.
pub struct Tester {
    n: usize,
    store: StoreKind,
    snapshots: bool,
    opts: SimOptions,
    pub(crate) rng: StdRng,
    pub(crate) now: u64,
    nodes: Vec<Option<Raft<SimStorage>>>,
    disks: Vec<Disk>,
    /// Bumped at every crash and restart: messages for an older incarnation are dropped.
    incarnation: Vec<u64>,
    /// `caller_inc[j][i]`: the incarnation of `i` when it sent the last request `j` handled
    /// (the caller the reply goes back to).
    caller_inc: Vec<Vec<u64>>,
    next_tick: Vec<u64>,
    connected: Vec<bool>,
    reliable: bool,
    long_reordering: bool,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    in_flight: HashMap<u64, InFlight>,
    seq: u64,
    inbox: Vec<Vec<Envelope>>,
    batch_due: Vec<Option<u64>>,
    logs: Vec<HashMap<u64, Vec<u8>>>,
    last_applied: Vec<u64>,
    max_index: u64,
    failure: Option<String>,
    rpc_total: u64,
    bytes_total: u64,
    reply_bytes: u64,
    rpc_count: Vec<u64>,
    pub(crate) clients: Vec<Option<Client>>,
    pub(crate) stop_clients: bool,
    crashes: u64,
    mid_persist_crashes: u64,
    snapshot_cuts: u64,
    recovery_cuts: u64,
    torn_recoveries: u64,
    log_live_max: u64,
    log_retained_max: u64,
    checker: Checker,
    /// While a crashing input runs: the I/O-call ranges of the `Snapshot()` calls in it.
    snapshot_io: Option<Vec<(u64, u64)>>,
    /// Over the WAL: the disk at every I/O call of each node's latest `Snapshot()`.
    last_snapshot: Vec<Option<Vec<Checkpoint>>>,
    /// Node has been started before (its next start is a restart).
    started: Vec<bool>,
    snapshot_calls: u64,
}

impl Tester {
    /// The lab's `make_config(t, n, unreliable, snapshot)`: `n` nodes started and connected.
    pub fn new(n: usize, unreliable: bool, snapshots: bool, store: StoreKind, seed: u64) -> Self {
        Self::with_options(n, unreliable, snapshots, store, seed, SimOptions::default())
    }

    /// [`Tester::new`] with options.
    pub fn with_options(
        n: usize,
        unreliable: bool,
        snapshots: bool,
        store: StoreKind,
        seed: u64,
        opts: SimOptions,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let disks = (0..n).map(|_| Disk::new(store, rng.gen())).collect();
        let mut t = Tester {
            n,
            store,
            snapshots,
            opts,
            rng,
            now: 0,
            nodes: (0..n).map(|_| None).collect(),
            disks,
            incarnation: vec![0; n],
            caller_inc: vec![vec![0; n]; n],
            next_tick: vec![0; n],
            connected: vec![false; n],
            reliable: !unreliable,
            long_reordering: false,
            queue: BinaryHeap::new(),
            in_flight: HashMap::new(),
            seq: 0,
            inbox: vec![Vec::new(); n],
            batch_due: vec![None; n],
            logs: vec![HashMap::new(); n],
            last_applied: vec![0; n],
            max_index: 0,
            failure: None,
            rpc_total: 0,
            bytes_total: 0,
            reply_bytes: 0,
            rpc_count: vec![0; n],
            clients: Vec::new(),
            stop_clients: false,
            crashes: 0,
            mid_persist_crashes: 0,
            snapshot_cuts: 0,
            recovery_cuts: 0,
            torn_recoveries: 0,
            log_live_max: 0,
            log_retained_max: 0,
            checker: Checker::new(n, opts.checker),
            snapshot_io: None,
            last_snapshot: vec![None; n],
            started: vec![false; n],
            snapshot_calls: 0,
        };
        for i in 0..n {
            t.start1(i);
            t.connect(i);
        }
        t
    }

    /// Number of nodes.
    pub fn n(&self) -> usize {
        self.n
    }
    /// The store the nodes use.
    pub fn store(&self) -> StoreKind {
        self.store
    }
    /// The run's options.
    pub fn options(&self) -> SimOptions {
        self.opts
    }
    /// Simulated time in milliseconds.
    pub fn now(&self) -> u64 {
        self.now
    }
    /// A random number from the run's RNG (the lab's `rand.Int()`).
    pub fn rand(&mut self) -> u64 {
        self.rng.gen::<u64>() >> 1
    }
    /// A random number in `0..n`.
    pub fn rand_below(&mut self, n: u64) -> u64 {
        self.rng.gen_range(0..n.max(1))
    }
    /// Figures so far.
    pub fn stats(&self) -> RunStats {
        RunStats {
            sim_ms: self.now,
            rpcs: self.rpc_total,
            bytes: self.bytes_total,
            reply_bytes: self.reply_bytes,
            max_index: self.max_index,
            crashes: self.crashes,
            mid_persist_crashes: self.mid_persist_crashes,
            snapshot_cuts: self.snapshot_cuts,
            recovery_cuts: self.recovery_cuts,
            torn_recoveries: self.torn_recoveries,
            log_live_max: self.log_live_max,
            log_retained_max: self.log_retained_max,
            violations: self.checker.violations(),
            snapshots: self.snapshot_calls,
        }
    }
    /// The first failure recorded, if any (a lab check, or the safety checker when it
    /// enforces).
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }
    /// The first safety violation the checker found (also when it only observes).
    pub fn safety_violation(&self) -> Option<&str> {
        self.checker.first()
    }
    /// Requests sent so far (the lab's `rpcTotal`).
    pub fn rpc_total(&self) -> u64 {
        self.rpc_total
    }
    /// Requests delivered to node `i` (the lab's `rpcCount(i)`).
    pub fn rpc_count(&self, i: usize) -> u64 {
        self.rpc_count[i]
    }
    /// Bytes of requests sent plus replies handed back so far (the lab's `bytesTotal`).
    pub fn bytes_total(&self) -> u64 {
        self.bytes_total
    }
    /// True when node `i` runs.
    pub fn is_up(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }
    /// True when node `i` is connected.
    pub fn is_connected(&self, i: usize) -> bool {
        self.connected[i]
    }
    /// The lab's `GetState` of node `i`: (term, is_leader), `None` when crashed.
    pub fn get_state(&self, i: usize) -> Option<(u64, bool)> {
        self.nodes[i].as_ref().map(|r| r.state())
    }
    /// The files on node `i`'s simulated disk (WAL store only; empty for MemStorage).
    pub fn disk_files(&self, i: usize) -> Vec<String> {
        self.disks[i].files()
    }

    /// The persisted log of node `i`, running or crashed, as its store holds it.
    pub fn log_bytes(&self, i: usize) -> TResult<crate::sim::LogBytes> {
        let r = match &self.nodes[i] {
            Some(node) => node.storage().log_bytes(),
            None => self.disks[i].log_bytes(),
        };
        r.map_err(|e| format!("server {i}: cannot measure the persisted log: {e}"))
    }

    /// The lab's `LogSize`: the largest live persisted log among all servers, crashed ones
    /// included, in bytes as the store holds it (see [`Tester::check_log_size`]).
    pub fn log_size(&self) -> TResult<u64> {
        let mut max = 0;
        for i in 0..self.n {
            max = max.max(self.log_bytes(i)?.live);
        }
        Ok(max)
    }

    /// The lab's 3D check `LogSize() >= MAXLOGSIZE`, on every server's persisted state,
    /// crashed servers included, measured on its store: over the WAL the record frames of
    /// the entries above the snapshot base, as retained on disk. Over the WAL it also holds
    /// the bound on what compaction leaves behind: segments are deleted whole, so the
    /// compacted frames still on disk (`retained - live`) are at most those of one segment,
    /// the oldest ([`segment_record_capacity`]).
    pub fn check_log_size(&mut self) -> TResult<()> {
        let cap = match self.store {
            StoreKind::Wal => Some(segment_record_capacity()?),
            StoreKind::Mem => None,
        };
        for i in 0..self.n {
            let b = self.log_bytes(i)?;
            self.log_live_max = self.log_live_max.max(b.live);
            self.log_retained_max = self.log_retained_max.max(b.retained);
            if b.live >= MAX_LOG_SIZE as u64 {
                return Err(format!(
                    "Log size too large: server {i} persists {} bytes of log",
                    b.live
                ));
            }
            let dead = b.retained.saturating_sub(b.live);
            if let Some(cap) = cap {
                if dead > cap {
                    return Err(format!(
                        "server {i}'s WAL retains {dead} bytes of compacted entries, more than \
                         one segment's {cap}"
                    ));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn fail(&mut self, msg: String) {
        if self.failure.is_none() {
            tracing::debug!("failure at {} ms: {msg}", self.now);
            self.failure = Some(format!("at {} ms: {msg}", self.now));
        }
    }

    fn violation(&mut self, msgs: Vec<String>) {
        for m in msgs {
            if let Some(m) = self.checker.report(m) {
                self.fail(format!("safety: {m}"));
            }
        }
    }

    fn check(&self) -> TResult<()> {
        match &self.failure {
            Some(f) => Err(f.clone()),
            None => Ok(()),
        }
    }

    // ----- the network -----

    /// Reconnects node `i`.
    pub fn connect(&mut self, i: usize) {
        self.connected[i] = true;
    }
    /// Disconnects node `i`: requests from and to it no longer go through (those already
    /// through still arrive, and so do their replies; see the module docs).
    pub fn disconnect(&mut self, i: usize) {
        self.connected[i] = false;
    }
    /// The lab's `setunreliable`: drop 10% of requests and of replies, delay requests 0–27 ms.
    pub fn set_unreliable(&mut self, unreliable: bool) {
        self.reliable = !unreliable;
    }
    /// The lab's `setlongreordering`: delay two thirds of the replies by 200–2200 ms.
    pub fn set_long_reordering(&mut self, on: bool) {
        self.long_reordering = on;
    }

    fn send(&mut self, from: usize, env: Envelope) {
        let to = env.to as usize;
        if to >= self.n {
            return;
        }
        let mut delay = 1 + self.rng.gen_range(0..3u64);
        let to_inc = if env.msg.is_request() {
            self.rpc_total += 1;
            self.bytes_total += env.msg.wire_size() as u64;
            if !self.connected[from] || !self.connected[to] {
                return;
            }
            if !self.reliable {
                delay += self.rng.gen_range(0..27u64);
                if self.rng.gen_range(0..10) == 0 {
                    return;
                }
            }
            self.incarnation[to]
        } else {
            if !self.reliable && self.rng.gen_range(0..10) == 0 {
                return;
            }
            if self.long_reordering && self.rng.gen_range(0..900) < 600 {
                let r = self.rng.gen_range(0..2001u64);
                delay = 200 + self.rng.gen_range(0..r + 1);
            }
            self.caller_inc[from][to]
        };
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay, self.seq)));
        self.in_flight.insert(
            self.seq,
            InFlight {
                env,
                to_inc,
                from_inc: self.incarnation[from],
            },
        );
    }

    fn deliver(&mut self, f: InFlight) {
        let to = f.env.to as usize;
        let from = f.env.from as usize;
        let request = f.env.msg.is_request();
        if !request {
            let b = f.env.msg.wire_size() as u64;
            self.bytes_total += b;
            self.reply_bytes += b;
        }
        if self.incarnation[to] != f.to_inc || self.nodes[to].is_none() {
            return;
        }
        if request {
            self.rpc_count[to] += 1;
            self.caller_inc[to][from] = f.from_inc;
        }
        match self.opts.driver {
            Driver::Single => {
                if let Some(node) = self.nodes[to].as_mut() {
                    if let Err(e) = node.step(f.env) {
                        self.fail(format!("node {to}: {e}"));
                        return;
                    }
                    self.flush(to);
                }
            }
            Driver::Batch => {
                self.inbox[to].push(f.env);
                if self.batch_due[to].is_none() {
                    self.batch_due[to] = Some(self.now + BATCH_WINDOW_MS);
                }
            }
        }
    }

    /// Hands node `i` one batch: the messages waiting in its inbox and `extra`. Returns the
    /// result of the last proposal in it.
    fn run_batch(&mut self, i: usize, extra: Option<Input>) -> Option<(u64, u64)> {
        self.batch_due[i] = None;
        let mut inputs: Vec<Input> = std::mem::take(&mut self.inbox[i])
            .into_iter()
            .map(Input::Message)
            .collect();
        inputs.extend(extra);
        let node = self.nodes[i].as_mut()?;
        match node.handle_batch(inputs) {
            Ok(r) => {
                self.flush(i);
                r.into_iter().last().flatten()
            }
            Err(e) => {
                self.fail(format!("node {i}: handle_batch: {e}"));
                None
            }
        }
    }

    /// Hands node `i`'s outputs on: the checker sees them, messages are sent and applies
    /// go to the service.
    fn flush(&mut self, i: usize) {
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        let msgs = node.take_messages();
        let applies = node.take_applies();
        let writes = node.storage_mut().take_journal();
        if self.checker.on() {
            if let Some(node) = self.nodes[i].as_ref() {
                let mut v = self.checker.observe_writes(i, &writes, node.log());
                v.extend(self.checker.observe_messages(i, &msgs, node.log()));
                v.extend(
                    self.checker
                        .observe_role(i, node.is_leader(), node.term(), node.log()),
                );
                self.violation(v);
            }
        }
        for m in msgs {
            self.send(i, m);
        }
        if !applies.is_empty() {
            self.apply(i, applies);
        }
    }

    // ----- the service: the lab's applier / applierSnap -----

    fn apply(&mut self, i: usize, applies: Vec<Apply>) {
        for a in applies {
            if self.checker.on() {
                let term = self.nodes[i].as_ref().map_or(0, |r| r.term());
                let (v, new) = self.checker.observe_apply(i, term, &a);
                self.violation(v);
                if let Some((index, _)) = new {
                    let mut v = Vec::new();
                    for (j, node) in self.nodes.iter().enumerate() {
                        if let Some(node) = node.as_ref().filter(|r| r.is_leader()) {
                            v.extend(self.checker.leader_holds(j, node.term(), index, node.log()));
                        }
                    }
                    self.violation(v);
                }
            }
            match a {
                Apply::Snapshot { index, data, .. } => {
                    if index < self.last_applied[i] {
                        self.fail(format!(
                            "server {i} snapshot at {index} goes back from applied {}",
                            self.last_applied[i]
                        ));
                        return;
                    }
                    match decode_snapshot(&data) {
                        Some((last, xlog)) if last == index => {
                            self.logs[i] = xlog
                                .into_iter()
                                .enumerate()
                                .map(|(k, v)| (k as u64 + 1, v))
                                .collect();
                            self.last_applied[i] = index;
                        }
                        Some((last, _)) => {
                            self.fail(format!(
                                "server {i} snapshot doesn't match m.SnapshotIndex ({last} vs {index})"
                            ));
                            return;
                        }
                        None => {
                            self.fail(format!("server {i} got an undecodable snapshot"));
                            return;
                        }
                    }
                }
                Apply::Command { index, data, .. } => {
                    if index != self.last_applied[i] + 1 {
                        self.fail(format!(
                            "server {i} apply out of order, expected index {}, got {index}",
                            self.last_applied[i] + 1
                        ));
                        return;
                    }
                    for j in 0..self.n {
                        if let Some(old) = self.logs[j].get(&index) {
                            if *old != data {
                                let msg = format!(
                                    "commit index={index} server={i} {} != server={j} {}",
                                    show(&data),
                                    show(old)
                                );
                                self.fail(msg);
                                return;
                            }
                        }
                    }
                    self.logs[i].insert(index, data);
                    self.last_applied[i] = index;
                    self.max_index = self.max_index.max(index);
                    if self.snapshots && (index + 1) % SNAPSHOT_INTERVAL == 0 {
                        // The lab's applierSnap: rf.Snapshot at every such index, from the
                        // apply loop, before the next command is applied.
                        let data = encode_snapshot(&self.logs[i], index);
                        self.snapshot(i, index, data);
                    }
                }
            }
        }
    }

    /// The service's `Snapshot(index)` call on node `i`. Over the WAL the disk records a
    /// checkpoint at each of its I/O calls, kept until the node's next crash (see
    /// [`Tester::crash1`]).
    fn snapshot(&mut self, i: usize, index: u64, data: Vec<u8>) {
        let fs = match &self.disks[i] {
            Disk::Wal(fs) => Some(fs.clone()),
            Disk::Mem(_) => None,
        };
        self.snapshot_calls += 1;
        let crashing = self.snapshot_io.is_some();
        let before = fs.as_ref().map_or(0, |f| f.io_calls());
        if let (Some(fs), false) = (&fs, crashing) {
            fs.start_recording();
        }
        if let Some(node) = self.nodes[i].as_mut() {
            if let Err(e) = node.snapshot(index, data) {
                self.fail(format!("node {i}: snapshot({index}): {e}"));
            }
        }
        let Some(fs) = fs else {
            return;
        };
        if crashing {
            let after = fs.io_calls();
            if let Some(r) = self.snapshot_io.as_mut() {
                r.push((before, after));
            }
        } else {
            let rec = fs.take_recording();
            self.last_snapshot[i] = (rec.len() > 2).then_some(rec);
        }
    }

    // ----- crash and restart -----

    /// The lab's `crash1`: disconnect node `i` and cut its power. MemStorage keeps what was
    /// saved; the WAL's disk loses or tears its unsynced writes.
    ///
    /// Over the WAL, a share of the crashes ([`SimOptions::mid_persist_share`]) cut the
    /// power in the middle of a persist. When the node's latest I/O was the service's
    /// `Snapshot()` call, the cut strikes inside that call: the disk is put back to one of
    /// the checkpoints recorded at its I/O calls, strictly between its first and its last
    /// (whatever the node sent since depended only on state durable before the call).
    /// Otherwise it strikes in the middle of the node's next input: the node handles it (the
    /// next message addressed to it, preferring, half of the time in snapshot scenarios, one
    /// that lets it apply through a snapshot index; else as leader a client's command; else the ticks up
    /// to its next persist, an election), the service applies what it produced and calls
    /// `Snapshot()` where the lab's service would, and meanwhile the disk records a
    /// checkpoint at every I/O call; the power is cut at a random one of them. Whatever the
    /// input produced never leaves the node.
    pub fn crash1(&mut self, i: usize) {
        self.disconnect(i);
        if self.nodes[i].is_none() {
            return;
        }
        self.crashes += 1;
        let seed = self.rng.gen();
        let mut cut = None;
        let last_snapshot = self.last_snapshot[i].take();
        if let Disk::Wal(fs) = &self.disks[i] {
            let fs = fs.clone();
            if self.rng.gen_bool(self.opts.mid_persist_share) {
                // The node's latest Snapshot() was its latest I/O: nothing it did since
                // depends on what that call wrote.
                let in_snapshot =
                    last_snapshot.filter(|r| r.last().is_some_and(|c| c.io_call == fs.io_calls()));
                if let Some(rec) = in_snapshot {
                    let k = self.rng.gen_range(1..rec.len() - 1);
                    cut = Some(rec[k].to_fs());
                    self.snapshot_cuts += 1;
                } else {
                    fs.start_recording();
                    self.snapshot_io = Some(Vec::new());
                    self.crash_input(i);
                    let snaps = self.snapshot_io.take().unwrap_or_default();
                    let recording = fs.take_recording();
                    if recording.len() > 1 {
                        let k = self.rng.gen_range(0..recording.len());
                        let at = recording[k].io_call;
                        if snaps.iter().any(|&(a, b)| at > a && at <= b) {
                            self.snapshot_cuts += 1;
                        }
                        cut = Some(recording[k].to_fs());
                    }
                }
            }
        }
        self.nodes[i] = None;
        self.inbox[i].clear();
        self.batch_due[i] = None;
        self.incarnation[i] += 1;
        match cut {
            Some(fs) => {
                fs.crash(seed);
                self.disks[i] = Disk::Wal(fs);
                self.mid_persist_crashes += 1;
            }
            None => self.disks[i].crash(seed),
        }
    }

    /// The input a crash interrupts (see [`Tester::crash1`]); its messages are dropped.
    fn crash_input(&mut self, i: usize) {
        let prefer_snapshot = self.snapshots && self.rng.gen_bool(0.5);
        let env = self.take_in_flight_to(i, prefer_snapshot);
        let command = cmd(self.rand());
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        // A storage error just stops the node.
        let _ = match (self.opts.driver, env) {
            (Driver::Batch, env) if env.is_some() || !self.inbox[i].is_empty() => {
                let mut inputs: Vec<Input> = std::mem::take(&mut self.inbox[i])
                    .into_iter()
                    .chain(env)
                    .map(Input::Message)
                    .collect();
                if node.is_leader() {
                    inputs.push(Input::Propose(command));
                }
                node.handle_batch(inputs).map(|_| ())
            }
            (_, Some(env)) => node.step(env),
            (_, None) if node.is_leader() => node.propose(command).map(|_| ()),
            (_, None) => {
                let before = node.stats().persists;
                let mut r = Ok(());
                for _ in 0..100 {
                    r = node.tick();
                    if r.is_err() || node.stats().persists != before {
                        break;
                    }
                }
                r
            }
        };
        let _ = node.take_messages();
        let applies = node.take_applies();
        let writes = node.storage_mut().take_journal();
        if self.checker.on() {
            if let Some(node) = self.nodes[i].as_ref() {
                let v = self.checker.observe_writes(i, &writes, node.log());
                self.violation(v);
            }
        }
        if !applies.is_empty() {
            self.apply(i, applies);
        }
    }

    /// Removes the earliest in-flight message that will reach `i` (with `prefer_snapshot`,
    /// the earliest that lets it apply through an index the service snapshots at, if any).
    fn take_in_flight_to(&mut self, i: usize, prefer_snapshot: bool) -> Option<Envelope> {
        let inc = self.incarnation[i];
        let mut mine: Vec<(u64, &InFlight)> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.env.to as usize == i && f.to_inc == inc)
            .map(|(&s, f)| (s, f))
            .collect();
        mine.sort_unstable_by_key(|&(s, _)| s);
        let pick = match (prefer_snapshot, self.nodes[i].as_ref()) {
            (true, Some(node)) => mine
                .iter()
                .find(|(_, f)| leads_to_snapshot(node, &f.env))
                .or(mine.first()),
            _ => mine.first(),
        }
        .map(|&(s, _)| s)?;
        self.in_flight.remove(&pick).map(|f| f.env)
    }

    /// The lab's `start1`: crash node `i` if it runs, then restart it from its storage.
    /// Over the WAL, a share of the restarts (not the first start) ([`SimOptions::mid_persist_share`]) first run
    /// recovery while the disk records every I/O call, cut the power at a random one, and
    /// only then recover for good.
    pub fn start1(&mut self, i: usize) {
        self.crash1(i);
        let restart = std::mem::replace(&mut self.started[i], true);
        if let (Disk::Wal(fs), true) = (&self.disks[i], restart) {
            let fs = fs.clone();
            if self.rng.gen_bool(self.opts.mid_persist_share) {
                fs.start_recording();
                let _ = self.disks[i].open();
                let recording = fs.take_recording();
                if recording.len() > 1 {
                    let k = self.rng.gen_range(0..recording.len());
                    let cut = recording[k].to_fs();
                    cut.crash(self.rng.gen());
                    self.disks[i] = Disk::Wal(cut);
                    self.recovery_cuts += 1;
                }
            }
        }
        let storage = match self.disks[i].open() {
            Ok(s) => s,
            Err(e) => {
                self.fail(format!("node {i}: storage failed to open/recover: {e}"));
                return;
            }
        };
        if let Some(w) = storage.wal() {
            let r = w.wal().recovery_report();
            if r.torn_bytes_truncated > 0 || r.files_removed > 0 {
                self.torn_recoveries += 1;
            }
        }
        let mut cfg = Config::new(i as u64, self.n, self.rng.gen());
        cfg.bugs = self.opts.bugs;
        cfg.leader_noop = self.opts.leader_noop;
        match Raft::new(cfg, storage) {
            Ok(node) => {
                if self.checker.on() {
                    let v =
                        self.checker
                            .check_restart(i, node.term(), node.voted_for(), node.log());
                    self.violation(v);
                }
                self.nodes[i] = Some(node);
            }
            Err(e) => {
                self.fail(format!("node {i}: restart failed: {e}"));
                return;
            }
        }
        self.incarnation[i] += 1;
        self.last_applied[i] = 0;
        self.next_tick[i] = self.now + 1 + self.rng.gen_range(0..Config::TICK_MS);
        self.flush(i);
    }

    /// The lab's `Start` on node `i`: `Some((index, term))` when it accepted as leader.
    pub fn start(&mut self, i: usize, cmd: Vec<u8>) -> Option<(u64, u64)> {
        if self.opts.driver == Driver::Batch {
            return self.run_batch(i, Some(Input::Propose(cmd)));
        }
        let node = self.nodes[i].as_mut()?;
        match node.propose(cmd) {
            Ok(r) => {
                self.flush(i);
                r
            }
            Err(e) => {
                self.fail(format!("node {i}: propose: {e}"));
                None
            }
        }
    }

    // ----- the event loop -----

    /// Runs the simulation until `until` (ms), or a failure.
    pub(crate) fn run_until(&mut self, until: u64) {
        while self.failure.is_none() {
            if self.now > MAX_SIM_MS {
                self.fail(format!(
                    "test took longer than {} seconds",
                    MAX_SIM_MS / 1000
                ));
                return;
            }
            let t_msg = self.queue.peek().map(|r| r.0 .0).unwrap_or(u64::MAX);
            let (tick_node, t_tick) = (0..self.n)
                .filter(|&i| self.nodes[i].is_some())
                .map(|i| (i, self.next_tick[i]))
                .min_by_key(|&(_, t)| t)
                .unwrap_or((0, u64::MAX));
            let (batch_node, t_batch) = (0..self.n)
                .filter_map(|i| self.batch_due[i].map(|t| (i, t)))
                .min_by_key(|&(_, t)| t)
                .unwrap_or((0, u64::MAX));
            let (client, t_client) = self
                .clients
                .iter()
                .enumerate()
                .filter_map(|(k, c)| c.as_ref().filter(|c| !c.done()).map(|c| (k, c.wake())))
                .min_by_key(|&(_, t)| t)
                .unwrap_or((0, u64::MAX));
            let t = t_msg.min(t_tick).min(t_client).min(t_batch);
            if t > until {
                self.now = self.now.max(until);
                return;
            }
            self.now = self.now.max(t);
            if t_msg == t {
                if let Some(Reverse((_, seq))) = self.queue.pop() {
                    if let Some(f) = self.in_flight.remove(&seq) {
                        self.deliver(f);
                    }
                }
            } else if t_batch == t {
                self.run_batch(batch_node, None);
            } else if t_tick == t {
                self.next_tick[tick_node] += Config::TICK_MS;
                if self.opts.driver == Driver::Batch {
                    self.run_batch(tick_node, Some(Input::Tick));
                } else if let Some(node) = self.nodes[tick_node].as_mut() {
                    if let Err(e) = node.tick() {
                        self.fail(format!("node {tick_node}: tick: {e}"));
                        return;
                    }
                    self.flush(tick_node);
                }
            } else {
                self.poll_client(client);
            }
        }
    }

    /// Lets `ms` of simulated time pass (the lab's `time.Sleep`).
    pub fn sleep(&mut self, ms: u64) -> TResult<()> {
        let until = self.now + ms;
        self.run_until(until);
        self.check()
    }

    /// Runs until client `id` is done; returns its result.
    pub(crate) fn run_client(&mut self, id: ClientId) -> TResult<Option<u64>> {
        loop {
            self.check()?;
            let Some(c) = self.clients[id.0].as_ref() else {
                return Err("client vanished".into());
            };
            if c.done() {
                let c = self.clients[id.0].take();
                return c.map_or(Ok(None), |c| c.result());
            }
            let wake = c.wake();
            self.run_until(wake);
        }
    }

    // ----- the lab's checks -----

    /// The lab's `checkOneLeader`: within ~5 s, exactly one leader in the latest term among
    /// the connected nodes; never two in one term.
    pub fn check_one_leader(&mut self) -> TResult<usize> {
        for _ in 0..10 {
            let ms = 450 + self.rand_below(100);
            self.sleep(ms)?;
            let mut leaders: HashMap<u64, Vec<usize>> = HashMap::new();
            for i in 0..self.n {
                if !self.connected[i] {
                    continue;
                }
                if let Some((term, true)) = self.get_state(i) {
                    leaders.entry(term).or_default().push(i);
                }
            }
            let mut last_term = None;
            for (term, ls) in &leaders {
                if ls.len() > 1 {
                    return Err(format!("term {term} has {} (>1) leaders", ls.len()));
                }
                last_term = last_term.max(Some(*term));
            }
            if let Some(t) = last_term {
                return Ok(leaders[&t][0]);
            }
        }
        Err("expected one leader, got none".into())
    }

    /// The lab's `checkTerms`: every connected node agrees on the term.
    pub fn check_terms(&mut self) -> TResult<u64> {
        let mut term = None;
        for i in 0..self.n {
            if !self.connected[i] {
                continue;
            }
            if let Some((t, _)) = self.get_state(i) {
                match term {
                    None => term = Some(t),
                    Some(x) if x != t => return Err("servers disagree on term".into()),
                    _ => {}
                }
            }
        }
        term.ok_or_else(|| "no connected server".into())
    }

    /// The lab's `checkNoLeader`: no connected node thinks it leads.
    pub fn check_no_leader(&mut self) -> TResult<()> {
        for i in 0..self.n {
            if self.connected[i] && matches!(self.get_state(i), Some((_, true))) {
                return Err(format!(
                    "expected no leader among connected servers, but {i} claims to be leader"
                ));
            }
        }
        Ok(())
    }

    /// The lab's `nCommitted`: how many nodes applied `index`, and the value (all equal).
    pub fn n_committed(&mut self, index: u64) -> TResult<(usize, Option<Vec<u8>>)> {
        self.check()?;
        let mut count = 0;
        let mut cmd: Option<Vec<u8>> = None;
        for i in 0..self.n {
            if let Some(v) = self.logs[i].get(&index) {
                if let Some(c) = &cmd {
                    if c != v {
                        let msg = format!(
                            "committed values do not match: index {index}, {}, {}",
                            show(c),
                            show(v)
                        );
                        self.fail(msg.clone());
                        return Err(msg);
                    }
                }
                count += 1;
                cmd = Some(v.clone());
            }
        }
        Ok((count, cmd))
    }

    /// The lab's `wait`: until `n` nodes applied `index` (backing off to 1 s, ~30 polls);
    /// `None` when some node moved past `start_term`.
    pub fn wait(
        &mut self,
        index: u64,
        n: usize,
        start_term: Option<u64>,
    ) -> TResult<Option<Vec<u8>>> {
        let mut to = 10;
        for _ in 0..30 {
            let (nd, _) = self.n_committed(index)?;
            if nd >= n {
                break;
            }
            self.sleep(to)?;
            if to < 1000 {
                to *= 2;
            }
            if let Some(st) = start_term {
                for i in 0..self.n {
                    if let Some((t, _)) = self.get_state(i) {
                        if t > st {
                            return Ok(None);
                        }
                    }
                }
            }
        }
        let (nd, cmd) = self.n_committed(index)?;
        if nd < n {
            return Err(format!("only {nd} decided for index {index}; wanted {n}"));
        }
        Ok(cmd)
    }

    /// The lab's `one`: submit `cmd` to whichever node accepts and wait until `expected`
    /// nodes applied it; retries (if `retry`) for up to 10 s. Returns the index.
    pub fn one(&mut self, cmd: Vec<u8>, expected: usize, retry: bool) -> TResult<u64> {
        let id = self.spawn_one(cmd, expected, retry);
        match self.run_client(id)? {
            Some(index) => Ok(index),
            None => Err("one() ended without a result".into()),
        }
    }

    /// The lab's `end`: the run's figures, or its failure (also when it took longer than
    /// the lab's limit).
    pub fn end(&mut self) -> TResult<RunStats> {
        self.check()?;
        if self.now > MAX_SIM_MS {
            return Err(format!(
                "test took longer than {} seconds",
                MAX_SIM_MS / 1000
            ));
        }
        Ok(self.stats())
    }
}

/// A command from a number (the lab's ints), 8 bytes little-endian.
pub fn cmd(x: u64) -> Vec<u8> {
    x.to_le_bytes().to_vec()
}

/// True when handling `env` may let `node` apply through the next index the service
/// snapshots at (a follower told of a commit that far, a leader hearing a success that far).
fn leads_to_snapshot(node: &Raft<SimStorage>, env: &Envelope) -> bool {
    let next = node.last_applied() + 1;
    let q = next + (SNAPSHOT_INTERVAL - 1 - next % SNAPSHOT_INTERVAL) % SNAPSHOT_INTERVAL;
    match &env.msg {
        Message::AppendEntries(m) => {
            m.leader_commit >= q
                && node
                    .log()
                    .last_index()
                    .max(m.prev_log_index + m.entries.len() as u64)
                    >= q
        }
        Message::AppendEntriesReply(m) => {
            node.is_leader() && m.success && m.match_index >= q && node.log().last_index() >= q
        }
        _ => false,
    }
}

fn show(v: &[u8]) -> String {
    match <[u8; 8]>::try_from(v) {
        Ok(b) => u64::from_le_bytes(b).to_string(),
        Err(_) => format!("<{} bytes>", v.len()),
    }
}

/// The service's snapshot (the lab's `lastIncludedIndex` + `xlog`): `u64` last index, `u32`
/// count, then each value as `u32` length + bytes, all little-endian.
pub fn encode_snapshot(log: &HashMap<u64, Vec<u8>>, last: u64) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&last.to_le_bytes());
    out.extend_from_slice(&(last as u32).to_le_bytes());
    for i in 1..=last {
        let v = log.get(&i).map(|v| &v[..]).unwrap_or(&[]);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

/// Decodes [`encode_snapshot`]'s format; `None` if malformed.
pub fn decode_snapshot(data: &[u8]) -> Option<(u64, Vec<Vec<u8>>)> {
    let last = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
    let count = u32::from_le_bytes(data.get(8..12)?.try_into().ok()?) as usize;
    let mut pos = 12;
    let mut xlog = Vec::with_capacity(count);
    for _ in 0..count {
        let len = u32::from_le_bytes(data.get(pos..pos + 4)?.try_into().ok()?) as usize;
        pos += 4;
        xlog.push(data.get(pos..pos + len)?.to_vec());
        pos += len;
    }
    Some((last, xlog))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{AppendEntriesReply, Conflict, RequestVote};

    fn quiet(snapshots: bool) -> Tester {
        let mut t = Tester::new(3, false, snapshots, StoreKind::Mem, 1);
        t.sleep(3 * ELECTION_TIMEOUT_MS).unwrap();
        t
    }

    fn term(t: &Tester, i: usize) -> u64 {
        t.get_state(i).unwrap().0
    }

    /// A reply from 1 to 0 carrying a term far ahead: if 0 handles it, it adopts the term.
    fn reply_from_1_to_0(term: u64) -> Envelope {
        Envelope {
            from: 1,
            to: 0,
            msg: Message::AppendEntriesReply(AppendEntriesReply {
                term,
                req_term: term,
                success: false,
                match_index: 0,
                conflict: Conflict::default(),
            }),
        }
    }

    #[test]
    fn a_reply_arrives_after_its_link_went_down() {
        let mut t = quiet(false);
        let far = term(&t, 0) + 50;
        // As if 1 had just handled a request from 0's current incarnation.
        t.caller_inc[1][0] = t.incarnation[0];
        t.send(1, reply_from_1_to_0(far));
        t.disconnect(0);
        t.disconnect(1);
        let b = t.bytes_total();
        t.sleep(10).unwrap();
        assert_eq!(
            term(&t, 0),
            far,
            "labrpc hands a reply back whatever the links do"
        );
        assert!(
            t.bytes_total() > b,
            "the reply's bytes are counted when handed back"
        );
    }

    #[test]
    fn a_reply_to_a_crashed_caller_is_lost() {
        let mut t = quiet(false);
        let far = term(&t, 0) + 50;
        t.caller_inc[1][0] = t.incarnation[0];
        t.send(1, reply_from_1_to_0(far));
        t.start1(0);
        t.connect(0);
        t.sleep(10).unwrap();
        assert!(term(&t, 0) < far, "the caller's old instance is gone");
    }

    #[test]
    fn a_request_goes_through_if_its_link_was_up_when_sent() {
        let mut t = quiet(false);
        let far = term(&t, 2) + 50;
        let rv = |to| Envelope {
            from: 0,
            to,
            msg: Message::RequestVote(RequestVote {
                term: far,
                last_log_index: 0,
                last_log_term: 0,
            }),
        };
        let rpcs = t.rpc_total();
        t.send(0, rv(2));
        t.disconnect(2);
        t.sleep(40).unwrap();
        assert_eq!(term(&t, 2), far, "sent while connected: delivered");
        assert_eq!(t.rpc_total(), rpcs + 1);
        t.send(0, rv(1));
        t.sleep(40).unwrap();
        assert_eq!(
            t.rpc_total(),
            rpcs + 2,
            "counted even when it cannot go through"
        );
        let t1 = term(&t, 1);
        t.disconnect(0);
        t.send(0, rv(1));
        t.connect(0);
        t.sleep(40).unwrap();
        assert!(term(&t, 1) >= t1);
        assert!(
            term(&t, 1) < far + 1,
            "sent while disconnected: never delivered"
        );
    }

    #[test]
    fn the_service_snapshots_at_every_qualifying_index_of_a_batch() {
        for store in [StoreKind::Mem, StoreKind::Wal] {
            let mut t = Tester::new(1, false, true, store, 3);
            t.sleep(ELECTION_TIMEOUT_MS).unwrap();
            assert!(t.get_state(0).unwrap().1, "a single node elects itself");
            // 25 commands committed and applied in one batch: indices 9 and 19 qualify.
            let node = t.nodes[0].as_mut().unwrap();
            let batch = (0..25).map(|k| Input::Propose(cmd(k))).collect();
            node.handle_batch(batch).unwrap();
            t.flush(0);
            t.end().unwrap();
            assert_eq!(
                t.stats().snapshots,
                2,
                "one Snapshot() per qualifying index"
            );
            assert_eq!(t.nodes[0].as_ref().unwrap().log().base().index, 19);
        }
    }
}
