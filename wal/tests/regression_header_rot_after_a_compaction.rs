//! WAL bug found by a torture sweep (seeds 185 and 987 with `--crash-after-io-error`, wal at
//! 66d304e): bit rot in the newest HEADER slot after a compaction lost every acknowledged
//! entry, silently.
//!
//! A compaction (or snapshot) that emptied the log deleted all its segments. The only record
//! of that compaction was the newest header slot. When bit rot took that slot, open fell
//! back to the older slot, whose base lay below the deleted entries, found no segment and
//! returned an empty log above the older base: entries 1..=N, acknowledged, were gone, and
//! nothing reported damage. (A Raft node opening that state would grant votes to candidates
//! whose logs lack committed entries.)
//!
//! The fix, in two parts: compaction keeps the last segment while the log continues from it,
//! and a snapshot that leaves the log empty (past its end, or conflicting with it) first
//! creates the segment the log continues in, so a segment always tells open how far the log
//! went; and open refuses to fall back to the older slot when the log does not fit that
//! slot (it starts above the older base, or ends short of its fence).
//!
//! Since then, compactions and snapshots also write their state into both header slots
//! (see `regression_header_rot_after_a_truncation_inside_a_batch.rs`), so one slot's rot
//! alone no longer reaches the older state; the segment kept covers a crash between the two
//! slot writes followed by rot of the first. These tests fail with both changes reverted.
//!
//! The tests below build each such compaction, cut the power, flip bits of the newest slot
//! and require open to return the acknowledged state seen through either slot, or refuse
//! with a corruption error: never a log missing acknowledged entries.

mod common;

use common::sim::{dir, newest_slot};
use raftwal::{Entry, Options, SnapshotMeta, Wal};
use raftwal_fault::{CrashMode, SimFs};

fn opts() -> Options {
    common::sim::opts(8192)
}

fn entry(index: u64) -> Entry {
    common::sim::entry(index, 1, 300)
}

/// How the log's whole content is compacted away.
#[derive(Clone, Copy, Debug)]
enum Compaction {
    /// `compact(last_index)`.
    ToTheEnd,
    /// A snapshot at the last index, same term.
    SnapshotAtTheEnd,
    /// A snapshot past the last index (a leader's snapshot installed on a lagging follower).
    SnapshotPastTheEnd,
    /// A snapshot at the last index whose term conflicts with the log's.
    ConflictingSnapshot,
}

/// A crashed machine whose acknowledged state is entries `1..=last` wholly compacted.
fn compacted(how: Compaction, last: u64) -> SimFs {
    let fs = SimFs::new(185);
    fs.mkdir_durable(dir());
    let mut w = Wal::open_with(fs.clone(), dir(), opts()).unwrap();
    for i in 1..=last {
        w.append_sync(&[entry(i)]).unwrap();
    }
    match how {
        Compaction::ToTheEnd => w.compact(last).unwrap(),
        Compaction::SnapshotAtTheEnd => w
            .save_snapshot(
                SnapshotMeta {
                    index: last,
                    term: 1,
                },
                b"at the end",
            )
            .unwrap(),
        Compaction::SnapshotPastTheEnd => w
            .save_snapshot(
                SnapshotMeta {
                    index: last + 5,
                    term: 3,
                },
                b"past the end",
            )
            .unwrap(),
        Compaction::ConflictingSnapshot => w
            .save_snapshot(
                SnapshotMeta {
                    index: last,
                    term: 2,
                },
                b"conflicting",
            )
            .unwrap(),
    }
    drop(w);
    fs.crash_with(CrashMode::LoseAll, 0);
    fs
}

/// Flips bit `bit` of byte `offset` of the newest slot on a fork of `fs`, opens it, and checks
/// what came back against the acknowledged `last` (every entry up to it compacted by `how`).
fn open_after_rot(fs: &SimFs, how: Compaction, last: u64, offset: u64, bit: u8) -> &'static str {
    let fork = fs.fork();
    let at = newest_slot(&fork) + offset;
    fork.flip_bit(&dir().join("HEADER"), at, bit).unwrap();
    let w = match Wal::open_with(fork, dir(), opts()) {
        Ok(w) => w,
        Err(e) if e.is_corruption() => return "refused",
        Err(e) => panic!("{how:?}, HEADER byte {at} bit {bit}: open failed with {e}"),
    };
    let base = w.snapshot_meta().index;
    let ctx = format!(
        "{how:?}, HEADER byte {at} bit {bit}: base {base}, last {}",
        w.last_index()
    );
    // Through either slot, the log reaches at least the acknowledged last index, and every
    // entry above the base it opened with is the one acknowledged.
    assert!(w.last_index() >= last, "{ctx}: acknowledged entries lost");
    for i in base + 1..=last {
        assert_eq!(w.entry(i).unwrap(), entry(i), "{ctx}: entry {i}");
    }
    if base == 0 {
        "older slot"
    } else {
        "newer slot"
    }
}

fn every_rot(how: Compaction, last: u64) {
    let fs = compacted(how, last);
    let mut seen = std::collections::BTreeMap::new();
    // The slot's fields (magic, version, sequence, term, vote, base, fence, checksum) lie in
    // its first 128 bytes: a flip in any of them damages the slot.
    for offset in 0..128 {
        let outcome = open_after_rot(&fs, how, last, offset, (offset % 8) as u8);
        *seen.entry(outcome).or_insert(0) += 1;
    }
    println!("{how:?}: {seen:?}");
}

#[test]
fn rot_of_the_newest_slot_after_compacting_one_segment_loses_nothing() {
    every_rot(Compaction::ToTheEnd, 4);
}

#[test]
fn rot_of_the_newest_slot_after_compacting_several_segments_loses_nothing() {
    // 300-byte entries: 12 frames per 4 KiB of records, so 40 entries span four segments.
    every_rot(Compaction::ToTheEnd, 40);
}

#[test]
fn rot_of_the_newest_slot_after_a_snapshot_at_the_end_loses_nothing() {
    every_rot(Compaction::SnapshotAtTheEnd, 40);
}

#[test]
fn rot_of_the_newest_slot_after_a_snapshot_past_the_end_loses_nothing() {
    every_rot(Compaction::SnapshotPastTheEnd, 40);
}

#[test]
fn rot_of_the_newest_slot_after_a_conflicting_snapshot_loses_nothing() {
    every_rot(Compaction::ConflictingSnapshot, 40);
}
