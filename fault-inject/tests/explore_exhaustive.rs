//! Exhaustive crash-state exploration (ALICE's method) of a short WAL workload on SimFs:
//! every I/O call a crash point; at each, every subset of unsynced operations (sampled past
//! 2^7), tears at sector granularity with zeros and garbage, undone directory operations;
//! every distinct durable image recovered and checked; recovery itself crashed and rerun.
//! Run with `--nocapture` to see the number of distinct crash states covered.

use fault_inject::explore::{explore, ExploreConfig, ExploreReport};
use fault_inject::workload::exploration_workload;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn run(seed: u64, sector_size: u64, write_buffer: usize) -> ExploreReport {
    let mut cfg = ExploreConfig {
        seed,
        sector_size,
        ..ExploreConfig::default()
    };
    cfg.opts.write_buffer = write_buffer;
    let ops = exploration_workload(&mut StdRng::seed_from_u64(seed));
    let report = explore(&ops, &cfg);
    println!(
        "explore seed {seed}, sector {sector_size} B, write buffer {write_buffer} B: {} crash points, {} crash plans, \
         {} distinct crash states, {} (state, acknowledged) pairs checked, {} distinct states \
         from crashes during recovery, {} recoveries, {} entries verified, {} violations",
        report.crash_points,
        report.plans,
        report.distinct_states,
        report.checked,
        report.recovery_crash_states,
        report.recoveries,
        report.entries_verified,
        report.violations.len()
    );
    for v in report.violations.iter().take(5) {
        println!("VIOLATION {v}");
    }
    report
}

fn assert_clean(reports: &[ExploreReport]) {
    let total: usize = reports.iter().map(|r| r.distinct_states).sum();
    let recovery: usize = reports.iter().map(|r| r.recovery_crash_states).sum();
    println!("TOTAL distinct crash states: {total} (+ {recovery} from crashes during recovery)");
    if let Some(r) = reports.iter().find(|r| !r.violations.is_empty()) {
        println!("I/O trace of the failing run:");
        for (i, t) in r.trace.iter().enumerate() {
            println!("  #{i} {t}");
        }
        panic!("violation: {}", r.violations[0]);
    }
}

#[test]
fn every_crash_state_of_the_workload_recovers_to_an_acknowledged_state() {
    // Appends written at once (several writes await a sync) and appends buffered until the
    // sync (one write per batch).
    let reports: Vec<ExploreReport> = (1..=3)
        .flat_map(|seed| [run(seed, 512, 256), run(seed, 512, 4 << 20)])
        .collect();
    assert!(reports[0].crash_points > 30, "a few dozen I/O calls");
    assert!(reports[0].distinct_states > 100);
    assert_clean(&reports);
}

#[test]
fn crash_states_with_tears_inside_header_slots_recover() {
    // 64-byte tear units: a 512-byte header slot can be half old, half new.
    let reports: Vec<ExploreReport> = (1..=2)
        .flat_map(|seed| [run(seed, 64, 256), run(seed, 64, 4 << 20)])
        .collect();
    assert_clean(&reports);
}

#[test]
fn crash_states_of_random_short_workloads_recover() {
    use fault_inject::model::{Model, Op};
    use fault_inject::workload::{random_op, WorkloadShape};
    let reports: Vec<ExploreReport> = (1..=12u64)
        .map(|seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut model = Model::default();
            let mut ops = vec![Op::Open];
            let shape = WorkloadShape {
                max_batch: 3,
                max_payload: 700,
            };
            for _ in 0..24 {
                let op = random_op(&model, &mut rng, &shape);
                model.begin(&op);
                model.complete(&op);
                ops.push(op);
            }
            let mut cfg = ExploreConfig {
                seed,
                ..ExploreConfig::default()
            };
            cfg.opts.write_buffer = if seed % 2 == 0 { 256 } else { 4 << 20 };
            let r = explore(&ops, &cfg);
            println!(
                "random workload seed {seed}: {} crash points, {} distinct crash states, {} from \
                 crashes during recovery, {} violations",
                r.crash_points,
                r.distinct_states,
                r.recovery_crash_states,
                r.violations.len()
            );
            r
        })
        .collect();
    assert_clean(&reports);
}
