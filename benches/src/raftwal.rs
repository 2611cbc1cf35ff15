//! The workload through raftwal: [`wal::Wal`] for one writer (append a batch, `sync`), and
//! [`wal::group_commit::GroupCommit`] for several writers sharing one log.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use wal::group_commit::GroupCommit;
use wal::{Options, Wal};

use crate::latency::Latencies;
use crate::workload::{renumber, wal_batch, Budget, Cell, Sample};
use crate::Result;

/// Runs `cell` on a fresh WAL in `dir` (opened before timing starts) with `opts`.
///
/// A fresh log zero-fills its first segment at open: that write is left to drain (see
/// [`Budget::cool_down`]) before the timed part, as the other systems' setup is.
pub fn run(cell: &Cell, dir: &Path, opts: &Options, budget: &Budget) -> Result<Sample> {
    let wal = Wal::open(dir, opts.clone())?;
    budget.cool_down(wal.stats().spare_bytes_zeroed);
    if cell.writers > 1 {
        return run_concurrent(cell, wal, budget);
    }
    let mut wal = wal;
    let before = wal.stats();
    let mut batch = wal_batch(cell, 0x5EED);
    let per_batch = cell.batch_bytes() as u64;
    let mut next = wal.last_index() + 1;
    let mut lat = Latencies::with_capacity(1024);
    let (mut batches, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    loop {
        renumber(&mut batch, next);
        let t = Instant::now();
        wal.append(&batch)?;
        wal.sync()?;
        lat.record(t.elapsed());
        next += cell.batch as u64;
        batches += 1;
        bytes += per_batch;
        if budget.done(start.elapsed(), batches, bytes) {
            break;
        }
    }
    let elapsed = start.elapsed();
    let after = wal.stats();
    Ok(Sample {
        entries: batches * cell.batch as u64,
        payload_bytes: bytes,
        batches,
        elapsed,
        latencies: lat,
        file_syncs: Some(after.file_syncs - before.file_syncs),
        writes: Some(after.writes - before.writes),
        slice_rates: Vec::new(),
    })
}

/// `cell.writers` threads, each committing `cell.batch` entries at a time through one
/// [`GroupCommit`] until the budget is spent.
fn run_concurrent(cell: &Cell, wal: Wal, budget: &Budget) -> Result<Sample> {
    let before = wal.stats();
    let gc = Arc::new(GroupCommit::new(wal));
    let bytes = Arc::new(AtomicU64::new(0));
    let start_line = Arc::new(Barrier::new(cell.writers + 1));
    let per_batch = cell.batch_bytes() as u64;
    let threads: Vec<_> = (0..cell.writers)
        .map(|w| {
            let (gc, bytes, start_line) = (gc.clone(), bytes.clone(), start_line.clone());
            let (cell, budget) = (*cell, *budget);
            std::thread::spawn(move || -> Result<(Latencies, u64)> {
                let mut batch = wal_batch(&cell, 0x5EED ^ (w as u64) << 40);
                let mut lat = Latencies::with_capacity(1024);
                let mut batches = 0u64;
                start_line.wait();
                let start = Instant::now();
                loop {
                    let t = Instant::now();
                    gc.commit(|wal| {
                        renumber(&mut batch, wal.last_index() + 1);
                        wal.append(&batch)
                    })?;
                    lat.record(t.elapsed());
                    batches += 1;
                    let total = bytes.fetch_add(per_batch, Ordering::Relaxed) + per_batch;
                    if budget.done(start.elapsed(), batches, total) {
                        return Ok((lat, batches));
                    }
                }
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    let mut sample = Sample::default();
    for t in threads {
        let (lat, batches) = t.join().map_err(|_| "writer thread panicked")??;
        sample.latencies.merge(&lat);
        sample.batches += batches;
    }
    sample.elapsed = start.elapsed();
    sample.entries = sample.batches * cell.batch as u64;
    sample.payload_bytes = sample.batches * per_batch;
    let after = gc.stats()?;
    sample.file_syncs = Some(after.file_syncs - before.file_syncs);
    sample.writes = Some(after.writes - before.writes);
    Ok(sample)
}
