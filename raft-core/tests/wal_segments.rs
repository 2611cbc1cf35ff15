//! The simulator's WAL uses 8 KiB segments so the scenarios exercise segment rotation and
//! whole-segment deletion after snapshots under power cuts; this checks that they happen.

use raft_core::sim::{cmd, StoreKind, Tester};

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
