//! Model-based test with injected I/O errors: seeded random sequences on
//! `raftwal_fault::SimFs`, with a chosen file sync or write failing with EIO. After a failure
//! the WAL must be poisoned (every later write refused); a reopen must then find a state the
//! failed operation could have left — judged by the same model and checker as the crash
//! torture (`raftwal_fault::model::Model`, `raftwal_fault::check`): everything acknowledged
//! before it, the failed operation either done or not (for a truncation, cut somewhere
//! between), never anything else.
//!
//! `WAL_MODEL_SEEDS=<n>` / `WAL_MODEL_SEED=<s>` / `WAL_MODEL_OPS=<n>` as in `model.rs`.

mod common;

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::sim::dir;
use raftwal::{Error, HardState, Options, SnapshotMeta, Wal};
use raftwal_fault::check::{check, promote, Recovered};
use raftwal_fault::model::{Model, Op};
use raftwal_fault::{Fault, SimFs, SyncFailure};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DEFAULT_SEEDS: u64 = 2000;
const DEFAULT_OPS: usize = 60;

/// The next operation of a sequence, drawn against the model's acknowledged state.
fn draw(rng: &mut StdRng, m: &Model) -> Op {
    let (base, last) = (m.base.index, m.last);
    match rng.gen_range(0..100) {
        0..=44 => {
            let n = rng.gen_range(1..8);
            let term = m
                .log
                .values()
                .next_back()
                .map_or(m.base.term, |e| e.term)
                .max(1)
                + u64::from(rng.gen_bool(0.05));
            Op::Append(
                (last + 1..=last + n)
                    .map(|i| common::ent(i, term, rng.gen_range(0..1500)))
                    .collect(),
            )
        }
        45..=64 => Op::Sync,
        65..=74 if last > base => Op::TruncateSuffix(rng.gen_range(base + 1..=last)),
        75..=77 => Op::Compact(rng.gen_range(base..=last)),
        78..=79 => Op::CompactTo(SnapshotMeta {
            index: last + rng.gen_range(1..10),
            term: m.current_term(),
        }),
        80..=81 => {
            let len = rng.gen_range(0..=raftwal::APP_META_MAX);
            Op::SetAppMeta((0..len).map(|_| rng.gen()).collect())
        }
        82..=87 => {
            let meta = if rng.gen_bool(0.5) {
                let index = rng.gen_range(base..=last);
                let term = m.term(index).unwrap_or(m.base.term);
                SnapshotMeta { index, term }
            } else {
                let term = m.log.values().next_back().map_or(m.base.term, |e| e.term) + 1;
                SnapshotMeta {
                    index: last + rng.gen_range(1..20),
                    term,
                }
            };
            let data = common::payload(meta.index, 7, rng.gen_range(0..2000));
            Op::SaveSnapshot(meta, data)
        }
        _ => {
            let term = m.hard.term + rng.gen_range(0..2);
            let vote = Some(rng.gen_range(1..4)).filter(|_| m.hard.vote.is_none());
            match (term == m.hard.term, m.hard.vote.is_some()) {
                (true, true) => Op::SetHardState(HardState {
                    term: term + 1,
                    vote: None,
                }),
                _ => Op::SetHardState(HardState { term, vote }),
            }
        }
    }
}

/// Arms one EIO on a file sync (70 %) or a write, a few calls ahead.
fn arm(rng: &mut StdRng, fs: &SimFs) {
    if rng.gen_bool(0.7) {
        fs.inject(Fault::SyncEio {
            after: rng.gen_range(0..3),
            path: None,
            failure: SyncFailure::Random,
        });
    } else {
        fs.inject(Fault::WriteEio {
            after: rng.gen_range(0..2),
            path: None,
        });
    }
}

/// Reopens and checks the recovered state against the model (the failed `op` in flight);
/// the recovered state becomes the acknowledged one.
fn reopen_and_judge(fs: &SimFs, opts: &Options, m: &mut Model) -> (Wal<SimFs>, String) {
    let w = Wal::open_with(fs.clone(), dir(), opts.clone()).unwrap();
    let rec = Recovered::read(&w).unwrap();
    if let Err(what) = check(m, &rec) {
        panic!("{what}\n  {}\n  {}", m.summary(), rec.summary());
    }
    promote(m, &rec);
    (w, rec.summary())
}

fn run(seed: u64, ops: usize, trace: &mut VecDeque<String>) -> (usize, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let opts = common::random_model_options(&mut rng);
    let fs = SimFs::new(seed);
    fs.mkdir_durable(dir());
    let mut w = Wal::open_with(fs.clone(), dir(), opts.clone()).unwrap();
    let mut m = Model::default();
    let mut failures = 0;
    let note = |trace: &mut VecDeque<String>, s: String| {
        if trace.len() >= 300 {
            trace.pop_front();
        }
        trace.push_back(s.chars().take(200).collect());
    };
    for step in 0..ops {
        let op = draw(&mut rng, &m);
        let armed = rng.gen_bool(0.12);
        if armed {
            arm(&mut rng, &fs);
        }
        note(trace, format!("{step}: {op} (armed {armed})"));
        m.begin(&op);
        let r = common::apply_op(&mut w, &op);
        fs.clear_faults();
        match r {
            Ok(()) => m.complete(&op),
            Err(e) => {
                failures += 1;
                assert!(armed, "unexpected error: {e}");
                assert!(matches!(e, Error::Io { .. }), "{e}");
                assert!(w.is_poisoned());
                assert!(matches!(w.sync(), Err(Error::Poisoned { .. })));
                let next = common::ent(w.last_index() + 1, w.last_term(), 1);
                assert!(matches!(w.append(&[next]), Err(Error::Poisoned { .. })));
                m.fail(&op);
                drop(w);
                let (reopened, got) = reopen_and_judge(&fs, &opts, &mut m);
                w = reopened;
                note(trace, format!("{step}: failed ({e}); {got}"));
            }
        }
        if rng.gen_bool(0.05) {
            note(trace, format!("{step}: sync, reopen"));
            m.begin(&Op::Sync);
            w.sync().unwrap();
            m.complete(&Op::Sync);
            drop(w);
            let before = m.clone();
            w = reopen_and_judge(&fs, &opts, &mut m).0;
            assert_eq!(
                (m.acked_last, m.hard, m.base),
                (before.acked_last, before.hard, before.base),
                "a clean reopen changed the acknowledged state"
            );
        }
    }
    (ops, failures)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn random_sequences_with_io_errors_match_the_model() {
    let ops = env_u64("WAL_MODEL_OPS").map_or(DEFAULT_OPS, |n| n as usize);
    let seeds: Vec<u64> = match env_u64("WAL_MODEL_SEED") {
        Some(s) => vec![s],
        None => (0..env_u64("WAL_MODEL_SEEDS").unwrap_or(DEFAULT_SEEDS)).collect(),
    };
    let started = std::time::Instant::now();
    let (mut total_ops, mut total_failures) = (0, 0);
    for &seed in &seeds {
        let mut trace = VecDeque::new();
        match catch_unwind(AssertUnwindSafe(|| run(seed, ops, &mut trace))) {
            Ok((n, f)) => {
                total_ops += n;
                total_failures += f;
            }
            Err(p) => {
                eprintln!("model_faults FAILED at seed {seed}; last operations:");
                for t in &trace {
                    eprintln!("  {t}");
                }
                eprintln!(
                    "reproduce: WAL_MODEL_SEED={seed} WAL_MODEL_OPS={ops} cargo test -p raftwal \
                     --release --test model_faults"
                );
                std::panic::resume_unwind(p);
            }
        }
    }
    eprintln!(
        "model_faults: {} sequences, {total_ops} operations, {total_failures} injected \
         failures recovered, {:.1?}",
        seeds.len(),
        started.elapsed()
    );
    assert!(total_failures > 0 || seeds.len() < 10);
}
