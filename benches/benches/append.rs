//! Append throughput: every entry synced on its own (`sync_per_entry`), and group commit of
//! 8, 64 and 512 entries per `fdatasync` (`group_commit`), for 64 B to 64 KiB entries; plus
//! the cost of `append` alone, buffered with no sync in the timed part (`buffer_only`).
//!
//! Each benchmark appends to one fresh WAL (default options: 64 MiB preallocated segments);
//! between criterion's samples the log is compacted (untimed) so disk use stays bounded.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use raftwal::{Options, Wal};
use raftwal_benches::fixtures::fresh_wal;
use raftwal_benches::workload::{human_size, renumber, wal_batch, Cell, ENTRY_SIZES};

/// Compacts away everything but the last entry once the log holds more than this many
/// payload bytes (keeps disk use bounded; untimed).
const COMPACT_AFTER_BYTES: u64 = 512 << 20;

fn compact_if_large(wal: &mut Wal, entry_size: usize) {
    let held = (wal.last_index() - wal.first_index() + 1) * entry_size as u64;
    if held > COMPACT_AFTER_BYTES {
        wal.compact(wal.last_index() - 1).expect("compact");
    }
}

/// Appends + syncs `batch`-entry batches; returns the time of `iters` of them.
fn timed_batches(wal: &mut Wal, cell: &Cell, iters: u64, sync: bool) -> Duration {
    let mut batch = wal_batch(cell, 0xA99E);
    let mut took = Duration::ZERO;
    for _ in 0..iters {
        renumber(&mut batch, wal.last_index() + 1);
        let t = Instant::now();
        wal.append(black_box(&batch)).expect("append");
        if sync {
            wal.sync().expect("sync");
        }
        took += t.elapsed();
        if !sync && wal.last_index() % 4096 < cell.batch as u64 {
            wal.sync().expect("sync");
        }
    }
    wal.sync().expect("sync");
    compact_if_large(wal, cell.entry_size);
    took
}

fn sync_per_entry(c: &mut Criterion) {
    let mut g = c.benchmark_group("append/sync_per_entry");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
    for size in ENTRY_SIZES {
        let cell = Cell::single(size, 1);
        let (_dir, mut wal) = fresh_wal(&Options::default());
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::from_parameter(human_size(size as u64)), |b| {
            b.iter_custom(|iters| timed_batches(&mut wal, &cell, iters, true))
        });
    }
    g.finish();
}

fn group_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("append/group_commit");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
    for size in ENTRY_SIZES {
        for batch in [8, 64, 512] {
            let cell = Cell::single(size, batch);
            let (_dir, mut wal) = fresh_wal(&Options::default());
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_function(
                BenchmarkId::new(human_size(size as u64), format!("batch{batch}")),
                |b| b.iter_custom(|iters| timed_batches(&mut wal, &cell, iters, true)),
            );
        }
    }
    g.finish();
}

fn buffer_only(c: &mut Criterion) {
    let mut g = c.benchmark_group("append/buffer_only");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for size in ENTRY_SIZES {
        let cell = Cell::single(size, 64);
        let (_dir, mut wal) = fresh_wal(&Options::default());
        g.throughput(Throughput::Bytes(cell.batch_bytes() as u64));
        g.bench_function(BenchmarkId::new(human_size(size as u64), "batch64"), |b| {
            b.iter_custom(|iters| timed_batches(&mut wal, &cell, iters, false))
        });
    }
    g.finish();
}

criterion_group!(benches, sync_per_entry, group_commit, buffer_only);
criterion_main!(benches);
