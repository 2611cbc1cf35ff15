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

use raftwal_raft_rs::bench::{run, BenchConfig};
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
    print!("{}", report.table());
    Ok(())
}
