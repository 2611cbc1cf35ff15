//! A crash-and-restart scenario on a 3-node in-process cluster, shared by the `cluster`
//! example (`cargo run --release -p raftwal-openraft --example cluster`) and the
//! `tests/cluster.rs` test.
//!
//! [`run_cluster`]:
//! 1. starts three openraft nodes, each on its own `root/nodeN/log` ([`WalLogStore`]) and
//!    `root/nodeN/sm` ([`KvStateMachine`]), connected by the in-process [`Router`];
//! 2. initializes node 1 and writes [`Scenario::writes_before_crash`] keys through whoever
//!    is leader;
//! 3. keeps writing ([`Scenario::writes_while_down`] more keys) and, once a tenth of those
//!    are acknowledged, crashes a follower: it is taken off the network and its `Raft`
//!    handle and stores are dropped without `shutdown` (the flush thread stops, nothing
//!    is flushed on its behalf);
//! 4. when the writes are done, reopens the follower from its directories and waits until
//!    it has applied everything the leader has (through a snapshot if the leader purged the
//!    entries it missed);
//! 5. checks that every node's state machine is the same and holds every acknowledged
//!    write, and returns a [`Report`].

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, RaftMetrics, ServerState, SnapshotPolicy};
use tokio::sync::watch;

use crate::router::{KvRaft, Router};
use crate::{KvConfig, KvRequest, KvStateMachine, WalLogStore};

/// The error type of the scenario.
pub type BoxError = Box<dyn Error + Send + Sync>;

type Metrics = RaftMetrics<u64, BasicNode>;

/// The scenario's sizes and knobs.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Keys written before the crash.
    pub writes_before_crash: usize,
    /// Keys written after that; the follower crashes once a tenth of them are acknowledged
    /// and stays down for the rest.
    pub writes_while_down: usize,
    /// Writes in flight at once (each writer task writes its keys one after another).
    pub concurrency: usize,
    /// Picks the values written and which follower crashes.
    pub seed: u64,
    /// The WAL's segment size (small, so that purges drop whole segments).
    pub segment_size: u64,
    /// openraft builds a snapshot every this many applied entries
    /// (`SnapshotPolicy::LogsSinceLast`).
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot (`max_in_snapshot_log_to_keep`).
    pub keep_logs: u64,
    /// Bound on each wait (a write, an election, the catch-up).
    pub timeout: Duration,
    /// Print progress to stdout.
    pub progress: bool,
}

impl Default for Scenario {
    /// The example's sizes: 5000 keys before the crash, 5000 while the follower is down.
    fn default() -> Self {
        Scenario {
            writes_before_crash: 5000,
            writes_while_down: 5000,
            concurrency: 32,
            seed: 1,
            segment_size: 256 << 10,
            snapshot_every: 500,
            keep_logs: 50,
            timeout: Duration::from_secs(30),
            progress: false,
        }
    }
}

/// What the restarted node found on disk and how it caught up.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// The node that crashed and restarted.
    pub node: u64,
    /// Roughly its last log index when it crashed (read just before its handle was dropped;
    /// its core may have appended a little more before it stopped).
    pub last_index_at_crash: Option<u64>,
    /// The WAL's recovery report: entries recovered.
    pub entries: u64,
    /// Segments scanned.
    pub segments: usize,
    /// Bytes of a torn tail cut.
    pub torn_bytes: u64,
    /// Its last log index after recovery (openraft's numbering).
    pub last_index: Option<u64>,
    /// The last entry covered by the snapshot its state machine reopened from.
    pub snapshot_index: Option<u64>,
    /// The last log index the leader had purged when the node came back.
    pub leader_purged: Option<u64>,
    /// The same once the node had caught up (the leader may purge more meanwhile: the
    /// snapshot it builds after the last writes).
    pub leader_purged_after: Option<u64>,
    /// Entries the node was missing when it came back (the leader's last applied index
    /// minus its own last log index).
    pub missing: u64,
    /// Entries the node appended to its log after the restart.
    pub appended_after_restart: u64,
    /// Whether it caught up by installing a snapshot (it appended fewer entries than it was
    /// missing).
    pub by_snapshot: bool,
    /// Time from `Raft::new` to having applied the leader's last entry.
    pub catch_up: Duration,
}

/// What the scenario did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Writes acknowledged (every one of them was found on every node).
    pub writes: usize,
    /// Of those, acknowledged while the crashed follower was down.
    pub writes_while_down: usize,
    /// Nodes crashed and restarted.
    pub restarts: usize,
    /// The leader at the end.
    pub leader: u64,
    /// The last applied log index, the same on every node.
    pub last_applied: u64,
    /// Keys in each node's map.
    pub keys: usize,
    /// The crashed node's recovery.
    pub recovery: Recovery,
    /// Wall time of the whole scenario.
    pub elapsed: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.recovery;
        let opt = |x: Option<u64>| x.map_or("-".to_string(), |i| i.to_string());
        let secs = self.elapsed.as_secs_f64();
        writeln!(
            f,
            "writes acknowledged: {} ({} while node {} was down), {:.0} writes/s",
            self.writes,
            self.writes_while_down,
            r.node,
            self.writes as f64 / secs.max(1e-9)
        )?;
        writeln!(f, "restarts: {}", self.restarts)?;
        writeln!(
            f,
            "all 3 state machines agree: {} keys, last applied index {} (leader: node {})",
            self.keys, self.last_applied, self.leader
        )?;
        writeln!(
            f,
            "node {} at crash: last log index ~{}",
            r.node,
            opt(r.last_index_at_crash)
        )?;
        writeln!(
            f,
            "node {} recovery from disk: {} entries in {} segments (torn tail cut: {} bytes), \
             last log index {}, state machine snapshot at {}",
            r.node,
            r.entries,
            r.segments,
            r.torn_bytes,
            opt(r.last_index),
            opt(r.snapshot_index)
        )?;
        writeln!(
            f,
            "node {} caught up in {:.3} s {}: appended {} of the {} entries it was missing; \
             the leader's log was purged up to {} at the restart, {} at the catch-up",
            r.node,
            r.catch_up.as_secs_f64(),
            if r.by_snapshot {
                "by installing a snapshot"
            } else {
                "from the log (no snapshot)"
            },
            r.appended_after_restart,
            r.missing,
            opt(r.leader_purged),
            opt(r.leader_purged_after)
        )?;
        write!(f, "time: {secs:.3} s")
    }
}

/// One running node, as the scenario holds it. Dropping it drops the scenario's handles.
struct Node {
    raft: KvRaft,
    log: WalLogStore<KvConfig>,
    sm: KvStateMachine,
}

/// The nodes on the network; writers look leaders up here and hold a `Raft` handle only for
/// the duration of one call (a handle held elsewhere would keep a crashed node running).
#[derive(Default)]
struct Live {
    nodes: Mutex<BTreeMap<u64, KvRaft>>,
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, KvRaft>> {
        self.nodes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, id: u64) -> Option<KvRaft> {
        self.lock().get(&id).cloned()
    }

    fn metrics(&self) -> Vec<(u64, watch::Receiver<Metrics>)> {
        self.lock()
            .iter()
            .map(|(id, r)| (*id, r.metrics()))
            .collect()
    }

    /// Waits until a live node reports itself leader; returns its id and handle.
    async fn leader(&self, deadline: Instant) -> Result<(u64, KvRaft), BoxError> {
        // Nodes whose metrics channel closed (their core stopped).
        let mut stopped = BTreeSet::new();
        loop {
            let mut rxs: Vec<_> = self
                .metrics()
                .into_iter()
                .filter(|(id, _)| !stopped.contains(id))
                .collect();
            if rxs.is_empty() {
                return Err("no live node".into());
            }
            for (id, rx) in &mut rxs {
                // Copy out: never hold the watch borrow across an await.
                let is_leader = rx.borrow_and_update().state == ServerState::Leader;
                if is_leader {
                    if let Some(raft) = self.get(*id) {
                        return Ok((*id, raft));
                    }
                }
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let changed = tokio::time::timeout(remaining, any_changed(&mut rxs)).await;
            match changed {
                Err(_) => return Err("timed out waiting for a leader".into()),
                Ok((_, true)) => {}
                Ok((i, false)) => {
                    stopped.insert(rxs[i].0);
                }
            }
        }
    }

    /// Writes `req` through the leader, following `ForwardToLeader` and waiting out
    /// elections; returns the log index it was committed at.
    async fn write(&self, req: KvRequest, deadline: Instant) -> Result<u64, BoxError> {
        let mut hint: Option<u64> = None;
        loop {
            let raft = match hint.take().and_then(|id| self.get(id)) {
                Some(raft) => raft,
                None => self.leader(deadline).await?.1,
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            let res = tokio::time::timeout(remaining, raft.client_write(req.clone())).await;
            let asked = raft.metrics().borrow().id;
            drop(raft);
            match res {
                Err(_) => return Err(format!("timed out writing {req:?}").into()),
                Ok(Ok(resp)) => return Ok(resp.log_id.index),
                Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                    hint = f.leader_id.filter(|&l| l != asked);
                }
                Ok(Err(RaftError::APIError(e))) => return Err(e.into()),
                // That node stopped: look for the leader again.
                Ok(Err(RaftError::Fatal(_))) => {}
            }
        }
    }
}

/// Waits until one of `rxs` changes; returns its position and whether its sender is still
/// there (`false`: the node's core stopped).
async fn any_changed(rxs: &mut [(u64, watch::Receiver<Metrics>)]) -> (usize, bool) {
    type Changed<'a> = Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
    let mut futs: Vec<Changed<'_>> = rxs
        .iter_mut()
        .map(|(_, rx)| Box::pin(async move { rx.changed().await.is_ok() }) as Changed<'_>)
        .collect();
    std::future::poll_fn(|cx| {
        for (i, f) in futs.iter_mut().enumerate() {
            if let Poll::Ready(alive) = f.as_mut().poll(cx) {
                return Poll::Ready((i, alive));
            }
        }
        Poll::Pending
    })
    .await
}

/// splitmix64: the values written, from the seed.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn key(i: usize) -> String {
    format!("key-{i:07}")
}

fn value(seed: u64, i: usize) -> String {
    format!("value-{i}-{:016x}", mix(seed ^ mix(i as u64)))
}

fn node_dir(root: &Path, id: u64) -> PathBuf {
    root.join(format!("node{id}"))
}

struct Cluster {
    config: Arc<Config>,
    router: Router,
    live: Arc<Live>,
    nodes: BTreeMap<u64, Node>,
    root: PathBuf,
    options: raftwal::Options,
}

impl Cluster {
    /// Opens node `id`'s stores from its directories and starts it on the network.
    async fn start(&mut self, id: u64) -> Result<(), BoxError> {
        let dir = node_dir(&self.root, id);
        let log: WalLogStore<KvConfig> = WalLogStore::open(dir.join("log"), self.options.clone())?;
        let sm = KvStateMachine::open(dir.join("sm"))?;
        let raft = KvRaft::new(
            id,
            Arc::clone(&self.config),
            self.router.clone(),
            log.clone(),
            sm.clone(),
        )
        .await?;
        self.router.add(id, raft.clone());
        self.live.lock().insert(id, raft.clone());
        self.nodes.insert(id, Node { raft, log, sm });
        Ok(())
    }

    /// Crashes node `id`: off the network, every handle on it dropped without `shutdown`.
    /// Returns once its core has stopped and dropped its stores (so the WAL's directory
    /// lock is free), and the node's last log index just before.
    async fn crash(&mut self, id: u64, deadline: Instant) -> Result<Option<u64>, BoxError> {
        let node = self.nodes.remove(&id).ok_or("no such node")?;
        self.router.remove(id);
        self.live.lock().remove(&id);
        let last = node.log.with_wal(|w| w.last_index().checked_sub(1));
        let mut rx = node.raft.metrics();
        // No `raft.shutdown()`: dropping the last `Raft` handle drops its shutdown sender,
        // which RaftCore's loop takes as the signal to stop, as after a kill it would
        // simply be gone. The core then returns and drops its log store (the flush thread
        // stops, unsynced appends are lost) and state machine; no fallback to `shutdown` was
        // needed. Handles still held by in-flight RPCs or writers are released when those
        // calls return.
        drop(node);
        // RaftCore drops its metrics sender after its stores (field order), as its task ends.
        let remaining = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(remaining, async { while rx.changed().await.is_ok() {} })
            .await
            .map_err(|_| format!("node {id}'s core did not stop after its handle was dropped"))?;
        Ok(last)
    }

    /// Writes keys `range` with `concurrency` writers; `acked` counts acknowledgements.
    fn write_keys(
        &self,
        range: std::ops::Range<usize>,
        sc: &Scenario,
        deadline: Instant,
        acked: &Arc<watch::Sender<usize>>,
    ) -> tokio::task::JoinSet<Result<(), BoxError>> {
        let mut set = tokio::task::JoinSet::new();
        let lanes = sc.concurrency.max(1);
        for lane in 0..lanes {
            let live = Arc::clone(&self.live);
            let acked = Arc::clone(acked);
            let keys: Vec<usize> = range.clone().skip(lane).step_by(lanes).collect();
            let (seed, progress) = (sc.seed, sc.progress);
            let total = sc.writes_before_crash + sc.writes_while_down;
            set.spawn(async move {
                for i in keys {
                    let req = KvRequest::Set {
                        key: key(i),
                        value: value(seed, i),
                    };
                    live.write(req, deadline).await?;
                    let mut n = 0;
                    acked.send_modify(|c| {
                        *c += 1;
                        n = *c;
                    });
                    if progress && n % 1000 == 0 {
                        println!("  {n}/{total} writes acknowledged");
                    }
                }
                Ok(())
            });
        }
        set
    }
}

async fn join_all(mut set: tokio::task::JoinSet<Result<(), BoxError>>) -> Result<(), BoxError> {
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

/// Runs the scenario in `root` (which should be empty). See the module documentation.
pub async fn run_cluster(root: &Path, sc: &Scenario) -> Result<Report, BoxError> {
    let start = Instant::now();
    let say = |msg: String| {
        if sc.progress {
            println!("[{:7.3} s] {msg}", start.elapsed().as_secs_f64());
        }
    };
    let config = Config {
        cluster_name: "raftwal-demo".into(),
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(sc.snapshot_every),
        max_in_snapshot_log_to_keep: sc.keep_logs,
        purge_batch_size: 1,
        ..Default::default()
    }
    .validate()?;
    let mut cluster = Cluster {
        config: Arc::new(config),
        router: Router::default(),
        live: Arc::new(Live::default()),
        nodes: BTreeMap::new(),
        root: root.to_path_buf(),
        options: raftwal::Options::default().with_segment_size(sc.segment_size),
    };
    let deadline = || Instant::now() + sc.timeout;

    // 1. Three nodes.
    for id in 1..=3 {
        cluster.start(id).await?;
    }
    let members: BTreeMap<u64, BasicNode> = (1..=3)
        .map(|i| (i, BasicNode::new(format!("node{i}"))))
        .collect();
    cluster.nodes[&1].raft.initialize(members).await?;
    let (leader, _) = cluster.live.leader(deadline()).await?;
    say(format!(
        "3 nodes in {}, node {leader} is leader",
        root.display()
    ));

    // 2. Writes with every node up.
    let acked = Arc::new(watch::Sender::new(0usize));
    let before = sc.writes_before_crash;
    let total = before + sc.writes_while_down;
    let set = cluster.write_keys(0..before, sc, deadline(), &acked);
    join_all(set).await?;
    say(format!("{before} writes acknowledged with 3 nodes up"));

    // 3. More writes; a follower crashes while they run.
    let (leader, _) = cluster.live.leader(deadline()).await?;
    let followers: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
    let victim = followers[(mix(sc.seed) % followers.len() as u64) as usize];
    let set = cluster.write_keys(before..total, sc, deadline(), &acked);
    let crash_after = before + (sc.writes_while_down / 10).max(1).min(sc.writes_while_down);
    let mut rx = acked.subscribe();
    tokio::time::timeout(sc.timeout, rx.wait_for(|&n| n >= crash_after))
        .await
        .map_err(|_| "timed out waiting for writes")??;
    let last_index_at_crash = cluster.crash(victim, deadline()).await?;
    let acked_at_crash = *acked.borrow();
    say(format!(
        "node {victim} crashed (no shutdown) after {acked_at_crash} writes; writing on with 2 nodes"
    ));
    join_all(set).await?;
    let writes = *acked.borrow();
    say(format!(
        "{} writes acknowledged while node {victim} was down",
        writes - acked_at_crash
    ));

    // 4. Restart it from its directories.
    let (leader, leader_raft) = cluster.live.leader(deadline()).await?;
    let (leader_applied, leader_purged) = {
        let m = leader_raft.metrics();
        let m = m.borrow();
        (m.last_applied.map(|l| l.index), m.purged.map(|l| l.index))
    };
    drop(leader_raft);
    let restarted_at = Instant::now();
    cluster.start(victim).await?;
    let mut recovery = {
        let n = &cluster.nodes[&victim];
        let (entries, segments, torn_bytes, last_index) = n.log.with_wal(|w| {
            let r = w.recovery_report();
            (
                r.entries,
                r.segments,
                r.torn_bytes_truncated,
                w.last_index().checked_sub(1),
            )
        });
        Recovery {
            node: victim,
            last_index_at_crash,
            entries,
            segments,
            torn_bytes,
            last_index,
            snapshot_index: n.sm.data().last_applied.map(|l| l.index),
            leader_purged,
            ..Recovery::default()
        }
    };
    say(format!(
        "node {victim} restarted: recovered {} entries from {} segments, last log index {:?}, \
         snapshot at {:?}; leader (node {leader}) at {leader_applied:?}, purged to {leader_purged:?}",
        recovery.entries,
        recovery.segments,
        recovery.last_index,
        recovery.snapshot_index
    ));
    cluster.nodes[&victim]
        .raft
        .wait(Some(sc.timeout))
        .applied_index_at_least(leader_applied, "restarted node caught up")
        .await?;
    recovery.catch_up = restarted_at.elapsed();
    recovery.appended_after_restart = cluster.nodes[&victim]
        .log
        .with_wal(|w| w.stats().entries_appended);
    recovery.missing = leader_applied
        .unwrap_or(0)
        .saturating_sub(recovery.last_index.unwrap_or(0));
    recovery.by_snapshot = recovery.appended_after_restart < recovery.missing;
    say(format!(
        "node {victim} caught up in {:.3} s ({})",
        recovery.catch_up.as_secs_f64(),
        if recovery.by_snapshot {
            "snapshot installed"
        } else {
            "from the log"
        }
    ));

    // 5. Every state machine agrees and holds every acknowledged write.
    let (leader, leader_raft) = cluster.live.leader(deadline()).await?;
    let (last, purged) = {
        let m = leader_raft.metrics();
        let m = m.borrow();
        (m.last_applied.map(|l| l.index), m.purged.map(|l| l.index))
    };
    drop(leader_raft);
    recovery.leader_purged_after = purged;
    for n in cluster.nodes.values() {
        n.raft
            .wait(Some(sc.timeout))
            .applied_index_at_least(last, "final check")
            .await?;
    }
    let expected: BTreeMap<String, String> =
        (0..total).map(|i| (key(i), value(sc.seed, i))).collect();
    let datas: Vec<(u64, crate::KvData)> = cluster
        .nodes
        .iter()
        .map(|(id, n)| (*id, n.sm.data()))
        .collect();
    let (first_id, first) = &datas[0];
    for (id, d) in &datas {
        if d.last_applied != first.last_applied || d.map != first.map {
            return Err(format!(
                "node {id} (applied {:?}, {} keys) differs from node {first_id} (applied {:?}, \
                 {} keys)",
                d.last_applied,
                d.map.len(),
                first.last_applied,
                first.map.len()
            )
            .into());
        }
    }
    if first.map != expected {
        let missing = expected
            .keys()
            .filter(|k| !first.map.contains_key(*k))
            .count();
        return Err(format!(
            "the state machines hold {} keys, {missing} acknowledged writes missing or wrong \
             of {total}",
            first.map.len()
        )
        .into());
    }
    let report = Report {
        writes,
        writes_while_down: writes - acked_at_crash,
        restarts: 1,
        leader,
        last_applied: first.last_applied.map_or(0, |l| l.index),
        keys: first.map.len(),
        recovery,
        elapsed: start.elapsed(),
    };
    for n in cluster.nodes.values() {
        n.raft.shutdown().await?;
    }
    Ok(report)
}
