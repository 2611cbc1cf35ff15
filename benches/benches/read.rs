//! Read latency: one entry and a range of 64, from the active segment (recent) and from an
//! old sealed segment; and `term(index)` from the in-memory index.
//!
//! The log: 200,000 entries of 256 B in 4 MiB segments (about 15 segments).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use raftwal::Options;
use raftwal_benches::fixtures::{fill, fresh_wal};

const ENTRIES: u64 = 200_000;
const ENTRY_SIZE: usize = 256;

fn reads(c: &mut Criterion) {
    let opts = Options::default().with_segment_size(4 << 20);
    let (_dir, mut wal) = fresh_wal(&opts);
    fill(&mut wal, ENTRIES, ENTRY_SIZE, 1024).expect("fill");
    let (first, last) = (wal.first_index(), wal.last_index());
    let old = first + 100;
    let mut g = c.benchmark_group("read");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(1));
    g.bench_function("entry/recent", |b| {
        b.iter(|| wal.entry(black_box(last - 1)).expect("entry"))
    });
    g.bench_function("entry/old_sealed", |b| {
        b.iter(|| wal.entry(black_box(old)).expect("entry"))
    });
    g.bench_function("term/old_sealed", |b| {
        b.iter(|| wal.term(black_box(old)).expect("term"))
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("entries64/recent", |b| {
        b.iter(|| wal.entries(black_box(last - 64), last).expect("entries"))
    });
    g.bench_function("entries64/old_sealed", |b| {
        b.iter(|| wal.entries(black_box(old), old + 64).expect("entries"))
    });
    g.finish();
}

criterion_group!(benches, reads);
criterion_main!(benches);
