//! Lab 3C: persistence (Persist1, Persist2, Persist3, Figure8, UnreliableAgree,
//! Figure8Unreliable, ReliableChurn, UnreliableChurn). Over the WAL, every crash is a power
//! cut of the node's simulated disk and every restart runs WAL recovery.

use raftwal_raft::sim::{cmd, Scenario, TResult, Tester, ELECTION_TIMEOUT_MS};

const fn spec(
    name: &'static str,
    servers: usize,
    unreliable: bool,
    body: fn(&mut Tester) -> TResult<()>,
) -> Scenario {
    Scenario {
        name,
        part: "3C",
        servers,
        unreliable,
        snapshots: false,
        body,
    }
}

const PERSIST1: Scenario = spec("Persist1", 3, false, persist1);
const PERSIST2: Scenario = spec("Persist2", 5, false, persist2);
const PERSIST3: Scenario = spec("Persist3", 3, false, persist3);
const FIGURE8: Scenario = spec("Figure8", 5, false, figure8);
const UNRELIABLE_AGREE: Scenario = spec("UnreliableAgree", 5, true, unreliable_agree);
const FIGURE8_UNRELIABLE: Scenario = spec("Figure8Unreliable", 5, true, figure8_unreliable);
const RELIABLE_CHURN: Scenario = spec("ReliableChurn", 5, false, churn);
const UNRELIABLE_CHURN: Scenario = spec("UnreliableChurn", 5, true, churn);

/// Basic persistence: restarts of all nodes, of the leader, of a follower.
fn persist1(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    cfg.one(cmd(11), servers, true)?;
    for i in 0..servers {
        cfg.start1(i);
    }
    for i in 0..servers {
        cfg.disconnect(i);
        cfg.connect(i);
    }
    cfg.one(cmd(12), servers, true)?;
    let leader1 = cfg.check_one_leader()?;
    cfg.disconnect(leader1);
    cfg.start1(leader1);
    cfg.connect(leader1);
    cfg.one(cmd(13), servers, true)?;
    let leader2 = cfg.check_one_leader()?;
    cfg.disconnect(leader2);
    cfg.one(cmd(14), servers - 1, true)?;
    cfg.start1(leader2);
    cfg.connect(leader2);
    cfg.wait(4, servers, None)?;
    let i3 = (cfg.check_one_leader()? + 1) % servers;
    cfg.disconnect(i3);
    cfg.one(cmd(15), servers - 1, true)?;
    cfg.start1(i3);
    cfg.connect(i3);
    cfg.one(cmd(16), servers, true)?;
    Ok(())
}

/// More persistence: rounds of partitions and restarts of minorities.
fn persist2(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    let mut index = 1u64;
    for _ in 0..5 {
        cfg.one(cmd(10 + index), servers, true)?;
        index += 1;
        let leader1 = cfg.check_one_leader()?;
        cfg.disconnect((leader1 + 1) % servers);
        cfg.disconnect((leader1 + 2) % servers);
        cfg.one(cmd(10 + index), servers - 2, true)?;
        index += 1;
        cfg.disconnect(leader1 % servers);
        cfg.disconnect((leader1 + 3) % servers);
        cfg.disconnect((leader1 + 4) % servers);
        cfg.start1((leader1 + 1) % servers);
        cfg.start1((leader1 + 2) % servers);
        cfg.connect((leader1 + 1) % servers);
        cfg.connect((leader1 + 2) % servers);
        cfg.sleep(ELECTION_TIMEOUT_MS)?;
        cfg.start1((leader1 + 3) % servers);
        cfg.connect((leader1 + 3) % servers);
        cfg.one(cmd(10 + index), servers - 2, true)?;
        index += 1;
        cfg.connect((leader1 + 4) % servers);
        cfg.connect(leader1 % servers);
    }
    cfg.one(cmd(1000), servers, true)?;
    Ok(())
}

/// Partitioned leader and one follower crash; the leader restarts with its log.
fn persist3(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    cfg.one(cmd(101), 3, true)?;
    let leader = cfg.check_one_leader()?;
    cfg.disconnect((leader + 2) % servers);
    cfg.one(cmd(102), 2, true)?;
    cfg.crash1(leader % servers);
    cfg.crash1((leader + 1) % servers);
    cfg.connect((leader + 2) % servers);
    cfg.start1(leader % servers);
    cfg.connect(leader % servers);
    cfg.one(cmd(103), 2, true)?;
    cfg.start1((leader + 1) % servers);
    cfg.connect((leader + 1) % servers);
    cfg.one(cmd(104), servers, true)?;
    Ok(())
}

/// Figure 8: leaders crash right after appending; a leader must not commit an entry of an
/// earlier term by counting replicas.
fn figure8(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    let r = cfg.rand();
    cfg.one(cmd(r), 1, true)?;
    let mut nup = servers;
    for _ in 0..1000 {
        let mut leader = None;
        for i in 0..servers {
            let r = cfg.rand();
            if cfg.is_up(i) && cfg.start(i, cmd(r)).is_some() {
                leader = Some(i);
            }
        }
        if cfg.rand_below(1000) < 100 {
            let ms = cfg.rand_below(ELECTION_TIMEOUT_MS / 2);
            cfg.sleep(ms)?;
        } else {
            let ms = cfg.rand_below(13);
            cfg.sleep(ms)?;
        }
        if let Some(l) = leader {
            cfg.crash1(l);
            nup -= 1;
        }
        if nup < 3 {
            let s = cfg.rand_below(servers as u64) as usize;
            if !cfg.is_up(s) {
                cfg.start1(s);
                cfg.connect(s);
                nup += 1;
            }
        }
    }
    for i in 0..servers {
        if !cfg.is_up(i) {
            cfg.start1(i);
            cfg.connect(i);
        }
    }
    let r = cfg.rand();
    cfg.one(cmd(r), servers, true)?;
    Ok(())
}

/// Agreement with an unreliable network and concurrent clients.
fn unreliable_agree(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    let mut clients = Vec::new();
    for iter in 1..50u64 {
        for j in 0..4u64 {
            clients.push(cfg.spawn_one(cmd(100 * iter + j), 1, true));
        }
        cfg.one(cmd(iter), 1, true)?;
    }
    cfg.set_unreliable(false);
    for c in clients {
        cfg.join_one(c)?;
    }
    cfg.one(cmd(100), servers, true)?;
    Ok(())
}

/// Figure 8 with an unreliable, reordering network: leaders get disconnected, not crashed.
fn figure8_unreliable(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    let r = cfg.rand_below(10000);
    cfg.one(cmd(r), 1, true)?;
    let mut nup = servers;
    for iters in 0..1000 {
        if iters == 200 {
            cfg.set_long_reordering(true);
        }
        let mut leader = None;
        for i in 0..servers {
            let r = cfg.rand_below(10000);
            if cfg.start(i, cmd(r)).is_some() && cfg.is_connected(i) {
                leader = Some(i);
            }
        }
        if cfg.rand_below(1000) < 100 {
            let ms = cfg.rand_below(ELECTION_TIMEOUT_MS / 2);
            cfg.sleep(ms)?;
        } else {
            let ms = cfg.rand_below(13);
            cfg.sleep(ms)?;
        }
        if let Some(l) = leader {
            if cfg.rand_below(1000) < ELECTION_TIMEOUT_MS / 2 {
                cfg.disconnect(l);
                nup -= 1;
            }
        }
        if nup < 3 {
            let s = cfg.rand_below(servers as u64) as usize;
            if !cfg.is_connected(s) {
                cfg.connect(s);
                nup += 1;
            }
        }
    }
    for i in 0..servers {
        if !cfg.is_connected(i) {
            cfg.connect(i);
        }
    }
    let r = cfg.rand_below(10000);
    cfg.one(cmd(r), servers, true)?;
    Ok(())
}

/// The lab's `internalChurn`: clients propose while nodes are disconnected, crashed and
/// restarted at random; every value a client saw committed must be in the final log.
fn churn(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    let clients: Vec<_> = (0..3).map(|me| cfg.spawn_churn(me)).collect();
    for _ in 0..20 {
        if cfg.rand_below(1000) < 200 {
            let i = cfg.rand_below(servers as u64) as usize;
            cfg.disconnect(i);
        }
        if cfg.rand_below(1000) < 500 {
            let i = cfg.rand_below(servers as u64) as usize;
            if !cfg.is_up(i) {
                cfg.start1(i);
            }
            cfg.connect(i);
        }
        if cfg.rand_below(1000) < 200 {
            let i = cfg.rand_below(servers as u64) as usize;
            if cfg.is_up(i) {
                cfg.crash1(i);
            }
        }
        cfg.sleep(ELECTION_TIMEOUT_MS * 7 / 10)?;
    }
    cfg.sleep(ELECTION_TIMEOUT_MS)?;
    cfg.set_unreliable(false);
    for i in 0..servers {
        if !cfg.is_up(i) {
            cfg.start1(i);
        }
        cfg.connect(i);
    }
    cfg.stop_churn();
    let mut values = Vec::new();
    for c in clients {
        values.extend(cfg.join_churn(c)?);
    }
    cfg.sleep(ELECTION_TIMEOUT_MS)?;
    let r = cfg.rand();
    let last_index = cfg.one(cmd(r), servers, true)?;
    let mut really = Vec::new();
    for index in 1..=last_index {
        match cfg.wait(index, servers, None)? {
            Some(v) => really.push(v),
            None => return Err(format!("index {index} not decided")),
        }
    }
    for v in &values {
        if !really.contains(v) {
            return Err("didn't find a value".into());
        }
    }
    Ok(())
}

raftwal_raft::scenario_tests!(
    persist1 => super::PERSIST1,
    persist2 => super::PERSIST2,
    persist3 => super::PERSIST3,
    figure8 => super::FIGURE8,
    unreliable_agree => super::UNRELIABLE_AGREE,
    figure8_unreliable => super::FIGURE8_UNRELIABLE,
    reliable_churn => super::RELIABLE_CHURN,
    unreliable_churn => super::UNRELIABLE_CHURN,
);
