//! Recovery time against retained log size, warm page cache: `Wal::open` of a log of 1 MiB to
//! 1 GiB of 1 KiB entries (every record's checksum verified). Throughput is payload bytes per
//! second. The 1 GiB log is measured with criterion's minimum of 10 samples (about 10 opens).
//! Cold-cache figures: `raftwal bench` (the recovery table).

use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use raftwal_benches::fixtures::tempdir;
use raftwal_benches::recovery::{build_raftwal, open_raftwal};
use raftwal_benches::workload::human_size;
use wal::Options;

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

criterion_group!(benches, recovery);
criterion_main!(benches);
