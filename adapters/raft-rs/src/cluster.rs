//! A raft-rs group in one process, every node on its own raftwal directory: the
//! `five_node` example and `tests/cluster.rs` run it.
//!
//! As in raft-rs's `five_mem_node` example, node 1 starts alone (a one-voter `ConfState`)
//! and adds the others one by one through conf changes; the others start with empty
//! storage and learn everything from the leader. Then proposals go to the leader; once a
//! seeded share of them is committed, the leader is dropped without a clean shutdown (its
//! `RawNode` and WAL handle dropped mid-flight: appends not yet synced are lost, as in a
//! crash) and restarted from its directory a while later. The run ends when every node has
//! applied every proposal; [`run`] then checks that every node's applied log is the same.
//!
//! The nodes are driven by one thread in rounds (deliver each node's mail, tick, handle its
//! `Ready`), messages are delivered in the round they are sent, and the only randomness
//! besides raft-rs's election timeouts is the seeded choice of when the leader is dropped.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, ConfState, Entry, EntryType, Message};
use raft::{Config, RawNode, StateRole, Storage};

use crate::{RaftWalStorage, StorageOptions};

/// Errors of a cluster run: the storage's, raft-rs's, or a check that failed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a run does.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Nodes in the group (node 1 bootstraps it, the others are added by conf changes).
    pub nodes: u64,
    /// Proposals to commit.
    pub proposals: u64,
    /// Seeds when the leader is dropped.
    pub seed: u64,
    /// Whether to drop the leader uncleanly midway and restart it from disk.
    pub crash_leader: bool,
    /// Persist with [`RaftWalStorage::persist_ready_async`] instead of `persist_ready`.
    pub async_persist: bool,
    /// Give up (an error) after this long.
    pub timeout: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nodes: 5,
            proposals: 200,
            seed: 1,
            crash_leader: true,
            async_persist: false,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What a run saw.
#[derive(Debug, Clone, Default)]
pub struct ClusterReport {
    /// Every node's applied log (index and data of each normal entry with data), by node.
    pub applied: BTreeMap<u64, Vec<(u64, Vec<u8>)>>,
    /// The node dropped and restarted, and the index its log ended at after the restart.
    pub restarted: Option<(u64, u64)>,
    /// Rounds the run took.
    pub rounds: u64,
    /// The WALs' file syncs (`fdatasync`s), over all nodes.
    pub file_syncs: u64,
}

/// One node: its raft-rs instance (none while it is down), its mail, what it applied.
struct Node {
    id: u64,
    dir: PathBuf,
    raft: Option<RawNode<RaftWalStorage>>,
    mailbox: VecDeque<Message>,
    applied: Vec<(u64, Vec<u8>)>,
    /// Async persistence: messages held until their Ready is durable, by Ready number.
    held: Vec<(u64, Vec<Message>)>,
    syncs_before: u64,
}

pub(crate) fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

fn raft_config(id: u64) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 3,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        pre_vote: true,
        ..Config::default()
    }
}

fn storage_options() -> StorageOptions {
    // Small segments: tests and the example start many WALs.
    let wal = raftwal::Options::default().with_segment_size(4 << 20);
    StorageOptions::default().with_wal(wal)
}

impl Node {
    /// Opens (or reopens) the node's storage; node 1 of a new group bootstraps it.
    fn start(&mut self) -> Result<(), BoxError> {
        let mut store = RaftWalStorage::open(&self.dir, storage_options())?;
        if self.id == 1 && !store.initial_state()?.initialized() {
            store.set_conf_state(ConfState::from((vec![1], vec![])))?;
        }
        let mut syncs = store.wal().stats().file_syncs;
        std::mem::swap(&mut syncs, &mut self.syncs_before);
        self.syncs_before += syncs;
        // Nothing applied survives a restart here: raft-rs hands the committed log out
        // again from the first index, and the applied log is rebuilt from it.
        self.applied.clear();
        self.held.clear();
        self.raft = Some(RawNode::new(&raft_config(self.id), store, &logger())?);
        Ok(())
    }

    fn file_syncs(&self) -> u64 {
        self.syncs_before
            + self
                .raft
                .as_ref()
                .map_or(0, |r| r.store().wal().stats().file_syncs)
    }

    fn is_leader(&self) -> bool {
        self.raft
            .as_ref()
            .is_some_and(|r| r.raft.state == StateRole::Leader)
    }

    /// Steps the node's mail, ticks it, handles its Ready; returns the messages to send.
    fn round(&mut self, tick: bool, async_persist: bool) -> Result<Vec<Message>, BoxError> {
        let Some(raft) = self.raft.as_mut() else {
            self.mailbox.clear();
            return Ok(Vec::new());
        };
        for m in self.mailbox.drain(..) {
            // A message for a peer this node does not know yet is not an error.
            let _ = raft.step(m);
        }
        if tick {
            raft.tick();
        }
        let mut out = Vec::new();
        if async_persist {
            self.handle_ready_async(&mut out)?;
        } else {
            self.handle_ready(&mut out)?;
        }
        Ok(out)
    }

    fn handle_ready(&mut self, out: &mut Vec<Message>) -> Result<(), BoxError> {
        let raft = self.raft.as_mut().expect("a running node");
        if !raft.has_ready() {
            return Ok(());
        }
        let mut rd = raft.ready();
        out.extend(rd.take_messages());
        raft.mut_store().persist_ready(&rd)?;
        out.extend(rd.take_persisted_messages());
        let committed = rd.take_committed_entries();
        self.apply(committed)?;
        let raft = self.raft.as_mut().expect("a running node");
        let mut light = raft.advance(rd);
        raft.mut_store().persist_light_ready(&light)?;
        out.extend(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply(committed)?;
        self.raft.as_mut().expect("a running node").advance_apply();
        Ok(())
    }

    fn handle_ready_async(&mut self, out: &mut Vec<Message>) -> Result<(), BoxError> {
        let raft = self.raft.as_mut().expect("a running node");
        if raft.has_ready() {
            let mut rd = raft.ready();
            out.extend(rd.take_messages());
            raft.mut_store().persist_ready_async(&rd)?;
            self.held.push((rd.number(), rd.take_persisted_messages()));
            let committed = rd.take_committed_entries();
            let last = committed.last().map(|e| e.index);
            self.apply(committed)?;
            let raft = self.raft.as_mut().expect("a running node");
            raft.advance_append_async(rd);
            if let Some(index) = last {
                raft.advance_apply_to(index);
            }
        }
        let raft = self.raft.as_mut().expect("a running node");
        if let Some(number) = raft.mut_store().poll_persisted()? {
            raft.on_persist_ready(number);
            let (durable, later) = self.held.drain(..).partition(|(n, _)| *n <= number);
            self.held = later;
            out.extend(
                durable
                    .into_iter()
                    .flat_map(|(_, m): (u64, Vec<Message>)| m),
            );
        }
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), BoxError> {
        for e in entries {
            match e.get_entry_type() {
                EntryType::EntryNormal if !e.data.is_empty() => {
                    self.applied.push((e.index, e.data.to_vec()));
                }
                EntryType::EntryConfChange => {
                    let cc = ConfChange::parse_from_bytes(&e.data)?;
                    let raft = self.raft.as_mut().expect("a running node");
                    let cs = raft.apply_conf_change(&cc)?;
                    raft.mut_store().set_conf_state(cs)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// The run's state.
struct Cluster {
    nodes: BTreeMap<u64, Node>,
    cfg: ClusterConfig,
}

impl Cluster {
    fn leader(&self) -> Option<u64> {
        let leaders = self.nodes.values().filter(|n| n.is_leader());
        leaders
            .max_by_key(|n| n.raft.as_ref().map_or(0, |r| r.raft.term))
            .map(|n| n.id)
    }

    /// One round over every node; messages go to their mailboxes (to a down node: lost).
    fn round(&mut self, tick: bool) -> Result<(), BoxError> {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            let node = self.nodes.get_mut(&id).expect("a node");
            for m in node.round(tick, self.cfg.async_persist)? {
                if let Some(to) = self.nodes.get_mut(&m.to) {
                    if to.raft.is_some() {
                        to.mailbox.push_back(m);
                    }
                }
            }
        }
        Ok(())
    }

    fn members(&self) -> BTreeSet<u64> {
        self.leader()
            .and_then(|l| self.nodes[&l].raft.as_ref())
            .map(|r| r.raft.prs().conf().voters().ids().iter().collect())
            .unwrap_or_default()
    }

    /// Proposes adding the first node not yet a member, if the leader has no change
    /// pending.
    fn add_next_member(&mut self) -> Result<(), BoxError> {
        let members = self.members();
        let Some(leader) = self.leader() else {
            return Ok(());
        };
        let Some(next) = (1..=self.cfg.nodes).find(|id| !members.contains(id)) else {
            return Ok(());
        };
        let raft = self.nodes.get_mut(&leader).and_then(|n| n.raft.as_mut());
        let raft = raft.expect("the leader runs");
        if raft.raft.has_pending_conf() {
            return Ok(());
        }
        let mut cc = ConfChange::default();
        cc.set_change_type(ConfChangeType::AddNode);
        cc.node_id = next;
        let _ = raft.propose_conf_change(vec![], cc);
        Ok(())
    }
}

fn payload(i: u64) -> Vec<u8> {
    format!("proposal {i:06}").into_bytes()
}

/// The run's schedule: when the leader goes down and comes back, what was proposed.
struct Schedule {
    /// The leader is dropped once it has applied this many proposals...
    crash_at: u64,
    /// ...and restarted this many rounds later.
    down_rounds: u64,
    /// The node down, and the round it comes back.
    down: Option<(u64, u64)>,
    /// The next proposal, and the round each one was (last) proposed.
    next: u64,
    proposed_at: BTreeMap<u64, u64>,
}

impl Schedule {
    fn new(cfg: &ClusterConfig) -> Self {
        Schedule {
            crash_at: 1 + cfg.proposals / 4 + cfg.seed % (cfg.proposals / 2).max(1),
            down_rounds: 20 + cfg.seed % 30,
            down: None,
            next: 0,
            proposed_at: BTreeMap::new(),
        }
    }

    fn restart_if_due(
        &mut self,
        c: &mut Cluster,
        report: &mut ClusterReport,
    ) -> Result<(), BoxError> {
        let Some((id, at)) = self.down else {
            return Ok(());
        };
        if report.rounds < at {
            return Ok(());
        }
        let node = c.nodes.get_mut(&id).expect("a node");
        node.start()?;
        let last = node
            .raft
            .as_ref()
            .expect("restarted")
            .raft
            .raft_log
            .last_index();
        report.restarted = Some((id, last));
        self.down = None;
        Ok(())
    }

    /// Drops the leader without a clean shutdown, once; whether it did.
    fn crash_if_due(&mut self, c: &mut Cluster, leader: u64, report: &ClusterReport) -> bool {
        let applied = c.nodes[&leader].applied.len() as u64;
        if !c.cfg.crash_leader
            || report.restarted.is_some()
            || self.down.is_some()
            || applied < self.crash_at
        {
            return false;
        }
        let node = c.nodes.get_mut(&leader).expect("a node");
        node.syncs_before = node.file_syncs();
        node.raft = None; // no clean shutdown: unsynced appends are lost
        node.mailbox.clear();
        self.down = Some((leader, report.rounds + self.down_rounds));
        true
    }

    /// Keeps up to 8 proposals in flight at the leader; one not applied 200 rounds after it
    /// was proposed (lost with a leader) is proposed again.
    fn propose(&mut self, c: &mut Cluster, leader: u64, round: u64) {
        let node = c.nodes.get_mut(&leader).expect("a node");
        let have: BTreeSet<&[u8]> = node.applied.iter().map(|(_, d)| d.as_slice()).collect();
        let raft = node.raft.as_mut().expect("the leader runs");
        let mut in_flight = 0;
        for (i, at) in self.proposed_at.iter_mut() {
            if have.contains(payload(*i).as_slice()) {
                continue;
            }
            in_flight += 1;
            if round - *at > 200 {
                let _ = raft.propose(vec![], payload(*i));
                *at = round;
            }
        }
        if self.next < c.cfg.proposals && in_flight < 8 {
            let _ = raft.propose(vec![], payload(self.next));
            self.proposed_at.insert(self.next, round);
            self.next += 1;
        }
    }
}

fn new_cluster(dir: &Path, cfg: &ClusterConfig) -> Result<Cluster, BoxError> {
    let mut nodes = BTreeMap::new();
    for id in 1..=cfg.nodes {
        let mut node = Node {
            id,
            dir: dir.join(format!("node{id}")),
            raft: None,
            mailbox: VecDeque::new(),
            applied: Vec::new(),
            held: Vec::new(),
            syncs_before: 0,
        };
        node.start()?;
        nodes.insert(id, node);
    }
    nodes
        .get_mut(&1)
        .and_then(|n| n.raft.as_mut())
        .expect("node 1 runs")
        .campaign()?;
    Ok(Cluster {
        nodes,
        cfg: cfg.clone(),
    })
}

/// Runs the group in `dir` (one subdirectory per node) and checks that every node applied
/// the same log, holding every proposal.
pub fn run(dir: &Path, cfg: &ClusterConfig) -> Result<ClusterReport, BoxError> {
    let mut cluster = new_cluster(dir, cfg)?;
    let mut schedule = Schedule::new(cfg);
    let mut report = ClusterReport::default();
    let deadline = Instant::now() + cfg.timeout;
    let wanted: BTreeSet<Vec<u8>> = (0..cfg.proposals).map(payload).collect();
    loop {
        report.rounds += 1;
        if Instant::now() > deadline {
            let p = progress(&cluster);
            return Err(format!("no agreement after {:?}: {p}", cfg.timeout).into());
        }
        cluster.round(report.rounds % 2 == 0)?;
        if cluster.members().len() < cfg.nodes as usize {
            cluster.add_next_member()?;
            continue;
        }
        schedule.restart_if_due(&mut cluster, &mut report)?;
        let Some(leader) = cluster.leader() else {
            continue;
        };
        if schedule.crash_if_due(&mut cluster, leader, &report) {
            continue;
        }
        schedule.propose(&mut cluster, leader, report.rounds);
        let all_in = cluster.nodes.values().all(|n| holds_all(n, &wanted));
        if schedule.down.is_none() && all_in {
            break;
        }
    }
    report.file_syncs = cluster.nodes.values().map(Node::file_syncs).sum();
    report.applied = cluster
        .nodes
        .iter()
        .map(|(id, n)| (*id, n.applied.clone()))
        .collect();
    check_identical(&report)?;
    Ok(report)
}

fn holds_all(n: &Node, wanted: &BTreeSet<Vec<u8>>) -> bool {
    let have: BTreeSet<&Vec<u8>> = n.applied.iter().map(|(_, d)| d).collect();
    wanted.iter().all(|w| have.contains(w))
}

fn progress(c: &Cluster) -> String {
    let per: Vec<String> = c
        .nodes
        .values()
        .map(|n| format!("node {}: {} applied", n.id, n.applied.len()))
        .collect();
    per.join(", ")
}

/// Every node's applied log is the same (state machine safety).
fn check_identical(report: &ClusterReport) -> Result<(), BoxError> {
    let mut logs = report.applied.iter();
    let Some((first_id, first)) = logs.next() else {
        return Ok(());
    };
    for (id, log) in logs {
        if log != first {
            let at = log
                .iter()
                .zip(first)
                .position(|(a, b)| a != b)
                .unwrap_or(log.len().min(first.len()));
            return Err(format!(
                "node {id}'s applied log differs from node {first_id}'s at position {at} \
                 ({} and {} entries)",
                log.len(),
                first.len()
            )
            .into());
        }
    }
    Ok(())
}
