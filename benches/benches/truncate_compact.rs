//! Truncate and compact cost.
//!
//! - `truncate_suffix/100`: drop the last 100 entries (a follower's conflicting suffix) of a
//!   log of 20,000 256 B entries; the entries are re-appended untimed between iterations.
//! - `compact/one_segment`: move the log base forward by one 1 MiB segment's worth of entries
//!   (whole segments deleted); the log is refilled untimed.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use raftwal::Options;
use raftwal_benches::fixtures::{fill, fresh_wal};

const ENTRY_SIZE: usize = 256;

fn truncate(c: &mut Criterion) {
    let mut g = c.benchmark_group("truncate_suffix");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
    let (_dir, mut wal) = fresh_wal(&Options::default());
    fill(&mut wal, 20_000, ENTRY_SIZE, 500).expect("fill");
    g.bench_function("100", |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            for _ in 0..iters {
                let from = wal.last_index() - 99;
                let t = Instant::now();
                wal.truncate_suffix(from).expect("truncate");
                took += t.elapsed();
                fill(&mut wal, 100, ENTRY_SIZE, 100).expect("refill");
            }
            took
        })
    });
    g.finish();
}

fn compact(c: &mut Criterion) {
    let opts = Options::default().with_segment_size(1 << 20);
    // Entries per 1 MiB segment, approximately (frame = 32 B header + 256 B payload).
    let per_segment = (1u64 << 20) / (32 + ENTRY_SIZE as u64);
    let mut g = c.benchmark_group("compact");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
    let (_dir, mut wal) = fresh_wal(&opts);
    fill(&mut wal, per_segment * 8, ENTRY_SIZE, 512).expect("fill");
    g.bench_function("one_segment", |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            for _ in 0..iters {
                let to = wal.first_index() + per_segment;
                let t = Instant::now();
                wal.compact(to).expect("compact");
                took += t.elapsed();
                fill(&mut wal, per_segment, ENTRY_SIZE, 512).expect("refill");
            }
            took
        })
    });
    g.finish();
}

criterion_group!(benches, truncate, compact);
criterion_main!(benches);
