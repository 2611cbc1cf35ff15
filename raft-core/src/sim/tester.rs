//! [`Tester`]: the lab's `config.go` over the deterministic simulator.
//!
//! A virtual clock in milliseconds, `n` nodes ticking every [`Config::TICK_MS`] (each with
//! its own phase), a network of one-way messages with the lab's `labrpc` behaviours, the
//! lab's checks (`check_one_leader`, `check_terms`, `check_no_leader`, `n_committed`, `one`,
//! `wait`) and its apply checker. Blocking helpers (`one`, `sleep`, ...) run the event loop
//! for simulated time; concurrent clients (the lab's goroutines) are tasks the loop polls.
//! Everything is drawn from one seeded RNG, so a run is a function of its seed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::apply::Apply;
use crate::config::Config;
use crate::message::Envelope;
use crate::raft::Raft;
use crate::sim::client::{Client, ClientId};
use crate::sim::storage::{Disk, SimStorage, StoreKind};

/// The lab's `RaftElectionTimeout` (1 s).
pub const ELECTION_TIMEOUT_MS: u64 = 1000;
/// The lab's `SnapShotInterval`: the service snapshots after every 10 applied commands.
pub const SNAPSHOT_INTERVAL: u64 = 10;
/// The lab's `MAXLOGSIZE` bound on the persisted log after snapshots, in bytes.
pub const MAX_LOG_SIZE: usize = 2000;
/// A run taking more simulated time than this fails (a livelock guard).
pub const MAX_SIM_MS: u64 = 600_000;

/// Result of a tester call: the failure message on error.
pub type TResult<T> = Result<T, String>;

/// Figures of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunStats {
    /// Simulated milliseconds.
    pub sim_ms: u64,
    /// Requests sent (RequestVote, AppendEntries, InstallSnapshot).
    pub rpcs: u64,
    /// Bytes of requests sent.
    pub bytes: u64,
    /// Highest index committed.
    pub max_index: u64,
    /// Node crashes.
    pub crashes: u64,
    /// Crashes that cut the power in the middle of a node's persist (WAL only).
    pub mid_persist_crashes: u64,
    /// Restarts whose WAL recovery cut a torn tail or removed files that never became
    /// durable (WAL only).
    pub torn_recoveries: u64,
}

/// One simulated cluster and its checks.
pub struct Tester {
    n: usize,
    store: StoreKind,
    snapshots: bool,
    pub(crate) rng: StdRng,
    pub(crate) now: u64,
    nodes: Vec<Option<Raft<SimStorage>>>,
    disks: Vec<Disk>,
    next_tick: Vec<u64>,
    connected: Vec<bool>,
    reliable: bool,
    long_reordering: bool,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    in_flight: HashMap<u64, Envelope>,
    seq: u64,
    logs: Vec<HashMap<u64, Vec<u8>>>,
    last_applied: Vec<u64>,
    max_index: u64,
    failure: Option<String>,
    rpc_total: u64,
    bytes_total: u64,
    rpc_count: Vec<u64>,
    pub(crate) clients: Vec<Option<Client>>,
    pub(crate) stop_clients: bool,
    crashes: u64,
    mid_persist_crashes: u64,
    torn_recoveries: u64,
}

impl Tester {
    /// The lab's `make_config(t, n, unreliable, snapshot)`: `n` nodes started and connected.
    pub fn new(n: usize, unreliable: bool, snapshots: bool, store: StoreKind, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let disks = (0..n).map(|_| Disk::new(store, rng.gen())).collect();
        let mut t = Tester {
            n,
            store,
            snapshots,
            rng,
            now: 0,
            nodes: (0..n).map(|_| None).collect(),
            disks,
            next_tick: vec![0; n],
            connected: vec![false; n],
            reliable: !unreliable,
            long_reordering: false,
            queue: BinaryHeap::new(),
            in_flight: HashMap::new(),
            seq: 0,
            logs: vec![HashMap::new(); n],
            last_applied: vec![0; n],
            max_index: 0,
            failure: None,
            rpc_total: 0,
            bytes_total: 0,
            rpc_count: vec![0; n],
            clients: Vec::new(),
            stop_clients: false,
            crashes: 0,
            mid_persist_crashes: 0,
            torn_recoveries: 0,
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
            max_index: self.max_index,
            crashes: self.crashes,
            mid_persist_crashes: self.mid_persist_crashes,
            torn_recoveries: self.torn_recoveries,
        }
    }
    /// The first failure recorded, if any.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }
    /// Requests sent so far (the lab's `rpcTotal`).
    pub fn rpc_total(&self) -> u64 {
        self.rpc_total
    }
    /// Requests delivered to node `i` (the lab's `rpcCount(i)`).
    pub fn rpc_count(&self, i: usize) -> u64 {
        self.rpc_count[i]
    }
    /// Bytes of requests sent so far (the lab's `bytesTotal`).
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
    /// The lab's `LogSize`: the largest persisted log among the nodes, in bytes.
    pub fn log_size(&self) -> usize {
        self.nodes
            .iter()
            .flatten()
            .map(|r| r.log_size_bytes())
            .max()
            .unwrap_or(0)
    }

    pub(crate) fn fail(&mut self, msg: String) {
        if self.failure.is_none() {
            tracing::debug!("failure at {} ms: {msg}", self.now);
            self.failure = Some(format!("at {} ms: {msg}", self.now));
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
    /// Disconnects node `i` (messages to and from it are lost).
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

    fn send(&mut self, env: Envelope) {
        let from = env.from as usize;
        let to = env.to as usize;
        let request = env.msg.is_request();
        if request {
            self.rpc_total += 1;
            self.bytes_total += env.msg.wire_size() as u64;
        }
        if !self.connected[from] || to >= self.n {
            return;
        }
        let mut delay = 1 + self.rng.gen_range(0..3u64);
        if !self.reliable {
            if self.rng.gen_range(0..10) == 0 {
                return;
            }
            if request {
                delay += self.rng.gen_range(0..27u64);
            }
        }
        if !request && self.long_reordering && self.rng.gen_range(0..900) < 600 {
            let r = self.rng.gen_range(0..2001u64);
            delay = 200 + self.rng.gen_range(0..r + 1);
        }
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay, self.seq)));
        self.in_flight.insert(self.seq, env);
    }

    fn deliver(&mut self, env: Envelope) {
        let to = env.to as usize;
        if !self.connected[env.from as usize] || !self.connected[to] {
            return;
        }
        let Some(node) = self.nodes[to].as_mut() else {
            return;
        };
        if env.msg.is_request() {
            self.rpc_count[to] += 1;
        }
        if let Err(e) = node.step(env) {
            self.fail(format!("node {to}: {e}"));
            return;
        }
        self.flush(to);
    }

    /// Sends node `i`'s messages and processes its applies.
    fn flush(&mut self, i: usize) {
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        let msgs = node.take_messages();
        let applies = node.take_applies();
        for m in msgs {
            self.send(m);
        }
        if !applies.is_empty() {
            self.apply(i, applies);
        }
    }

    // ----- the service: the lab's applier / applierSnap -----

    fn apply(&mut self, i: usize, applies: Vec<Apply>) {
        let mut snap: Option<(u64, Vec<u8>)> = None;
        for a in applies {
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
                            snap = None;
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
                        snap = Some((index, encode_snapshot(&self.logs[i], index)));
                    }
                }
            }
        }
        if let Some((index, data)) = snap {
            if let Some(node) = self.nodes[i].as_mut() {
                if let Err(e) = node.snapshot(index, data) {
                    self.fail(format!("node {i}: snapshot({index}): {e}"));
                }
            }
        }
    }

    // ----- crash and restart -----

    /// The lab's `crash1`: disconnect node `i` and cut its power. MemStorage keeps what was
    /// saved; the WAL's disk loses or tears its unsynced writes.
    ///
    /// Over the WAL, half of the crashes strike in the middle of the node's next input: the
    /// node handles the next message addressed to it while its disk records a checkpoint at
    /// every I/O call, and the power is cut at a random one of them (the unsynced writes of
    /// that moment lost or torn). Whatever the input produced never leaves the node.
    pub fn crash1(&mut self, i: usize) {
        self.disconnect(i);
        let Some(mut node) = self.nodes[i].take() else {
            return;
        };
        self.crashes += 1;
        let seed = self.rng.gen();
        if let Disk::Wal(fs) = &self.disks[i] {
            let fs = fs.clone();
            if self.rng.gen_bool(0.5) {
                // The input: the next message for it, else (as leader) a client's command,
                // else the ticks up to its next persist (an election).
                let env = self.take_in_flight_to(i);
                let command = cmd(self.rand());
                fs.start_recording();
                // The outputs are dropped with the node; a storage error just stops it.
                let _ = match env {
                    Some(env) => node.step(env),
                    None if node.is_leader() => node.propose(command).map(|_| ()),
                    None => {
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
                drop(node);
                let recording = fs.take_recording();
                if recording.len() > 1 {
                    let k = self.rng.gen_range(0..recording.len());
                    let cut = recording[k].to_fs();
                    cut.crash(seed);
                    self.disks[i] = Disk::Wal(cut);
                    self.mid_persist_crashes += 1;
                    return;
                }
            }
        }
        self.disks[i].crash(seed);
    }

    /// Removes the earliest in-flight message addressed to `i`, if any.
    fn take_in_flight_to(&mut self, i: usize) -> Option<Envelope> {
        let seq = self
            .in_flight
            .iter()
            .filter(|(_, e)| e.to as usize == i)
            .map(|(&s, _)| s)
            .min()?;
        self.in_flight.remove(&seq)
    }

    /// The lab's `start1`: crash node `i` if it runs, then restart it from its storage.
    pub fn start1(&mut self, i: usize) {
        self.crash1(i);
        let storage = match self.disks[i].open() {
            Ok(s) => s,
            Err(e) => {
                self.fail(format!("node {i}: storage failed to open/recover: {e}"));
                return;
            }
        };
        if let SimStorage::Wal(w) = &storage {
            let r = w.wal().recovery_report();
            if r.torn_bytes_truncated > 0 || r.files_removed > 0 {
                self.torn_recoveries += 1;
            }
        }
        let cfg = Config::new(i as u64, self.n, self.rng.gen());
        match Raft::new(cfg, storage) {
            Ok(node) => self.nodes[i] = Some(node),
            Err(e) => {
                self.fail(format!("node {i}: restart failed: {e}"));
                return;
            }
        }
        self.last_applied[i] = 0;
        self.next_tick[i] = self.now + 1 + self.rng.gen_range(0..Config::TICK_MS);
        self.flush(i);
    }

    /// The lab's `Start` on node `i`: `Some((index, term))` when it accepted as leader.
    pub fn start(&mut self, i: usize, cmd: Vec<u8>) -> Option<(u64, u64)> {
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
                self.fail(format!("run exceeded {MAX_SIM_MS} ms of simulated time"));
                return;
            }
            let t_msg = self.queue.peek().map(|r| r.0 .0).unwrap_or(u64::MAX);
            let (tick_node, t_tick) = (0..self.n)
                .filter(|&i| self.nodes[i].is_some())
                .map(|i| (i, self.next_tick[i]))
                .min_by_key(|&(_, t)| t)
                .unwrap_or((0, u64::MAX));
            let (client, t_client) = self
                .clients
                .iter()
                .enumerate()
                .filter_map(|(k, c)| c.as_ref().filter(|c| !c.done()).map(|c| (k, c.wake())))
                .min_by_key(|&(_, t)| t)
                .unwrap_or((0, u64::MAX));
            let t = t_msg.min(t_tick).min(t_client);
            if t > until {
                self.now = self.now.max(until);
                return;
            }
            self.now = self.now.max(t);
            if t_msg == t {
                if let Some(Reverse((_, seq))) = self.queue.pop() {
                    if let Some(env) = self.in_flight.remove(&seq) {
                        self.deliver(env);
                    }
                }
            } else if t_tick == t {
                self.next_tick[tick_node] += Config::TICK_MS;
                if let Some(node) = self.nodes[tick_node].as_mut() {
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

    /// The lab's `end`: the run's figures, or its failure.
    pub fn end(&mut self) -> TResult<RunStats> {
        self.check()?;
        Ok(self.stats())
    }
}

/// A command from a number (the lab's ints), 8 bytes little-endian.
pub fn cmd(x: u64) -> Vec<u8> {
    x.to_le_bytes().to_vec()
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
