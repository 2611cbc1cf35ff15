//! A run is a function of its seed: the same seed gives the same trace figures, so every
//! printed failing seed replays exactly.

use raftwal_raft::sim::{run_seed, Scenario, StoreKind, TResult, Tester};

/// A bit of everything: unreliable network, long reordering, crashes mid-persist, snapshots.
fn mixed(cfg: &mut Tester) -> TResult<()> {
    raftwal_raft::sim::mixed_rounds(cfg, 30)
}

const MIXED: Scenario = Scenario {
    name: "Mixed",
    part: "-",
    servers: 3,
    unreliable: true,
    snapshots: true,
    body: mixed,
};

#[test]
fn the_same_seed_replays_the_same_run() {
    for store in [StoreKind::Mem, StoreKind::Wal] {
        for seed in [1, 2] {
            let a = run_seed(&MIXED, store, seed);
            let b = run_seed(&MIXED, store, seed);
            assert!(a.result.is_ok(), "{store} seed {seed}: {:?}", a.result);
            let key = |o: &raftwal_raft::sim::SeedOutcome| {
                (
                    o.stats.sim_ms,
                    o.stats.rpcs,
                    o.stats.bytes,
                    o.stats.max_index,
                    o.stats.mid_persist_crashes,
                )
            };
            assert_eq!(key(&a), key(&b), "{store} seed {seed} is not deterministic");
        }
    }
}

#[test]
fn different_seeds_give_different_runs() {
    let a = run_seed(&MIXED, StoreKind::Wal, 1);
    let b = run_seed(&MIXED, StoreKind::Wal, 2);
    assert_ne!(
        (a.stats.sim_ms, a.stats.rpcs),
        (b.stats.sim_ms, b.stats.rpcs)
    );
}
