//! The steady state's figures beside the table: what compaction cost and whether files were
//! created, and its goals (issue: steady-state throughput at the disk's real limit).

use std::fmt::Write as _;

use super::report::{dur, list, reps, Report};
use super::System;

/// raftwal's steady-state goal against `raw-overwrite`.
const GOAL_VS_OVERWRITE: f64 = 0.9;
/// raftwal's p99.9 batch latency at most this many times `raw-overwrite`'s.
const GOAL_P999: f64 = 1.5;
/// The longest compaction allowed, in milliseconds.
const GOAL_COMPACTION_MS: f64 = 1.0;

/// ", N files created, M reused" where the system reports them.
fn files(s: &raftwal_benches::workload::Sample) -> String {
    match (s.files_created, s.files_reused) {
        (Some(c), Some(r)) => format!(", {c} files created, {r} reused"),
        (Some(c), None) => format!(", {c} files created"),
        _ => String::new(),
    }
}

/// Per cell, each compacting system's compactions; then the goals, met or missed.
pub fn summary(report: &Report) -> String {
    let mut out = String::from("compactions (inside the timed slices):\n");
    for cell in &report.grid {
        for system in [
            System::Raftwal,
            System::RaftwalAhead,
            System::RaftwalNoTakeAhead,
            System::RaftEngine,
        ] {
            let Some(r) = report.row(cell, system) else {
                continue;
            };
            let c = &r.sample.compactions;
            let _ = writeln!(
                out,
                "  {:<12} {:<16} {:>6} compactions, mean {}, max {}{}",
                cell.label(),
                system.name(),
                c.count,
                dur(c.mean()),
                dur(c.max),
                files(&r.sample)
            );
        }
    }
    out.push_str("goals (steady state):\n");
    let (mut vs_ref, mut vs_engine, mut p999, mut slow) = (vec![], vec![], vec![], vec![]);
    // Cells where each goal could be judged at all: a goal no cell measured is not met.
    let (mut ref_cells, mut engine_cells) = (0, 0);
    for cell in &report.grid {
        let Some(w) = report.row(cell, System::Raftwal) else {
            continue;
        };
        if let Some((_, med, _)) = w.vs_raw_reps {
            ref_cells += 1;
            if med < GOAL_VS_OVERWRITE {
                vs_ref.push(format!("{} {med:.2}{}", cell.label(), reps(w.vs_raw_reps)));
            }
        }
        engine_cells += usize::from(w.vs_engine.is_some());
        if let Some(x) = w.vs_engine.filter(|x| *x < 1.0) {
            vs_engine.push(format!("{} {x:.2}{}", cell.label(), reps(w.vs_engine_reps)));
        }
        if let Some(o) = report.row(cell, System::RawOverwrite) {
            let ratio = w.p999.as_secs_f64() / o.p999.as_secs_f64().max(1e-9);
            if ratio > GOAL_P999 {
                p999.push(format!(
                    "{} {} vs {} ({ratio:.2}x)",
                    cell.label(),
                    dur(w.p999),
                    dur(o.p999)
                ));
            }
        }
        let max = w.sample.compactions.max;
        if max.as_secs_f64() * 1e3 > GOAL_COMPACTION_MS {
            slow.push(format!("{} max {}", cell.label(), dur(max)));
        }
    }
    let verdict = |m: &Vec<String>, cells: usize| match (cells, m.is_empty()) {
        (0, _) => "NOT MEASURED (no cell ran both systems)",
        (_, true) => "MET",
        (_, false) => "MISSED",
    };
    let all = report.grid.len();
    let goals = [
        (
            format!("raftwal >= {GOAL_VS_OVERWRITE} x raw-overwrite (median of paired reps)"),
            &vs_ref,
            ref_cells,
        ),
        (
            "raftwal >= raft-engine (recycling)".to_owned(),
            &vs_engine,
            engine_cells,
        ),
        (
            format!("raftwal p99.9 <= {GOAL_P999} x raw-overwrite's"),
            &p999,
            all,
        ),
        (
            format!("every raftwal compaction <= {GOAL_COMPACTION_MS} ms"),
            &slow,
            all,
        ),
    ];
    for (goal, misses, cells) in goals {
        let _ = writeln!(out, "  {goal}: {}{}", verdict(misses, cells), list(misses));
    }
    out
}
