//! WAL bug found by the 1,000-seed torture sweep with `--crash-after-io-error` (seed 132,
//! once the torture aimed truncations at the log's tail): bit rot in the header slot that a
//! truncation wrote lost acknowledged entries.
//!
//! `truncate_suffix(k)` inside a synced batch records the batch's new end (`k − 1`) in the
//! newest header slot only, then cuts the segment. Bit rot in that slot made open fall
//! back to the older slot, which knows nothing of the cut: the batch, now open at the end of
//! the log, looked like a torn write and was cut back to the previous batch's end, taking
//! acknowledged entries with it. Falling back to the older slot is the documented window for
//! term and vote; it must never cost acknowledged entries.
//!
//! Fixed: header updates that reshape the log (a truncation's fence, a new base, what open
//! kept) write the same state into both slots, one after the other, each with its own
//! fdatasync; bit rot in either slot then loses nothing. (Keeping the open batch's verified
//! records whenever the other slot is damaged was tried first: a crash during open's own
//! header write then made recovery keep more than the uninterrupted open did, and the
//! torture's convergence check failed.)
//!
//! The torture would have found it: its header-rot probe now fires half the time when the
//! newest slot is the last call's (a truncation, compaction or snapshot, done or in
//! flight), and it no longer accepts a fall-back that lost acknowledged entries (before, a
//! fall-back with no sync since the last acknowledged header update was taken as the
//! documented window whatever it lost). With the fix reverted, 6 of the 7 CI torture tests
//! fail; 228 of 1,000 seeds × 40 cycles with a crash right after an I/O error.

mod common;

use common::sim::{dir, newest_slot};
use raftwal::{Entry, HardState, Options, Wal};
use raftwal_fault::{CrashMode, SimFs};

fn opts() -> Options {
    common::sim::opts(8192)
}

fn entries(lo: u64, hi: u64) -> Vec<Entry> {
    common::sim::entries(lo, hi, 2, 200)
}

#[test]
fn rot_of_the_slot_a_truncation_wrote_keeps_the_synced_part_of_the_batch_it_cut() {
    let fs = SimFs::new(132);
    fs.mkdir_durable(dir());
    let mut w = Wal::open_with(fs.clone(), dir(), opts()).unwrap();
    let hard = HardState {
        term: 2,
        vote: Some(1),
    };
    w.set_hard_state(hard).unwrap();
    w.append_sync(&entries(1, 3)).unwrap();
    w.append_sync(&entries(4, 8)).unwrap();
    // A follower's conflicting suffix, cut inside the synced batch 4..=8.
    w.truncate_suffix(7).unwrap();
    drop(w);
    fs.crash_with(CrashMode::LoseAll, 0);
    let mut outcomes = std::collections::BTreeMap::new();
    for offset in 0..128 {
        let fork = fs.fork();
        let at = newest_slot(&fork) + offset;
        fork.flip_bit(&dir().join("HEADER"), at, (offset % 8) as u8)
            .unwrap();
        let w = match Wal::open_with(fork.clone(), dir(), opts()) {
            Ok(w) => w,
            Err(e) if e.is_corruption() => {
                *outcomes.entry("refused").or_insert(0) += 1;
                continue;
            }
            Err(e) => panic!("HEADER byte {at}: open failed with {e}"),
        };
        // Term and vote were set before both slots' updates: either slot has them.
        assert_eq!(w.hard_state(), hard, "HEADER byte {at}");
        assert_eq!(
            w.last_index(),
            6,
            "HEADER byte {at}: acknowledged entries lost"
        );
        assert_eq!(w.entries(1, 7).unwrap(), entries(1, 6), "HEADER byte {at}");
        drop(w);
        // What open kept is durable, and the log goes on from it.
        fork.crash_with(CrashMode::LoseAll, 1);
        let mut w = Wal::open_with(fork.clone(), dir(), opts()).unwrap();
        assert_eq!(w.last_index(), 6, "HEADER byte {at}, second open");
        w.append_sync(&entries(7, 7)).unwrap();
        assert_eq!(w.entries(1, 8).unwrap(), entries(1, 7));
        *outcomes.entry("kept").or_insert(0) += 1;
    }
    println!("{outcomes:?}");
    assert!(
        outcomes.get("kept").copied().unwrap_or(0) > 0,
        "{outcomes:?}"
    );
}
