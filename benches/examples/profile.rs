//! A small driver to run one raftwal code path under a profiler (valgrind's callgrind, or
//! `perf record`), without criterion's machinery around it:
//!
//! ```text
//! cargo build --release -p raftwal-benches --example profile
//! valgrind --tool=callgrind target/release/examples/profile append 64 64 2000
//! valgrind --tool=callgrind target/release/examples/profile recovery 1024 128
//! ```
//!
//! - `append SIZE BATCH BATCHES`: append BATCHES batches of BATCH entries of SIZE bytes,
//!   `sync` after each (the CLI's workload).
//! - `buffer SIZE BATCH BATCHES`: the same, syncing only every 64 batches (the CPU cost of
//!   `append`).
//! - `recovery SIZE MIB`: build a MIB-MiB log of SIZE-byte entries, then time `Wal::open`
//!   (the part worth profiling; run with `--toggle-collect` on `open_raftwal` to skip the
//!   build).

use std::time::Instant;

use raftwal_benches::fixtures::tempdir;
use raftwal_benches::recovery::{build_raftwal, open_raftwal};
use raftwal_benches::workload::{renumber, wal_batch, Cell};
use wal::{Options, Wal};

fn arg(args: &[String], i: usize, default: u64) -> u64 {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map(String::as_str).unwrap_or("append");
    let dir = tempdir();
    match what {
        "append" | "buffer" => {
            let (size, batch, batches) = (
                arg(&args, 2, 64) as usize,
                arg(&args, 3, 64) as usize,
                arg(&args, 4, 2000),
            );
            let mut wal = Wal::open(dir.path(), Options::default())?;
            let mut entries = wal_batch(&Cell::single(size, batch), 1);
            let t = Instant::now();
            let mut in_append = std::time::Duration::ZERO;
            let mut in_sync = std::time::Duration::ZERO;
            for i in 0..batches {
                renumber(&mut entries, wal.last_index() + 1);
                let a = Instant::now();
                wal.append(&entries)?;
                in_append += a.elapsed();
                if what == "append" || i % 64 == 63 {
                    let a = Instant::now();
                    wal.sync()?;
                    in_sync += a.elapsed();
                }
            }
            wal.sync()?;
            let s = wal.stats();
            println!(
                "{what}: {batches} batches of {batch} x {size} B in {:?} ({:?} per append call, {:?} per sync call); \
                 {} writes, {} file syncs",
                t.elapsed(),
                in_append / batches.max(1) as u32,
                in_sync / batches.max(1) as u32,
                s.writes,
                s.file_syncs
            );
        }
        "recovery" => {
            let (size, mib) = (arg(&args, 2, 1024) as usize, arg(&args, 3, 128));
            let opts = Options::default();
            build_raftwal(dir.path(), &opts, mib << 20, size)?;
            let (took, report) = open_raftwal(dir.path(), &opts)?;
            println!(
                "recovery of {mib} MiB ({} entries, {} bytes scanned) in {took:?}",
                report.entries, report.bytes_scanned
            );
        }
        other => return Err(format!("unknown workload {other:?}").into()),
    }
    Ok(())
}
