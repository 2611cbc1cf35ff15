//! The crash points and their knob: with every WAL crash mid-persist, the power cuts strike
//! inside the service's `Snapshot()` and inside WAL recovery at restart too, and the runs
//! still pass every check; with the share at zero, no cut is mid-persist.

use raftwal_raft::sim::{
    cmd, run_seed_with, Scenario, SimOptions, StoreKind, TResult, Tester, SNAPSHOT_INTERVAL,
};

/// The lab's snapcommon with crashes (TestSnapshotInstallCrash3D).
fn snapshot_install_crash(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    let r = cfg.rand();
    cfg.one(cmd(r), servers, true)?;
    let mut leader1 = cfg.check_one_leader()?;
    for i in 0..30 {
        let (mut victim, mut sender) = ((leader1 + 1) % servers, leader1);
        if i % 3 == 1 {
            sender = (leader1 + 1) % servers;
            victim = leader1;
        }
        cfg.crash1(victim);
        let r = cfg.rand();
        cfg.one(cmd(r), servers - 1, true)?;
        let nn = SNAPSHOT_INTERVAL / 2 + cfg.rand_below(SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            let r = cfg.rand();
            cfg.start(sender, cmd(r));
        }
        let r = cfg.rand();
        cfg.one(cmd(r), servers - 1, true)?;
        cfg.check_log_size()?;
        cfg.start1(victim);
        cfg.connect(victim);
        let r = cfg.rand();
        cfg.one(cmd(r), servers, true)?;
        leader1 = cfg.check_one_leader()?;
    }
    Ok(())
}

const SNAPSHOT_INSTALL_CRASH: Scenario = Scenario {
    name: "SnapshotInstallCrash",
    part: "3D",
    servers: 3,
    unreliable: false,
    snapshots: true,
    body: snapshot_install_crash,
};

#[test]
fn every_crash_mid_persist_reaches_snapshot_and_recovery() {
    let opts = SimOptions {
        mid_persist_share: 1.0,
        ..SimOptions::default()
    };
    let (mut in_snapshot, mut in_recovery) = (0, 0);
    for seed in 1..=5 {
        let o = run_seed_with(&SNAPSHOT_INSTALL_CRASH, StoreKind::Wal, seed, opts);
        assert!(o.result.is_ok(), "seed {seed}: {:?}", o.result);
        let s = o.stats;
        eprintln!(
            "seed {seed}: crashes {}, mid-persist {}, in Snapshot {}, recovery cut {}",
            s.crashes, s.mid_persist_crashes, s.snapshot_cuts, s.recovery_cuts
        );
        assert!(s.mid_persist_crashes * 10 >= s.crashes * 8, "seed {seed}");
        in_snapshot += s.snapshot_cuts;
        in_recovery += s.recovery_cuts;
    }
    assert!(in_snapshot > 0, "no cut struck inside Snapshot()");
    assert!(in_recovery > 0, "no cut struck inside recovery");
}

#[test]
fn a_share_of_zero_cuts_only_between_inputs() {
    let opts = SimOptions {
        mid_persist_share: 0.0,
        ..SimOptions::default()
    };
    for seed in 1..=3 {
        let o = run_seed_with(&SNAPSHOT_INSTALL_CRASH, StoreKind::Wal, seed, opts);
        assert!(o.result.is_ok(), "seed {seed}: {:?}", o.result);
        assert_eq!(o.stats.mid_persist_crashes, 0);
        assert_eq!(o.stats.recovery_cuts, 0);
        assert!(o.stats.crashes >= 30);
    }
}
