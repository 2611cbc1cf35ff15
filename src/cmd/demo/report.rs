//! The summary `raftwal demo` prints, and its verdict.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::cluster::Cluster;
use super::node::Recovered;

/// Prints what the run did and what the verifier found; true if everything checked out.
pub(super) fn report(
    cluster: &Cluster,
    initial: &[Recovered],
    committed_at_stop: u64,
    run_time: Duration,
    catch_up: Result<Duration, Duration>,
) -> bool {
    let v = cluster.shared.verifier();
    let committed = v.canon.len() as u64;
    let n = cluster.len();
    let (fsyncs, appended) = (cluster.fsyncs, cluster.entries_appended);
    println!();
    println!("commands committed      {committed} ({committed_at_stop} when the clients stopped)");
    println!(
        "throughput              {:.0} commands/s over {:.1} s",
        committed_at_stop as f64 / run_time.as_secs_f64().max(1e-9),
        run_time.as_secs_f64()
    );
    println!(
        "proposals accepted      {} by a leader",
        cluster.shared.accepted.load(Ordering::Relaxed)
    );
    println!(
        "fsyncs                  {fsyncs} for {appended} entries appended on {n} nodes ({:.2} entries per fsync)",
        appended as f64 / fsyncs.max(1) as f64
    );
    println!(
        "applies verified        {} commands, {} snapshots installed",
        v.applies, v.snapshots_installed
    );
    print_recoveries(cluster, initial);
    let applied: Vec<String> = v
        .nodes
        .iter()
        .enumerate()
        .map(|(i, (a, _))| format!("node {i}: {a}"))
        .collect();
    println!("applied at the end      {}", applied.join(", "));
    let mut ok = true;
    for e in &cluster.errors {
        println!("error                   {e}");
        ok = false;
    }
    for e in &v.violations {
        println!("VIOLATION               {e}");
        ok = false;
    }
    if let (Err(waited), true) = (catch_up, cluster.errors.is_empty()) {
        println!(
            "NOT CAUGHT UP           the nodes did not all apply the same last index within {:.0} s",
            waited.as_secs_f64()
        );
        ok = false;
    }
    if ok {
        println!(
            "verification            OK: every node applied the same {committed} commands in the same order \
             (every apply checked against the others; snapshots matched the verified prefix)"
        );
    }
    ok
}

fn print_recoveries(cluster: &Cluster, initial: &[Recovered]) {
    for r in initial {
        println!(
            "initial open            node {}: {:.2} ms ({} segments, {} entries)",
            r.node,
            r.time.as_secs_f64() * 1000.0,
            r.segments,
            r.entries
        );
    }
    println!("restarts                {}", cluster.restarts.len());
    for (k, r) in cluster.restarts.iter().enumerate() {
        println!(
            "  #{:<3} node {}  down {:>6.0} ms  recovery {:>7.2} ms  ({} segments, {} entries, {} torn bytes cut)",
            k + 1,
            r.node,
            r.down.as_secs_f64() * 1000.0,
            r.recovery.time.as_secs_f64() * 1000.0,
            r.recovery.segments,
            r.recovery.entries,
            r.recovery.torn_bytes
        );
    }
}
