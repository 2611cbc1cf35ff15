//! Model-based test: seeded random sequences of appends, syncs, truncations, compactions,
//! snapshots, hard-state changes and reopens (clean, and dropped without a sync) against
//! the crash torture's model of acknowledged state, on real temporary directories with
//! 8 KiB segments.
//!
//! - `WAL_MODEL_SEEDS=<n>` runs `n` sequences (seeds `0..n`) instead of the default.
//! - `WAL_MODEL_SEED=<s>` runs just seed `s` (what a failure prints), with its op trace.
//! - `WAL_MODEL_OPS=<n>` sets the operations per sequence.
//! - `WAL_TEST_TMPDIR=<dir>` puts the directories there instead of `/dev/shm` (tmpfs, used
//!   when present so that thousands of sequences fit in the CI budget).

mod common;

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

use raftwal::{Entry, Error, HardState, SnapshotMeta, Wal};
use raftwal_fault::check::{check, promote, Recovered};
use raftwal_fault::model::{Model, Op};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DEFAULT_SEEDS: u64 = 3000;
const DEFAULT_OPS: usize = 60;

/// Compares every observable piece of state with the model — the torture's model
/// (`raftwal_fault::model`), which here never has an operation in flight, so the WAL must
/// hold exactly what it says: the checker's invariants, and nothing beyond the last append.
fn check_exact(w: &Wal, m: &Model) {
    let rec = Recovered::read(w).unwrap();
    if let Err(what) = check(m, &rec) {
        panic!("{what}\n  {}\n  {}", m.summary(), rec.summary());
    }
    assert_eq!(rec.last, m.last, "last index");
    assert_eq!(w.last_term(), m.term(m.last).unwrap(), "last term");
    for e in &rec.entries {
        assert_eq!(w.term(e.index).unwrap(), e.term, "term of {}", e.index);
    }
    let stored = m.snapshots.get(&m.base).and_then(|d| d.last());
    let want = stored.filter(|_| m.base_has_snapshot).cloned();
    assert_eq!(rec.snapshot.map(|(_, d)| d), want, "snapshot");
    if m.base.index > 0 {
        assert!(matches!(
            w.entry(m.base.index),
            Err(Error::Compacted { .. })
        ));
    }
    assert!(matches!(
        w.entry(m.last + 1),
        Err(Error::Unavailable { .. })
    ));
}

/// Applies `op` to the WAL, which must accept it, and to the model.
fn apply(w: &mut Wal, m: &mut Model, op: Op) {
    m.begin(&op);
    common::apply_op(w, &op).unwrap_or_else(|e| panic!("{op}: {e}"));
    m.complete(&op);
}

/// The last term in the log (the base term if it is empty).
fn last_term(m: &Model) -> u64 {
    m.term(m.last).unwrap_or(m.base.term)
}

fn payload_len(rng: &mut StdRng) -> usize {
    match rng.gen_range(0..10) {
        0 => 0,
        1 => rng.gen_range(1024..=2048),
        2 | 3 => rng.gen_range(100..1024),
        _ => rng.gen_range(1..100),
    }
}

/// Runs one sequence; returns the number of operations executed.
fn run(seed: u64, ops: usize, trace: &mut VecDeque<String>) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = common::fast_tempdir();
    // Odd seeds open lazily (sealed middle segments verified on first read).
    let opts = common::random_model_options(&mut rng).with_lazy_open(seed % 2 == 1);
    let mut w = Some(Wal::open(dir.path(), opts.clone()).unwrap());
    let mut m = Model::default();
    let note = |trace: &mut VecDeque<String>, s: String| {
        if trace.len() >= 400 {
            trace.pop_front();
        }
        trace.push_back(s);
    };
    for step in 0..ops {
        let wal = w.as_mut().unwrap();
        match rng.gen_range(0..100) {
            0..=39 => {
                let n = if rng.gen_bool(0.1) {
                    rng.gen_range(8..30)
                } else {
                    rng.gen_range(1..6)
                };
                let mut term = last_term(&m).max(1);
                let lo = m.last + 1;
                let batch: Vec<Entry> = (lo..lo + n)
                    .map(|i| {
                        if rng.gen_bool(0.05) {
                            term += 1;
                        }
                        Entry {
                            index: i,
                            term,
                            data: common::payload(i, term, payload_len(&mut rng)),
                        }
                    })
                    .collect();
                let op = Op::Append(batch);
                note(trace, format!("{step}: {op}"));
                apply(wal, &mut m, op);
            }
            40..=54 => {
                note(trace, format!("{step}: sync"));
                apply(wal, &mut m, Op::Sync);
            }
            55..=62 => {
                let from = rng.gen_range(m.base.index.saturating_sub(1)..=m.last + 2);
                note(trace, format!("{step}: truncate_suffix({from})"));
                if from <= m.base.index {
                    let r = wal.truncate_suffix(from);
                    assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
                } else {
                    apply(wal, &mut m, Op::TruncateSuffix(from));
                }
            }
            63..=66 => {
                let index = rng.gen_range(m.base.index..=m.last);
                note(trace, format!("{step}: compact({index})"));
                apply(wal, &mut m, Op::Compact(index));
            }
            67..=72 => {
                let last = m.last;
                let meta = match rng.gen_range(0..3) {
                    // Matching term inside the log: the suffix is kept.
                    0 => {
                        let index = rng.gen_range(m.base.index..=last);
                        SnapshotMeta {
                            index,
                            term: m.term(index).unwrap(),
                        }
                    }
                    // Conflicting term inside the log: the log is discarded.
                    1 if last > m.base.index => {
                        let index = rng.gen_range(m.base.index + 1..=last);
                        SnapshotMeta {
                            index,
                            term: m.term(index).unwrap() + rng.gen_range(1..3),
                        }
                    }
                    // Past the end.
                    _ => SnapshotMeta {
                        index: last + rng.gen_range(1..50),
                        term: last_term(&m) + rng.gen_range(0..2),
                    },
                };
                let data = common::payload(meta.index, meta.term, rng.gen_range(0..3000));
                let op = Op::SaveSnapshot(meta, data);
                note(trace, format!("{step}: {op}"));
                apply(wal, &mut m, op);
            }
            73..=80 => {
                let cur = m.hard;
                let hs = match rng.gen_range(0..5) {
                    0 => HardState {
                        term: cur.term + rng.gen_range(1..3),
                        vote: None,
                    },
                    1 => HardState {
                        term: cur.term + rng.gen_range(0..2),
                        vote: Some(rng.gen_range(1..4)),
                    },
                    2 => cur,
                    3 => HardState {
                        term: cur.term.saturating_sub(1),
                        vote: cur.vote,
                    },
                    _ => HardState {
                        term: cur.term,
                        vote: if cur.vote.is_some() { None } else { Some(1) },
                    },
                };
                note(
                    trace,
                    format!("{step}: set_hard_state({hs:?}) from {cur:?}"),
                );
                let valid = hs.term > cur.term
                    || (hs.term == cur.term && (cur.vote.is_none() || hs.vote == cur.vote));
                let syncs = wal.stats().file_syncs;
                if valid {
                    apply(wal, &mut m, Op::SetHardState(hs));
                    let expect = u64::from(hs != cur);
                    assert_eq!(wal.stats().file_syncs - syncs, expect, "header fsyncs");
                } else {
                    let r = wal.set_hard_state(hs);
                    assert!(matches!(r, Err(Error::InvalidHardState { .. })), "{r:?}");
                }
            }
            81..=86 => {
                note(trace, format!("{step}: sync, drop, reopen"));
                apply(wal, &mut m, Op::Sync);
                drop(w.take());
                let re = Wal::open(dir.path(), opts.clone()).unwrap();
                check_exact(&re, &m);
                w = Some(re);
            }
            87..=92 => {
                note(trace, format!("{step}: drop without sync, reopen"));
                drop(w.take());
                let re = Wal::open(dir.path(), opts.clone()).unwrap();
                // Unsynced batches may be there or not (the page cache kept them here):
                // the checker judges, and what open found becomes the acknowledged state.
                let rec = Recovered::read(&re).unwrap();
                if let Err(what) = check(&m, &rec) {
                    panic!("{what}\n  {}\n  {}", m.summary(), rec.summary());
                }
                promote(&mut m, &rec);
                note(trace, format!("{step}: {}", rec.summary()));
                check_exact(&re, &m);
                w = Some(re);
            }
            _ => {
                // Random reads against the model.
                if m.last > m.base.index {
                    let i = rng.gen_range(m.base.index + 1..=m.last);
                    assert_eq!(&wal.entry(i).unwrap(), &m.log[&i], "read {i}");
                }
                if m.base.index > 0 {
                    let i = rng.gen_range(0..=m.base.index.min(5) - 1);
                    assert!(matches!(wal.entry(i), Err(Error::Compacted { .. })));
                }
            }
        }
    }
    // Final clean reopen.
    apply(w.as_mut().unwrap(), &mut m, Op::Sync);
    drop(w.take());
    let re = Wal::open(dir.path(), opts).unwrap();
    check_exact(&re, &m);
    ops
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn random_sequences_match_the_model() {
    let ops = env_u64("WAL_MODEL_OPS").map_or(DEFAULT_OPS, |n| n as usize);
    let seeds: Vec<u64> = match env_u64("WAL_MODEL_SEED") {
        Some(s) => vec![s],
        None => (0..env_u64("WAL_MODEL_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    };
    let single = seeds.len() == 1;
    let started = std::time::Instant::now();
    let mut total_ops = 0;
    for &seed in &seeds {
        let mut trace = VecDeque::new();
        let r = catch_unwind(AssertUnwindSafe(|| run(seed, ops, &mut trace)));
        match r {
            Ok(n) => total_ops += n,
            Err(p) => {
                eprintln!("model test FAILED at seed {seed}; last operations:");
                for t in &trace {
                    eprintln!("  {t}");
                }
                eprintln!("reproduce: WAL_MODEL_SEED={seed} WAL_MODEL_OPS={ops} cargo test -p raftwal --release --test model");
                std::panic::resume_unwind(p);
            }
        }
        if single {
            eprintln!("seed {seed} passed");
        }
    }
    eprintln!(
        "model test: {} sequences, {total_ops} operations, {:.1?}",
        seeds.len(),
        started.elapsed()
    );
}
