//! Model-based test: seeded random sequences of appends, syncs, truncations, compactions,
//! snapshots, hard-state changes and reopens (clean, and dropped without a sync) against a
//! plain in-memory model, on real temporary directories with 8 KiB segments.
//!
//! - `WAL_MODEL_SEEDS=<n>` runs `n` sequences (seeds `0..n`) instead of the default.
//! - `WAL_MODEL_SEED=<s>` runs just seed `s` (what a failure prints), with its op trace.
//! - `WAL_MODEL_OPS=<n>` sets the operations per sequence.
//! - `WAL_TEST_TMPDIR=<dir>` puts the directories there instead of `/dev/shm` (tmpfs, used
//!   when present so that thousands of sequences fit in the CI budget).

mod common;

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wal::{Entry, Error, HardState, Options, SnapshotMeta, Wal};

const DEFAULT_SEEDS: u64 = 3000;
const DEFAULT_OPS: usize = 60;

/// What the WAL must hold.
#[derive(Debug, Clone, Default)]
struct Model {
    base: SnapshotMeta,
    /// Entries `base.index + 1 ..`.
    log: Vec<Entry>,
    /// Last index known durable (synced, or made durable by a truncation/compaction).
    synced: u64,
    /// Ends of the batches appended since the last sync.
    unsynced_ends: Vec<u64>,
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
    fn truncate(&mut self, from: u64) {
        self.log.truncate((from - self.base.index - 1) as usize);
        self.synced = self.synced.min(self.last_index());
        self.unsynced_ends.clear();
        self.synced = self.last_index();
    }
    fn move_base(&mut self, meta: SnapshotMeta) {
        let keep = self.term(meta.index) == Some(meta.term) && meta.index <= self.last_index();
        if keep {
            self.log.drain(..(meta.index - self.base.index) as usize);
        } else {
            self.log.clear();
        }
        self.base = meta;
        self.unsynced_ends.clear();
        self.synced = self.last_index();
    }
}

/// Compares every observable piece of state.
fn check(w: &Wal, m: &Model) {
    assert_eq!(w.snapshot_meta(), m.base, "snapshot meta");
    assert_eq!(w.first_index(), m.base.index + 1, "first index");
    assert_eq!(w.last_index(), m.last_index(), "last index");
    assert_eq!(w.last_term(), m.last_term(), "last term");
    assert_eq!(w.hard_state(), m.hard, "hard state");
    let got = w.entries(m.base.index + 1, m.last_index() + 1).unwrap();
    assert_eq!(got.len(), m.log.len(), "entry count");
    for (g, e) in got.iter().zip(&m.log) {
        assert_eq!(g, e, "entry {}", e.index);
    }
    for e in &m.log {
        assert_eq!(w.term(e.index).unwrap(), e.term, "term of {}", e.index);
    }
    assert_eq!(w.term(m.base.index).unwrap(), m.base.term, "term at base");
    assert_eq!(w.snapshot().unwrap(), m.snapshot, "snapshot");
    if m.base.index > 0 {
        assert!(matches!(
            w.entry(m.base.index),
            Err(Error::Compacted { .. })
        ));
    }
    assert!(matches!(
        w.entry(m.last_index() + 1),
        Err(Error::Unavailable { .. })
    ));
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
    let opts = Options {
        segment_size: 8192,
        prepare: if rng.gen_bool(0.7) {
            wal::SegmentPrepare::default()
        } else {
            wal::SegmentPrepare::Grow
        },
        write_buffer: [512usize, 4096, 4 << 20][rng.gen_range(0..3)],
        // Odd seeds open lazily (sealed middle segments verified on first read).
        lazy_open: seed % 2 == 1,
        ..Options::default()
    };
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
        let op = rng.gen_range(0..100);
        match op {
            0..=39 => {
                let n = if rng.gen_bool(0.1) {
                    rng.gen_range(8..30)
                } else {
                    rng.gen_range(1..6)
                };
                let mut term = m.last_term().max(1);
                let lo = m.last_index() + 1;
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
                note(
                    trace,
                    format!("{step}: append {lo}..={} term {term}", lo + n - 1),
                );
                wal.append(&batch).unwrap();
                m.log.extend(batch);
                m.unsynced_ends.push(m.last_index());
            }
            40..=54 => {
                note(trace, format!("{step}: sync"));
                wal.sync().unwrap();
                m.synced = m.last_index();
                m.unsynced_ends.clear();
            }
            55..=62 => {
                let from = rng.gen_range(m.base.index.saturating_sub(1)..=m.last_index() + 2);
                note(trace, format!("{step}: truncate_suffix({from})"));
                let r = wal.truncate_suffix(from);
                if from <= m.base.index {
                    assert!(matches!(r, Err(Error::InvalidArgument { .. })), "{r:?}");
                } else {
                    r.unwrap();
                    if from <= m.last_index() {
                        m.truncate(from);
                    } else {
                        // A no-op: nothing synced.
                    }
                }
            }
            63..=66 => {
                let index = rng.gen_range(m.base.index..=m.last_index());
                note(trace, format!("{step}: compact({index})"));
                wal.compact(index).unwrap();
                let term = m.term(index).unwrap();
                // `compact` syncs what was appended before it.
                m.synced = m.last_index();
                m.unsynced_ends.clear();
                m.move_base(SnapshotMeta { index, term });
                m.snapshot = None;
            }
            67..=72 => {
                let last = m.last_index();
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
                        term: m.last_term() + rng.gen_range(0..2),
                    },
                };
                let data = common::payload(meta.index, meta.term, rng.gen_range(0..3000));
                note(
                    trace,
                    format!("{step}: save_snapshot({meta:?}, {} bytes)", data.len()),
                );
                wal.save_snapshot(meta, &data).unwrap();
                m.synced = m.last_index();
                m.move_base(meta);
                m.snapshot = Some((meta, data));
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
                let r = wal.set_hard_state(hs);
                if valid {
                    r.unwrap();
                    m.hard = hs;
                    let expect = u64::from(hs != cur);
                    assert_eq!(wal.stats().file_syncs - syncs, expect, "header fsyncs");
                } else {
                    assert!(matches!(r, Err(Error::InvalidHardState { .. })), "{r:?}");
                }
            }
            81..=86 => {
                note(trace, format!("{step}: sync, drop, reopen"));
                wal.sync().unwrap();
                drop(w.take());
                let re = Wal::open(dir.path(), opts.clone()).unwrap();
                m.synced = m.last_index();
                m.unsynced_ends.clear();
                check(&re, &m);
                w = Some(re);
            }
            87..=92 => {
                note(trace, format!("{step}: drop without sync, reopen"));
                drop(w.take());
                let re = Wal::open(dir.path(), opts.clone()).unwrap();
                let last = re.last_index();
                assert!(
                    last == m.synced || m.unsynced_ends.contains(&last),
                    "recovered last index {last}: synced {}, unsynced batch ends {:?}",
                    m.synced,
                    m.unsynced_ends
                );
                m.log.truncate((last - m.base.index) as usize);
                m.synced = last;
                m.unsynced_ends.clear();
                note(trace, format!("{step}: recovered last index {last}"));
                check(&re, &m);
                w = Some(re);
            }
            _ => {
                // Random reads against the model.
                if m.last_index() > m.base.index {
                    let i = rng.gen_range(m.base.index + 1..=m.last_index());
                    let e = &m.log[(i - m.base.index - 1) as usize];
                    assert_eq!(&wal.entry(i).unwrap(), e, "read {i}");
                }
                if m.base.index > 0 {
                    let i = rng.gen_range(0..=m.base.index.min(5) - 1);
                    assert!(matches!(wal.entry(i), Err(Error::Compacted { .. })));
                }
            }
        }
    }
    // Final clean reopen.
    let wal = w.as_mut().unwrap();
    wal.sync().unwrap();
    drop(w.take());
    let re = Wal::open(dir.path(), opts).unwrap();
    check(&re, &m);
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
                eprintln!("reproduce: WAL_MODEL_SEED={seed} WAL_MODEL_OPS={ops} cargo test -p wal --release --test model");
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
