//! The storage under power cuts, on the simulated disk of `raftwal-fault`.
//!
//! A follower's `RawNode` (node 1 of voters 1, 2, 3) on a [`SimFs`] is stepped through a
//! fixed script of messages from two leaders: appends, commit advances, votes in new terms,
//! appends that conflict with its log (a suffix truncated and rewritten at a higher term),
//! a snapshot past its log, heartbeats that only move the commit index. Each `Ready` is
//! persisted (`persist_ready` then `persist_light_ready`, or `persist_ready_async` and
//! `wait_persisted`, pipelined two Readies deep), and after each call that returned the
//! test records what the storage then holds: the *acknowledged* state.
//!
//! The file system records a checkpoint after every mutating I/O call. Each checkpoint is
//! crashed several ways — every unsynced write lost, every one kept, six seeded random
//! subsets (torn writes included) — the storage is reopened on what is left, raft-rs's `RawNode` is
//! built on it (raft-rs refuses a commit index outside the log), and the reopened state is
//! checked against the acknowledged state before the checkpoint (`ack`) and the one the
//! call in flight would have acknowledged (`next`):
//!
//! - term and vote never regress: term ≥ ack's; in ack's term, ack's vote; never past next;
//!   no entry is of a later term than the durable one (else a restarted node could vote
//!   again in the term its log shows);
//! - the durable commit index never regresses (≥ ack's) and never exceeds the log;
//! - every entry ack holds that next holds too is there, the same (entries of a completed
//!   `must_sync` are never lost; only a truncation in flight may remove some);
//! - every entry there is one ack or next holds: a truncated conflicting suffix never
//!   reappears, and nothing unacknowledged is invented.
//!
//! Seeds: `POWER_CUTS_SEED=<u64>` replaces the default base seed (eight seeds from it
//! run); each run prints its seed.

use std::collections::BTreeMap;
use std::path::Path;

use raft::eraftpb::{ConfState, Entry, Message, MessageType, Snapshot};
use raft::{Config, GetEntriesContext, RawNode, Storage};
use raftwal::{Options, SegmentPrepare};
use raftwal_fault::{CrashMode, SimFs, Writeback};
use raftwal_raft_rs::{RaftWalStorage, StorageOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type SimStorage = RaftWalStorage<SimFs>;

const DIR: &str = "/node/wal";

fn base_seed() -> u64 {
    std::env::var("POWER_CUTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2AF7)
}

/// Small segments (rotations inside the script), a small write buffer (appends written out
/// ahead of their sync), deterministic spare preparation; the commit index written at
/// every advance, so each of its writes is crashed too.
fn options() -> StorageOptions {
    let wal = Options::default()
        .with_segment_size(8192)
        .with_write_buffer(1024)
        .with_prepare(SegmentPrepare::ZeroFill);
    StorageOptions::default().with_wal(wal).with_commit_lag(0)
}

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

fn config() -> Config {
    Config {
        id: 1,
        election_tick: 10,
        heartbeat_tick: 3,
        ..Config::default()
    }
}

// ----- the script -------------------------------------------------------------------------

fn entry(seed: u64, index: u64, term: u64) -> Entry {
    let mut r = StdRng::seed_from_u64(seed ^ (term << 40) ^ index.wrapping_mul(0x9E37_79B9));
    let len = r.gen_range(8..700);
    Entry {
        index,
        term,
        data: (0..len).map(|_| r.gen::<u8>()).collect::<Vec<u8>>().into(),
        ..Entry::default()
    }
}

fn msg(ty: MessageType, from: u64, term: u64) -> Message {
    Message {
        msg_type: ty,
        from,
        to: 1,
        term,
        ..Message::default()
    }
}

/// `MsgAppend` from `from` in `term`: after (index, log_term), entries `range` of
/// `entry_term`, with the leader's commit index.
fn append(
    seed: u64,
    from: u64,
    term: u64,
    prev: (u64, u64),
    range: std::ops::RangeInclusive<u64>,
    commit: u64,
) -> Message {
    let mut m = msg(MessageType::MsgAppend, from, term);
    m.index = prev.0;
    m.log_term = prev.1;
    m.commit = commit;
    m.entries = range.map(|i| entry(seed, i, term)).collect();
    m
}

fn vote(from: u64, term: u64, last: (u64, u64)) -> Message {
    let mut m = msg(MessageType::MsgRequestVote, from, term);
    m.index = last.0;
    m.log_term = last.1;
    m
}

fn heartbeat(from: u64, term: u64, commit: u64) -> Message {
    let mut m = msg(MessageType::MsgHeartbeat, from, term);
    m.commit = commit;
    m
}

fn snapshot(from: u64, term: u64, index: u64) -> Message {
    let mut m = msg(MessageType::MsgSnapshot, from, term);
    let mut s = Snapshot {
        data: b"the state machine at 25".to_vec().into(),
        ..Snapshot::default()
    };
    let md = s.mut_metadata();
    md.index = index;
    md.term = term;
    md.set_conf_state(ConfState::from((vec![1, 2, 3], vec![])));
    m.set_snapshot(s);
    m
}

fn script(seed: u64) -> Vec<Message> {
    vec![
        append(seed, 2, 1, (0, 0), 1..=4, 2),
        append(seed, 2, 1, (4, 1), 5..=8, 6),
        vote(3, 2, (8, 1)),
        // Leader 3 never had 7 and 8 of term 1: they are truncated and rewritten.
        append(seed, 3, 2, (6, 1), 7..=9, 7),
        append(seed, 3, 2, (9, 2), 10..=20, 12),
        heartbeat(3, 2, 15),
        snapshot(3, 2, 25),
        append(seed, 3, 2, (25, 2), 26..=30, 28),
        vote(2, 3, (30, 2)),
        // Leader 2 of term 3 had only up to 28 of term 2: 29 and 30 are rewritten.
        append(seed, 2, 3, (28, 2), 29..=31, 29),
        heartbeat(2, 3, 31),
    ]
}

// ----- what the storage holds ---------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
struct State {
    term: u64,
    vote: u64,
    durable_commit: u64,
    /// The log's base (its first index - 1).
    base: u64,
    /// Every entry the storage shows (appended, durable or not).
    log: BTreeMap<u64, Entry>,
    /// Its last index known durable (`durable_last_index`).
    durable_last: u64,
}

fn state<V: raftwal::io::Vfs>(s: &RaftWalStorage<V>) -> State {
    let (first, last) = (s.first_index().unwrap(), s.last_index().unwrap());
    let log = s
        .entries(first, last + 1, None, GetEntriesContext::empty(false))
        .unwrap()
        .into_iter()
        .map(|e| (e.index, e))
        .collect();
    let hs = s.initial_state().unwrap().hard_state;
    State {
        term: hs.term,
        vote: hs.vote,
        durable_commit: s.durable_commit(),
        base: first - 1,
        log,
        durable_last: s.durable_last_index(),
    }
}

/// The acknowledged states, each with the I/O call count when it was acknowledged.
type Acks = Vec<(u64, State)>;

/// Runs the script on `fs`, recording a checkpoint after every I/O call.
fn run(fs: &SimFs, seed: u64, async_persist: bool) -> (Vec<raftwal_fault::Checkpoint>, Acks) {
    let store = SimStorage::open_with(fs.clone(), DIR, options()).unwrap();
    let mut store = store;
    store
        .set_conf_state(ConfState::from((vec![1, 2, 3], vec![])))
        .unwrap();
    let mut node = RawNode::new(&config(), store, &logger()).unwrap();
    let mut acks: Acks = vec![(fs.io_calls(), state(node.store()))];
    fs.start_recording();
    let ack = |node: &RawNode<SimStorage>, acks: &mut Acks| {
        acks.push((fs.io_calls(), state(node.store())));
    };
    let mut unreported = 0;
    for m in script(seed) {
        node.step(m).unwrap();
        while node.has_ready() {
            let rd = node.ready();
            if async_persist {
                node.mut_store().persist_ready_async(&rd).unwrap();
                node.advance_append_async(rd);
                unreported += 1;
                // Two Readies deep: wait only when two are unreported.
                let n = if unreported >= 2 {
                    node.mut_store().wait_persisted().unwrap()
                } else {
                    node.mut_store().poll_persisted().unwrap()
                };
                if let Some(n) = n {
                    node.on_persist_ready(n);
                    ack(&node, &mut acks);
                    unreported = 0;
                }
            } else {
                node.mut_store().persist_ready(&rd).unwrap();
                ack(&node, &mut acks);
                let light = node.advance(rd);
                node.mut_store().persist_light_ready(&light).unwrap();
                ack(&node, &mut acks);
                node.advance_apply();
            }
        }
    }
    if async_persist {
        while node.mut_store().persist_pending() {
            if let Some(n) = node.mut_store().wait_persisted().unwrap() {
                node.on_persist_ready(n);
            }
        }
        ack(&node, &mut acks);
    }
    (fs.take_recording(), acks)
}

/// The reopened state `got` against `ack` and `next` (see the module docs).
fn check(got: &State, ack: &State, next: &State) -> Result<(), String> {
    if got.term < ack.term || got.term > next.term {
        return Err(format!(
            "term {} outside {}..={}",
            got.term, ack.term, next.term
        ));
    }
    if got.term == ack.term && ack.vote != 0 && got.vote != ack.vote {
        return Err(format!(
            "vote {} in term {}, acknowledged {}",
            got.vote, got.term, ack.vote
        ));
    }
    if got.durable_commit < ack.durable_commit {
        return Err(format!(
            "durable commit {} regressed from {}",
            got.durable_commit, ack.durable_commit
        ));
    }
    let last = got.log.keys().next_back().copied().unwrap_or(got.base);
    if got.durable_commit > last {
        return Err(format!(
            "durable commit {} past the last index {last}",
            got.durable_commit
        ));
    }
    for (i, e) in ack.log.range(..=ack.durable_last) {
        if next.log.get(i) == Some(e) && *i > got.base && got.log.get(i) != Some(e) {
            return Err(format!("acknowledged entry {i} (term {}) lost", e.term));
        }
    }
    for (i, e) in &got.log {
        if e.term > got.term {
            return Err(format!(
                "entry {i} of term {} past the durable term {}",
                e.term, got.term
            ));
        }
        if ack.log.get(i) != Some(e) && next.log.get(i) != Some(e) {
            return Err(format!(
                "entry {i} of term {} was never acknowledged nor in flight",
                e.term
            ));
        }
    }
    Ok(())
}

fn crash_modes(seed: u64) -> Vec<(CrashMode, u64)> {
    let mut modes = vec![(CrashMode::LoseAll, seed), (CrashMode::KeepAll, seed)];
    modes.extend((0..6).map(|k| {
        (
            CrashMode::Random { fill: None },
            seed ^ ((k + 1) * 0x1000_0001),
        )
    }));
    modes
}

/// The script on eight seeds (payload sizes, crash choices); every other one on a disk
/// that writes back page by page (a page torn in any subset of its sectors).
fn power_cuts(async_persist: bool) {
    for k in 0..8 {
        let seed = base_seed().wrapping_add(k);
        let fs = SimFs::new(seed);
        if k % 2 == 1 {
            fs.set_writeback(Writeback::Pages { page: 4096 });
        }
        fs.mkdir_durable(Path::new("/node"));
        power_cuts_on(&fs, seed, async_persist);
    }
}

fn power_cuts_on(fs: &SimFs, seed: u64, async_persist: bool) {
    println!("POWER_CUTS_SEED={seed} async_persist={async_persist}");
    let (checkpoints, acks) = run(fs, seed, async_persist);
    // The script did what it says: two truncations, a snapshot, two votes.
    let end = &acks.last().unwrap().1;
    assert_eq!((end.term, end.vote, end.base), (3, 2, 25), "{end:?}");
    let terms: Vec<(u64, u64)> = end.log.values().map(|e| (e.index, e.term)).collect();
    assert_eq!(
        terms,
        [(26, 2), (27, 2), (28, 2), (29, 3), (30, 3), (31, 3)]
    );
    assert_eq!(end.durable_commit, 31);
    assert!(checkpoints.len() > 50, "{} checkpoints", checkpoints.len());
    let mut crashes = 0;
    for cp in &checkpoints {
        // The last state acknowledged at or before this I/O call, and the next one.
        let k = acks
            .iter()
            .rposition(|(io, _)| *io <= cp.io_call)
            .unwrap_or(0);
        let (ack, next) = (&acks[k].1, &acks[(k + 1).min(acks.len() - 1)].1);
        for (mode, s) in crash_modes(seed ^ cp.io_call) {
            let fs = cp.to_fs();
            fs.crash_with(mode.clone(), s);
            let what = format!(
                "seed {seed}, I/O call {} ({}), crash {mode:?} seed {s}",
                cp.io_call, cp.what
            );
            let store = SimStorage::open_with(fs, DIR, options())
                .unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
            let got = state(&store);
            check(&got, ack, next).unwrap_or_else(|e| panic!("{what}: {e}\n got {got:?}"));
            // raft-rs takes it (its load_state panics on a commit index outside the log).
            RawNode::new(&config(), store, &logger()).unwrap_or_else(|e| panic!("{what}: {e}"));
            crashes += 1;
        }
    }
    println!(
        "{} checkpoints, {crashes} crashes recovered and checked",
        checkpoints.len()
    );
}

#[test]
fn a_power_cut_at_every_io_call_of_blocking_persistence() {
    power_cuts(false);
}

#[test]
fn a_power_cut_at_every_io_call_of_async_persistence() {
    power_cuts(true);
}
