//! The benchmark's group: one thread per node, channels as the network, a client thread
//! that keeps proposals outstanding at node 1 and times each until node 1 applies it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use raft::eraftpb::{Entry, Message};
use raft::{Config, RawNode, StateRole};

use super::BenchStore;
use crate::cluster::BoxError;

/// How a cell runs.
pub(crate) struct Spec {
    pub nodes: usize,
    pub entry_size: usize,
    pub in_flight: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// What a cell measured.
pub(crate) struct Measured {
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
    pub syncs: u64,
}

enum Input {
    Raft(Message),
    /// A proposal: its tag leads its payload.
    Propose(Vec<u8>),
}

/// What node 1 tells the client.
enum Event {
    Leader,
    Applied(u64),
    Failed(String),
}

const TICK: Duration = Duration::from_millis(20);

fn raft_config(id: u64) -> Config {
    Config {
        id,
        // 1 s before a follower campaigns: node 1 leads the whole run.
        election_tick: 50,
        heartbeat_tick: 5,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        ..Config::default()
    }
}

struct NodeThread<S: BenchStore> {
    raft: RawNode<S>,
    rx: Receiver<Input>,
    peers: Arc<HashMap<u64, Sender<Input>>>,
    /// To the client: node 1's leadership and applied proposals, any node's failure.
    events: Sender<Event>,
    syncs: Arc<AtomicU64>,
    stop: Arc<AtomicU64>,
}

impl<S: BenchStore> NodeThread<S> {
    fn run(mut self) -> Result<(), BoxError> {
        let r = self.run_loop();
        if let Err(e) = &r {
            let _ = self
                .events
                .send(Event::Failed(format!("node {}: {e}", self.raft.raft.id)));
        }
        r
    }

    fn run_loop(&mut self) -> Result<(), BoxError> {
        let mut next_tick = Instant::now() + TICK;
        let mut leader_told = false;
        while self.stop.load(Ordering::Relaxed) == 0 {
            match self
                .rx
                .recv_timeout(next_tick.saturating_duration_since(Instant::now()))
            {
                Ok(input) => self.input(input)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(input) = self.rx.try_recv() {
                self.input(input)?;
            }
            if Instant::now() >= next_tick {
                self.raft.tick();
                next_tick += TICK;
            }
            self.handle_ready()?;
            if !leader_told && self.raft.raft.state == StateRole::Leader {
                leader_told = true;
                self.tell(Event::Leader);
            }
        }
        Ok(())
    }

    fn input(&mut self, input: Input) -> Result<(), BoxError> {
        match input {
            Input::Raft(m) => {
                let _ = self.raft.step(m);
            }
            Input::Propose(data) => self.raft.propose(vec![], data)?,
        }
        Ok(())
    }

    fn send(&self, msgs: Vec<Message>) {
        for m in msgs {
            if let Some(tx) = self.peers.get(&m.to) {
                let _ = tx.send(Input::Raft(m));
            }
        }
    }

    /// Node 1's news for the client.
    fn tell(&self, e: Event) {
        if self.raft.raft.id == 1 {
            let _ = self.events.send(e);
        }
    }

    fn applied(&self, entries: &[Entry]) {
        for e in entries.iter().filter(|e| e.data.len() >= 8) {
            let tag = u64::from_le_bytes(e.data[..8].try_into().expect("8 bytes"));
            self.tell(Event::Applied(tag));
        }
    }

    fn handle_ready(&mut self) -> Result<(), BoxError> {
        if !self.raft.has_ready() {
            return Ok(());
        }
        let mut rd = self.raft.ready();
        self.send(rd.take_messages());
        self.raft.mut_store().persist_ready(&rd)?;
        self.send(rd.take_persisted_messages());
        self.applied(rd.committed_entries());
        let mut light = self.raft.advance(rd);
        self.raft.mut_store().persist_light_ready(&light)?;
        self.send(light.take_messages());
        self.applied(light.committed_entries());
        self.raft.advance_apply();
        self.syncs
            .store(self.raft.store().syncs(), Ordering::Relaxed);
        Ok(())
    }
}

/// Starts the group, waits for node 1 to lead, measures, stops the group.
pub(crate) fn measure<S: BenchStore>(dir: &Path, spec: &Spec) -> Result<Measured, BoxError> {
    let ids: Vec<u64> = (1..=spec.nodes as u64).collect();
    let (txs, rxs): (Vec<_>, Vec<_>) = ids.iter().map(|_| channel::<Input>()).unzip();
    let peers: Arc<HashMap<u64, Sender<Input>>> =
        Arc::new(ids.iter().copied().zip(txs.iter().cloned()).collect());
    let (events_tx, events) = channel();
    let stop = Arc::new(AtomicU64::new(0));
    let mut syncs = Vec::new();
    let mut threads: Vec<JoinHandle<Result<(), BoxError>>> = Vec::new();
    for (id, rx) in ids.iter().copied().zip(rxs) {
        let store = S::open(&dir.join(format!("node{id}")), &ids)?;
        let mut raft = RawNode::new(&raft_config(id), store, &crate::cluster::logger())?;
        if id == 1 {
            raft.campaign()?;
        }
        let counter = Arc::new(AtomicU64::new(0));
        syncs.push(Arc::clone(&counter));
        let node = NodeThread {
            raft,
            rx,
            peers: Arc::clone(&peers),
            events: events_tx.clone(),
            syncs: counter,
            stop: Arc::clone(&stop),
        };
        threads.push(std::thread::spawn(move || node.run()));
    }
    drop(events_tx);
    let result = client(&txs[0], &events, &syncs, spec);
    stop.store(1, Ordering::Relaxed);
    drop(peers);
    drop(txs);
    for t in threads {
        t.join().map_err(|_| "a node thread panicked")??;
    }
    result
}

/// Keeps `in_flight` proposals outstanding at node 1 through the warm-up and the measured
/// window; returns the measured window's latencies and the syncs over it.
fn client(
    leader: &Sender<Input>,
    events: &Receiver<Event>,
    syncs: &[Arc<AtomicU64>],
    spec: &Spec,
) -> Result<Measured, BoxError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Event::Leader) => break,
            Ok(Event::Failed(e)) => return Err(e.into()),
            Ok(Event::Applied(_)) => {}
            Err(_) => return Err("node 1 did not become leader within 10 s".into()),
        }
    }
    let total = |s: &[Arc<AtomicU64>]| s.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>();
    let mut sent: HashMap<u64, Instant> = HashMap::new();
    let mut next_tag = 0u64;
    let propose = |tag: u64| {
        let mut data = vec![0xA5u8; spec.entry_size.max(8)];
        data[..8].copy_from_slice(&tag.to_le_bytes());
        leader
            .send(Input::Propose(data))
            .map_err(|_| "node 1 stopped")
    };
    let warm_end = Instant::now() + spec.warmup;
    let mut window: Option<(Instant, u64)> = None;
    let mut latencies = Vec::new();
    loop {
        let now = Instant::now();
        if window.is_none() && now >= warm_end {
            window = Some((now, total(syncs)));
            latencies.clear();
        }
        if let Some((start, _)) = window {
            if now >= start + spec.measure {
                break;
            }
        }
        while sent.len() < spec.in_flight {
            propose(next_tag)?;
            sent.insert(next_tag, Instant::now());
            next_tag += 1;
        }
        match events.recv_timeout(Duration::from_secs(5)) {
            Ok(Event::Applied(tag)) => {
                if let Some(at) = sent.remove(&tag) {
                    if window.is_some_and(|(start, _)| at >= start) {
                        latencies.push(at.elapsed());
                    }
                }
            }
            Ok(Event::Leader) => {}
            Ok(Event::Failed(e)) => return Err(e.into()),
            Err(_) => return Err("no proposal applied for 5 s".into()),
        }
    }
    let (start, syncs_at_start) = window.expect("the window started");
    // Syncs counted at the last Ready before the end: close enough over seconds.
    Ok(Measured {
        elapsed: start.elapsed(),
        syncs: total(syncs) - syncs_at_start,
        latencies,
    })
}
