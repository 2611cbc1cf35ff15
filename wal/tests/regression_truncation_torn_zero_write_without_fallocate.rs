//! WAL bug (defect 11 of the durability review): a crash in the middle of `truncate_suffix`
//! on a file system without `fallocate` (the re-allocation after the cut writes zeros) left
//! the record at the cut damaged, with stale pre-truncation records after it that verify
//! and carry a group start; open took them for proof that the damaged record was synced and
//! refused to start, although nothing acknowledged was missing. Damage in entries that a
//! durable truncation already removed is not corruption of synced data: the truncation
//! fence now voids every record past its index written in an older sync group.
//!
//! Found by the explorer on a file system without fallocate, with a truncation across a
//! sync-group boundary and torn writes kept alone with old bytes around them
//! (`crash_states_without_fallocate_recover`, seed 1).

mod common;

use common::sim::dir;
use raftwal::{Entry, Options, Wal};
use raftwal_fault::{CrashMode, CrashPlan, FileCrash, SimFs, TornFill, TornWrite};

fn opts() -> Options {
    common::sim::opts(16 << 10)
}

fn entries(lo: u64, hi: u64) -> Vec<Entry> {
    (lo..=hi)
        .map(|index| Entry {
            index,
            term: 1,
            data: vec![index as u8; 300],
        })
        .collect()
}

#[test]
fn a_torn_zero_write_after_a_durable_truncation_opens_to_the_kept_log() {
    for sectors_kept in 0..3 {
        let fs = SimFs::new(8);
        fs.mkdir_durable(dir());
        fs.set_fallocate(false);
        let mut w = Wal::open_with(fs.clone(), dir(), opts()).unwrap();
        // Two sync groups; the truncation removes the end of the first and all of the
        // second (whose first record carries a group start).
        w.append_sync(&entries(1, 10)).unwrap();
        w.append_sync(&entries(11, 20)).unwrap();
        fs.start_recording();
        w.truncate_suffix(6).unwrap();
        let cps = fs.take_recording();
        drop(w);
        // The crash point: the re-allocation's zero write issued, not yet synced.
        let at = cps
            .iter()
            .rposition(|c| c.what.starts_with("write") && c.what.contains(".wal"))
            .expect("the zero write of the re-allocation");
        let crashed = cps[at].to_fs();
        let pending = crashed.pending();
        let seg = pending
            .files
            .iter()
            .find(|f| {
                f.path
                    .as_ref()
                    .is_some_and(|p| p.extension().is_some_and(|x| x == "wal"))
            })
            .expect("the segment has pending operations");
        let n = seg.op_sectors.len();
        let zero_write = n - 1;
        // Only the zero write reaches the disk (the length change does not), torn after a
        // few sectors, with the old bytes — stale records 6..=20 — in the rest.
        let mut plan = CrashPlan::default();
        plan.files.insert(
            seg.ino,
            FileCrash {
                keep: (0..n).map(|i| i == zero_write).collect(),
                torn: Some(TornWrite {
                    op: zero_write,
                    sectors_kept,
                    fill: TornFill::Old,
                }),
            },
        );
        crashed.crash_with(CrashMode::Plan(plan), 1);
        let w = Wal::open_with(crashed, dir(), opts())
            .unwrap_or_else(|e| panic!("{sectors_kept} sectors of zeros kept: {e}"));
        assert_eq!(w.last_index(), 5);
        assert_eq!(w.entries(1, 6).unwrap(), entries(1, 5));
    }
}
