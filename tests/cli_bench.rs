//! `raftwal bench` end to end on a tiny grid: the table, the goal check with its A/A control,
//! the CSV and the SVG; and a clear error for a bad argument.

use std::process::Command;

fn raftwal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_raftwal"))
}

/// `raftwal bench --quick <args>` with its data in `dir` and its files in `out`: its
/// stdout, once it succeeded.
fn bench(dir: &std::path::Path, out: &std::path::Path, args: &[&str]) -> String {
    let run = raftwal()
        .args(["bench", "--quick"])
        .args(args)
        .arg("--dir")
        .arg(dir)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    stdout
}

#[test]
fn a_tiny_run_prints_the_table_and_goals_and_writes_csv_and_svg() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let stdout = bench(
        tmp.path(),
        &out_dir,
        &[
            "--entry-sizes",
            "256",
            "--batches",
            "1,8",
            "--writers",
            "1,4",
            "--slice-secs",
            "0.02",
            "--reps",
            "2",
            "--no-recovery",
        ],
    );
    let systems: &[&str] = if cfg!(feature = "raft-engine") {
        &[
            "raw",
            "raw-again",
            "raw-overwrite",
            "raftwal",
            "raft-engine",
        ]
    } else {
        &["raw", "raw-again", "raw-overwrite", "raftwal"]
    };
    for needle in [
        "entries/s",
        "256B x1 ",
        "256B x8 ",
        "256B x1 w4",
        "goals:",
        "raftwal >= 0.95 x raw",
        "by the median of paired repetitions",
        "A/A control, raw-again (the same loop) / raw:",
        "one fdatasync per batch",
        "group commit 256B x1 w4",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    let csv = std::fs::read_to_string(out_dir.join("bench.csv")).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("entry_size,batch,writers,system,"),
        "{header}"
    );
    let rows: Vec<&str> = lines.collect();
    // Three cells, every system in each.
    assert_eq!(rows.len(), 3 * systems.len(), "{csv}");
    for system in systems {
        let n = rows
            .iter()
            .filter(|r| r.split(',').nth(3) == Some(system))
            .count();
        assert_eq!(n, 3, "{system} in {csv}");
    }
    let svg = std::fs::read_to_string(out_dir.join("throughput.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{svg:.80}"
    );
    // The data directory is removed afterwards.
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("raftwal-bench-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn an_unknown_system_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = raftwal()
        .args(["bench", "--quick", "--systems", "raw,nope", "--no-recovery"])
        .arg("--dir")
        .arg(tmp.path())
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("nope"), "{stderr}");
}

#[test]
fn a_steady_state_run_compacts_inside_the_slices_and_judges_against_raw_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let stdout = bench(
        tmp.path(),
        &tmp.path().join("out"),
        &[
            "--steady-retain-mib",
            "1",
            "--segment-size",
            "1048576",
            "--entry-sizes",
            "4096",
            "--batches",
            "8",
            "--writers",
            "1,4",
            "--slice-secs",
            "0.05",
            "--reps",
            "2",
            "--no-recovery",
        ],
    );
    for needle in [
        "steady state: each log compacted back to 1 MiB",
        "x r-o",
        "raw-overwrite",
        "compactions (inside the timed slices):",
        "goals (steady state):",
        "raftwal >= 0.9 x raw-overwrite",
        "every raftwal compaction <= 1 ms",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?}:\n{stdout}");
    }
    // One writer per log: the concurrent cell is left out; the growing log's raw is not run.
    assert!(!stdout.contains("w4"), "{stdout}");
    assert!(!stdout.contains("raw-again"), "{stdout}");
    // 1 MiB retained, 1 MiB segments, 32 KiB batches: the slices compact.
    let line = stdout
        .lines()
        .find(|l| l.contains("4KiB x8") && l.contains("raftwal") && l.contains("compactions,"))
        .unwrap_or_else(|| panic!("no raftwal compaction line:\n{stdout}"));
    // "4KiB x8 raftwal <count> compactions, ..."
    let count: u64 = line
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(count >= 1, "{line}");
}

#[test]
fn the_raft_rs_section_runs_both_stores_against_the_disk_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let stdout = bench(
        tmp.path(),
        &tmp.path().join("out"),
        &["--raft-rs", "0.2", "--reps", "1", "--entry-sizes", "256"],
    );
    assert!(stdout.contains("disk limit: "), "{stdout}");
    for store in ["raftwal", "raft-engine"] {
        for nodes in [1, 3] {
            let row = format!("| {nodes} | 256 B | {store} |");
            let line = stdout.lines().find(|l| l.starts_with(&row));
            let line = line.unwrap_or_else(|| panic!("no row {row:?}:\n{stdout}"));
            // Every proposal is durable on each node: one fdatasync per node per proposal.
            let syncs: f64 = line.split('|').nth(7).unwrap().trim().parse().unwrap();
            assert!(
                (nodes as f64 * 0.9..=nodes as f64 * 1.1).contains(&syncs),
                "{line}"
            );
        }
    }
}
