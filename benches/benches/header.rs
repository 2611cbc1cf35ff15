//! Header (term, vote) update latency: `set_hard_state` writes the older of two slots and
//! fdatasyncs it, one sync per update.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use raftwal::{HardState, Options};
use raftwal_benches::fixtures::fresh_wal;

fn set_hard_state(c: &mut Criterion) {
    let mut g = c.benchmark_group("header");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
    let (_dir, mut wal) = fresh_wal(&Options::default());
    g.bench_function("set_hard_state/new_term_and_vote", |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            for _ in 0..iters {
                let term = wal.hard_state().term + 1;
                let t = Instant::now();
                wal.set_hard_state(HardState {
                    term,
                    vote: Some(term % 5),
                })
                .expect("set_hard_state");
                took += t.elapsed();
            }
            took
        })
    });
    g.finish();
}

criterion_group!(benches, set_hard_state);
criterion_main!(benches);
