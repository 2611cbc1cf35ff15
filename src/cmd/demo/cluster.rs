//! The cluster: starts node threads, crashes them (a `Crash` input: the WAL is dropped
//! without a clean shutdown) and restarts them from their directories, and collects what
//! each node reports (its recovery, its fsync counts, its errors).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;

use super::node::{run_node, NodeExit, NodeInput, Recovered};
use super::shared::Shared;
use super::verifier::Verifier;

/// A node restarted during the run: how long it was down, and its recovery.
pub(super) struct Restart {
    pub(super) node: usize,
    pub(super) down: Duration,
    pub(super) recovery: Recovered,
}

/// A node's thread, or (while it is down) its channel waiting for the next start.
struct Node {
    join: Option<JoinHandle<NodeExit>>,
    rx: Option<Receiver<NodeInput>>,
}

pub(super) struct Cluster {
    root: PathBuf,
    pub(super) shared: Arc<Shared>,
    nodes: Vec<Node>,
    rec_tx: Sender<Recovered>,
    rec_rx: Receiver<Recovered>,
    /// Restarted nodes whose recovery report has not arrived: (node, time down).
    pending_recovery: VecDeque<(usize, Duration)>,
    pub(super) restarts: Vec<Restart>,
    pub(super) fsyncs: u64,
    pub(super) entries_appended: u64,
    pub(super) errors: Vec<String>,
}

impl Cluster {
    pub(super) fn new(root: PathBuf, n: usize, snapshot_every: u64) -> Self {
        let (senders, nodes): (Vec<_>, Vec<_>) = (0..n)
            .map(|_| {
                let (tx, rx) = mpsc::channel();
                let node = Node {
                    join: None,
                    rx: Some(rx),
                };
                (tx, node)
            })
            .unzip();
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
            snapshot_every,
        });
        let (rec_tx, rec_rx) = mpsc::channel();
        Cluster {
            root,
            shared,
            nodes,
            rec_tx,
            rec_rx,
            pending_recovery: VecDeque::new(),
            restarts: Vec::new(),
            fsyncs: 0,
            entries_appended: 0,
            errors: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Starts node `i` on its directory (it recovers from what is there).
    pub(super) fn start(&mut self, i: usize, rng: &mut StdRng) -> Result<(), String> {
        let rx = self.nodes[i]
            .rx
            .take()
            .ok_or_else(|| format!("node {i} has no channel"))?;
        let shared = Arc::clone(&self.shared);
        let root = self.root.clone();
        let rec = self.rec_tx.clone();
        let node_seed = rng.gen();
        let h = thread::Builder::new()
            .name(format!("node-{i}"))
            .spawn(move || run_node(i, root, node_seed, rx, shared, rec))
            .map_err(|e| e.to_string())?;
        self.nodes[i].join = Some(h);
        Ok(())
    }

    /// Starts node `i` again after `down`; its recovery is reported as a restart.
    pub(super) fn restart(
        &mut self,
        i: usize,
        down: Duration,
        rng: &mut StdRng,
    ) -> Result<(), String> {
        self.start(i, rng)?;
        self.pending_recovery.push_back((i, down));
        Ok(())
    }

    /// Waits for the first recovery of every node (at most 30 s each).
    pub(super) fn initial_recoveries(&mut self) -> Vec<Recovered> {
        let mut out = Vec::new();
        for _ in 0..self.len() {
            match self.rec_rx.recv_timeout(Duration::from_secs(30)) {
                Ok(r) => out.push(r),
                Err(_) => {
                    self.errors
                        .push("a node did not open its WAL within 30 s".into());
                    break;
                }
            }
        }
        out
    }

    /// Crashes node `i` if it runs: the thread drops its WAL without a clean shutdown.
    pub(super) fn crash(&mut self, i: usize) {
        if self.nodes[i].join.is_some() {
            let _ = self.shared.senders[i].send(NodeInput::Crash);
            self.join(i, true);
        }
    }

    /// Collects the node threads that ended on their own (a fatal error).
    pub(super) fn collect_finished(&mut self) {
        for i in 0..self.len() {
            if self.nodes[i].join.as_ref().is_some_and(|h| h.is_finished()) {
                self.join(i, false);
            }
        }
    }

    /// Joins node `i`'s thread and adds up what it reports. `crashed`: it was told to stop;
    /// otherwise it stopped by itself, which is an error.
    fn join(&mut self, i: usize, crashed: bool) {
        let Some(h) = self.nodes[i].join.take() else {
            return;
        };
        match h.join() {
            Ok(exit) => {
                self.fsyncs += exit.fsyncs;
                self.entries_appended += exit.entries_appended;
                match exit.error {
                    Some(e) => self.errors.push(e),
                    None if !crashed => self.errors.push(format!("node {i} stopped unexpectedly")),
                    None => {}
                }
                self.nodes[i].rx = Some(exit.rx);
            }
            Err(_) => self.errors.push(format!("node {i} panicked")),
        }
    }

    /// Pairs the recovery reports that arrived with the restarts waiting for them.
    pub(super) fn drain_recoveries(&mut self) {
        while let Ok(r) = self.rec_rx.try_recv() {
            let Some(pos) = self.pending_recovery.iter().position(|(v, _)| *v == r.node) else {
                continue;
            };
            if let Some((node, down)) = self.pending_recovery.remove(pos) {
                self.restarts.push(Restart {
                    node,
                    down,
                    recovery: r,
                });
            }
        }
    }
}
