//! `raftwal torture` end to end: the simulated mode for a few cycles, and the real-disk mode
//! (a child killed with SIGKILL) for a few cycles in a temporary directory.

use std::process::Command;

fn raftwal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_raftwal"))
}

#[test]
fn simulated_torture_prints_a_summary_table() {
    let out = raftwal()
        .args(["torture", "--seed", "7", "--cycles", "5", "--quiet"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        for row in [
            "distinct crash states",
            "recoveries checked",
            "entries verified",
            "faults: fsync EIO",
            "violations",
        ] {
            assert!(stdout.contains(row), "missing {row:?} in:\n{stdout}");
        }
    } else {
        // A violation must name the seed and the command reproducing it.
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("reproduce with:"), "{stderr}");
        assert!(
            stderr.contains("raftwal torture --seed 7 --cycles"),
            "{stderr}"
        );
    }
}

#[test]
fn a_violation_exits_non_zero_with_the_reproducing_command() {
    // Seed 122 hits a known WAL bug at cycle 32 (see fault-inject's
    // regression_recovery_removes_segments_unordered.rs); once fixed, it runs clean.
    let out = raftwal()
        .args(["torture", "--seed", "122", "--cycles", "32", "--quiet"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(1) => {
            assert!(stderr.contains("VIOLATION"), "{stderr}");
            assert!(
                stderr.contains("raftwal torture --seed 122 --cycles"),
                "{stderr}"
            );
        }
        other => panic!("unexpected exit {other:?}: {stderr}"),
    }
}

#[test]
fn real_disk_torture_kills_the_child_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let out = raftwal()
        .args([
            "torture", "--seed", "3", "--cycles", "3", "--quiet", "--real",
        ])
        .arg(dir.path())
        .args(["--max-kill-delay-ms", "150"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("kill cycles"), "{stdout}");
    let cycles = stdout
        .lines()
        .find(|l| l.contains("kill cycles"))
        .and_then(|l| l.split('|').nth(1))
        .map(str::trim);
    assert_eq!(cycles, Some("3"), "{stdout}");
    // A second run in the same directory is refused rather than mixing histories.
    let again = raftwal()
        .args(["torture", "--cycles", "1", "--quiet", "--real"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
}

#[test]
fn real_disk_torture_keeps_its_journal_elsewhere_and_runs_a_command_after_each_kill() {
    // The journal on another file system than the WAL (here: another directory), and a
    // command between each kill and the reopen: it sees the torture's paths and the cycle.
    let wal_fs = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let journal = elsewhere.path().join("journal.log");
    let calls = elsewhere.path().join("after-kill.log");
    let cmd = format!(
        "test -d \"$RAFTWAL_TORTURE_WAL\" && echo \"$RAFTWAL_TORTURE_CYCLE $RAFTWAL_TORTURE_DIR\" >> {}",
        calls.display()
    );
    let out = raftwal()
        .args([
            "torture", "--seed", "5", "--cycles", "3", "--quiet", "--real",
        ])
        .arg(wal_fs.path())
        .arg("--journal")
        .arg(&journal)
        .args(["--after-kill", &cmd, "--max-kill-delay-ms", "150"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let log = std::fs::read_to_string(&calls).unwrap();
    let cycles: Vec<&str> = log.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(cycles, ["1", "2", "3"], "{log}");
    assert!(log.contains(&wal_fs.path().display().to_string()), "{log}");
    assert!(
        !wal_fs.path().join("journal.log").exists(),
        "the journal lives elsewhere"
    );

    // A failing command stops the run with a clear error.
    let wal_fs = tempfile::tempdir().unwrap();
    let out = raftwal()
        .args([
            "torture", "--seed", "5", "--cycles", "3", "--quiet", "--real",
        ])
        .arg(wal_fs.path())
        .args(["--after-kill", "exit 3", "--max-kill-delay-ms", "50"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--after-kill"), "{stderr}");
}

#[test]
fn the_wal_warnings_go_to_the_log_file_unless_verbose() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("torture.log");
    let args = ["torture", "--seed", "3", "--cycles", "30", "--quiet"];
    let out = raftwal()
        .args(args)
        .args(["--log", log.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("WARN"), "{stderr}");
    assert!(stderr.contains(log.to_str().unwrap()), "{stderr}");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("WARN"),
        "seed 3 makes recovery warn: {logged}"
    );
    let out = raftwal().args(args).arg("--verbose").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("WARN"));
}
