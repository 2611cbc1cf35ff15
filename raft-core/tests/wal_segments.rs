//! The simulator's WAL uses 8 KiB segments so the scenarios exercise segment rotation and
//! whole-segment deletion after snapshots under power cuts; this checks that they happen.

use raftwal_raft::sim::{cmd, StoreKind, Tester};

fn segments(t: &Tester, i: usize) -> usize {
    t.disk_files(i)
        .iter()
        .filter(|f| f.ends_with(".wal"))
        .count()
}

#[test]
fn long_logs_span_several_segments_and_survive_restarts() {
    let mut t = Tester::new(3, false, false, StoreKind::Wal, 11);
    for k in 0..600 {
        t.one(cmd(k), 3, true).unwrap();
    }
    let max = (0..3).map(|i| segments(&t, i)).max().unwrap_or(0);
    assert!(
        max > 2,
        "expected rotation, got {max} segments: {:?}",
        t.disk_files(0)
    );
    for i in 0..3 {
        t.start1(i);
        t.connect(i);
    }
    t.one(cmd(9999), 3, true).unwrap();
    t.end().unwrap();
}

#[test]
fn snapshots_delete_whole_segments() {
    let mut t = Tester::new(3, false, true, StoreKind::Wal, 12);
    for k in 0..600 {
        t.one(cmd(k), 3, true).unwrap();
    }
    let max = (0..3).map(|i| segments(&t, i)).max().unwrap_or(0);
    assert!(
        max <= 3,
        "snapshots every 10 entries should keep the log to a few segments, got {max}: {:?}",
        t.disk_files(0)
    );
    t.end().unwrap();
}

/// The 3D bound over the WAL: the live log (entries above the base, as on disk) stays under
/// the lab's 2000 bytes, while what the segments retain also holds the compacted entries of
/// the oldest segment — never more than one segment's worth, and that much is reached.
#[test]
fn compacted_frames_stay_within_one_segment() {
    let cap = raftwal_raft::sim::segment_record_capacity().unwrap();
    let (mut max_live, mut max_retained, mut max_dead) = (0, 0, 0);
    for seed in [12, 13] {
        let mut t = Tester::new(3, false, true, StoreKind::Wal, seed);
        for round in 0..60u64 {
            // As in the lab's snapcommon: a burst of Start()s, then one agreement, so the
            // log goes on past each snapshot index.
            let leader = t.check_one_leader().unwrap();
            let nn = 5 + t.rand_below(10);
            for j in 0..nn {
                t.start(leader, cmd(round * 100 + j));
            }
            t.one(cmd(round), 3, true).unwrap();
            if round % 10 == 9 {
                let victim = (round as usize / 10) % 3;
                t.crash1(victim);
                t.start1(victim);
                t.connect(victim);
            }
            for i in 0..3 {
                let b = t.log_bytes(i).unwrap();
                let dead = b.retained - b.live;
                assert!(b.live < 2000, "seed {seed}: live log {} B", b.live);
                assert!(dead <= cap, "seed {seed}: {dead} B compacted, cap {cap}");
                max_live = max_live.max(b.live);
                max_retained = max_retained.max(b.retained);
                max_dead = max_dead.max(dead);
            }
        }
        t.end().unwrap();
    }
    eprintln!(
        "segment capacity {cap} B; live max {max_live} B, retained max {max_retained} B, compacted max {max_dead} B"
    );
    assert!(
        max_retained > 2000,
        "the retained bytes exceed the lab's bound"
    );
    assert!(max_dead * 10 >= cap * 9, "the one-segment bound is reached");
}
