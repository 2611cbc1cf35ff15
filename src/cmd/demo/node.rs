//! One node: a thread driving the sans-IO `raftwal_raft::Raft` over its own WAL directory —
//! drain the channel, one `handle_batch` (one persist, one fsync for the burst), then send
//! and answer; a tick every 10 ms; on `Crash` the WAL is dropped without a clean shutdown.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raftwal::{Options, Wal};
use raftwal_raft::{Apply, Config, Envelope, Input, Raft, WalStorage};

use super::shared::Shared;
use super::verifier::{command_id, mix};

pub(super) const TICK: Duration = Duration::from_millis(Config::TICK_MS);
/// Most inputs handed to one `handle_batch`.
pub(super) const MAX_BATCH: usize = 1024;
/// WAL segment size for the demo (smaller than the default to keep the directories small).
pub(super) const SEGMENT_SIZE: u64 = 8 << 20;

pub(super) enum NodeInput {
    Msg(Envelope),
    Propose(Vec<u8>, Sender<Option<(u64, u64)>>),
    Crash,
}

/// What a node thread reports when it ends.
pub(super) struct NodeExit {
    pub(super) rx: Receiver<NodeInput>,
    pub(super) fsyncs: u64,
    pub(super) entries_appended: u64,
    pub(super) error: Option<String>,
}

/// What a node thread reports once it has recovered.
pub(super) struct Recovered {
    pub(super) node: usize,
    pub(super) time: Duration,
    pub(super) entries: u64,
    pub(super) torn_bytes: u64,
    pub(super) segments: usize,
}

/// The replicated service: the number of applied commands and their running hash.
#[derive(Default, Clone, Copy)]
pub(super) struct Service {
    pub(super) applied: u64,
    pub(super) hash: u64,
}

impl Service {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut v = self.applied.to_le_bytes().to_vec();
        v.extend_from_slice(&self.hash.to_le_bytes());
        v
    }
    pub(super) fn decode(data: &[u8]) -> Option<Service> {
        let applied = u64::from_le_bytes(data.get(0..8)?.try_into().ok()?);
        let hash = u64::from_le_bytes(data.get(8..16)?.try_into().ok()?);
        Some(Service { applied, hash })
    }
}

pub(super) fn node_dir(root: &Path, id: usize) -> PathBuf {
    root.join(format!("node-{id}"))
}

pub(super) fn wal_options() -> Options {
    Options::default().with_segment_size(SEGMENT_SIZE)
}

/// Hands `applies` to the service and the verifier; maybe snapshots. Returns an error
/// message on a fatal problem.
pub(super) fn apply_all(
    id: usize,
    raft: &mut Raft<WalStorage<raftwal::io::StdVfs>>,
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
                    // A leader's no-op (empty data) is command id 0, which no client uses.
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

pub(super) fn run_node(
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
    let mut cfg = Config::new(id as u64, shared.n, seed);
    // The clients stop before the end and `catch_up` waits for every node to apply the
    // same last index: a leader elected after the last proposal must still commit what its
    // predecessor left uncommitted on the followers, which it can only do through an entry
    // of its own term.
    cfg.leader_noop = true;
    let mut raft = match Raft::new(cfg, WalStorage::new(wal)) {
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
        |raft: Raft<WalStorage<raftwal::io::StdVfs>>, mut exit: NodeExit, error: Option<String>| {
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
