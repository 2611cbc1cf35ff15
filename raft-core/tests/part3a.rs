//! Lab 3A: leader election (TestInitialElection3A, TestReElection3A, TestManyElections3A).

use raftwal_raft::sim::{Scenario, TResult, Tester, ELECTION_TIMEOUT_MS};

const INITIAL_ELECTION: Scenario = Scenario {
    name: "InitialElection",
    part: "3A",
    servers: 3,
    unreliable: false,
    snapshots: false,
    body: initial_election,
};

/// A leader is elected, terms agree, and with no failure the leader and term stay put.
fn initial_election(cfg: &mut Tester) -> TResult<()> {
    cfg.check_one_leader()?;
    cfg.sleep(50)?;
    let term1 = cfg.check_terms()?;
    if term1 < 1 {
        return Err(format!("term is {term1}, but should be at least 1"));
    }
    cfg.sleep(2 * ELECTION_TIMEOUT_MS)?;
    let term2 = cfg.check_terms()?;
    if term1 != term2 {
        return Err(format!(
            "term changed from {term1} to {term2} with no failures"
        ));
    }
    cfg.check_one_leader()?;
    Ok(())
}

const RE_ELECTION: Scenario = Scenario {
    name: "ReElection",
    part: "3A",
    servers: 3,
    unreliable: false,
    snapshots: false,
    body: re_election,
};

/// A new leader after the old one disconnects; none without a quorum; one again after.
fn re_election(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    let leader1 = cfg.check_one_leader()?;
    cfg.disconnect(leader1);
    cfg.check_one_leader()?;
    cfg.connect(leader1);
    let leader2 = cfg.check_one_leader()?;
    cfg.disconnect(leader2);
    cfg.disconnect((leader2 + 1) % servers);
    cfg.sleep(2 * ELECTION_TIMEOUT_MS)?;
    cfg.check_no_leader()?;
    cfg.connect((leader2 + 1) % servers);
    cfg.check_one_leader()?;
    cfg.connect(leader2);
    cfg.check_one_leader()?;
    Ok(())
}

const MANY_ELECTIONS: Scenario = Scenario {
    name: "ManyElections",
    part: "3A",
    servers: 7,
    unreliable: false,
    snapshots: false,
    body: many_elections,
};

/// Ten rounds of disconnecting three random nodes of seven: a leader each time.
fn many_elections(cfg: &mut Tester) -> TResult<()> {
    let n = cfg.n() as u64;
    cfg.check_one_leader()?;
    for _ in 0..10 {
        let i1 = cfg.rand_below(n) as usize;
        let i2 = cfg.rand_below(n) as usize;
        let i3 = cfg.rand_below(n) as usize;
        cfg.disconnect(i1);
        cfg.disconnect(i2);
        cfg.disconnect(i3);
        cfg.check_one_leader()?;
        cfg.connect(i1);
        cfg.connect(i2);
        cfg.connect(i3);
    }
    cfg.check_one_leader()?;
    Ok(())
}

raftwal_raft::scenario_tests!(
    initial_election => super::INITIAL_ELECTION,
    re_election => super::RE_ELECTION,
    many_elections => super::MANY_ELECTIONS,
);
