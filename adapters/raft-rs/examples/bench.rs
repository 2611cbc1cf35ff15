//! raft-rs on raftwal against raft-rs on raft-engine (the pairing TiKV runs): proposals/s,
//! commit latency and syncs per proposal of a single node and of a 3-node in-process
//! group, in one run, interleaved round by round (see `raftwal_raft_rs::bench`).
//!
//! ```text
//! cargo run --release -p raftwal-raft-rs --example bench -- \
//!     [SECONDS] [ROUNDS] [ENTRY_SIZES, e.g. 256,4096] [IN_FLIGHT] [DIR]
//! ```
//!
//! DIR (default: a temporary directory under the current one) decides the disk measured.

use std::collections::BTreeMap;

use raftwal_raft_rs::bench::{run, BenchConfig, BenchReport};
use raftwal_raft_rs::cluster::BoxError;

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let mut cfg = BenchConfig::default();
    if let Some(a) = args.next() {
        cfg.seconds = a.parse()?;
    }
    if let Some(a) = args.next() {
        cfg.rounds = a.parse()?;
    }
    if let Some(a) = args.next() {
        cfg.entry_sizes = a.split(',').map(str::parse).collect::<Result<_, _>>()?;
    }
    if let Some(a) = args.next() {
        cfg.in_flight = a.parse()?;
    }
    let dir = match args.next() {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir_in(".")?,
    };
    println!(
        "raft-rs bench in {}: {} s per cell, {} rounds, entries {:?} B, {} in flight",
        dir.path().display(),
        cfg.seconds,
        cfg.rounds,
        cfg.entry_sizes,
        cfg.in_flight
    );
    let report = run(dir.path(), &cfg)?;
    print_table(&report);
    Ok(())
}

/// Medians over the rounds, per (nodes, entry size, store).
fn print_table(r: &BenchReport) {
    println!(
        "disk limit: {:.0} fdatasyncs/s (4 KiB pwrite + fdatasync in place)",
        r.disk_limit
    );
    println!(
        "| nodes | entry | store | proposals/s | p50 ms | p99 ms | syncs/proposal | × disk limit |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut cells: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for c in &r.cells {
        cells
            .entry((c.nodes, c.entry_size, c.store))
            .or_default()
            .push(c);
    }
    for ((nodes, size, store), cs) in cells {
        let med = |f: &dyn Fn(&&raftwal_raft_rs::bench::Cell) -> f64| {
            let mut v: Vec<f64> = cs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let rate = med(&|c| c.per_sec);
        println!(
            "| {nodes} | {size} B | {} | {rate:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            store.name(),
            med(&|c| c.p50_ms),
            med(&|c| c.p99_ms),
            med(&|c| c.syncs_per_proposal),
            rate / r.disk_limit
        );
    }
}
