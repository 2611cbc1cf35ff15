//! `raftwal demo` end to end: a short run with crashes must verify and exit 0.

use std::process::Command;

#[test]
fn demo_runs_crashes_nodes_and_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_raftwal"))
        .args([
            "demo",
            "--duration",
            "3",
            "--seed",
            "7",
            "--crash-every-ms",
            "600",
            "--quiet",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("run raftwal demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("verification            OK"), "{stdout}");
    assert!(stdout.contains("restarts"), "{stdout}");
    for i in 0..3 {
        assert!(
            dir.path().join(format!("node-{i}")).is_dir(),
            "--dir keeps node-{i}'s WAL"
        );
    }
}

#[test]
fn demo_rejects_zero_nodes() {
    let out = Command::new(env!("CARGO_BIN_EXE_raftwal"))
        .args(["demo", "--nodes", "0", "--quiet"])
        .output()
        .expect("run raftwal demo");
    assert!(!out.status.success());
}
