//! Recovery time against retained log size, warm page cache: `Wal::open` of a log of 1 MiB to
//! 1 GiB of 1 KiB entries (every record's checksum verified). Throughput is payload bytes per
//! second. The 1 GiB log is measured with criterion's minimum of 10 samples (about 10 opens).
//! Cold-cache figures: `raftwal bench` (the recovery table).
//!
//! `recovery/torn_tail`: open of one default 64 MiB segment holding 32 MiB of 1 KiB entries,
//! clean, or with a torn tail of 4 MiB after the last record (a lost record header, then
//! random bytes, or bytes crafted to look like plausible records): recovery is linear in the
//! bytes it reads, so all three should take about as long.

use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use raftwal::Options;
use raftwal_benches::fixtures::tempdir;
use raftwal_benches::recovery::{build_raftwal, damage_tail, open_raftwal, Tail};
use raftwal_benches::workload::human_size;

const ENTRY_SIZE: usize = 1024;

fn recovery(c: &mut Criterion) {
    let opts = Options::default();
    let mut g = c.benchmark_group("recovery/open");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
    for mib in [1u64, 16, 256, 1024] {
        let bytes = mib << 20;
        let dir = tempdir();
        build_raftwal(dir.path(), &opts, bytes, ENTRY_SIZE).expect("build log");
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function(BenchmarkId::from_parameter(human_size(bytes)), |b| {
            b.iter(|| open_raftwal(dir.path(), &opts).expect("open"))
        });
    }
    g.finish();
}

fn torn_tail(c: &mut Criterion) {
    let opts = Options::default().with_prepare(raftwal::SegmentPrepare::Allocate);
    let mut g = c.benchmark_group("recovery/torn_tail");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(3))
        .sampling_mode(SamplingMode::Flat);
    let tails = [
        ("clean", Tail::Clean),
        ("random_4MiB", Tail::Random(4 << 20)),
        ("plausible_4MiB", Tail::Plausible(4 << 20)),
    ];
    for (name, tail) in tails {
        let dir = tempdir();
        build_raftwal(dir.path(), &opts, 32 << 20, ENTRY_SIZE).expect("build log");
        let end = open_raftwal(dir.path(), &opts)
            .map(|(_, r)| r.bytes_scanned + 4096)
            .expect("open");
        g.bench_function(name, |b| {
            b.iter_batched(
                || damage_tail(dir.path(), end, tail).expect("damage"),
                |_| {
                    let (_, report) = open_raftwal(dir.path(), &opts).expect("open");
                    assert_eq!(report.entries, 32 << 10);
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, recovery, torn_tail);
criterion_main!(benches);
