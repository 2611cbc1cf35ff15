//! WAL bug found by `raftwal torture` (seed 122, cycle 32, the crash-during-recovery probe;
//! wal at f16fc8b): recovery removed two segments — `279.wal` (past a torn tail: its entries
//! follow a gap left by lost unsynced writes in `260.wal`) and `260.wal` (entirely at or
//! below the snapshot base 270) — and made both removals durable with a single directory
//! fsync at the end. Directory operations not yet synced may reach the disk in any order
//! (docs/FAULT-MODEL.md: "undone independently"), so a power cut during recovery could persist the
//! removal of `260.wal` but not that of `279.wal`; the next open then found only `279.wal`
//! after base 270 and refused to start ("the log starts at index 279 but the snapshot base
//! is 270: entries are missing"): a crash during recovery did not converge.
//!
//! The deterministic scenario below builds that state (a segment wholly below the base
//! after its unsynced tail is lost, and a newer segment past the gap) and crashes recovery
//! at every I/O call in every way; the seed test replays the original run.

use std::path::Path;

use raftwal::{Entry, Options, Wal};
use raftwal_fault::explore::enumerate_plans;
use raftwal_fault::{CrashMode, SimFs};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![index as u8; 400],
    }
}

fn state(w: &Wal<SimFs>) -> (u64, u64, Vec<Entry>) {
    let (first, last) = (w.first_index(), w.last_index());
    (first, last, w.entries(first, last + 1).unwrap())
}

#[test]
fn crash_during_recovery_that_removes_two_segments_converges() {
    let dir = Path::new("/wal");
    let opts = Options::default()
        .with_segment_size(8192)
        .with_write_buffer(256);
    let fs = SimFs::new(122);
    fs.mkdir_durable(dir);
    let mut w = Wal::open_with(fs.clone(), dir, opts.clone()).unwrap();
    w.append(&(1..=4).map(entry).collect::<Vec<_>>()).unwrap();
    w.sync().unwrap();
    w.compact(4).unwrap();
    // Unsynced: the rest of the first segment and a rotation into a second one.
    for i in 5..=16 {
        w.append(&[entry(i)]).unwrap();
    }
    drop(w);
    // Lose every unsynced data write, keep the directory operations (the new segment's
    // creation was made durable by the rotation itself).
    let pending = fs.pending();
    let mut plan = pending.plan_from_mask(0);
    plan.dir_keep = vec![true; pending.dir_ops.len()];
    fs.crash_with(CrashMode::Plan(plan), 0);

    let clean = {
        let w = Wal::open_with(fs.fork(), dir, opts.clone()).unwrap();
        state(&w)
    };
    let rec = fs.fork();
    rec.start_recording();
    drop(Wal::open_with(rec.clone(), dir, opts.clone()).unwrap());
    let checkpoints = rec.take_recording();
    let mut rng = StdRng::seed_from_u64(0);
    let mut tried = 0;
    for cp in &checkpoints[1..] {
        for plan in enumerate_plans(&cp.to_fs().pending(), 64, &mut rng) {
            let crashed = cp.to_fs();
            let report = crashed.crash_with(CrashMode::Plan(plan), 1);
            tried += 1;
            let w = Wal::open_with(crashed, dir, opts.clone()).unwrap_or_else(|e| {
                panic!(
                    "crash during recovery at `{}` ({report}): open failed: {e}",
                    cp.what
                )
            });
            assert_eq!(state(&w), clean, "at `{}` ({report})", cp.what);
        }
    }
    println!(
        "{} recovery I/O calls, {tried} crash plans",
        checkpoints.len() - 1
    );
}

#[test]
fn torture_seed_122_cycle_32_crash_during_recovery() {
    if let Err(v) = raftwal_fault::torture::run(122, 32) {
        panic!("{v}");
    }
}
