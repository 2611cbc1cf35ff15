//! The results table, the goal check and the CSV.

use std::fmt::Write as _;
use std::time::Duration;

use raftwal_benches::workload::{Cell, Sample};

use super::{Plan, Results, System};

/// raftwal's throughput goal against the raw limit.
const GOAL_VS_RAW: f64 = 0.95;
/// Where raft-engine stays under this fraction of raw...
const ENGINE_WEAK: f64 = 0.65;
/// ...raftwal should be at least this many times faster than it.
const GOAL_VS_ENGINE_WHEN_WEAK: f64 = 1.5;

/// One row: a system on a cell.
pub struct Row {
    pub cell: Cell,
    pub system: System,
    pub entries_per_sec: f64,
    pub mib_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub vs_raw: Option<f64>,
    pub vs_engine: Option<f64>,
    /// Per-repetition ratios to raw and to raft-engine, each repetition against the slice
    /// that ran next to it: `(min, median, max)`. The spread shows how much of a
    /// difference is the disk's own noise.
    pub vs_raw_reps: Option<(f64, f64, f64)>,
    pub vs_engine_reps: Option<(f64, f64, f64)>,
    /// File syncs per batch (commit), where the system reports them.
    pub syncs_per_batch: Option<f64>,
    pub sample: Sample,
}

/// The rows of a run, in table order.
pub struct Report {
    rows: Vec<Row>,
    pub(super) grid: Vec<Cell>,
    concurrent: Vec<Cell>,
    /// What the `vs_raw` ratios are to (`raw`, or `raw-overwrite` in a steady state).
    reference: System,
}

impl Report {
    /// Builds the rows from the results.
    pub fn new(plan: &Plan, results: &Results) -> Self {
        let mut rows = Vec::new();
        for cell in plan.grid.iter().chain(&plan.concurrent) {
            let tput = |s: System| results.get(&(*cell, s)).map(|x| x.entries_per_sec());
            let raw = tput(plan.reference);
            let engine = tput(System::RaftEngine);
            let pairs = |me: &Sample, base: System| {
                results
                    .get(&(*cell, base))
                    .and_then(|b| me.paired_ratios(b))
            };
            for &system in &plan.systems {
                let Some(sample) = results.get(&(*cell, system)) else {
                    continue;
                };
                let mut sample = sample.clone();
                let eps = sample.entries_per_sec();
                let ratio = |base: Option<f64>| base.filter(|b| *b > 0.0).map(|b| eps / b);
                rows.push(Row {
                    cell: *cell,
                    system,
                    entries_per_sec: eps,
                    mib_per_sec: sample.mib_per_sec(),
                    p50: sample.latencies.quantile(0.50),
                    p99: sample.latencies.quantile(0.99),
                    p999: sample.latencies.quantile(0.999),
                    vs_raw: ratio(raw),
                    vs_engine: if system == System::RaftEngine {
                        None
                    } else {
                        ratio(engine)
                    },
                    vs_raw_reps: pairs(&sample, plan.reference),
                    vs_engine_reps: if system == System::RaftEngine {
                        None
                    } else {
                        pairs(&sample, System::RaftEngine)
                    },
                    syncs_per_batch: sample
                        .file_syncs
                        .map(|s| s as f64 / sample.batches.max(1) as f64),
                    sample,
                });
            }
        }
        Report {
            rows,
            grid: plan.grid.clone(),
            concurrent: plan.concurrent.clone(),
            reference: plan.reference,
        }
    }

    pub(super) fn row(&self, cell: &Cell, system: System) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.cell == *cell && r.system == system)
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let header = format!(
            "{:<16} {:<13} {:>11} {:>9} {:>9} {:>9} {:>9} {:>6} {:>6} {:>11}",
            "cell",
            "system",
            "entries/s",
            "MiB/s",
            "p50",
            "p99",
            "p99.9",
            if self.reference == System::Raw {
                "x raw"
            } else {
                "x r-o"
            },
            "x r-e",
            "syncs/batch"
        );
        let _ = writeln!(out, "{header}");
        let _ = writeln!(out, "{}", "-".repeat(header.len()));
        let mut last: Option<Cell> = None;
        for r in &self.rows {
            if last.is_some_and(|c| c != r.cell) {
                let _ = writeln!(out);
            }
            if last.is_some_and(|c| c.writers == 1) && r.cell.writers > 1 && last != Some(r.cell) {
                let _ = writeln!(
                    out,
                    "concurrent writers (each commits one 256 B entry and waits; raw = all writers' entries in one pwrite+fdatasync):"
                );
            }
            let label = if last == Some(r.cell) {
                String::new()
            } else {
                r.cell.label()
            };
            last = Some(r.cell);
            let _ = writeln!(
                out,
                "{:<16} {:<13} {:>11} {:>9.2} {:>9} {:>9} {:>9} {:>6} {:>6} {:>11}",
                label,
                r.system.name(),
                format!("{:.0}", r.entries_per_sec),
                r.mib_per_sec,
                dur(r.p50),
                dur(r.p99),
                dur(r.p999),
                opt(r.vs_raw),
                opt(r.vs_engine),
                r.syncs_per_batch
                    .map_or("-".to_owned(), |s| format!("{s:.3}")),
            );
        }
        out
    }

    /// Process CPU per batch of each system on each cell (user + system time, background
    /// threads included, summed over the slices; 10 ms resolution per slice).
    pub fn cpu(&self) -> String {
        let mut out =
            String::from("\nprocess CPU per batch (all threads, summed over the slices):\n");
        let mut last: Option<Cell> = None;
        for r in &self.rows {
            let Some(cpu) = r.sample.cpu else {
                continue;
            };
            if last != Some(r.cell) {
                let _ = write!(out, "  {:<14}", r.cell.label());
            }
            last = Some(r.cell);
            let per = cpu / r.sample.batches.max(1) as u32;
            let _ = write!(out, " {} {}", r.system.name(), dur(per));
            if self
                .rows
                .iter()
                .rev()
                .find(|x| x.cell == r.cell)
                .is_some_and(|x| x.system == r.system)
            {
                out.push('\n');
            }
        }
        out
    }

    /// `, raw-again 0.97` for a cell where the A/A control ran, else nothing.
    fn control(&self, cell: &Cell) -> String {
        self.row(cell, System::RawAgain)
            .and_then(|r| r.vs_raw)
            .map_or(String::new(), |x| format!(", raw-again {x:.2}"))
    }

    /// Each goal, met or missed, with the figures.
    pub fn goals(&self) -> String {
        let mut out = String::from("goals:\n");
        let mut min_raw = (f64::INFINITY, None);
        let mut raw_misses = Vec::new();
        let mut engine_misses = Vec::new();
        let mut weak_misses = Vec::new();
        let mut weak_cells = 0;
        let mut min_engine = (f64::INFINITY, None);
        for cell in self.grid.iter().chain(&self.concurrent) {
            let Some(w) = self.row(cell, System::Raftwal) else {
                continue;
            };
            if cell.writers == 1 {
                if let Some(x) = w.vs_raw {
                    if x < min_raw.0 {
                        min_raw = (x, Some(*cell));
                    }
                    if x < GOAL_VS_RAW {
                        raw_misses.push(format!(
                            "{} {x:.2}{}{}",
                            cell.label(),
                            reps(w.vs_raw_reps),
                            self.control(cell)
                        ));
                    }
                }
            }
            if let Some(x) = w.vs_engine {
                if x < min_engine.0 {
                    min_engine = (x, Some(*cell));
                }
                if x < 1.0 {
                    engine_misses.push(format!(
                        "{} {x:.2}{}",
                        cell.label(),
                        reps(w.vs_engine_reps)
                    ));
                }
                let engine_vs_raw = self.row(cell, System::RaftEngine).and_then(|e| e.vs_raw);
                if cell.writers == 1 && engine_vs_raw.is_some_and(|e| e < ENGINE_WEAK) {
                    weak_cells += 1;
                    if x < GOAL_VS_ENGINE_WHEN_WEAK {
                        weak_misses.push(format!(
                            "{} {x:.2}{} (raft-engine {:.2} x raw)",
                            cell.label(),
                            reps(w.vs_engine_reps),
                            engine_vs_raw.unwrap_or(0.0)
                        ));
                    }
                }
            }
        }
        let verdict = |misses: &Vec<String>| if misses.is_empty() { "MET" } else { "MISSED" };
        let at = |c: Option<Cell>| c.map_or(String::new(), |c| format!(" at {}", c.label()));
        if min_raw.1.is_some() {
            let _ = writeln!(
                out,
                "  raftwal >= {GOAL_VS_RAW} x raw, every single-writer cell: {} (lowest {:.3}{}){}",
                verdict(&raw_misses),
                min_raw.0,
                at(min_raw.1),
                list(&raw_misses)
            );
        }
        // The same goal judged by the median of the paired repetitions: less sensitive to
        // one slice that met a slow disk.
        let mut median_misses = Vec::new();
        let mut paired_cells = 0;
        for cell in self.grid.iter().filter(|c| c.writers == 1) {
            if let Some((_, med, _)) = self.row(cell, System::Raftwal).and_then(|w| w.vs_raw_reps) {
                paired_cells += 1;
                if med < GOAL_VS_RAW {
                    median_misses.push(format!("{} {med:.2}", cell.label()));
                }
            }
        }
        if paired_cells > 0
            && self
                .rows
                .iter()
                .any(|r| r.vs_raw_reps.is_some_and(|x| x.2 > x.0))
        {
            let _ = writeln!(
                out,
                "  ... by the median of paired repetitions ({paired_cells} cells): {}{}",
                verdict(&median_misses),
                list(&median_misses)
            );
        }
        // The A/A control: the raw loop against itself shows how far this run's noise alone
        // moves a ratio.
        let control: Vec<(Cell, f64)> = self
            .grid
            .iter()
            .filter_map(|c| Some((*c, self.row(c, System::RawAgain)?.vs_raw?)))
            .collect();
        if let (Some(lo), Some(hi)) = (
            control.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
            control.iter().max_by(|a, b| a.1.total_cmp(&b.1)),
        ) {
            let below = control.iter().filter(|c| c.1 < GOAL_VS_RAW).count();
            let _ = writeln!(
                out,
                "  A/A control, raw-again (the same loop) / raw: {:.2} ({}) to {:.2} ({}); below \
                 {GOAL_VS_RAW} in {below} of {} cells",
                lo.1,
                lo.0.label(),
                hi.1,
                hi.0.label(),
                control.len()
            );
        }
        if min_engine.1.is_some() {
            let _ = writeln!(
                out,
                "  raftwal >= raft-engine, every cell: {} (lowest {:.2}{}){}",
                verdict(&engine_misses),
                min_engine.0,
                at(min_engine.1),
                list(&engine_misses)
            );
            let _ = writeln!(
                out,
                "  raftwal >= {GOAL_VS_ENGINE_WHEN_WEAK} x raft-engine where raft-engine < {ENGINE_WEAK} x raw ({weak_cells} cells): {}{}",
                verdict(&weak_misses),
                list(&weak_misses)
            );
        }
        let (mut syncs, mut batches, mut worst) = (0u64, 0u64, 0f64);
        for r in self
            .rows
            .iter()
            .filter(|r| r.system == System::Raftwal && r.cell.writers == 1)
        {
            if let Some(s) = r.sample.file_syncs {
                syncs += s;
                batches += r.sample.batches;
                worst = worst.max(r.syncs_per_batch.unwrap_or(0.0));
            }
        }
        if batches > 0 {
            let _ = writeln!(
                out,
                "  one fdatasync per batch (raftwal Stats::file_syncs): {syncs} syncs for {batches} batches = {:.4} per batch (highest cell {worst:.3}; extra syncs are segment rotations)",
                syncs as f64 / batches as f64
            );
        }
        for cell in &self.concurrent {
            if let Some(r) = self.row(cell, System::Raftwal) {
                if let Some(s) = r.sample.file_syncs {
                    let _ = writeln!(
                        out,
                        "  group commit {}: {} commits shared {} file syncs ({:.1} commits per sync)",
                        cell.label(),
                        r.sample.batches,
                        s,
                        r.sample.batches as f64 / s.max(1) as f64
                    );
                }
            }
        }
        out
    }

    /// The CSV: one line per (cell, system).
    pub fn csv(&self) -> String {
        // The ratio columns are named after the reference (`raw`, or `raw_overwrite` in a
        // steady state).
        let header = "entry_size,batch,writers,system,entries,payload_bytes,batches,elapsed_s,entries_per_s,mib_per_s,p50_us,p99_us,p999_us,ratio_raw,ratio_raft_engine,file_syncs,writes,ratio_raw_rep_min,ratio_raw_rep_median,ratio_raw_rep_max\n";
        let mut out = header.replace(
            "ratio_raw",
            &format!("ratio_{}", self.reference.name().replace('-', "_")),
        );
        let us = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1e6);
        let o = |x: Option<f64>| x.map_or(String::new(), |x| format!("{x:.4}"));
        let ou = |x: Option<u64>| x.map_or(String::new(), |x| x.to_string());
        for r in &self.rows {
            let s = &r.sample;
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{:.4},{:.1},{:.3},{},{},{},{},{},{},{},{},{},{}",
                r.cell.entry_size,
                r.cell.batch,
                r.cell.writers,
                r.system.name(),
                s.entries,
                s.payload_bytes,
                s.batches,
                s.elapsed.as_secs_f64(),
                r.entries_per_sec,
                r.mib_per_sec,
                us(r.p50),
                us(r.p99),
                us(r.p999),
                o(r.vs_raw),
                o(r.vs_engine),
                ou(s.file_syncs),
                ou(s.writes),
                o(r.vs_raw_reps.map(|r| r.0)),
                o(r.vs_raw_reps.map(|r| r.1)),
                o(r.vs_raw_reps.map(|r| r.2)),
            );
        }
        out
    }
}

/// ` [reps 0.81-1.02, median 0.93]`: the per-repetition spread of a ratio, when there is
/// more than one repetition.
pub(super) fn reps(r: Option<(f64, f64, f64)>) -> String {
    match r {
        Some((lo, med, hi)) if hi > lo => format!(" [reps {lo:.2}-{hi:.2}, median {med:.2}]"),
        _ => String::new(),
    }
}

pub(super) fn list(misses: &[String]) -> String {
    if misses.is_empty() {
        String::new()
    } else {
        format!("\n      missed: {}", misses.join("; "))
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or("-".to_owned(), |x| format!("{x:.2}"))
}

/// `87us`, `1.23ms`, `12.3ms`, `1.20s`.
pub fn dur(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0}us")
    } else if us < 10_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else if us < 1_000_000.0 {
        format!("{:.1}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}
