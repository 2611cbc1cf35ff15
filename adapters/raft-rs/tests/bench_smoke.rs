//! The benchmark workload runs (the `bench` example's numbers are not checked here, only
//! that every cell commits proposals and counts its syncs): a fraction of a second per
//! cell, one node and three, every store built in.

use std::time::Duration;

use raftwal_raft_rs::bench::{run, BenchConfig};

#[test]
fn every_cell_commits_proposals() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = BenchConfig {
        seconds: 0.2,
        warmup: Duration::from_millis(50),
        rounds: 1,
        entry_sizes: vec![64],
        in_flight: 4,
        ..BenchConfig::default()
    };
    let report = run(dir.path(), &cfg).unwrap();
    assert!(report.disk_limit > 0.0);
    assert_eq!(report.cells.len(), 2 * cfg.stores.len());
    for c in &report.cells {
        assert!(c.proposals > 0, "{c:?}");
        assert!(c.syncs_per_proposal > 0.0, "{c:?}");
        assert!(c.p50_ms <= c.p99_ms, "{c:?}");
    }
}
