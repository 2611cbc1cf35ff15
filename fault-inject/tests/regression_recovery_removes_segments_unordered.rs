//! WAL bug found by `raftwal torture` (seed 122, cycle 32, the crash-during-recovery probe):
//! recovery removes two segments — `279.wal` (past a torn tail: its entries follow a gap
//! left by lost unsynced writes in `260.wal`) and `260.wal` (entirely at or below the
//! snapshot base 270) — and makes both removals durable with a single directory fsync at
//! the end. Directory operations not yet synced may reach the disk in any order
//! (FAULT-MODEL: "undone independently"), so a power cut during recovery can persist the
//! removal of `260.wal` but not that of `279.wal`. The next open then finds only `279.wal`
//! after base 270 and refuses to start: "the log starts at index 279 but the snapshot base
//! is 270: entries are missing" — a crash during recovery does not converge.
//!
//! Fix direction: remove the segment past the torn tail and sync the directory before
//! removing segments below the base (or treat a lone segment that starts past base + 1 with
//! nothing durable acknowledged in it as an orphan).

#[test]
fn torture_seed_122_cycle_32_crash_during_recovery() {
    if let Err(v) = fault_inject::torture::run(122, 32) {
        panic!("{v}");
    }
}
