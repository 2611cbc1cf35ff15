//! Lab 3D: log compaction (SnapshotBasic, SnapshotInstall, SnapshotInstallUnreliable,
//! SnapshotInstallCrash, SnapshotInstallUnCrash, SnapshotAllCrash, SnapshotInit). The service
//! snapshots every 10 applied commands; the persisted log must stay under 2000 bytes.

use raftwal_raft::sim::{cmd, Scenario, TResult, Tester, SNAPSHOT_INTERVAL};

const fn spec(
    name: &'static str,
    unreliable: bool,
    body: fn(&mut Tester) -> TResult<()>,
) -> Scenario {
    Scenario {
        name,
        part: "3D",
        servers: 3,
        unreliable,
        snapshots: true,
        body,
    }
}

const SNAPSHOT_BASIC: Scenario = spec("SnapshotBasic", false, |c| snap_common(c, false, false));
const SNAPSHOT_INSTALL: Scenario = spec("SnapshotInstall", false, |c| snap_common(c, true, false));
const SNAPSHOT_INSTALL_UNRELIABLE: Scenario = spec("SnapshotInstallUnreliable", true, |c| {
    snap_common(c, true, false)
});
const SNAPSHOT_INSTALL_CRASH: Scenario = spec("SnapshotInstallCrash", false, |c| {
    snap_common(c, false, true)
});
const SNAPSHOT_INSTALL_UNCRASH: Scenario = spec("SnapshotInstallUnCrash", true, |c| {
    snap_common(c, false, true)
});
const SNAPSHOT_ALL_CRASH: Scenario = spec("SnapshotAllCrash", false, snapshot_all_crash);
const SNAPSHOT_INIT: Scenario = spec("SnapshotInit", false, snapshot_init);

fn rand_cmd(cfg: &mut Tester) -> Vec<u8> {
    let r = cfg.rand();
    cmd(r)
}

/// The lab's `snapcommon`: 30 rounds of a disconnected or crashed victim that falls behind
/// by about a snapshot interval and must catch up (by InstallSnapshot when compacted).
fn snap_common(cfg: &mut Tester, disconnect: bool, crash: bool) -> TResult<()> {
    let servers = cfg.n();
    let c = rand_cmd(cfg);
    cfg.one(c, servers, true)?;
    let mut leader1 = cfg.check_one_leader()?;
    for i in 0..30 {
        let (mut victim, mut sender) = ((leader1 + 1) % servers, leader1);
        if i % 3 == 1 {
            sender = (leader1 + 1) % servers;
            victim = leader1;
        }
        if disconnect {
            cfg.disconnect(victim);
            let c = rand_cmd(cfg);
            cfg.one(c, servers - 1, true)?;
        }
        if crash {
            cfg.crash1(victim);
            let c = rand_cmd(cfg);
            cfg.one(c, servers - 1, true)?;
        }
        let nn = SNAPSHOT_INTERVAL / 2 + cfg.rand_below(SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            let c = rand_cmd(cfg);
            cfg.start(sender, c);
        }
        let c = rand_cmd(cfg);
        if !disconnect && !crash {
            cfg.one(c, servers, true)?;
        } else {
            cfg.one(c, servers - 1, true)?;
        }
        // The lab's `LogSize() >= MAXLOGSIZE`, on every server's persisted state.
        cfg.check_log_size()?;
        if disconnect {
            cfg.connect(victim);
            let c = rand_cmd(cfg);
            cfg.one(c, servers, true)?;
            leader1 = cfg.check_one_leader()?;
        }
        if crash {
            cfg.start1(victim);
            cfg.connect(victim);
            let c = rand_cmd(cfg);
            cfg.one(c, servers, true)?;
            leader1 = cfg.check_one_leader()?;
        }
    }
    Ok(())
}

/// Crash and restart every node after each batch; the index never goes back.
fn snapshot_all_crash(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    let c = rand_cmd(cfg);
    cfg.one(c, servers, true)?;
    for _ in 0..5 {
        let nn = SNAPSHOT_INTERVAL / 2 + cfg.rand_below(SNAPSHOT_INTERVAL);
        for _ in 0..nn {
            let c = rand_cmd(cfg);
            cfg.one(c, servers, true)?;
        }
        let c = rand_cmd(cfg);
        let index1 = cfg.one(c, servers, true)?;
        for i in 0..servers {
            cfg.crash1(i);
        }
        for i in 0..servers {
            cfg.start1(i);
            cfg.connect(i);
        }
        let c = rand_cmd(cfg);
        let index2 = cfg.one(c, servers, true)?;
        if index2 < index1 + 1 {
            return Err(format!("index decreased from {index1} to {index2}"));
        }
    }
    Ok(())
}

/// Restart from a snapshot, write one more entry, restart again.
fn snapshot_init(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    let c = rand_cmd(cfg);
    cfg.one(c, servers, true)?;
    for _ in 0..SNAPSHOT_INTERVAL + 1 {
        let c = rand_cmd(cfg);
        cfg.one(c, servers, true)?;
    }
    for _ in 0..2 {
        for i in 0..servers {
            cfg.crash1(i);
        }
        for i in 0..servers {
            cfg.start1(i);
            cfg.connect(i);
        }
        let c = rand_cmd(cfg);
        cfg.one(c, servers, true)?;
    }
    Ok(())
}

raftwal_raft::scenario_tests!(
    snapshot_basic => super::SNAPSHOT_BASIC,
    snapshot_install => super::SNAPSHOT_INSTALL,
    snapshot_install_unreliable => super::SNAPSHOT_INSTALL_UNRELIABLE,
    snapshot_install_crash => super::SNAPSHOT_INSTALL_CRASH,
    snapshot_install_uncrash => super::SNAPSHOT_INSTALL_UNCRASH,
    snapshot_all_crash => super::SNAPSHOT_ALL_CRASH,
    snapshot_init => super::SNAPSHOT_INIT,
);
