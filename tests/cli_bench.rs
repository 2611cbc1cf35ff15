//! `raftwal bench` end to end on a tiny grid: the table, the goal check with its A/A control,
//! the CSV and the SVG; and a clear error for a bad argument.

use std::process::Command;

fn raftwal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_raftwal"))
}

#[test]
fn a_tiny_run_prints_the_table_and_goals_and_writes_csv_and_svg() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    let out = raftwal()
        .args([
            "bench",
            "--quick",
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
        ])
        .arg("--dir")
        .arg(tmp.path())
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
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
