//! WAL bug (fixed in 102ea4e, "never rewrite synced records") found by `raftwal torture
//! --crash-after-io-error` (seed 4, cycle 190, on f16fc8b — that seed now takes another
//! path, see regression_bit_rot_before_a_truncation_point.rs) and by the
//! exhaustive exploration (seed 1, I/O call #31 of an earlier workload): `truncate_suffix`
//! rewrites bytes of an already synced record in place ("rewrite batch end", a small write
//! at an offset below the durable end of the segment). docs/FAULT-MODEL.md's torn-overwrite row says
//! an overwrite may tear (half old, half new, or filled with zeros/garbage), so a power cut
//! during that write destroys acknowledged entries: recovery either refuses to open
//! ("record length ... runs past the end of the file; the record starting sync group N ...
//! proves this data was synced") or silently drops the acknowledged entries before the
//! truncation point.
//!
//! Every write issued by `truncate_suffix` is torn here (zeros, garbage) at each I/O call,
//! and the entries before the truncation point must survive.

use std::path::Path;

use raftwal::{Entry, Options, Wal};
use raftwal_fault::{CrashMode, CrashPlan, FileCrash, SimFs, TornFill, TornWrite};

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![index as u8; 300],
    }
}

fn check_truncation_tears(write_buffer: usize, from: u64) {
    let dir = Path::new("/wal");
    let opts = Options::default()
        .with_segment_size(8192)
        .with_write_buffer(write_buffer);
    let fs = SimFs::new(4);
    fs.mkdir_durable(dir);
    let mut w = Wal::open_with(fs.clone(), dir, opts.clone()).unwrap();
    let acked: Vec<Entry> = (1..=7).map(entry).collect();
    w.append(&acked[..3]).unwrap();
    w.sync().unwrap();
    w.append(&acked[3..]).unwrap();
    w.sync().unwrap();
    fs.start_recording();
    w.truncate_suffix(from).unwrap();
    drop(w);
    let checkpoints = fs.take_recording();
    let mut tried = 0;
    for cp in &checkpoints[1..] {
        let pending = cp.to_fs().pending();
        for f in &pending.files {
            for (op, &sectors) in f.op_sectors.iter().enumerate() {
                if sectors == 0 {
                    continue;
                }
                for fill in [TornFill::Zeros, TornFill::Garbage] {
                    let mut plan = pending.plan_from_mask(u64::MAX);
                    plan.files.insert(
                        f.ino,
                        FileCrash {
                            keep: (0..f.op_sectors.len()).map(|i| i <= op).collect(),
                            torn: Some(TornWrite {
                                op,
                                sectors_kept: 0,
                                fill,
                            }),
                        },
                    );
                    let crashed = cp.to_fs();
                    let report = crashed.crash_with(CrashMode::Plan(plan as CrashPlan), 9);
                    tried += 1;
                    let w = Wal::open_with(crashed, dir, opts.clone()).unwrap_or_else(|e| {
                        panic!("after `{}` torn ({report}): open failed: {e}", cp.what)
                    });
                    let keep = (from - 1) as usize;
                    assert!(
                        w.last_index() >= from - 1,
                        "after `{}` torn ({report}): acknowledged entries lost, last index {}",
                        cp.what,
                        w.last_index()
                    );
                    assert_eq!(w.entries(1, from).unwrap(), acked[..keep].to_vec());
                }
            }
        }
    }
    println!("{tried} torn writes of truncate_suffix({from}) tried");
}

#[test]
fn torn_writes_of_truncate_suffix_inside_a_synced_batch_keep_earlier_entries() {
    check_truncation_tears(4 << 20, 6);
}

#[test]
fn torn_writes_of_truncate_suffix_inside_a_synced_batch_keep_earlier_entries_small_buffer() {
    check_truncation_tears(256, 6);
}

fn torture(seed: u64, cycles: u64, reopen_after_error: bool) {
    let mut cfg = raftwal_fault::torture::TortureConfig::with_seed(seed);
    cfg.reopen_after_error = reopen_after_error;
    let mut t = raftwal_fault::torture::Torture::new(cfg).unwrap();
    for _ in 0..cycles {
        if let Err(v) = t.cycle() {
            panic!("{v}");
        }
    }
}

/// More seeds of the same bug, each with `truncate_suffix` in flight when the acknowledged
/// entries before the cut are lost or the log refuses to open (`raftwal torture --seed S
/// --cycles C [--crash-after-io-error]`).
#[test]
fn torture_seeds_with_a_torn_truncation() {
    for (seed, cycles, reopen) in [
        (124, 18, true),
        (83, 15, true),
        (1035, 35, false),
        (1048, 13, false),
        (1068, 34, false),
    ] {
        torture(seed, cycles, reopen);
    }
}
