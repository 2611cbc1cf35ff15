//! Exhaustive crash-state exploration (ALICE's method) of short WAL workloads on SimFs:
//! every I/O call a crash point; at each, every subset of unsynced operations (sampled past
//! 2^7), tears at sector granularity with zeros and garbage, undone directory operations —
//! or, under page writeback, every dirty page lost, whole or torn; every distinct durable
//! image recovered and checked; recovery itself crashed and rerun. The fixed workload spans
//! five segments with zero-length entries, a truncation inside a batch, a snapshot and a
//! compaction. Run with `--nocapture` to see the number of distinct crash states covered.

use raftwal::HardState;
use raftwal_fault::explore::{explore, ExploreConfig, ExploreReport};
use raftwal_fault::model::{Model, Op};
use raftwal_fault::workload::{
    exploration_workload, oversized_recycling_workload, random_op, recycling_workload,
    rotation_ahead_workload, take_ahead_workload, WorkloadShape,
};
use raftwal_fault::{Overwrite, Writeback};
use rand::rngs::StdRng;
use rand::SeedableRng;

fn run(
    label: &str,
    seed: u64,
    ops: &[Op],
    configure: impl Fn(&mut ExploreConfig),
) -> ExploreReport {
    let mut cfg = ExploreConfig {
        seed,
        ..ExploreConfig::default()
    };
    configure(&mut cfg);
    let report = explore(ops, &cfg);
    println!(
        "explore {label} seed {seed} (sector {} B, write buffer {} B, lazy {}, {:?}, \
         fallocate {}): {} crash points, {} crash plans, {} distinct crash states, {} \
         (state, acknowledged) pairs checked, {} distinct states from crashes during \
         recovery, {} recoveries, {} entries verified, {} violations",
        cfg.sector_size,
        cfg.opts.write_buffer,
        cfg.opts.lazy_open,
        cfg.writeback,
        cfg.fallocate,
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

fn fixed(
    label: &str,
    seeds: std::ops::RangeInclusive<u64>,
    configure: impl Fn(&mut ExploreConfig),
) -> Vec<ExploreReport> {
    seeds
        .flat_map(|seed| {
            let ops = exploration_workload(&mut StdRng::seed_from_u64(seed));
            [256, 4 << 20]
                .into_iter()
                .map(|wb| {
                    run(label, seed, &ops, |cfg| {
                        cfg.opts.write_buffer = wb;
                        configure(cfg);
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Rotations done ahead in a trace: a segment renamed into place whose directory fsync is
/// followed by the `fdatasync` of another file (the sync group it was prepared beside),
/// not by records written into it.
fn rotations_ahead(trace: &[String]) -> usize {
    trace
        .windows(3)
        .filter(|w| {
            w[0].starts_with("rename")
                && w[0].ends_with(".wal")
                && w[1].starts_with("sync_dir")
                && w[2].starts_with("fdatasync")
        })
        .count()
}

/// Segment headers written ahead into pool files (`Options::take_ahead`) in a trace: a pool
/// file's `fdatasync` not followed by its rename into place (a take from the pool renames
/// the file right after its header's `fdatasync`).
fn headers_written_ahead(trace: &[String]) -> usize {
    trace
        .windows(2)
        .filter(|w| {
            let Some(file) = w[0].strip_prefix("fdatasync ") else {
                return false;
            };
            file.ends_with(".free") && !w[1].starts_with(&format!("rename {file} "))
        })
        .count()
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
    let reports = fixed("fixed", 1..=3, |_| {});
    assert!(reports[0].crash_points > 60, "several dozen I/O calls");
    assert!(reports[0].distinct_states > 100);
    assert_clean(&reports);
}

#[test]
fn every_crash_state_of_segment_recycling_recovers() {
    // Freeing into the pool (renames at compaction), taking from it (header, fdatasync,
    // rename, directory fsync), records over a recycled file's old ones, a truncation and
    // a torn tail inside a recycled segment: every step crashed, recovery crashed too.
    let mut reports = Vec::new();
    for seed in 1..=3u64 {
        let ops = recycling_workload(&mut StdRng::seed_from_u64(seed));
        for wb in [256, 4 << 20] {
            reports.push(run("recycling", seed, &ops, |cfg| {
                cfg.opts.write_buffer = wb;
                cfg.opts.lazy_open = seed == 2;
                if seed == 3 {
                    cfg.writeback = Writeback::Pages { page: 4096 };
                }
            }));
        }
    }
    assert!(reports.iter().all(|r| rotations_ahead(&r.trace) == 0));
    let trace = &reports[0].trace;
    let freed = trace
        .iter()
        .filter(|t| t.starts_with("rename") && t.ends_with(".free"))
        .count();
    let taken = trace
        .iter()
        .filter(|t| t.starts_with("rename") && t.contains(".free "))
        .count();
    assert!(
        freed >= 3 && taken >= 2,
        "the workload recycles: {trace:#?}"
    );
    assert_clean(&reports);
}

#[test]
fn every_crash_state_of_a_rotation_ahead_recovers() {
    // `Options::rotate_ahead`: the next segment taken from the pool (directory fsync, header,
    // fdatasync, rename, directory fsync) before the group's fdatasync, so the new, empty
    // segment can be durable while the group's records are not; then appends into it, a
    // truncation into the sealed segment before it, compactions between.
    let mut reports = Vec::new();
    for seed in 1..=2u64 {
        let ops = rotation_ahead_workload(&mut StdRng::seed_from_u64(seed));
        for wb in [256, 4 << 20] {
            reports.push(run("rotation ahead", seed, &ops, |cfg| {
                cfg.opts.write_buffer = wb;
                cfg.opts.rotate_ahead = true;
                cfg.opts.lazy_open = seed == 2;
                if seed == 2 && wb == 256 {
                    cfg.writeback = Writeback::Pages { page: 4096 };
                }
            }));
        }
    }
    for r in &reports {
        assert!(rotations_ahead(&r.trace) >= 2, "{:#?}", r.trace);
    }
    assert_clean(&reports);
}

#[test]
fn every_crash_state_of_a_header_written_ahead_recovers() {
    // `Options::take_ahead`: a sync past half a segment writes the next header into a pool
    // file (directory fsync if a file was freed since, header write, fdatasync); the
    // rotation renames it into place; a reopen while one waits; a truncation and a
    // compaction around it. Rotations ahead on and off.
    let mut reports = Vec::new();
    for seed in 1..=2u64 {
        let ops = take_ahead_workload(&mut StdRng::seed_from_u64(seed));
        for wb in [256, 4 << 20] {
            reports.push(run("take ahead", seed, &ops, |cfg| {
                cfg.opts.write_buffer = wb;
                cfg.opts.rotate_ahead = wb == 256;
                cfg.opts.lazy_open = seed == 2;
                if seed == 2 && wb == 256 {
                    cfg.writeback = Writeback::Pages { page: 4096 };
                }
            }));
        }
    }
    for r in &reports {
        assert!(headers_written_ahead(&r.trace) >= 2, "{:#?}", r.trace);
    }
    assert_clean(&reports);
}

#[test]
fn every_crash_state_of_recycling_oversized_segments_recovers() {
    // Segments of batches larger than a segment, freed into the pool and taken for such a
    // batch again: old records of a larger file follow the new ones.
    let ops = oversized_recycling_workload(&mut StdRng::seed_from_u64(1));
    let reports = vec![
        run("oversized recycling", 1, &ops, |_| {}),
        run("oversized recycling, pages", 2, &ops, |cfg| {
            cfg.writeback = Writeback::Pages { page: 4096 };
        }),
    ];
    let taken = reports[0]
        .trace
        .iter()
        .filter(|t| t.starts_with("rename") && t.contains(".free "))
        .count();
    assert!(
        taken >= 2,
        "the workload reuses both pool files: {:#?}",
        reports[0].trace
    );
    assert_clean(&reports);
}

#[test]
fn every_crash_state_between_write_out_pieces_recovers() {
    // `Options::writeback_chunk`: a write-out in 512-byte pieces, each one's writeback
    // started; a crash after any piece (or hint), with the rest lost, torn or kept.
    let mut reports = Vec::new();
    for (label, ops) in [
        (
            "pieces",
            exploration_workload(&mut StdRng::seed_from_u64(1)),
        ),
        (
            "pieces recycling",
            recycling_workload(&mut StdRng::seed_from_u64(1)),
        ),
    ] {
        reports.push(run(label, 1, &ops, |cfg| {
            cfg.opts.write_buffer = 4 << 20;
            cfg.opts.writeback_chunk = 512;
        }));
    }
    for r in &reports {
        let hints = r
            .trace
            .iter()
            .filter(|t| t.starts_with("writeback"))
            .count();
        assert!(hints >= 5, "the workload writes in pieces: {:#?}", r.trace);
    }
    assert_clean(&reports);
}

#[test]
fn every_crash_state_recovers_with_lazy_open() {
    let reports = fixed("fixed lazy", 1..=3, |cfg| cfg.opts.lazy_open = true);
    assert_clean(&reports);
}

#[test]
fn crash_states_with_tears_inside_header_slots_recover() {
    // 64-byte tear units: a 512-byte header slot can be half old, half new.
    let reports = fixed("fixed", 1..=2, |cfg| cfg.sector_size = 64);
    assert_clean(&reports);
}

#[test]
fn crash_states_under_page_writeback_recover() {
    // Dirty pages lost, written whole as of one of their writes, or torn in any subset of
    // sectors; the bytes a write does not change survive (powersafe overwrite).
    let reports = fixed("fixed pages", 1..=2, |cfg| {
        cfg.writeback = Writeback::Pages { page: 4096 };
        cfg.opts.lazy_open = cfg.seed % 2 == 0;
    });
    assert_clean(&reports);
}

#[test]
fn crash_states_without_fallocate_recover() {
    // Preallocation (new segments, the spare, the re-allocation after a cut) writes zeros,
    // and those writes tear like any other.
    let reports = fixed("fixed no-fallocate", 1..=2, |cfg| {
        cfg.fallocate = false;
        cfg.opts.lazy_open = cfg.seed % 2 == 0;
    });
    assert_clean(&reports);
}

#[test]
fn header_updates_survive_shorn_page_writes() {
    // A device without powersafe overwrite: any sector of a page being written back can be
    // lost, even one the write did not change. Term and vote updates must still never leave
    // both header slots unreadable.
    let mut ops = vec![Op::Open];
    for term in 1..=6 {
        ops.push(Op::SetHardState(HardState { term, vote: None }));
        ops.push(Op::SetHardState(HardState {
            term,
            vote: Some(term % 3 + 1),
        }));
    }
    let reports: Vec<ExploreReport> = (1..=2)
        .map(|seed| {
            run("header shorn", seed, &ops, |cfg| {
                cfg.writeback = Writeback::Pages { page: 4096 };
                cfg.overwrite = Overwrite::Shorn;
            })
        })
        .collect();
    assert_clean(&reports);
}

#[test]
fn crash_states_of_random_short_workloads_recover() {
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
            run("random", seed, &ops, |cfg| {
                cfg.opts.write_buffer = if seed % 2 == 0 { 256 } else { 4 << 20 };
                cfg.opts.lazy_open = seed % 3 == 0;
                if seed % 4 == 1 {
                    cfg.writeback = Writeback::Pages { page: 4096 };
                }
            })
        })
        .collect();
    assert_clean(&reports);
}
