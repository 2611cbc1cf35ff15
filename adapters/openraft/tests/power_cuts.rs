//! The openraft adapter under power cuts, on the simulated disk of `raftwal-fault`.
//!
//! **A. A power cut at every I/O call.** A deterministic workload of openraft storage calls
//! (votes, appends through `blocking_append`, committed ids, truncations of a conflicting
//! suffix re-appended at a higher term, purges inside the log and past its end, clean
//! reopens, snapshots built and installed) runs once on a [`SimFs`] that records a
//! checkpoint after every mutating I/O call (`SimFs::start_recording`). Each checkpoint is
//! then crashed several ways — every unsynced write lost, every one kept, seeded random
//! subsets write by write and page by page (torn writes included) — the log store and the
//! state machine are reopened on what is left, and what they report is checked against what
//! the workload had been told before that I/O call: the state after the last operation that
//! returned, or (for the one in flight) the state after it, or for an append a prefix of
//! its batch. Every recovered state then takes one more append, a second power cut and a
//! second recovery, which must keep everything the first one reported. (This found a bug: a
//! cut between the metadata write and the compaction of a purge past the end of the log left
//! a store that refused every later append; `a_power_cut_inside_a_purge_past_the_end_...`
//! pins the case.)
//!
//! **B. The non-blocking append path.** Appends are issued back to back without waiting for
//! their `LogFlushed` callbacks: `LogFlushed` cannot be built outside openraft, so each
//! append is a `blocking_append` future on a clone of the store, polled once (which runs
//! `append`: the entries are buffered and the callback queued) and then left pending while
//! the next ones are issued. A reader thread follows the log through `get_log_reader`
//! meanwhile. Completions must come in index order and each only after an fdatasync that
//! covers its entries: on real files through the WAL's sync counter, on the simulated disk
//! by cutting the power on a copy of the disk taken the moment the completion is seen (the
//! appends are paced there, so completions are also seen while later appends are unsynced).
//!
//! Seeds: `POWER_CUTS_SEED=<u64>` replaces the default one; failures print it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::{poll_fn, Future};
use std::ops::RangeInclusive;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{
    BasicNode, Entry, EntryPayload, LeaderId, LogId, LogIdOptionExt, Membership, RaftLogReader,
    RaftSnapshotBuilder, SnapshotMeta, StorageError, Vote,
};
use raftwal::io::Vfs;
use raftwal::{Options, SegmentPrepare};
use raftwal_fault::{CrashMode, SimFs, Writeback};
use raftwal_openraft::{KvConfig, KvData, KvRequest, KvStateMachine, WalLogReader, WalLogStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type E = Entry<KvConfig>;
type SimLog = WalLogStore<KvConfig, SimFs>;
type SimSm = KvStateMachine<SimFs>;

const LOG_DIR: &str = "/node/log";
const SM_DIR: &str = "/node/sm";

fn base_seed() -> u64 {
    std::env::var("POWER_CUTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0CAF)
}

/// Small segments (rotations), a small write buffer (appends written out ahead of their
/// sync) and the deterministic spare-segment preparation (no background thread).
fn sim_options() -> Options {
    Options::default()
        .with_segment_size(8192)
        .with_write_buffer(1024)
        .with_prepare(SegmentPrepare::ZeroFill)
}

fn log_id(term: u64, node: u64, index: u64) -> LogId<u64> {
    LogId::new(LeaderId::new(term, node), index)
}

/// A `Set` entry whose value (8 to 400 bytes) is a function of the seed and the log id.
fn entry(seed: u64, term: u64, node: u64, index: u64) -> E {
    let mut r = StdRng::seed_from_u64(
        seed ^ (term << 48) ^ (node << 40) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let len = r.gen_range(8..400);
    let value: String = (0..len)
        .map(|_| char::from(r.gen_range(b'a'..=b'z')))
        .collect();
    Entry {
        log_id: log_id(term, node, index),
        payload: EntryPayload::Normal(KvRequest::Set {
            key: format!("k{}", index % 11),
            value,
        }),
    }
}

fn membership_entry(term: u64, node: u64, index: u64) -> E {
    Entry {
        log_id: log_id(term, node, index),
        payload: EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1, 2, 3])], ())),
    }
}

fn batch(seed: u64, term: u64, node: u64, range: RangeInclusive<u64>) -> Vec<E> {
    range.map(|i| entry(seed, term, node, i)).collect()
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

// ----- A: the workload and its model ------------------------------------------------------

/// What the log store and the state machine hold durably (as far as the workload was told).
#[derive(Clone, Debug, Default, PartialEq)]
struct Durable {
    vote: Option<Vote<u64>>,
    committed: Option<LogId<u64>>,
    purged: Option<LogId<u64>>,
    /// The live entries, by index.
    log: BTreeMap<u64, E>,
    /// The state machine's current snapshot and its data (the state machine after a restart).
    snapshot: Option<(SnapshotMeta<u64, BasicNode>, KvData)>,
}

#[derive(Clone, Debug)]
enum Op {
    /// Opens the log store and the state machine.
    Open,
    /// Drops both and opens them again (no power cut).
    Reopen,
    SaveVote(Vote<u64>),
    SaveCommitted(LogId<u64>),
    /// `blocking_append`: `append`, then waiting for the `LogFlushed` callback.
    Append(Vec<E>),
    /// `truncate` at the log id of the entry at this index.
    Truncate(u64),
    Purge(LogId<u64>),
    /// Applies the log's entries up to this index to the state machine (no I/O).
    Apply(u64),
    BuildSnapshot,
    /// Installs a leader's snapshot whose last log id is this.
    InstallSnapshot(LogId<u64>),
}

impl Op {
    fn label(&self) -> String {
        match self {
            Op::Append(es) => format!(
                "append {}..={} (term {})",
                es[0].log_id.index,
                es[es.len() - 1].log_id.index,
                es[0].log_id.leader_id.term
            ),
            other => format!("{other:?}"),
        }
    }
}

fn workload(seed: u64) -> Vec<Op> {
    let append = |t, n, r| Op::Append(batch(seed, t, n, r));
    vec![
        Op::Open,
        Op::SaveVote(Vote::new(1, 1)),
        Op::SaveVote(Vote::new_committed(1, 1)),
        Op::Append(vec![membership_entry(1, 1, 0)]),
        append(1, 1, 1..=3),
        append(1, 1, 4..=4),
        // Larger than the write buffer and than a segment: early writes and rotations.
        append(1, 1, 5..=30),
        Op::SaveCommitted(log_id(1, 1, 20)),
        Op::Apply(20),
        Op::BuildSnapshot,
        Op::SaveVote(Vote::new(2, 2)),
        Op::SaveVote(Vote::new_committed(2, 2)),
        // The uncommitted 24..=30 conflict with the new leader's log.
        Op::Truncate(24),
        append(2, 2, 24..=33),
        Op::SaveCommitted(log_id(2, 2, 28)),
        Op::Purge(log_id(1, 1, 10)),
        Op::Reopen,
        append(2, 2, 34..=40),
        append(2, 2, 41..=41),
        Op::SaveVote(Vote::new(3, 3)),
        Op::SaveVote(Vote::new_committed(3, 3)),
        Op::Truncate(38),
        append(3, 3, 38..=45),
        Op::SaveCommitted(log_id(3, 3, 44)),
        Op::Apply(44),
        Op::BuildSnapshot,
        // Inside the log, several segments in.
        Op::Purge(log_id(2, 2, 30)),
        Op::SaveVote(Vote::new(4, 1)),
        Op::SaveVote(Vote::new_committed(4, 1)),
        // A leader's snapshot past the end of the log, then the purge openraft follows it
        // with: past the end, the log is empty and the next append starts after it.
        Op::InstallSnapshot(log_id(4, 1, 70)),
        Op::Purge(log_id(4, 1, 70)),
        append(4, 1, 71..=78),
        Op::SaveCommitted(log_id(4, 1, 75)),
        Op::Reopen,
        Op::SaveVote(Vote::new_committed(5, 2)),
        Op::Truncate(77),
        append(5, 2, 77..=80),
        Op::SaveCommitted(log_id(5, 2, 80)),
        Op::Apply(80),
        Op::BuildSnapshot,
        Op::Purge(log_id(5, 2, 79)),
    ]
}

async fn open_node<V: Vfs>(
    vfs: &V,
) -> Result<(WalLogStore<KvConfig, V>, KvStateMachine<V>), String> {
    let log = WalLogStore::open_with(vfs.clone(), LOG_DIR, sim_options())
        .map_err(|e| err("opening the log store", e))?;
    let sm = KvStateMachine::open_with(vfs.clone(), SM_DIR)
        .map_err(|e| err("opening the state machine", e))?;
    Ok((log, sm))
}

/// Everything the reopened log store and state machine report, cross-checked.
async fn read_back<V: Vfs>(
    log: &mut WalLogStore<KvConfig, V>,
    sm: &mut KvStateMachine<V>,
) -> Result<Durable, String> {
    let vote = log.read_vote().await.map_err(|e| err("read_vote", e))?;
    let committed = log
        .read_committed()
        .await
        .map_err(|e| err("read_committed", e))?;
    let state = log
        .get_log_state()
        .await
        .map_err(|e| err("get_log_state", e))?;
    let entries = log
        .try_get_log_entries(..)
        .await
        .map_err(|e| err("try_get_log_entries", e))?;
    let mut reader = log.get_log_reader().await;
    let through_reader = reader
        .try_get_log_entries(..)
        .await
        .map_err(|e| err("the reader's try_get_log_entries", e))?;
    if through_reader != entries {
        return Err("the log reader and the store read different entries".into());
    }
    for w in entries.windows(2) {
        if w[1].log_id.index != w[0].log_id.index + 1 {
            return Err(format!(
                "the log has a gap: {} then {}",
                w[0].log_id, w[1].log_id
            ));
        }
    }
    if let Some(first) = entries.first() {
        if first.log_id.index != state.last_purged_log_id.next_index() {
            return Err(format!(
                "the first entry is {} but the last purged log id is {:?}",
                first.log_id, state.last_purged_log_id
            ));
        }
    }
    let last = entries
        .last()
        .map(|e| e.log_id)
        .or(state.last_purged_log_id);
    if state.last_log_id != last {
        return Err(format!(
            "get_log_state says the last log id is {:?}, the entries end at {last:?}",
            state.last_log_id
        ));
    }
    let (applied, _membership) = sm
        .applied_state()
        .await
        .map_err(|e| err("applied_state", e))?;
    let data = sm.data();
    if applied != data.last_applied {
        return Err(format!(
            "applied_state says {applied:?}, the data {:?}",
            data.last_applied
        ));
    }
    let current = sm
        .get_current_snapshot()
        .await
        .map_err(|e| err("get_current_snapshot", e))?;
    let snapshot = match current {
        Some(s) => {
            if s.meta.last_log_id != applied {
                return Err(format!(
                    "after a restart the state machine is at {applied:?}, its snapshot at {:?}",
                    s.meta.last_log_id
                ));
            }
            Some((s.meta, data))
        }
        None if data == KvData::default() => None,
        None => return Err(format!("no snapshot, yet the state machine holds {data:?}")),
    };
    Ok(Durable {
        vote,
        committed,
        purged: state.last_purged_log_id,
        log: entries.into_iter().map(|e| (e.log_id.index, e)).collect(),
        snapshot,
    })
}

/// One workload call: the I/O calls it made (`start < call <= end`) and the model around it.
struct Span {
    start: u64,
    end: u64,
    before: Durable,
    after: Durable,
    op: Op,
}

struct Runner {
    seed: u64,
    fs: SimFs,
    node: Option<(SimLog, SimSm)>,
    model: Durable,
}

impl Runner {
    fn node(&mut self) -> &mut (SimLog, SimSm) {
        self.node.as_mut().expect("the node is open")
    }

    async fn exec(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Open => self.node = Some(open_node(&self.fs).await?),
            Op::Reopen => {
                self.node = None;
                let (mut log, mut sm) = open_node(&self.fs).await?;
                let back = read_back(&mut log, &mut sm).await?;
                if back != self.model {
                    return Err(format!(
                        "a clean reopen reads {back:?}, expected {:?}",
                        self.model
                    ));
                }
                self.node = Some((log, sm));
            }
            Op::SaveVote(v) => {
                self.node()
                    .0
                    .save_vote(v)
                    .await
                    .map_err(|e| err("save_vote", e))?;
                self.model.vote = Some(*v);
            }
            Op::SaveCommitted(c) => {
                self.node()
                    .0
                    .save_committed(Some(*c))
                    .await
                    .map_err(|e| err("save_committed", e))?;
                self.model.committed = Some(*c);
            }
            Op::Append(es) => {
                self.node()
                    .0
                    .blocking_append(es.clone())
                    .await
                    .map_err(|e| err("blocking_append", e))?;
                let floor = self.model.purged.next_index();
                for e in es.iter().filter(|e| e.log_id.index >= floor) {
                    self.model.log.insert(e.log_id.index, e.clone());
                }
            }
            Op::Truncate(index) => {
                let id = self.model.log[index].log_id;
                self.node()
                    .0
                    .truncate(id)
                    .await
                    .map_err(|e| err("truncate", e))?;
                self.model.log.split_off(index);
            }
            Op::Purge(id) => {
                self.node()
                    .0
                    .purge(*id)
                    .await
                    .map_err(|e| err("purge", e))?;
                self.model.purged = self.model.purged.max(Some(*id));
                self.model.log = self.model.log.split_off(&(id.index + 1));
            }
            Op::Apply(upto) => {
                let from = self.node().1.data().last_applied.next_index();
                let es: Vec<E> = self
                    .model
                    .log
                    .range(from..=*upto)
                    .map(|(_, e)| e.clone())
                    .collect();
                assert_eq!(
                    es.len() as u64,
                    upto + 1 - from,
                    "the workload applies {from}..={upto}"
                );
                self.node().1.apply(es).await.map_err(|e| err("apply", e))?;
            }
            Op::BuildSnapshot => {
                let sm = &mut self.node().1;
                let mut builder = sm.get_snapshot_builder().await;
                let snap = builder
                    .build_snapshot()
                    .await
                    .map_err(|e| err("build_snapshot", e))?;
                let data = sm.data();
                self.model.snapshot = Some((snap.meta, data));
            }
            Op::InstallSnapshot(id) => {
                // The leader's state machine, on a disk of its own.
                let leader_fs = SimFs::new(self.seed);
                leader_fs.mkdir_durable(Path::new("/leader"));
                let mut leader = KvStateMachine::open_with(leader_fs, "/leader/sm")
                    .map_err(|e| err("opening the leader's state machine", e))?;
                let mut es = vec![membership_entry(1, 1, 0)];
                es.extend(batch(
                    self.seed ^ 0x1EAD,
                    id.leader_id.term,
                    id.leader_id.node_id,
                    1..=id.index,
                ));
                leader.apply(es).await.map_err(|e| err("leader apply", e))?;
                let snap = leader
                    .build_snapshot()
                    .await
                    .map_err(|e| err("leader build_snapshot", e))?;
                let data = leader.data();
                self.node()
                    .1
                    .install_snapshot(&snap.meta, snap.snapshot)
                    .await
                    .map_err(|e| err("install_snapshot", e))?;
                self.model.snapshot = Some((snap.meta, data));
            }
        }
        Ok(())
    }
}

/// Runs the workload on a recording `SimFs`: its spans and the disk after every I/O call.
async fn record(seed: u64) -> (Vec<Span>, Vec<raftwal_fault::Checkpoint>) {
    let fs = SimFs::new(seed);
    fs.mkdir_durable(Path::new("/node"));
    fs.start_recording();
    let mut run = Runner {
        seed,
        fs: fs.clone(),
        node: None,
        model: Durable::default(),
    };
    let mut spans = Vec::new();
    for op in workload(seed) {
        let start = fs.io_calls();
        let before = run.model.clone();
        if let Err(e) = run.exec(&op).await {
            panic!(
                "seed {seed}: the workload failed without a power cut at {}: {e}",
                op.label()
            );
        }
        spans.push(Span {
            start,
            end: fs.io_calls(),
            before,
            after: run.model.clone(),
            op,
        });
    }
    let (mut log, mut sm) = run.node.take().expect("the node is open");
    let back = read_back(&mut log, &mut sm).await.unwrap();
    assert_eq!(
        back, run.model,
        "seed {seed}: the state at the end of the workload"
    );
    drop((log, sm));
    (spans, fs.take_recording())
}

/// What a recovery may show at an I/O call: the state after the last operation that
/// returned, and if one was in flight, the state after it (for an append, also every
/// prefix of its batch).
fn candidates(acked: &Durable, in_flight: Option<&Span>) -> Vec<Durable> {
    let mut out = vec![acked.clone()];
    if let Some(s) = in_flight {
        if let Op::Append(es) = &s.op {
            let floor = acked.purged.next_index();
            for k in 1..es.len() {
                let mut d = acked.clone();
                for e in es[..k].iter().filter(|e| e.log_id.index >= floor) {
                    d.log.insert(e.log_id.index, e.clone());
                }
                out.push(d);
            }
        }
        out.push(s.after.clone());
    }
    out
}

/// Names the broken invariants when a recovered state is none of the candidates.
fn diagnose(
    rec: &Durable,
    acked: &Durable,
    in_flight: Option<&Span>,
    truncated: &BTreeMap<u64, Vec<E>>,
) -> Vec<String> {
    let after = in_flight.map(|s| &s.after);
    let mut v = Vec::new();
    let either = |f: &dyn Fn(&Durable) -> bool| f(acked) || after.is_some_and(f);
    if rec.vote < acked.vote {
        v.push(format!(
            "the vote regressed: read_vote {:?}, acknowledged {:?}",
            rec.vote, acked.vote
        ));
    } else if !either(&|d| d.vote == rec.vote) {
        v.push(format!("read_vote {:?} was never saved", rec.vote));
    }
    if rec.committed < acked.committed {
        v.push(format!(
            "the committed id regressed: read_committed {:?}, acknowledged {:?}",
            rec.committed, acked.committed
        ));
    } else if !either(&|d| d.committed == rec.committed) {
        v.push(format!(
            "read_committed {:?} was never saved",
            rec.committed
        ));
    }
    if rec.purged < acked.purged {
        v.push(format!(
            "last_purged_log_id regressed: {:?}, acknowledged purge {:?}",
            rec.purged, acked.purged
        ));
    } else if !either(&|d| d.purged == rec.purged) {
        v.push(format!(
            "last_purged_log_id {:?} was never purged to",
            rec.purged
        ));
    }
    let floor = rec.purged.next_index();
    for (idx, e) in acked.log.range(floor..) {
        let removed_in_flight = after.is_some_and(|a| a.log.get(idx) != Some(e));
        if !removed_in_flight && rec.log.get(idx) != Some(e) {
            v.push(format!(
                "acknowledged entry {} is {}",
                e.log_id,
                match rec.log.get(idx) {
                    None => "missing".to_string(),
                    Some(other) => format!("replaced by {}", other.log_id),
                }
            ));
        }
    }
    let in_flight_batch: Vec<&E> = match in_flight.map(|s| &s.op) {
        Some(Op::Append(es)) => es.iter().collect(),
        _ => Vec::new(),
    };
    for (idx, e) in &rec.log {
        let known = acked.log.get(idx) == Some(e)
            || after.is_some_and(|a| a.log.get(idx) == Some(e))
            || in_flight_batch.contains(&e);
        if !known {
            if truncated.get(idx).is_some_and(|es| es.contains(e)) {
                v.push(format!("truncated entry {} reappears", e.log_id));
            } else {
                v.push(format!("entry {} was never appended", e.log_id));
            }
        }
    }
    if !either(&|d| d.snapshot == rec.snapshot) {
        let at = |d: &Durable| d.snapshot.as_ref().map(|s| s.0.last_log_id);
        v.push(format!(
            "the state machine restarted at snapshot {:?}, acknowledged {:?}{}",
            at(rec),
            at(acked),
            after.map_or(String::new(), |a| format!(", in flight {:?}", at(a)))
        ));
    }
    if v.is_empty() {
        v.push("each part is allowed but not the combination".into());
    }
    v
}

#[derive(Default)]
struct Tally {
    operations: usize,
    checkpoints: usize,
    crashes: u64,
    duplicates: u64,
    reopened: u64,
    in_flight_states: u64,
    in_flight_lost: u64,
    in_flight_kept: u64,
    in_flight_partial: u64,
    second_cuts: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.operations += o.operations;
        self.checkpoints += o.checkpoints;
        self.crashes += o.crashes;
        self.duplicates += o.duplicates;
        self.reopened += o.reopened;
        self.in_flight_states += o.in_flight_states;
        self.in_flight_lost += o.in_flight_lost;
        self.in_flight_kept += o.in_flight_kept;
        self.in_flight_partial += o.in_flight_partial;
        self.second_cuts += o.second_cuts;
    }
}

/// Reopens a crashed disk, checks it, appends once more, cuts the power again and checks
/// the second recovery kept everything the first reported plus the new entry. `Ok`: which
/// candidate the recovery matched; `Err((Some(state), _))`: none of them.
async fn check_crashed(
    fs: &SimFs,
    cands: &[Durable],
    second_seed: u64,
) -> Result<usize, (Option<Durable>, String)> {
    let (mut log, mut sm) = open_node(fs).await.map_err(|e| (None, e))?;
    let rec = read_back(&mut log, &mut sm).await.map_err(|e| (None, e))?;
    let Some(which) = cands.iter().position(|c| *c == rec) else {
        return Err((Some(rec), String::new()));
    };
    // The recovered node must take the next append, and keep all of it across another cut.
    let next = log
        .get_log_state()
        .await
        .map_err(|e| (None, err("get_log_state", e)))?
        .last_log_id
        .next_index();
    let e = entry(second_seed, 9, 9, next);
    log.blocking_append([e.clone()])
        .await
        .map_err(|x| (None, err("appending after recovery", x)))?;
    drop((log, sm));
    fs.crash(second_seed);
    let (mut log, mut sm) = open_node(fs)
        .await
        .map_err(|x| (None, format!("second recovery: {x}")))?;
    let again = read_back(&mut log, &mut sm)
        .await
        .map_err(|x| (None, format!("second recovery: {x}")))?;
    let mut expect = rec;
    expect.log.insert(next, e);
    if again != expect {
        return Err((
            None,
            format!(
                "a second power cut lost what the first recovery reported (plus entry {next} \
                 appended after it): got {again:?}, expected {expect:?}"
            ),
        ));
    }
    Ok(which)
}

/// Crash modes per checkpoint: the two extremes, then seeded random outcomes write by write
/// and page by page (either may tear a write).
const RANDOM_WRITE_CUTS: usize = 6;
const RANDOM_PAGE_CUTS: usize = 4;
/// Workload seeds run (the base seed and the next ones): entry sizes, hence segment
/// rotations and early writes, differ between them.
const WORKLOAD_SEEDS: u64 = 4;

/// Records the workload under `seed`, crashes every checkpoint every way, checks each
/// distinct crash state; returns the tally and the failures.
async fn torture(seed: u64) -> (Tally, Vec<String>) {
    let (spans, checkpoints) = record(seed).await;
    let mut truncated: BTreeMap<u64, Vec<E>> = BTreeMap::new();
    for s in spans.iter().filter(|s| matches!(s.op, Op::Truncate(_))) {
        for (idx, e) in &s.before.log {
            if s.after.log.get(idx) != Some(e) {
                truncated.entry(*idx).or_default().push(e.clone());
            }
        }
    }
    let mut tally = Tally {
        operations: spans.len(),
        checkpoints: checkpoints.len(),
        ..Tally::default()
    };
    let mut seen = HashSet::new();
    let mut failures = Vec::new();
    let mut rng = StdRng::seed_from_u64(seed);
    for (k, cp) in checkpoints.iter().enumerate() {
        let c = cp.io_call;
        // Operations are sequential: those that returned by call `c` are a prefix.
        let i = spans.partition_point(|s| s.end <= c);
        let acked = spans.get(i).map_or_else(
            || spans[spans.len() - 1].after.clone(),
            |s| s.before.clone(),
        );
        let in_flight = spans.get(i).filter(|s| s.start < c);
        let cands = candidates(&acked, in_flight);
        let mut modes = vec![
            (CrashMode::LoseAll, Writeback::Writes, 0),
            (CrashMode::KeepAll, Writeback::Writes, 0),
        ];
        for _ in 0..RANDOM_WRITE_CUTS {
            modes.push((
                CrashMode::Random { fill: None },
                Writeback::Writes,
                rng.gen(),
            ));
        }
        for _ in 0..RANDOM_PAGE_CUTS {
            let pages = Writeback::Pages { page: 4096 };
            modes.push((CrashMode::Random { fill: None }, pages, rng.gen()));
        }
        for (mode, writeback, crash_seed) in modes {
            let fs = cp.to_fs();
            fs.set_writeback(writeback);
            let mode_name = format!("{mode:?} {writeback:?} crash seed {crash_seed}");
            fs.crash_with(mode, crash_seed);
            tally.crashes += 1;
            if !seen.insert((fs.durable_hash(), i, in_flight.is_some())) {
                tally.duplicates += 1;
                continue;
            }
            fs.set_writeback(Writeback::Writes);
            tally.reopened += 1;
            let second_seed = rng.gen();
            let at = || {
                let when = match in_flight {
                    Some(s) => format!("during {}", s.op.label()),
                    None => match i.checked_sub(1) {
                        Some(j) => format!("after {}", spans[j].op.label()),
                        None => "before anything".into(),
                    },
                };
                format!(
                    "seed {seed}: checkpoint {k} (after I/O call {c}: {}), {when}, {mode_name}, \
                     second cut seed {second_seed}",
                    cp.what
                )
            };
            match check_crashed(&fs, &cands, second_seed).await {
                Ok(which) => {
                    tally.second_cuts += 1;
                    if in_flight.is_some() {
                        tally.in_flight_states += 1;
                        match which {
                            0 => tally.in_flight_lost += 1,
                            w if w == cands.len() - 1 => tally.in_flight_kept += 1,
                            _ => tally.in_flight_partial += 1,
                        }
                    }
                }
                Err((Some(rec), _)) => failures.push(format!(
                    "{}: {}",
                    at(),
                    diagnose(&rec, &acked, in_flight, &truncated).join("; ")
                )),
                Err((None, msg)) => failures.push(format!("{}: {msg}", at())),
            }
        }
    }
    (tally, failures)
}

#[tokio::test]
async fn a_power_cut_at_any_io_call_loses_nothing_openraft_was_told_is_durable() {
    let t0 = Instant::now();
    let base = base_seed();
    let mut failures = Vec::new();
    let mut all = Tally::default();
    for seed in base..base + WORKLOAD_SEEDS {
        let (t, f) = torture(seed).await;
        println!(
            "seed {seed}: {} operations, {} checkpoints (I/O calls), {} crashes, {} distinct \
             crash states reopened and checked ({} duplicates skipped), {} of them during an \
             operation ({} showed none of it, {} all of it, {} part of an append's batch), {} \
             second power cuts checked",
            t.operations,
            t.checkpoints,
            t.crashes,
            t.reopened,
            t.duplicates,
            t.in_flight_states,
            t.in_flight_lost,
            t.in_flight_kept,
            t.in_flight_partial,
            t.second_cuts,
        );
        all.add(&t);
        failures.extend(f);
    }
    println!(
        "seeds {base}..{}: {} checkpoints, {} crash states reopened, {} second cuts, {:.2?}",
        base + WORKLOAD_SEEDS,
        all.checkpoints,
        all.reopened,
        all.second_cuts,
        t0.elapsed()
    );
    if !failures.is_empty() {
        let n = failures.len();
        failures.truncate(20);
        panic!(
            "base seed {base}: {n} crash states broke openraft's storage invariants:\n{}",
            failures.join("\n")
        );
    }
    // The torture means something only if cuts landed inside operations and went both ways.
    assert!(
        all.in_flight_lost > 0 && all.in_flight_kept > 0,
        "base seed {base}: no cut inside an operation showed none or all of it"
    );
}

/// The case the torture found: `purge` past the end of the log writes the purged id to the
/// WAL header, then compacts the WAL. A power cut between the two leaves a WAL ending below
/// the purge point; the reopened store must still take the append openraft sends next (at
/// `last_log_id + 1`), not refuse it for every restart to come.
#[tokio::test]
async fn a_power_cut_inside_a_purge_past_the_end_leaves_a_log_that_takes_the_next_append() {
    let seed = base_seed();
    let fs = SimFs::new(seed);
    fs.mkdir_durable(Path::new("/node"));
    let (mut log, sm) = open_node(&fs).await.unwrap();
    log.blocking_append(batch(seed, 1, 1, 0..=5)).await.unwrap();
    fs.start_recording();
    log.purge(log_id(2, 1, 20)).await.unwrap();
    drop((log, sm));
    let checkpoints = fs.take_recording();
    let mut saw_purged_uncompacted = false;
    for (k, cp) in checkpoints.iter().enumerate() {
        for mode in [CrashMode::LoseAll, CrashMode::KeepAll] {
            let cut = cp.to_fs();
            cut.crash_with(mode.clone(), seed);
            let (mut log, _sm) = open_node(&cut).await.unwrap();
            let state = log.get_log_state().await.unwrap();
            let next = state.last_log_id.next_index();
            assert!(
                next == 6 || (next == 21 && state.last_purged_log_id == Some(log_id(2, 1, 20))),
                "seed {seed}: checkpoint {k} ({}), {mode:?}: {state:?}",
                cp.what
            );
            let stale = log.with_wal(|w| w.last_index()) < 21;
            saw_purged_uncompacted |= next == 21 && stale;
            let e = entry(seed, 2, 1, next);
            if let Err(err) = log.blocking_append([e.clone()]).await {
                panic!(
                    "seed {seed}: checkpoint {k} ({}), {mode:?}: after recovery to {state:?}, \
                     the append at {next} fails: {err}",
                    cp.what
                );
            }
            assert_eq!(log.try_get_log_entries(next..).await.unwrap(), vec![e]);
        }
    }
    assert!(
        saw_purged_uncompacted,
        "seed {seed}: no crash state had the purge recorded and the compaction undone"
    );
}

// ----- B: the non-blocking append path ----------------------------------------------------

type AppendFuture = Pin<Box<dyn Future<Output = Result<(), StorageError<u64>>> + Send>>;

#[derive(Debug, Default)]
struct Pipeline {
    /// For each append, the polling pass in which its completion was seen.
    done_pass: Vec<u64>,
    /// The WAL's file-sync count before each append was issued, and when it completed.
    syncs_before: Vec<u64>,
    syncs_at_done: Vec<u64>,
    /// Most appends issued and not yet completed at once.
    max_outstanding: usize,
    errors: Vec<String>,
}

/// Issues `batches` back to back, each as a `blocking_append` future on a clone of `store`
/// polled once (so `append` ran and its callback is queued) and left pending; each polling
/// pass polls the new append first, then the pending ones in descending index order. With
/// callbacks fired in order, an append seen complete implies every earlier one is seen
/// complete in the same pass or an earlier one: `done_pass` is then non-decreasing.
/// `pace`: a pause after every so many appends issued (else none).
/// `on_done(k, issued)` runs the moment append `k` is seen complete, `issued` appends
/// having been issued by then.
async fn pipeline<V: Vfs>(
    store: &WalLogStore<KvConfig, V>,
    batches: &[Vec<E>],
    pace: Option<(usize, Duration)>,
    mut on_done: impl FnMut(usize, usize),
) -> Pipeline {
    let n = batches.len();
    let mut p = Pipeline {
        done_pass: vec![0; n],
        syncs_before: vec![0; n],
        syncs_at_done: vec![0; n],
        ..Pipeline::default()
    };
    let syncs = || store.with_wal(|w| w.stats().file_syncs);
    let mut futures: Vec<Option<AppendFuture>> = Vec::with_capacity(n);
    let mut pass = 0u64;
    loop {
        let finished = poll_fn(|cx| {
            pass += 1;
            if futures.len() < n {
                let k = futures.len();
                p.syncs_before[k] = syncs();
                let mut s = store.clone();
                let b = batches[k].clone();
                // Unconstrained: tokio's cooperative budget would otherwise make a ready
                // oneshot answer `Pending` late in a long pass, hiding a completion.
                futures.push(Some(Box::pin(tokio::task::unconstrained(async move {
                    s.blocking_append(b).await
                }))));
            }
            let issued = futures.len();
            for k in (0..issued).rev() {
                let Some(f) = futures[k].as_mut() else {
                    continue;
                };
                if let Poll::Ready(r) = f.as_mut().poll(cx) {
                    futures[k] = None;
                    p.done_pass[k] = pass;
                    on_done(k, issued);
                    p.syncs_at_done[k] = syncs();
                    if let Err(e) = r {
                        p.errors.push(format!("append {k}: {e}"));
                    }
                }
            }
            let outstanding = futures.iter().filter(|f| f.is_some()).count();
            p.max_outstanding = p.max_outstanding.max(outstanding);
            if futures.len() < n {
                Poll::Ready(false)
            } else if outstanding == 0 {
                Poll::Ready(true)
            } else {
                Poll::Pending
            }
        })
        .await;
        if finished {
            return p;
        }
        if let Some((every, pause)) = pace {
            if futures.len() < n && futures.len() % every == 0 {
                tokio::time::sleep(pause).await;
            }
        }
    }
}

fn check_pipeline(p: &Pipeline, seed: u64) {
    assert!(
        p.errors.is_empty(),
        "seed {seed}: appends failed: {:?}",
        p.errors
    );
    for k in 1..p.done_pass.len() {
        assert!(
            p.done_pass[k - 1] <= p.done_pass[k],
            "seed {seed}: append {k} completed before append {} (passes {} and {})",
            k - 1,
            p.done_pass[k],
            p.done_pass[k - 1]
        );
    }
    for k in 0..p.done_pass.len() {
        // A sync that covers append k starts after it buffered its entries (the WAL's
        // lock), so it is not among the syncs counted before append k was issued.
        assert!(
            p.syncs_at_done[k] > p.syncs_before[k],
            "seed {seed}: append {k} completed with no file sync since it was issued \
             ({} syncs before, {} at completion)",
            p.syncs_before[k],
            p.syncs_at_done[k]
        );
    }
}

/// Batches of 1 to 8 entries (term 1, node 1) from index 0, `total` entries in all.
fn pipeline_batches(seed: u64, total: u64) -> Vec<Vec<E>> {
    let mut r = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut next = 0;
    while next < total {
        let n = r.gen_range(1..=8).min(total - next);
        out.push(batch(seed, 1, 1, next..=next + n - 1));
        next += n;
    }
    out
}

struct Followed {
    reads: u64,
    entries_seen: u64,
}

/// A thread following the log through a `WalLogReader` until `stop`, then to the end:
/// entries appear in order, unchanged, with no gap; earlier ranges read back the same.
fn follow<V: Vfs>(
    mut reader: WalLogReader<KvConfig, V>,
    seed: u64,
    total: u64,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<Followed, String>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| err("runtime", e))?;
        rt.block_on(async move {
            let mut r = StdRng::seed_from_u64(seed ^ 0xF0);
            let mut next = 0u64;
            let mut reads = 0u64;
            loop {
                let stopping = stop.load(Ordering::Acquire);
                let got = reader
                    .limited_get_log_entries(next, next + 64)
                    .await
                    .map_err(|e| err("limited_get_log_entries", e))?;
                reads += 1;
                let empty = got.is_empty();
                for e in got {
                    if e.log_id.index != next || e != entry(seed, 1, 1, next) {
                        return Err(format!(
                            "the reader expected entry {next}, read {}",
                            e.log_id
                        ));
                    }
                    next += 1;
                }
                if next > 0 && r.gen_bool(0.2) {
                    let lo = r.gen_range(0..next);
                    let hi = (lo + 16).min(next);
                    let old = reader
                        .try_get_log_entries(lo..hi)
                        .await
                        .map_err(|e| err("try_get_log_entries", e))?;
                    reads += 1;
                    if old != batch(seed, 1, 1, lo..=hi - 1) {
                        return Err(format!("entries {lo}..{hi} read back differently"));
                    }
                }
                if stopping && empty {
                    break;
                }
                if empty {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            if next != total {
                return Err(format!("the reader saw {next} entries of {total}"));
            }
            Ok(Followed {
                reads,
                entries_seen: next,
            })
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_appends_on_real_files_complete_in_order_after_a_sync_while_a_reader_follows() {
    let seed = base_seed();
    let t0 = Instant::now();
    let total = 1500;
    let batches = pipeline_batches(seed, total);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let opts = Options::default().with_segment_size(64 << 10);
    let mut store: WalLogStore<KvConfig> =
        WalLogStore::open(dir.path().join("log"), opts.clone()).expect("opening the log store");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = follow(store.get_log_reader().await, seed, total, Arc::clone(&stop));
    let p = pipeline(&store, &batches, None, |_, _| {}).await;
    stop.store(true, Ordering::Release);
    let followed = reader
        .join()
        .expect("the reader thread")
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    check_pipeline(&p, seed);
    let syncs = store.with_wal(|w| w.stats().file_syncs);
    assert!(syncs >= 1, "seed {seed}: no file sync at all");
    println!(
        "seed {seed}: {} appends ({total} entries) pipelined, at most {} outstanding, {syncs} file \
         syncs; the reader made {} reads and saw all {} entries; {:.2?}",
        batches.len(),
        p.max_outstanding,
        followed.reads,
        followed.entries_seen,
        t0.elapsed()
    );
    drop(store);
    let mut store: WalLogStore<KvConfig> =
        WalLogStore::open(dir.path().join("log"), opts).expect("reopening the log store");
    let all = store.try_get_log_entries(..).await.expect("reading back");
    assert_eq!(
        all,
        batch(seed, 1, 1, 0..=total - 1),
        "seed {seed}: reopened log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_appends_are_durable_the_moment_their_callback_is_seen() {
    let seed = base_seed();
    let t0 = Instant::now();
    let total = 400;
    let batches = pipeline_batches(seed, total);
    let fs = SimFs::new(seed);
    fs.mkdir_durable(Path::new("/node"));
    let mut store: SimLog =
        WalLogStore::open_with(fs.clone(), LOG_DIR, sim_options()).expect("opening the log store");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = follow(store.get_log_reader().await, seed, total, Arc::clone(&stop));
    let mut copies = Vec::new();
    // Paced: the flush thread syncs while appends keep coming, so completions are seen with
    // later appends issued and not yet durable.
    let pace = Some((3, Duration::from_millis(1)));
    let p = pipeline(&store, &batches, pace, |k, issued| {
        copies.push((k, issued, fs.fork()))
    })
    .await;
    stop.store(true, Ordering::Release);
    let followed = reader
        .join()
        .expect("the reader thread")
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    check_pipeline(&p, seed);
    let syncs = store.with_wal(|w| w.stats().file_syncs);
    drop(store);
    // Each copy is the disk the moment append k's completion was seen: whatever a power cut
    // keeps of it, entries 0..=last of batch k are there. `overlapped`: completions seen
    // while later appends, already issued, were not durable yet (the window a callback fired
    // ahead of its sync would be caught in).
    let mut r = StdRng::seed_from_u64(seed ^ 2);
    let (mut cuts, mut overlapped) = (0, 0);
    for (k, issued, copy) in &copies {
        let last = batches[*k].last().expect("a non-empty batch").log_id.index;
        let issued_end = batches[*issued - 1].last().expect("a batch").log_id.index + 1;
        for random in [false, true] {
            let cut = copy.fork();
            let crash_seed: u64 = r.gen();
            if random {
                cut.crash(crash_seed);
            } else {
                cut.crash_with(CrashMode::LoseAll, crash_seed);
            }
            cuts += 1;
            let mut log: SimLog = WalLogStore::open_with(cut, LOG_DIR, sim_options())
                .unwrap_or_else(|e| panic!("seed {seed}: reopening after append {k}: {e}"));
            let got = log
                .try_get_log_entries(0..=last)
                .await
                .expect("reading back");
            assert!(
                got == batch(seed, 1, 1, 0..=last),
                "seed {seed}: append {k} (through entry {last}) completed, but a power cut \
                 then (random {random}, crash seed {crash_seed}) leaves {} entries",
                got.len()
            );
            if !random {
                let durable_end = log.get_log_state().await.unwrap().last_log_id.next_index();
                overlapped += u64::from(durable_end < issued_end);
            }
        }
    }
    assert!(
        overlapped > 0,
        "seed {seed}: no completion was seen while a later append was still unsynced"
    );
    println!(
        "seed {seed}: {} appends ({total} entries) pipelined on the simulated disk, at most {} \
         outstanding, {syncs} file syncs; {cuts} power cuts at completions checked \
         ({overlapped} completions seen with later appends not yet durable); the reader made {} reads and saw all {} entries; {:.2?}",
        batches.len(),
        p.max_outstanding,
        followed.reads,
        followed.entries_seen,
        t0.elapsed()
    );
}
