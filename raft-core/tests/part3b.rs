//! Lab 3B: log replication (BasicAgree, RPCBytes, FollowerFailure, LeaderFailure, FailAgree,
//! FailNoAgree, ConcurrentStarts, Rejoin, Backup, Count).

use raftwal_raft::sim::{cmd, Scenario, TResult, Tester, ELECTION_TIMEOUT_MS};

const fn spec(
    name: &'static str,
    servers: usize,
    body: fn(&mut Tester) -> TResult<()>,
) -> Scenario {
    Scenario {
        name,
        part: "3B",
        servers,
        unreliable: false,
        snapshots: false,
        body,
    }
}

const BASIC_AGREE: Scenario = spec("BasicAgree", 3, basic_agree);
const RPC_BYTES: Scenario = spec("RPCBytes", 3, rpc_bytes);
const FOLLOWER_FAILURE: Scenario = spec("FollowerFailure", 3, follower_failure);
const LEADER_FAILURE: Scenario = spec("LeaderFailure", 3, leader_failure);
const FAIL_AGREE: Scenario = spec("FailAgree", 3, fail_agree);
const FAIL_NO_AGREE: Scenario = spec("FailNoAgree", 5, fail_no_agree);
const CONCURRENT_STARTS: Scenario = spec("ConcurrentStarts", 3, concurrent_starts);
const REJOIN: Scenario = spec("Rejoin", 3, rejoin);
const BACKUP: Scenario = spec("Backup", 5, backup);
const COUNT: Scenario = spec("Count", 3, count);

/// Three commands agreed in order at indices 1, 2, 3; nothing committed before Start.
fn basic_agree(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    for index in 1..=3u64 {
        let (nd, _) = cfg.n_committed(index)?;
        if nd > 0 {
            return Err("some have committed before Start()".into());
        }
        let xindex = cfg.one(cmd(index * 100), servers, false)?;
        if xindex != index {
            return Err(format!("got index {xindex} but expected {index}"));
        }
    }
    Ok(())
}

/// Each command is sent to each follower about once: bytes ≤ servers × payload + 50 000.
fn rpc_bytes(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    cfg.one(cmd(99), servers, false)?;
    let bytes0 = cfg.bytes_total();
    let mut sent = 0u64;
    for index in 2..12u64 {
        let c: Vec<u8> = (0..5000).map(|_| b'a' + cfg.rand_below(26) as u8).collect();
        sent += c.len() as u64;
        let xindex = cfg.one(c, servers, false)?;
        if xindex != index {
            return Err(format!("got index {xindex} but expected {index}"));
        }
    }
    let got = cfg.bytes_total() - bytes0;
    let expected = servers as u64 * sent;
    if got > expected + 50_000 {
        return Err(format!(
            "too many RPC bytes; got {got}, expected {expected}"
        ));
    }
    Ok(())
}

/// Progress with one follower gone; no commit once two of three are gone.
fn follower_failure(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    cfg.one(cmd(101), servers, false)?;
    let leader1 = cfg.check_one_leader()?;
    cfg.disconnect((leader1 + 1) % servers);
    cfg.one(cmd(102), servers - 1, false)?;
    cfg.sleep(ELECTION_TIMEOUT_MS)?;
    cfg.one(cmd(103), servers - 1, false)?;
    let leader2 = cfg.check_one_leader()?;
    cfg.disconnect((leader2 + 1) % servers);
    cfg.disconnect((leader2 + 2) % servers);
    let Some((index, _)) = cfg.start(leader2, cmd(104)) else {
        return Err("leader rejected Start()".into());
    };
    if index != 4 {
        return Err(format!("expected index 4, got {index}"));
    }
    cfg.sleep(2 * ELECTION_TIMEOUT_MS)?;
    let (n, _) = cfg.n_committed(index)?;
    if n > 0 {
        return Err(format!("{n} committed but no majority"));
    }
    Ok(())
}

/// Progress after the leader disconnects; no commit once two leaders are gone.
fn leader_failure(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    cfg.one(cmd(101), servers, false)?;
    let leader1 = cfg.check_one_leader()?;
    cfg.disconnect(leader1);
    cfg.one(cmd(102), servers - 1, false)?;
    cfg.sleep(ELECTION_TIMEOUT_MS)?;
    cfg.one(cmd(103), servers - 1, false)?;
    let leader2 = cfg.check_one_leader()?;
    cfg.disconnect(leader2);
    for i in 0..servers {
        cfg.start(i, cmd(104));
    }
    cfg.sleep(2 * ELECTION_TIMEOUT_MS)?;
    let (n, _) = cfg.n_committed(4)?;
    if n > 0 {
        return Err(format!("{n} committed but no majority"));
    }
    Ok(())
}

/// A follower that was disconnected catches up when it comes back.
fn fail_agree(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    cfg.one(cmd(101), servers, false)?;
    let leader = cfg.check_one_leader()?;
    cfg.disconnect((leader + 1) % servers);
    cfg.one(cmd(102), servers - 1, false)?;
    cfg.one(cmd(103), servers - 1, false)?;
    cfg.sleep(ELECTION_TIMEOUT_MS)?;
    cfg.one(cmd(104), servers - 1, false)?;
    cfg.one(cmd(105), servers - 1, false)?;
    cfg.connect((leader + 1) % servers);
    cfg.one(cmd(106), servers, true)?;
    cfg.sleep(ELECTION_TIMEOUT_MS)?;
    cfg.one(cmd(107), servers, true)?;
    Ok(())
}

/// No commit with three of five disconnected; agreement resumes after they return.
fn fail_no_agree(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    cfg.one(cmd(10), servers, false)?;
    let leader = cfg.check_one_leader()?;
    for k in 1..=3 {
        cfg.disconnect((leader + k) % servers);
    }
    let Some((index, _)) = cfg.start(leader, cmd(20)) else {
        return Err("leader rejected Start()".into());
    };
    if index != 2 {
        return Err(format!("expected index 2, got {index}"));
    }
    cfg.sleep(2 * ELECTION_TIMEOUT_MS)?;
    let (n, _) = cfg.n_committed(index)?;
    if n > 0 {
        return Err(format!("{n} committed but no majority"));
    }
    for k in 1..=3 {
        cfg.connect((leader + k) % servers);
    }
    let leader2 = cfg.check_one_leader()?;
    let Some((index2, _)) = cfg.start(leader2, cmd(30)) else {
        return Err("leader2 rejected Start()".into());
    };
    if !(2..=3).contains(&index2) {
        return Err(format!("unexpected index {index2}"));
    }
    cfg.one(cmd(1000), servers, true)?;
    Ok(())
}

/// Five Starts at once in one term all commit.
fn concurrent_starts(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    'attempt: for attempt in 0..5 {
        if attempt > 0 {
            cfg.sleep(3000)?;
        }
        let leader = cfg.check_one_leader()?;
        let Some((_, term)) = cfg.start(leader, cmd(1)) else {
            continue;
        };
        let mut indexes = Vec::new();
        for ii in 0..5u64 {
            match cfg.start(leader, cmd(100 + ii)) {
                Some((i, t)) if t == term => indexes.push(i),
                _ => {}
            }
        }
        for j in 0..servers {
            if let Some((t, _)) = cfg.get_state(j) {
                if t != term {
                    continue 'attempt;
                }
            }
        }
        let mut cmds = Vec::new();
        for index in indexes {
            match cfg.wait(index, servers, Some(term))? {
                Some(c) => cmds.push(c),
                None => continue 'attempt,
            }
        }
        for ii in 0..5u64 {
            if !cmds.contains(&cmd(100 + ii)) {
                return Err(format!(
                    "cmd {} missing in {} commands",
                    100 + ii,
                    cmds.len()
                ));
            }
        }
        return Ok(());
    }
    Err("term changed too often".into())
}

/// A partitioned leader's uncommitted entries are replaced when it rejoins.
fn rejoin(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    cfg.one(cmd(101), servers, true)?;
    let leader1 = cfg.check_one_leader()?;
    cfg.disconnect(leader1);
    cfg.start(leader1, cmd(102));
    cfg.start(leader1, cmd(103));
    cfg.start(leader1, cmd(104));
    cfg.one(cmd(103), 2, true)?;
    let leader2 = cfg.check_one_leader()?;
    cfg.disconnect(leader2);
    cfg.connect(leader1);
    cfg.one(cmd(104), 2, true)?;
    cfg.connect(leader2);
    cfg.one(cmd(105), servers, true)?;
    Ok(())
}

/// Leaders back up quickly over incorrect follower logs (fast backup).
fn backup(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    let r = cfg.rand();
    cfg.one(cmd(r), servers, true)?;
    let leader1 = cfg.check_one_leader()?;
    for k in 2..=4 {
        cfg.disconnect((leader1 + k) % servers);
    }
    for _ in 0..50 {
        let r = cfg.rand();
        cfg.start(leader1, cmd(r));
    }
    cfg.sleep(ELECTION_TIMEOUT_MS / 2)?;
    cfg.disconnect(leader1 % servers);
    cfg.disconnect((leader1 + 1) % servers);
    for k in 2..=4 {
        cfg.connect((leader1 + k) % servers);
    }
    for _ in 0..50 {
        let r = cfg.rand();
        cfg.one(cmd(r), 3, true)?;
    }
    let leader2 = cfg.check_one_leader()?;
    let mut other = (leader1 + 2) % servers;
    if leader2 == other {
        other = (leader2 + 1) % servers;
    }
    cfg.disconnect(other);
    for _ in 0..50 {
        let r = cfg.rand();
        cfg.start(leader2, cmd(r));
    }
    cfg.sleep(ELECTION_TIMEOUT_MS / 2)?;
    for i in 0..servers {
        cfg.disconnect(i);
    }
    cfg.connect(leader1 % servers);
    cfg.connect((leader1 + 1) % servers);
    cfg.connect(other);
    for _ in 0..50 {
        let r = cfg.rand();
        cfg.one(cmd(r), 3, true)?;
    }
    for i in 0..servers {
        cfg.connect(i);
    }
    let r = cfg.rand();
    cfg.one(cmd(r), servers, true)?;
    Ok(())
}

/// RPC counts: ≤ 30 for an election, ≤ (10+1+3)×3 for 11 agreements, ≤ 60 per idle second.
fn count(cfg: &mut Tester) -> TResult<()> {
    let servers = cfg.n();
    let rpcs = |cfg: &Tester| (0..servers).map(|j| cfg.rpc_count(j)).sum::<u64>();
    cfg.check_one_leader()?;
    let total1 = rpcs(cfg);
    if !(1..=30).contains(&total1) {
        return Err(format!(
            "too many or few RPCs ({total1}) to elect initial leader"
        ));
    }
    let mut total2 = 0;
    let mut success = false;
    'attempt: for attempt in 0..5 {
        if attempt > 0 {
            cfg.sleep(3000)?;
        }
        let leader = cfg.check_one_leader()?;
        let total1 = rpcs(cfg);
        let iters = 10u64;
        let Some((starti, term)) = cfg.start(leader, cmd(1)) else {
            continue;
        };
        let mut cmds = Vec::new();
        for i in 1..iters + 2 {
            let x = cfg.rand();
            cmds.push(x);
            let Some((index1, term1)) = cfg.start(leader, cmd(x)) else {
                continue 'attempt;
            };
            if term1 != term {
                continue 'attempt;
            }
            if starti + i != index1 {
                return Err("Start() failed".into());
            }
        }
        for i in 1..iters + 1 {
            match cfg.wait(starti + i, servers, Some(term))? {
                None => continue 'attempt,
                Some(c) if c != cmd(cmds[(i - 1) as usize]) => {
                    return Err(format!("wrong value committed for index {}", starti + i))
                }
                Some(_) => {}
            }
        }
        for j in 0..servers {
            if let Some((t, _)) = cfg.get_state(j) {
                if t != term {
                    continue 'attempt;
                }
            }
        }
        total2 = rpcs(cfg);
        if total2 - total1 > (iters + 1 + 3) * 3 {
            return Err(format!(
                "too many RPCs ({}) for {iters} entries",
                total2 - total1
            ));
        }
        success = true;
        break;
    }
    if !success {
        return Err("term changed too often".into());
    }
    cfg.sleep(ELECTION_TIMEOUT_MS)?;
    let total3 = rpcs(cfg);
    if total3 - total2 > 3 * 20 {
        return Err(format!(
            "too many RPCs ({}) for 1 second of idleness",
            total3 - total2
        ));
    }
    Ok(())
}

raftwal_raft::scenario_tests!(
    basic_agree => super::BASIC_AGREE,
    rpc_bytes => super::RPC_BYTES,
    follower_failure => super::FOLLOWER_FAILURE,
    leader_failure => super::LEADER_FAILURE,
    fail_agree => super::FAIL_AGREE,
    fail_no_agree => super::FAIL_NO_AGREE,
    concurrent_starts => super::CONCURRENT_STARTS,
    rejoin => super::REJOIN,
    backup => super::BACKUP,
    count => super::COUNT,
);
