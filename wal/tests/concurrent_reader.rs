//! `WalReader`: a cloneable reader on other threads that sees what the `Wal` sees and never
//! waits behind a sync.
//!
//! - `WAL_READER_SEED=<s>` runs the concurrent test with seed `s` (it prints the seed it
//!   ran).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use raftwal::{Entry, Error, HardState, SnapshotMeta, Wal, WalReader};
use raftwal_fault::sync_gate::hold_each_sync;
use raftwal_fault::SimFs;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::sim::{dir, opts};
use common::{ent, ents};

fn sim_wal(segment_size: u64) -> (SimFs, Wal<SimFs>) {
    let fs = SimFs::new(7);
    fs.mkdir_durable(dir());
    let wal = Wal::open_with(fs.clone(), dir(), opts(segment_size)).unwrap();
    (fs, wal)
}

/// The reader answers every read as the `Wal` does.
fn assert_same<V: raftwal::io::Vfs>(w: &Wal<V>, r: &WalReader<V>) {
    let (first, last) = (w.first_index(), w.last_index());
    assert_eq!(r.first_index().unwrap(), first);
    assert_eq!(r.last_index().unwrap(), last);
    assert_eq!(r.snapshot_meta().unwrap(), w.snapshot_meta());
    assert_eq!(
        r.entries(first, last + 1).unwrap(),
        w.entries(first, last + 1).unwrap()
    );
    for i in [first.saturating_sub(1), first, last] {
        assert_eq!(r.term(i).ok(), w.term(i).ok(), "term of {i}");
    }
    assert!(matches!(r.entry(last + 1), Err(Error::Unavailable { .. })));
    if first > 1 {
        assert!(matches!(r.entry(first - 1), Err(Error::Compacted { .. })));
    }
}

#[test]
fn the_reader_sees_appended_entries_synced_or_not_across_every_change() {
    let (_fs, mut w) = sim_wal(8192);
    let r = w.reader();
    assert_same(&w, &r);
    w.append(&ents(1, 40, 1)).unwrap();
    assert_same(&w, &r.clone()); // buffered only
    w.sync().unwrap();
    w.append(&ents(41, 300, 2)).unwrap(); // rotations
    assert_same(&w, &r);
    let p = w.begin_sync().unwrap();
    w.append(&ents(301, 320, 2)).unwrap(); // buffered while the sync is in flight
    assert_same(&w, &r);
    let res = p.wait();
    w.end_sync(p, res).unwrap();
    w.truncate_suffix(250).unwrap();
    assert_same(&w, &r);
    w.append(&ents(250, 260, 3)).unwrap();
    w.compact(100).unwrap();
    assert_same(&w, &r);
    w.compact_to(SnapshotMeta {
        index: 400,
        term: 4,
    })
    .unwrap();
    assert_same(&w, &r);
    w.append(&ents(401, 410, 4)).unwrap();
    assert_same(&w, &r);
    assert_eq!(r.entries_bounded(401, 411, 1).unwrap().len(), 1);
}

#[test]
fn a_reader_of_a_lazy_open_verifies_the_segments_it_reads_first() {
    let (fs, mut w) = sim_wal(8192);
    w.append_sync(&ents(1, 400, 1)).unwrap();
    drop(w);
    let w = Wal::open_with(fs, dir(), opts(8192).with_lazy_open(true)).unwrap();
    let r = w.reader();
    // The reader builds the index of the middle segments before the `Wal` touches them.
    assert_eq!(r.entries(1, 401).unwrap(), ents(1, 400, 1));
    assert_same(&w, &r);
}

#[test]
fn a_reader_of_a_dropped_wal_reads_nothing() {
    let (_fs, mut w) = sim_wal(8192);
    w.append_sync(&ents(1, 10, 1)).unwrap();
    let r = w.reader();
    drop(w);
    assert!(matches!(r.entry(1), Err(Error::Closed)));
    assert!(matches!(r.last_index(), Err(Error::Closed)));
}

/// Runs `op` on the `Wal` on another thread with each of its file syncs held until the
/// reader, on this thread, has read the whole log; panics if the reader had to wait for a
/// sync (a held sync is let go after 20 s if the reader blocks, and that is reported).
/// Returns the number of syncs held.
fn read_during_each_sync_of(
    fs: &SimFs,
    w: &mut Wal<SimFs>,
    what: &str,
    op: impl FnOnce(&mut Wal<SimFs>) + Send,
) -> usize {
    let r = w.reader();
    let seen = hold_each_sync(
        fs,
        Duration::from_secs(20),
        || op(w),
        || read_whole_log(&r, what),
    );
    assert!(!seen.timed_out, "the reader waited behind a sync of {what}");
    seen.held
}

/// Reads the log as the reader sees it, which must succeed whatever step the writer is
/// held at (the range readers see shrinks before any entry leaves a segment): each entry
/// the one appended there (its payload a function of index and term).
fn read_whole_log(r: &WalReader<SimFs>, what: &str) {
    let (first, last) = (r.first_index().unwrap(), r.last_index().unwrap());
    let es = r
        .entries(first, last + 1)
        .unwrap_or_else(|e| panic!("{what}: reading {first}..={last}: {e}"));
    assert_eq!(es.len() as u64, last + 1 - first, "{what}");
    for (k, e) in es.iter().enumerate() {
        assert_eq!(e.index, first + k as u64);
        assert_eq!(e.data, ent(e.index, e.term, e.data.len()).data, "{what}");
    }
}

#[test]
fn a_reader_never_waits_behind_a_sync() {
    let (fs, mut w) = sim_wal(8192);
    w.append_sync(&ents(1, 300, 1)).unwrap();
    let mut held = Vec::new();
    let mut each =
        |w: &mut Wal<SimFs>, what: &'static str, op: &(dyn Fn(&mut Wal<SimFs>) + Sync)| {
            let n = read_during_each_sync_of(&fs, w, what, |w| op(w));
            held.push((what, n));
        };
    each(&mut w, "set_hard_state", &|w| {
        w.set_hard_state(HardState {
            term: 2,
            vote: Some(1),
        })
        .unwrap()
    });
    each(&mut w, "set_app_meta", &|w| w.set_app_meta(b"c=7").unwrap());
    each(&mut w, "sync", &|w| {
        w.append(&ents(301, 320, 2)).unwrap();
        w.sync().unwrap()
    });
    each(&mut w, "truncate_suffix", &|w| {
        w.append(&ents(321, 330, 2)).unwrap();
        w.truncate_suffix(200).unwrap()
    });
    each(&mut w, "compact", &|w| w.compact(50).unwrap());
    each(&mut w, "compact_to past the end", &|w| {
        w.compact_to(SnapshotMeta {
            index: 500,
            term: 3,
        })
        .unwrap()
    });
    each(&mut w, "save_snapshot", &|w| {
        w.append_sync(&ents(501, 700, 3)).unwrap(); // rotations: segments created durably
        w.save_snapshot(
            SnapshotMeta {
                index: 600,
                term: 3,
            },
            b"state",
        )
        .unwrap()
    });
    println!("syncs held: {held:?}");
    // Every operation syncs at least once (a truncation: the buffered appends, the
    // header's two slots, removed segments' directory entries, the cut segment).
    assert!(held.iter().all(|&(_, n)| n >= 1), "{held:?}");
    let truncation = held.iter().find(|h| h.0 == "truncate_suffix").unwrap().1;
    assert!(truncation >= 4, "{held:?}");
}

/// One writer appends, syncs, truncates and compacts at random while readers read random
/// ranges: every entry read is one the writer appended at that index (its payload is a
/// function of index and term, and its term is one the writer used there), and the only
/// errors are an index that left the range.
#[test]
fn readers_on_other_threads_read_only_what_was_appended() {
    let seed = std::env::var("WAL_READER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_4ead);
    println!("seed {seed} (rerun with WAL_READER_SEED={seed})");
    let (_fs, mut w) = sim_wal(16384);
    let r = w.reader();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (r, stop) = (r.clone(), &stop);
            s.spawn(move || read_at_random(&r, stop, seed ^ t));
        }
        write_at_random(&mut w, seed);
        stop.store(true, Ordering::SeqCst);
    });
    assert_same(&w, &r);
}

fn write_at_random(w: &mut Wal<SimFs>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut term = 1;
    for _ in 0..3000 {
        let last = w.last_index();
        match rng.gen_range(0..100) {
            0..=69 => {
                let n = rng.gen_range(1..8);
                let batch: Vec<Entry> = (last + 1..=last + n)
                    .map(|i| ent(i, term, rng.gen_range(0..300)))
                    .collect();
                w.append(&batch).unwrap();
            }
            70..=89 => w.sync().unwrap(),
            90..=94 if last > w.first_index() + 5 => {
                term += 1;
                w.truncate_suffix(last - rng.gen_range(0..5)).unwrap();
            }
            95..=99 if last > w.first_index() + 20 => {
                w.compact(w.first_index() + rng.gen_range(0..10)).unwrap()
            }
            _ => {}
        }
    }
}

fn read_at_random(r: &WalReader<SimFs>, stop: &AtomicBool, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut reads = 0u64;
    while !stop.load(Ordering::SeqCst) || reads < 100 {
        let (Ok(first), Ok(last)) = (r.first_index(), r.last_index()) else {
            panic!("the reader was closed while its Wal lives");
        };
        if last < first {
            continue;
        }
        let lo = rng.gen_range(first..=last);
        let hi = (lo + rng.gen_range(1..20)).min(last + 1);
        match r.entries(lo, hi) {
            Ok(es) => {
                for (k, e) in es.iter().enumerate() {
                    assert_eq!(e.index, lo + k as u64);
                    assert_eq!(
                        e.data,
                        ent(e.index, e.term, e.data.len()).data,
                        "seed {seed}"
                    );
                }
            }
            Err(Error::Compacted { .. } | Error::Unavailable { .. }) => {}
            Err(e) => panic!("seed {seed}: read {lo}..{hi}: {e}"),
        }
        reads += 1;
    }
}
