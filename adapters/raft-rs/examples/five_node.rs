//! A 5-node raft-rs group in one process, every node on its own raftwal directory (in a
//! temporary directory): node 1 bootstraps the group and adds the others, proposals go
//! through the leader, the leader is dropped without a clean shutdown midway and restarted
//! from its directory, and at the end every node's applied log is checked to be the same.
//!
//! ```text
//! cargo run --release -p raftwal-raft-rs --example five_node -- [PROPOSALS] [SEED] [async]
//! ```

use raftwal_raft_rs::cluster::{run, BoxError, ClusterConfig};

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let proposals = args.next().map_or(Ok(200), |a| a.parse())?;
    let seed = args.next().map_or(Ok(1), |a| a.parse())?;
    let async_persist = args.next().is_some_and(|a| a == "async");
    let dir = tempfile::tempdir()?;
    let cfg = ClusterConfig {
        proposals,
        seed,
        async_persist,
        ..ClusterConfig::default()
    };
    println!(
        "5 nodes in {}, {proposals} proposals, seed {seed}, {} persistence",
        dir.path().display(),
        if async_persist {
            "asynchronous"
        } else {
            "blocking"
        }
    );
    let started = std::time::Instant::now();
    let report = run(dir.path(), &cfg)?;
    if let Some((id, last)) = report.restarted {
        println!(
            "node {id} (the leader) dropped uncleanly, restarted from disk at last index {last}"
        );
    }
    let logs: Vec<String> = report
        .applied
        .iter()
        .map(|(id, log)| format!("node {id}: {}", log.len()))
        .collect();
    println!(
        "applied entries: {}; identical on every node",
        logs.join(", ")
    );
    println!(
        "{} rounds, {} fdatasyncs over all nodes, {:.2} s",
        report.rounds,
        report.file_syncs,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
