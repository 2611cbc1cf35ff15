//! The in-process raft-rs group of `raftwal_raft_rs::cluster` (the `five_node` example),
//! briefly: five nodes on their own WAL directories, the leader dropped without a clean
//! shutdown and restarted from disk, every node's applied log identical. Blocking and
//! asynchronous persistence. `CLUSTER_SEED=<u64>` replaces the default seed.

use raftwal_raft_rs::cluster::{run, ClusterConfig};

fn seed() -> u64 {
    std::env::var("CLUSTER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
}

fn check(async_persist: bool) {
    let seed = seed();
    println!("CLUSTER_SEED={seed} async_persist={async_persist}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClusterConfig {
        proposals: 60,
        seed,
        async_persist,
        ..ClusterConfig::default()
    };
    let report = run(dir.path(), &cfg).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let (id, last) = report
        .restarted
        .expect("the leader was dropped and restarted");
    println!(
        "node {id} restarted at last index {last}; {} rounds, {} fdatasyncs",
        report.rounds, report.file_syncs
    );
    assert_eq!(report.applied.len(), 5);
    assert!(report.applied.values().all(|log| log.len() >= 60));
}

#[test]
fn five_nodes_a_leader_dropped_and_restarted_blocking_persistence() {
    check(false);
}

#[test]
fn five_nodes_a_leader_dropped_and_restarted_async_persistence() {
    check(true);
}
