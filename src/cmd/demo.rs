//! `raftwal demo`: a Raft cluster in this process, in real time, each node persisting to a
//! real WAL directory; nodes crash (dropped without a clean shutdown) and restart from their
//! directories at random while clients propose commands. At the end every node must have
//! applied the same sequence.
//!
//! Each node is a thread driving the same sans-IO `raft_core::Raft` the simulator drives:
//! it drains its channel (messages, client proposals), hands the burst to
//! `Raft::handle_batch` (one persist, so one fsync for the burst: group commit), and only
//! then sends the messages and answers the clients. A tick every 10 ms drives timeouts.
//!
//! The verifier sees every apply of every node: the command at each index must be the same
//! on every node, every node applies indices in order without gaps, and a snapshot a node
//! installs must hash to the verified prefix it claims to cover.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use raft_core::{Apply, Config, Envelope, Input, Raft, WalStorage};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wal::{Options, Wal};

use super::CmdResult;

/// Arguments of `raftwal demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// How long clients propose and nodes crash, in seconds.
    #[arg(long, default_value_t = 15.0)]
    pub duration: f64,
    /// Seed of the crash schedule and the election timeouts (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep the WAL directories under this directory (default: a temporary directory,
    /// removed at the end).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Proposals a client sends before waiting for the answers.
    #[arg(long, default_value_t = 32)]
    pub burst: usize,
    /// Mean time between crashes in milliseconds (0: no crashes).
    #[arg(long, default_value_t = 1500)]
    pub crash_every_ms: u64,
    /// Bytes per command.
    #[arg(long, default_value_t = 64)]
    pub command_size: usize,
    /// The service snapshots after every this many applied commands (0: never).
    #[arg(long, default_value_t = 5000)]
    pub snapshot_every: u64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

const TICK: Duration = Duration::from_millis(Config::TICK_MS);
/// Most inputs handed to one `handle_batch`.
const MAX_BATCH: usize = 1024;
/// WAL segment size for the demo (smaller than the default to keep the directories small).
const SEGMENT_SIZE: u64 = 8 << 20;

enum NodeInput {
    Msg(Envelope),
    Propose(Vec<u8>, Sender<Option<(u64, u64)>>),
    Crash,
}

/// What a node thread reports when it ends.
struct NodeExit {
    rx: Receiver<NodeInput>,
    fsyncs: u64,
    entries_appended: u64,
    error: Option<String>,
}

/// What a node thread reports once it has recovered.
struct Recovered {
    node: usize,
    time: Duration,
    entries: u64,
    torn_bytes: u64,
    segments: usize,
}

struct Shared {
    n: usize,
    senders: Vec<Sender<NodeInput>>,
    verifier: Mutex<Verifier>,
    committed: AtomicU64,
    leader: AtomicUsize,
    stop_clients: AtomicBool,
    accepted: AtomicU64,
    snapshot_every: u64,
}

impl Shared {
    fn verifier(&self) -> MutexGuard<'_, Verifier> {
        self.verifier
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Cross-node check of the apply streams.
#[derive(Default)]
struct Verifier {
    /// Command id at each index (index 1 at position 0), as first applied by any node.
    canon: Vec<u64>,
    /// Running hash of `canon` through each index.
    canon_hash: Vec<u64>,
    /// Per node: (last applied index, running hash).
    nodes: Vec<(u64, u64)>,
    violations: Vec<String>,
    applies: u64,
    snapshots_installed: u64,
}

fn mix(h: u64, x: u64) -> u64 {
    let mut z = (h ^ x).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn command_id(data: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let k = data.len().min(8);
    b[..k].copy_from_slice(&data[..k]);
    u64::from_le_bytes(b)
}

impl Verifier {
    fn violation(&mut self, msg: String) {
        if self.violations.len() < 20 {
            self.violations.push(msg);
        }
    }

    fn restarted(&mut self, node: usize) {
        self.nodes[node] = (0, 0);
    }

    fn command(&mut self, node: usize, index: u64, id: u64) {
        self.applies += 1;
        let (applied, hash) = self.nodes[node];
        if index != applied + 1 {
            self.violation(format!(
                "node {node} applied index {index} after {applied} (out of order)"
            ));
            return;
        }
        let k = (index - 1) as usize;
        let hash = mix(hash, id);
        if k < self.canon.len() {
            if self.canon[k] != id {
                self.violation(format!(
                    "node {node} applied command {id:#x} at index {index}, another node applied {:#x}",
                    self.canon[k]
                ));
                return;
            }
        } else {
            self.canon.push(id);
            self.canon_hash.push(hash);
        }
        if self.canon_hash[k] != hash {
            self.violation(format!(
                "node {node}'s applied sequence through {index} differs from the others'"
            ));
            return;
        }
        self.nodes[node] = (index, hash);
    }

    fn snapshot(&mut self, node: usize, index: u64, hash: u64) {
        self.snapshots_installed += 1;
        let (applied, _) = self.nodes[node];
        if index < applied {
            self.violation(format!(
                "node {node} installed a snapshot at {index} after applying {applied} (backwards)"
            ));
            return;
        }
        let k = (index - 1) as usize;
        if k >= self.canon.len() || self.canon_hash[k] != hash {
            self.violation(format!(
                "node {node} installed a snapshot at {index} that does not match the applied sequence"
            ));
            return;
        }
        self.nodes[node] = (index, hash);
    }
}

/// The replicated service: the number of applied commands and their running hash.
#[derive(Default, Clone, Copy)]
struct Service {
    applied: u64,
    hash: u64,
}

impl Service {
    fn encode(&self) -> Vec<u8> {
        let mut v = self.applied.to_le_bytes().to_vec();
        v.extend_from_slice(&self.hash.to_le_bytes());
        v
    }
    fn decode(data: &[u8]) -> Option<Service> {
        let applied = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
        let hash = u64::from_le_bytes(data.get(8..16)?.try_into().ok()?);
        Some(Service { applied, hash })
    }
}

fn node_dir(root: &Path, id: usize) -> PathBuf {
    root.join(format!("node-{id}"))
}

fn wal_options() -> Options {
    Options {
        segment_size: SEGMENT_SIZE,
        ..Options::default()
    }
}

/// Hands `applies` to the service and the verifier; maybe snapshots. Returns an error
/// message on a fatal problem.
fn apply_all(
    id: usize,
    raft: &mut Raft<WalStorage<wal::StdVfs>>,
    svc: &mut Service,
    shared: &Shared,
) -> Result<(), String> {
    let applies = raft.take_applies();
    if applies.is_empty() {
        return Ok(());
    }
    let mut snap_at = None;
    {
        let mut v = shared.verifier();
        for a in applies {
            match a {
                Apply::Command { index, data, .. } => {
                    let cid = command_id(&data);
                    v.command(id, index, cid);
                    svc.applied = index;
                    svc.hash = mix(svc.hash, cid);
                    if shared.snapshot_every > 0 && index % shared.snapshot_every == 0 {
                        snap_at = Some((index, svc.encode()));
                    }
                }
                Apply::Snapshot { index, data, .. } => {
                    let Some(s) = Service::decode(&data) else {
                        return Err(format!("node {id}: undecodable snapshot at {index}"));
                    };
                    v.snapshot(id, index, s.hash);
                    *svc = s;
                    snap_at = None;
                }
            }
        }
        shared
            .committed
            .store(v.canon.len() as u64, Ordering::Relaxed);
    }
    if let Some((index, data)) = snap_at {
        raft.snapshot(index, data).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn run_node(
    id: usize,
    root: PathBuf,
    seed: u64,
    rx: Receiver<NodeInput>,
    shared: Arc<Shared>,
    recovered: Sender<Recovered>,
) -> NodeExit {
    let mut exit = NodeExit {
        rx,
        fsyncs: 0,
        entries_appended: 0,
        error: None,
    };
    // Whatever reached a crashed node is lost.
    while exit.rx.try_recv().is_ok() {}
    let t0 = Instant::now();
    let wal = match Wal::open(node_dir(&root, id), wal_options()) {
        Ok(w) => w,
        Err(e) => {
            exit.error = Some(format!("node {id}: WAL recovery failed: {e}"));
            return exit;
        }
    };
    let report = wal.recovery_report().clone();
    shared.verifier().restarted(id);
    let mut raft = match Raft::new(Config::new(id as u64, shared.n, seed), WalStorage::new(wal)) {
        Ok(r) => r,
        Err(e) => {
            exit.error = Some(format!("node {id}: restart failed: {e}"));
            return exit;
        }
    };
    let _ = recovered.send(Recovered {
        node: id,
        time: t0.elapsed(),
        entries: report.entries,
        torn_bytes: report.torn_bytes_truncated,
        segments: report.segments,
    });
    let mut svc = Service::default();
    let finish =
        |raft: Raft<WalStorage<wal::StdVfs>>, mut exit: NodeExit, error: Option<String>| {
            let stats = raft.storage().wal().stats();
            exit.fsyncs = stats.file_syncs + stats.dir_syncs;
            exit.entries_appended = stats.entries_appended;
            exit.error = error;
            // Dropped without a clean shutdown: nothing is flushed or synced on the way out.
            drop(raft);
            exit
        };
    if let Err(e) = apply_all(id, &mut raft, &mut svc, &shared) {
        return finish(raft, exit, Some(e));
    }
    let mut next_tick = Instant::now() + TICK;
    loop {
        let mut inputs = Vec::new();
        let mut repliers = Vec::new();
        let mut crash = false;
        let wait = next_tick.saturating_duration_since(Instant::now());
        let mut push = |x: NodeInput, inputs: &mut Vec<Input>, crash: &mut bool| match x {
            NodeInput::Msg(m) => inputs.push(Input::Message(m)),
            NodeInput::Propose(c, r) => {
                inputs.push(Input::Propose(c));
                repliers.push(r);
            }
            NodeInput::Crash => *crash = true,
        };
        match exit.rx.recv_timeout(wait) {
            Ok(x) => push(x, &mut inputs, &mut crash),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return finish(raft, exit, None),
        }
        while !crash && inputs.len() < MAX_BATCH {
            match exit.rx.try_recv() {
                Ok(x) => push(x, &mut inputs, &mut crash),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return finish(raft, exit, None),
            }
        }
        if crash {
            // Power off: the inputs in hand are never handled.
            return finish(raft, exit, None);
        }
        let now = Instant::now();
        if now >= next_tick {
            inputs.push(Input::Tick);
            next_tick += TICK;
            if next_tick < now {
                next_tick = now + TICK;
            }
        }
        let answers = match raft.handle_batch(inputs) {
            Ok(a) => a,
            Err(e) => return finish(raft, exit, Some(e.to_string())),
        };
        for m in raft.take_messages() {
            if let Some(tx) = shared.senders.get(m.to as usize) {
                let _ = tx.send(NodeInput::Msg(m));
            }
        }
        for (r, a) in repliers.into_iter().zip(answers) {
            let _ = r.send(a);
        }
        if let Err(e) = apply_all(id, &mut raft, &mut svc, &shared) {
            return finish(raft, exit, Some(e));
        }
        if raft.is_leader() {
            shared.leader.store(id, Ordering::Relaxed);
        }
    }
}

fn run_client(cid: u64, shared: Arc<Shared>, burst: usize, size: usize) {
    let mut counter = 0u64;
    let mut target = shared.leader.load(Ordering::Relaxed);
    let n = shared.n;
    while !shared.stop_clients.load(Ordering::Relaxed) {
        // Stay within a bounded distance of what is committed.
        let ahead = shared
            .accepted
            .load(Ordering::Relaxed)
            .saturating_sub(shared.committed.load(Ordering::Relaxed));
        if ahead > 20_000 {
            thread::sleep(Duration::from_millis(2));
            continue;
        }
        let (tx, rx) = mpsc::channel();
        for _ in 0..burst {
            let mut c = vec![0u8; size.max(8)];
            let id = (cid << 48) | counter;
            counter += 1;
            c[..8].copy_from_slice(&id.to_le_bytes());
            if shared.senders[target]
                .send(NodeInput::Propose(c, tx.clone()))
                .is_err()
            {
                break;
            }
        }
        drop(tx);
        let mut rejected = false;
        let deadline = Instant::now() + Duration::from_millis(500);
        for _ in 0..burst {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Some(_)) => {
                    shared.accepted.fetch_add(1, Ordering::Relaxed);
                }
                Ok(None) | Err(_) => {
                    rejected = true;
                    break;
                }
            }
        }
        if rejected {
            let hint = shared.leader.load(Ordering::Relaxed);
            target = if hint != target {
                hint
            } else {
                (target + 1) % n
            };
            thread::sleep(Duration::from_millis(5));
        }
    }
}

struct Restart {
    node: usize,
    down: Duration,
    recovery: Recovered,
}

struct Node {
    join: Option<JoinHandle<NodeExit>>,
    rx: Option<Receiver<NodeInput>>,
}

/// Runs `raftwal demo`.
pub fn run(args: Args) -> CmdResult {
    if args.nodes == 0 || args.clients == 0 || args.burst == 0 {
        return Err("--nodes, --clients and --burst must be at least 1".into());
    }
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let mut rng = StdRng::seed_from_u64(seed);
    let temp;
    let root = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let n = args.nodes;
    let duration = Duration::from_secs_f64(args.duration.max(0.0));
    println!(
        "raftwal demo: {n} nodes, {:.1} s, seed {seed}, {} clients, WAL directories in {}",
        duration.as_secs_f64(),
        args.clients,
        root.display()
    );
    println!(
        "same crash schedule and election timeouts (thread timing differs): raftwal demo --nodes {n} --duration {} --seed {seed}",
        args.duration
    );

    let mut senders = Vec::new();
    let mut nodes = Vec::new();
    for _ in 0..n {
        let (tx, rx) = mpsc::channel();
        senders.push(tx);
        nodes.push(Node {
            join: None,
            rx: Some(rx),
        });
    }
    let shared = Arc::new(Shared {
        n,
        senders,
        verifier: Mutex::new(Verifier {
            nodes: vec![(0, 0); n],
            ..Verifier::default()
        }),
        committed: AtomicU64::new(0),
        leader: AtomicUsize::new(0),
        stop_clients: AtomicBool::new(false),
        accepted: AtomicU64::new(0),
        snapshot_every: args.snapshot_every,
    });
    let (rec_tx, rec_rx) = mpsc::channel::<Recovered>();
    let mut fsyncs = 0u64;
    let mut entries_appended = 0u64;
    let mut errors: Vec<String> = Vec::new();
    let mut restarts: Vec<Restart> = Vec::new();
    let mut initial_recovery = Vec::new();

    let start_node = |i: usize, nodes: &mut Vec<Node>, rng: &mut StdRng| -> Result<(), String> {
        let rx = nodes[i]
            .rx
            .take()
            .ok_or_else(|| format!("node {i} has no channel"))?;
        let shared = Arc::clone(&shared);
        let root = root.clone();
        let rec = rec_tx.clone();
        let node_seed = rng.gen();
        let h = thread::Builder::new()
            .name(format!("node-{i}"))
            .spawn(move || run_node(i, root, node_seed, rx, shared, rec))
            .map_err(|e| e.to_string())?;
        nodes[i].join = Some(h);
        Ok(())
    };
    let stop_node = |i: usize,
                     nodes: &mut Vec<Node>,
                     fsyncs: &mut u64,
                     appended: &mut u64,
                     errors: &mut Vec<String>| {
        if let Some(h) = nodes[i].join.take() {
            let _ = shared.senders[i].send(NodeInput::Crash);
            match h.join() {
                Ok(exit) => {
                    *fsyncs += exit.fsyncs;
                    *appended += exit.entries_appended;
                    if let Some(e) = exit.error {
                        errors.push(e);
                    }
                    nodes[i].rx = Some(exit.rx);
                }
                Err(_) => errors.push(format!("node {i} panicked")),
            }
        }
    };

    for i in 0..n {
        start_node(i, &mut nodes, &mut rng)?;
    }
    for _ in 0..n {
        match rec_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(r) => initial_recovery.push(r),
            Err(_) => {
                errors.push("a node did not open its WAL within 30 s".into());
                break;
            }
        }
    }

    let t_start = Instant::now();
    let clients: Vec<JoinHandle<()>> = (0..args.clients)
        .map(|c| {
            let shared = Arc::clone(&shared);
            let (burst, size) = (args.burst, args.command_size);
            thread::spawn(move || run_client(c as u64 + 1, shared, burst, size))
        })
        .collect();

    let pb = if args.quiet {
        ProgressBar::with_draw_target(
            Some(duration.as_millis() as u64),
            ProgressDrawTarget::hidden(),
        )
    } else {
        ProgressBar::new(duration.as_millis() as u64)
    };
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mean_gap = args.crash_every_ms as f64;
    let mut next_crash = (args.crash_every_ms > 0)
        .then(|| t_start + Duration::from_millis((mean_gap * rng.gen_range(0.5..1.5)) as u64));
    let mut down: Option<(usize, Instant, Instant)> = None;
    let mut pending_recovery: VecDeque<(usize, Duration)> = VecDeque::new();

    while t_start.elapsed() < duration && errors.is_empty() {
        thread::sleep(Duration::from_millis(20));
        let now = Instant::now();
        if down.is_none() && next_crash.is_some_and(|t| now >= t) {
            let victim = rng.gen_range(0..n);
            stop_node(
                victim,
                &mut nodes,
                &mut fsyncs,
                &mut entries_appended,
                &mut errors,
            );
            let back = now + Duration::from_millis(rng.gen_range(200..1000));
            down = Some((victim, now, back));
        }
        if let Some((victim, since, back)) = down {
            if now >= back {
                start_node(victim, &mut nodes, &mut rng)?;
                pending_recovery.push_back((victim, since.elapsed()));
                down = None;
                next_crash =
                    Some(now + Duration::from_millis((mean_gap * rng.gen_range(0.5..1.5)) as u64));
            }
        }
        while let Ok(r) = rec_rx.try_recv() {
            if let Some(pos) = pending_recovery.iter().position(|(v, _)| *v == r.node) {
                if let Some((node, d)) = pending_recovery.remove(pos) {
                    restarts.push(Restart {
                        node,
                        down: d,
                        recovery: r,
                    });
                }
            }
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            if node.join.as_ref().is_some_and(|h| h.is_finished()) {
                stop_node_finished(i, node, &mut fsyncs, &mut entries_appended, &mut errors);
            }
        }
        pb.set_position(t_start.elapsed().as_millis() as u64);
        pb.set_message(format!(
            "committed {} | restarts {} | leader {}",
            shared.committed.load(Ordering::Relaxed),
            restarts.len() + usize::from(down.is_some()),
            shared.leader.load(Ordering::Relaxed)
        ));
    }
    let run_time = t_start.elapsed();
    shared.stop_clients.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    let committed_at_stop = shared.committed.load(Ordering::Relaxed);
    if let Some((victim, since, _)) = down.take() {
        start_node(victim, &mut nodes, &mut rng)?;
        pending_recovery.push_back((victim, since.elapsed()));
    }
    pb.set_message("waiting for every node to apply everything".to_string());
    // Catch-up: every node applies the same last index, and it stops moving.
    let catch_up_start = Instant::now();
    let mut caught_up = false;
    let mut stable_since: Option<(u64, Instant)> = None;
    while errors.is_empty() && catch_up_start.elapsed() < Duration::from_secs(20) {
        thread::sleep(Duration::from_millis(20));
        while let Ok(r) = rec_rx.try_recv() {
            if let Some(pos) = pending_recovery.iter().position(|(v, _)| *v == r.node) {
                if let Some((node, d)) = pending_recovery.remove(pos) {
                    restarts.push(Restart {
                        node,
                        down: d,
                        recovery: r,
                    });
                }
            }
        }
        let v = shared.verifier();
        let max = v.canon.len() as u64;
        let all = v.nodes.iter().all(|&(a, _)| a == max);
        drop(v);
        if all {
            match stable_since {
                Some((m, t)) if m == max && t.elapsed() > Duration::from_millis(300) => {
                    caught_up = true;
                    break;
                }
                Some((m, _)) if m == max => {}
                _ => stable_since = Some((max, Instant::now())),
            }
        } else {
            stable_since = None;
        }
    }
    let catch_up = catch_up_start.elapsed();
    for i in 0..n {
        stop_node(
            i,
            &mut nodes,
            &mut fsyncs,
            &mut entries_appended,
            &mut errors,
        );
    }
    pb.finish_and_clear();

    let v = shared.verifier();
    let committed = v.canon.len() as u64;
    println!();
    println!("commands committed      {committed} ({committed_at_stop} when the clients stopped)");
    println!(
        "throughput              {:.0} commands/s over {:.1} s",
        committed_at_stop as f64 / run_time.as_secs_f64().max(1e-9),
        run_time.as_secs_f64()
    );
    println!(
        "proposals accepted      {} by a leader",
        shared.accepted.load(Ordering::Relaxed)
    );
    println!(
        "fsyncs                  {fsyncs} for {entries_appended} entries appended on {n} nodes ({:.2} entries per fsync)",
        entries_appended as f64 / fsyncs.max(1) as f64
    );
    println!(
        "applies verified        {} commands, {} snapshots installed",
        v.applies, v.snapshots_installed
    );
    for r in &initial_recovery {
        println!(
            "initial open            node {}: {:.2} ms ({} segments, {} entries)",
            r.node,
            r.time.as_secs_f64() * 1000.0,
            r.segments,
            r.entries
        );
    }
    println!("restarts                {}", restarts.len());
    for (k, r) in restarts.iter().enumerate() {
        println!(
            "  #{:<3} node {}  down {:>6.0} ms  recovery {:>7.2} ms  ({} segments, {} entries, {} torn bytes cut)",
            k + 1,
            r.node,
            r.down.as_secs_f64() * 1000.0,
            r.recovery.time.as_secs_f64() * 1000.0,
            r.recovery.segments,
            r.recovery.entries,
            r.recovery.torn_bytes
        );
    }
    let applied: Vec<String> = v
        .nodes
        .iter()
        .enumerate()
        .map(|(i, (a, _))| format!("node {i}: {a}"))
        .collect();
    println!("applied at the end      {}", applied.join(", "));
    let mut ok = true;
    for e in &errors {
        println!("error                   {e}");
        ok = false;
    }
    for e in &v.violations {
        println!("VIOLATION               {e}");
        ok = false;
    }
    if !caught_up && errors.is_empty() {
        println!(
            "NOT CAUGHT UP           the nodes did not all apply the same last index within {:.0} s",
            catch_up.as_secs_f64()
        );
        ok = false;
    }
    if ok {
        println!(
            "verification            OK: every node applied the same {committed} commands in the same order \
             (every apply checked against the others; snapshots matched the verified prefix)"
        );
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        println!("verification            FAILED (seed {seed})");
        Ok(std::process::ExitCode::FAILURE)
    }
}

/// Collects a node thread that ended on its own (a fatal error).
fn stop_node_finished(
    i: usize,
    node: &mut Node,
    fsyncs: &mut u64,
    appended: &mut u64,
    errors: &mut Vec<String>,
) {
    if let Some(h) = node.join.take() {
        match h.join() {
            Ok(exit) => {
                *fsyncs += exit.fsyncs;
                *appended += exit.entries_appended;
                errors.push(
                    exit.error
                        .unwrap_or_else(|| format!("node {i} stopped unexpectedly")),
                );
                node.rx = Some(exit.rx);
            }
            Err(_) => errors.push(format!("node {i} panicked")),
        }
    }
}
