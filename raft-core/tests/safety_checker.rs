//! The safety checker is not vacuous: each planted bug ([`raftwal_raft::Bugs`]) is caught by the
//! checker within a few seeds, on runs that the lab's own checks alone let pass in some of
//! those seeds; with no bug, the same runs show no violation.
//!
//! Each seed runs once, with the checker observing (`CheckerMode::Observe`: it records
//! violations without failing the run), so the lab's checks and the checker judge the very
//! same run. Seeds are `1..=RAFT_BUG_SEEDS` (default 10); every test prints them.

use raftwal_raft::sim::{
    cmd, run_seed_with, CheckerMode, Scenario, SimOptions, StoreKind, TResult, Tester,
    ELECTION_TIMEOUT_MS,
};
use raftwal_raft::Bugs;

/// The lab's TestFigure83C: leaders crash right after taking commands, nodes restart at
/// random, and in the end all must agree.
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

/// The lab's TestFigure8Unreliable3C: leaders disconnected right after taking commands on
/// an unreliable network with long reordering, and in the end all must agree.
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

/// The lab's TestPersist23C: rounds of partitions and restarts of minorities.
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

const FIGURE8_UNRELIABLE: Scenario = Scenario {
    name: "Figure8Unreliable",
    part: "3C",
    servers: 5,
    unreliable: true,
    snapshots: false,
    body: figure8_unreliable,
};

const PERSIST2: Scenario = Scenario {
    name: "Persist2",
    part: "3C",
    servers: 5,
    unreliable: false,
    snapshots: false,
    body: persist2,
};

const FIGURE8: Scenario = Scenario {
    name: "Figure8",
    part: "3C",
    servers: 5,
    unreliable: false,
    snapshots: false,
    body: figure8,
};

fn seeds() -> Vec<u64> {
    let n = std::env::var("RAFT_BUG_SEEDS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(10u64);
    (1..=n).collect()
}

/// What the checker and the lab's checks made of one bug over the seeds.
struct Verdict {
    seeds: Vec<u64>,
    /// Seeds where the checker found a violation.
    checker: Vec<u64>,
    /// Seeds where the lab's checks failed the run.
    lab: Vec<u64>,
}

impl Verdict {
    fn checker_only(&self) -> Vec<u64> {
        self.checker
            .iter()
            .copied()
            .filter(|s| !self.lab.contains(s))
            .collect()
    }
}

fn judge(what: &str, scenario: &Scenario, store: StoreKind, bugs: Bugs) -> Verdict {
    let seeds = seeds();
    let opts = SimOptions {
        checker: CheckerMode::Observe,
        bugs,
        ..SimOptions::default()
    };
    let mut v = Verdict {
        seeds: seeds.clone(),
        checker: Vec::new(),
        lab: Vec::new(),
    };
    let mut first = None;
    for &seed in &seeds {
        let o = run_seed_with(scenario, store, seed, opts);
        if let Some(msg) = &o.violation {
            v.checker.push(seed);
            first.get_or_insert_with(|| format!("seed {seed}: {msg}"));
        }
        if o.result.is_err() {
            v.lab.push(seed);
        }
    }
    let head = |v: &[u64]| {
        let shown: Vec<String> = v.iter().take(12).map(u64::to_string).collect();
        let more = if v.len() > 12 { ", ..." } else { "" };
        format!("[{}{more}]", shown.join(", "))
    };
    eprintln!(
        "planted bug {what} [{} {store}] seeds 1..={}: checker caught {}/{} {}, lab's checks failed {}/{} {}, caught by the checker only {}/{} {}; first violation: {}",
        scenario.name,
        v.seeds.len(),
        v.checker.len(),
        v.seeds.len(),
        head(&v.checker),
        v.lab.len(),
        v.seeds.len(),
        head(&v.lab),
        v.checker_only().len(),
        v.seeds.len(),
        head(&v.checker_only()),
        first.as_deref().unwrap_or("none"),
    );
    v
}

fn assert_caught(v: &Verdict) {
    assert!(
        !v.checker.is_empty(),
        "the checker caught nothing in seeds {:?}",
        v.seeds
    );
    assert!(
        !v.checker_only().is_empty(),
        "the lab's checks alone caught every seed the checker caught ({:?}): the bug does not \
         show the checker's worth here",
        v.checker
    );
}

#[test]
fn without_a_bug_the_checker_finds_nothing() {
    for scenario in [&FIGURE8, &FIGURE8_UNRELIABLE, &PERSIST2] {
        for store in [StoreKind::Mem, StoreKind::Wal] {
            let v = judge("none", scenario, store, Bugs::default());
            assert!(
                v.checker.is_empty(),
                "violations without a bug: {:?}",
                v.checker
            );
            assert!(v.lab.is_empty(), "lab failures without a bug: {:?}", v.lab);
        }
    }
}

#[test]
fn a_vote_not_persisted_is_caught() {
    let bugs = Bugs {
        unpersisted_vote: true,
        ..Bugs::default()
    };
    for store in [StoreKind::Mem, StoreKind::Wal] {
        assert_caught(&judge("unpersisted_vote", &FIGURE8, store, bugs));
    }
}

#[test]
fn the_figure8_rule_removed_is_caught() {
    let bugs = Bugs {
        figure8_commit: true,
        ..Bugs::default()
    };
    for (scenario, store) in [
        (&FIGURE8, StoreKind::Mem),
        (&FIGURE8, StoreKind::Wal),
        (&FIGURE8_UNRELIABLE, StoreKind::Mem),
    ] {
        assert_caught(&judge("figure8_commit", scenario, store, bugs));
    }
}

#[test]
fn no_sync_after_appends_is_caught() {
    let bugs = Bugs {
        no_sync_after_append: true,
        ..Bugs::default()
    };
    // MemStorage makes every append durable at once: the bug only exists over the WAL.
    assert_caught(&judge(
        "no_sync_after_append",
        &FIGURE8,
        StoreKind::Wal,
        bugs,
    ));
    // Where restarted followers lose what they acknowledged wholesale, the lab sees it too;
    // the checker still catches every seed.
    let v = judge("no_sync_after_append", &PERSIST2, StoreKind::Wal, bugs);
    assert_eq!(v.checker, v.seeds, "the checker missed seeds");
}
