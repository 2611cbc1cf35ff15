//! Recovery: the time to open a log against its retained size, from a warm page cache (the
//! log was just written) and a cold one (its files' pages dropped with `posix_fadvise`).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use raftwal_benches::cache::drop_dir_cache;
use raftwal_benches::recovery as rec;
use raftwal_benches::workload::human_size;

use super::report::dur;
use super::{Plan, System};

/// Warm opens per log (the median is reported).
const WARM_OPENS: usize = 3;

/// One log size on one system (raftwal twice: full open, and `Options::lazy_open`).
pub struct RecoveryRow {
    /// The system's name, or `raftwal-lazy` for the lazy open of raftwal's log.
    pub label: &'static str,
    pub payload_bytes: u64,
    pub disk_bytes: u64,
    pub entries: u64,
    pub build: Duration,
    pub warm: Duration,
    pub cold: Duration,
    /// Bytes raftwal's recovery reports it verified.
    pub scanned: Option<u64>,
}

/// Builds and reopens a log of each size on each system.
pub fn measure(plan: &Plan, work: &Path) -> Result<Vec<RecoveryRow>, super::super::CmdError> {
    let systems: Vec<System> = plan
        .systems
        .iter()
        .copied()
        .filter(|s| matches!(s, System::Raftwal | System::RaftEngine))
        .collect();
    let bar = indicatif::ProgressBar::new((plan.recovery_mib.len() * systems.len()) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40.green/blue}] {pos}/{len} recovery logs  {msg}",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    let mut rows = Vec::new();
    for &mib in &plan.recovery_mib {
        for &system in &systems {
            bar.set_message(format!("{} {}", system.name(), human_size(mib << 20)));
            let dir = work.join(format!("recovery-{}-{mib}", system.name()));
            std::fs::create_dir_all(&dir)?;
            let mut got = one(plan, system, &dir, mib << 20)
                .map_err(|e| format!("recovery of {} {mib} MiB: {e}", system.name()))?;
            std::fs::remove_dir_all(&dir)?;
            raftwal_benches::cache::settle(work)?;
            rows.append(&mut got);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(rows)
}

/// Builds one log and times its opens: warm (median of [`WARM_OPENS`]) then cold. raftwal's
/// log is also opened with `Options::lazy_open` (a second row).
fn one(
    plan: &Plan,
    system: System,
    dir: &Path,
    payload: u64,
) -> raftwal_benches::Result<Vec<RecoveryRow>> {
    let entry_size = plan.recovery_entry_size;
    let t = Instant::now();
    let entries = match system {
        System::Raftwal => rec::build_raftwal(dir, &plan.wal_opts, payload, entry_size)?,
        #[cfg(feature = "raft-engine")]
        System::RaftEngine => rec::build_raft_engine(dir, &plan.engine_opts, payload, entry_size)?,
        _ => return Err("no recovery for this system".into()),
    };
    let build = t.elapsed();
    let open = |dir: &Path, lazy: bool| -> raftwal_benches::Result<(Duration, Option<u64>)> {
        match system {
            System::Raftwal => {
                let opts = plan.wal_opts.clone().with_lazy_open(lazy);
                let (took, report) = rec::open_raftwal(dir, &opts)?;
                if report.entries != entries {
                    return Err(
                        format!("recovered {} entries, wrote {entries}", report.entries).into(),
                    );
                }
                Ok((took, Some(report.bytes_scanned)))
            }
            #[cfg(feature = "raft-engine")]
            System::RaftEngine => {
                let (took, last) = rec::open_raft_engine(dir, &plan.engine_opts)?;
                if last != entries {
                    return Err(format!("recovered up to {last}, wrote {entries}").into());
                }
                Ok((took, None))
            }
            _ => Err("no recovery for this system".into()),
        }
    };
    let variants: &[(bool, &'static str)] = match system {
        System::Raftwal => &[(false, "raftwal"), (true, "raftwal-lazy")],
        _ => &[(false, "")],
    };
    let mut rows = Vec::new();
    for &(lazy, label) in variants {
        let mut warm = Vec::new();
        let mut scanned = None;
        for _ in 0..WARM_OPENS {
            let (took, s) = open(dir, lazy)?;
            warm.push(took);
            scanned = s;
        }
        warm.sort_unstable();
        let disk_bytes = drop_dir_cache(dir)?;
        let (cold, _) = open(dir, lazy)?;
        rows.push(RecoveryRow {
            label: if label.is_empty() {
                system.name()
            } else {
                label
            },
            payload_bytes: payload,
            disk_bytes,
            entries,
            build,
            warm: warm[warm.len() / 2],
            cold,
            scanned,
        });
    }
    Ok(rows)
}

fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e9 / d.as_secs_f64().max(1e-9)
}

/// The recovery table.
pub fn table(rows: &[RecoveryRow]) -> String {
    let mut out = String::from(
        "recovery: open time vs retained log size (payload GB/s = log payload / open time; warm = median of 3 opens right after writing, cold = after posix_fadvise(DONTNEED) of every file)\n",
    );
    let header = format!(
        "{:<8} {:<13} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "log",
        "system",
        "entries",
        "on disk",
        "open warm",
        "GB/s warm",
        "open cold",
        "GB/s cold",
        "write GB/s"
    );
    let _ = writeln!(out, "{header}");
    let _ = writeln!(out, "{}", "-".repeat(header.len()));
    for r in rows {
        let _ = writeln!(
            out,
            "{:<8} {:<13} {:>9} {:>10} {:>10} {:>10.2} {:>10} {:>10.2} {:>12.2}",
            human_size(r.payload_bytes),
            r.label,
            r.entries,
            format!("{:.0} MiB", r.disk_bytes as f64 / (1 << 20) as f64),
            dur(r.warm),
            gbps(r.payload_bytes, r.warm),
            dur(r.cold),
            gbps(r.payload_bytes, r.cold),
            gbps(r.payload_bytes, r.build),
        );
    }
    out
}

/// The recovery CSV.
pub fn csv(rows: &[RecoveryRow]) -> String {
    let mut out = String::from(
        "system,payload_bytes,disk_bytes,entries,build_s,open_warm_s,open_cold_s,warm_gb_per_s,cold_gb_per_s,bytes_scanned\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{:.4},{:.6},{:.6},{:.3},{:.3},{}",
            r.label,
            r.payload_bytes,
            r.disk_bytes,
            r.entries,
            r.build.as_secs_f64(),
            r.warm.as_secs_f64(),
            r.cold.as_secs_f64(),
            gbps(r.payload_bytes, r.warm),
            gbps(r.payload_bytes, r.cold),
            r.scanned.map_or(String::new(), |s| s.to_string()),
        );
    }
    out
}
