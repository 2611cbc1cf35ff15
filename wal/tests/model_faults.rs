//! Model-based test with injected I/O errors: seeded random sequences as in `model.rs`, on a
//! `Vfs` that fails a chosen file sync or write with EIO. After a failure the WAL must be
//! poisoned (every later write refused); a reopen must then find a state the failed
//! operation could have left: everything acknowledged before it, the failed operation
//! either done or not (or, for a truncation, cut somewhere between), never anything else.
//!
//! `WAL_MODEL_SEEDS=<n>` / `WAL_MODEL_SEED=<s>` / `WAL_MODEL_OPS=<n>` as in `model.rs`.

mod common;

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::failing_vfs::FailingVfs;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wal::{Entry, Error, HardState, Options, SnapshotMeta, Wal};

const DEFAULT_SEEDS: u64 = 2000;
const DEFAULT_OPS: usize = 60;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    base: SnapshotMeta,
    log: Vec<Entry>,
    synced: u64,
    hard: HardState,
    snapshot: Option<(SnapshotMeta, Vec<u8>)>,
}

impl Model {
    fn last_index(&self) -> u64 {
        self.base.index + self.log.len() as u64
    }
    fn last_term(&self) -> u64 {
        self.log.last().map_or(self.base.term, |e| e.term)
    }
    fn term(&self, index: u64) -> Option<u64> {
        if index == self.base.index {
            return Some(self.base.term);
        }
        if index <= self.base.index || index > self.last_index() {
            return None;
        }
        Some(self.log[(index - self.base.index - 1) as usize].term)
    }
    fn move_base(&mut self, meta: SnapshotMeta) {
        if meta.index <= self.last_index() && self.term(meta.index) == Some(meta.term) {
            self.log.drain(..(meta.index - self.base.index) as usize);
        } else {
            self.log.clear();
        }
        self.base = meta;
        self.synced = self.last_index();
    }
}

/// The operation attempted, for judging what a failure may have left.
#[derive(Debug)]
enum Op {
    Append(Vec<Entry>),
    Sync,
    Truncate(u64),
    Compact(SnapshotMeta),
    Snapshot(SnapshotMeta, Vec<u8>),
    Hard(HardState),
}

fn observe(w: &Wal<FailingVfs>) -> Model {
    Model {
        base: w.snapshot_meta(),
        log: w.entries(w.first_index(), w.last_index() + 1).unwrap(),
        synced: w.last_index(),
        hard: w.hard_state(),
        snapshot: w.snapshot().unwrap(),
    }
}

/// Checks a state recovered after `op` failed against the model before it.
fn judge(m: &Model, op: &Op, got: &Model) {
    let last = got.last_index();
    let hards: Vec<HardState> = match op {
        Op::Hard(hs) => vec![m.hard, *hs],
        _ => vec![m.hard],
    };
    assert!(hards.contains(&got.hard), "hard state {:?}", got.hard);
    // The entries the failed operation may have left on disk, by index.
    let mut candidates = m.log.clone();
    if let Op::Append(b) = op {
        candidates.extend(b.iter().cloned());
    }
    let (new_base, new_snapshot) = match op {
        Op::Compact(meta) => (Some(*meta), Some(None)),
        Op::Snapshot(meta, data) => (Some(*meta), Some(Some((*meta, data.clone())))),
        _ => (None, None),
    };
    if got.base == m.base {
        let snaps = [
            Some(m.snapshot.clone()),
            new_snapshot.filter(|_| new_base == Some(m.base)),
        ];
        assert!(
            snaps.contains(&Some(got.snapshot.clone())),
            "snapshot {:?}",
            got.snapshot
        );
        let lower = match op {
            Op::Truncate(from) => m.synced.min(from - 1),
            Op::Snapshot(meta, _) if m.term(meta.index) != Some(meta.term) => {
                m.synced.min(meta.index.saturating_sub(1)).max(m.base.index)
            }
            _ => m.synced,
        };
        assert!(last >= lower, "recovered last {last} below {lower}");
        let n = got.log.len();
        assert!(
            n <= candidates.len(),
            "recovered {n} entries, at most {}",
            candidates.len()
        );
        assert_eq!(got.log[..], candidates[..n], "recovered entries differ");
    } else {
        let meta = new_base.expect("the base moved without a compaction");
        assert_eq!(got.base, meta, "base");
        assert_eq!(Some(got.snapshot.clone()), new_snapshot, "snapshot");
        let keeps = meta.index <= m.last_index() && m.term(meta.index) == Some(meta.term);
        if keeps {
            // The header moved only after the sync: everything appended is there.
            let want = &m.log[(meta.index - m.base.index) as usize..];
            assert_eq!(got.log[..], want[..], "entries after a compaction");
        } else {
            assert!(
                got.log.is_empty(),
                "a discarded log left {} entries",
                got.log.len()
            );
        }
    }
}

fn run(seed: u64, ops: usize, trace: &mut VecDeque<String>) -> (usize, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = common::fast_tempdir();
    let opts = Options {
        segment_size: 8192,
        prepare: if rng.gen_bool(0.7) {
            wal::SegmentPrepare::default()
        } else {
            wal::SegmentPrepare::Grow
        },
        write_buffer: [512usize, 4096, 4 << 20][rng.gen_range(0..3)],
        ..Options::default()
    };
    let vfs = FailingVfs::default();
    let mut w = Wal::open_with(vfs.clone(), dir.path(), opts.clone()).unwrap();
    let mut m = Model::default();
    let mut failures = 0;
    let note = |trace: &mut VecDeque<String>, s: String| {
        if trace.len() >= 300 {
            trace.pop_front();
        }
        trace.push_back(s);
    };
    for step in 0..ops {
        let last = m.last_index();
        let op = match rng.gen_range(0..100) {
            0..=44 => {
                let n = rng.gen_range(1..8);
                let term = m.last_term().max(1) + u64::from(rng.gen_bool(0.05));
                Op::Append(
                    (last + 1..=last + n)
                        .map(|i| common::ent(i, term, rng.gen_range(0..1500)))
                        .collect(),
                )
            }
            45..=64 => Op::Sync,
            65..=74 if last > m.base.index => Op::Truncate(rng.gen_range(m.base.index + 1..=last)),
            75..=79 => {
                let index = rng.gen_range(m.base.index..=last);
                Op::Compact(SnapshotMeta {
                    index,
                    term: m.term(index).unwrap(),
                })
            }
            80..=87 => {
                let meta = if rng.gen_bool(0.5) {
                    let index = rng.gen_range(m.base.index..=last);
                    SnapshotMeta {
                        index,
                        term: m.term(index).unwrap(),
                    }
                } else {
                    SnapshotMeta {
                        index: last + rng.gen_range(1..20),
                        term: m.last_term() + 1,
                    }
                };
                Op::Snapshot(meta, common::payload(meta.index, 7, rng.gen_range(0..2000)))
            }
            _ => Op::Hard(HardState {
                term: m.hard.term + rng.gen_range(0..2),
                vote: Some(rng.gen_range(1..4)).filter(|_| m.hard.vote.is_none()),
            }),
        };
        let op = match op {
            Op::Hard(hs) if hs.term == m.hard.term && m.hard.vote.is_some() => {
                Op::Hard(HardState {
                    term: hs.term + 1,
                    vote: None,
                })
            }
            op => op,
        };
        let armed = rng.gen_bool(0.12);
        if armed {
            if rng.gen_bool(0.7) {
                vfs.fail_sync_after(rng.gen_range(0..3));
            } else {
                vfs.fail_write_after(rng.gen_range(0..2));
            }
        }
        note(
            trace,
            format!("{step}: {op:?} (armed {armed})")
                .chars()
                .take(200)
                .collect(),
        );
        let r = match &op {
            Op::Append(b) => w.append(b),
            Op::Sync => w.sync(),
            Op::Truncate(from) => w.truncate_suffix(*from),
            Op::Compact(meta) => w.compact(meta.index),
            Op::Snapshot(meta, data) => w.save_snapshot(*meta, data),
            Op::Hard(hs) => w.set_hard_state(*hs),
        };
        vfs.disarm();
        match r {
            Ok(()) => match &op {
                Op::Append(b) => m.log.extend(b.iter().cloned()),
                Op::Sync => m.synced = m.last_index(),
                Op::Truncate(from) => {
                    m.log.truncate((from - m.base.index - 1) as usize);
                    m.synced = m.last_index();
                }
                Op::Compact(meta) => {
                    m.move_base(*meta);
                    m.snapshot = None;
                }
                Op::Snapshot(meta, data) => {
                    m.move_base(*meta);
                    m.snapshot = Some((*meta, data.clone()));
                }
                Op::Hard(hs) => m.hard = *hs,
            },
            Err(e) => {
                failures += 1;
                assert!(armed, "unexpected error: {e}");
                assert!(matches!(e, Error::Io { .. }), "{e}");
                assert!(w.is_poisoned());
                assert!(matches!(w.sync(), Err(Error::Poisoned { .. })));
                assert!(matches!(
                    w.append(&[common::ent(w.last_index() + 1, w.last_term(), 1)]),
                    Err(Error::Poisoned { .. })
                ));
                drop(w);
                w = Wal::open_with(vfs.clone(), dir.path(), opts.clone()).unwrap();
                let got = observe(&w);
                note(
                    trace,
                    format!("{step}: failed ({e}); recovered last {}", got.last_index()),
                );
                judge(&m, &op, &got);
                m = got;
            }
        }
        if rng.gen_bool(0.05) {
            note(trace, format!("{step}: sync, reopen"));
            w.sync().unwrap();
            m.synced = m.last_index();
            drop(w);
            w = Wal::open_with(vfs.clone(), dir.path(), opts.clone()).unwrap();
            assert_eq!(observe(&w), m, "after a clean reopen");
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
                    "reproduce: WAL_MODEL_SEED={seed} WAL_MODEL_OPS={ops} cargo test -p wal \
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
