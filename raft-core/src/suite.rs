//! The storage test suite every [`Storage`] implementation runs (like openraft's `Suite`).
//!
//! Implement [`Harness`] for a store (how to create one, how to reopen it as after a restart)
//! and call [`run`]; it panics naming the case and the difference on the first failure.

use raftwal::{Entry, HardState, SnapshotMeta};

use crate::config::Config;
use crate::raft::Raft;
use crate::storage::{PersistentState, Storage};

/// How the suite makes and reopens a store.
pub trait Harness {
    /// The store under test.
    type S: Storage;
    /// A fresh, empty store.
    fn create(&mut self) -> Self::S;
    /// The same store as a restarted process finds it (after a clean stop: everything synced
    /// survives).
    fn reopen(&mut self, store: Self::S) -> Self::S;
}

type Case<H> = fn(&mut H) -> Result<(), String>;

/// Runs every case; panics on the first failure with the case's name.
pub fn run<H: Harness>(h: &mut H) {
    let cases: Vec<(&str, Case<H>)> = vec![
        ("fresh_store_is_empty", fresh_store_is_empty::<H>),
        (
            "hard_state_survives_reopen",
            hard_state_survives_reopen::<H>,
        ),
        (
            "synced_entries_survive_reopen",
            synced_entries_survive_reopen::<H>,
        ),
        ("truncate_then_append", truncate_then_append::<H>),
        (
            "snapshot_keeps_matching_suffix",
            snapshot_keeps_matching_suffix::<H>,
        ),
        (
            "snapshot_discards_on_term_mismatch",
            snapshot_discards_on_term_mismatch::<H>,
        ),
        (
            "snapshot_past_the_end_discards",
            snapshot_past_the_end_discards::<H>,
        ),
        ("append_after_snapshot", append_after_snapshot::<H>),
        (
            "raft_node_restarts_with_its_state",
            raft_node_restarts_with_its_state::<H>,
        ),
    ];
    for (name, case) in cases {
        if let Err(e) = case(h) {
            panic!("storage suite case {name} failed: {e}");
        }
    }
}

fn ent(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("cmd-{index}-{term}").into_bytes(),
    }
}

fn ents(lo: u64, hi: u64, term: u64) -> Vec<Entry> {
    (lo..=hi).map(|i| ent(i, term)).collect()
}

fn read<S: Storage>(s: &mut S) -> Result<PersistentState, String> {
    s.read_persist().map_err(|e| format!("read_persist: {e}"))
}

fn ok<T>(r: Result<T, crate::StorageError>, what: &str) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(got: T, want: T, what: &str) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn fresh_store_is_empty<H: Harness>(h: &mut H) -> Result<(), String> {
    let mut s = h.create();
    expect_eq(read(&mut s)?, PersistentState::default(), "fresh state")?;
    expect_eq(s.last_index(), 0, "last_index")
}

fn hard_state_survives_reopen<H: Harness>(h: &mut H) -> Result<(), String> {
    let mut s = h.create();
    let hs = HardState {
        term: 3,
        vote: Some(1),
    };
    ok(
        s.set_hard_state(HardState {
            term: 2,
            vote: None,
        }),
        "set",
    )?;
    ok(s.set_hard_state(hs), "set")?;
    let mut s = h.reopen(s);
    expect_eq(read(&mut s)?.hard_state, hs, "hard state")
}

fn synced_entries_survive_reopen<H: Harness>(h: &mut H) -> Result<(), String> {
    let mut s = h.create();
    ok(
        s.set_hard_state(HardState {
            term: 2,
            vote: None,
        }),
        "set",
    )?;
    ok(s.append(&ents(1, 3, 1)), "append")?;
    ok(s.append(&ents(4, 5, 2)), "append")?;
    ok(s.sync(), "sync")?;
    expect_eq(s.last_index(), 5, "last_index")?;
    let mut s = h.reopen(s);
    let st = read(&mut s)?;
    let mut want = ents(1, 3, 1);
    want.extend(ents(4, 5, 2));
    expect_eq(st.entries, want, "entries")?;
    expect_eq(s.last_index(), 5, "last_index after reopen")
}

fn truncate_then_append<H: Harness>(h: &mut H) -> Result<(), String> {
    let mut s = h.create();
    ok(
        s.set_hard_state(HardState {
            term: 3,
            vote: None,
        }),
        "set",
    )?;
    ok(s.append(&ents(1, 6, 1)), "append")?;
    ok(s.sync(), "sync")?;
    ok(s.truncate_suffix(4), "truncate")?;
    expect_eq(s.last_index(), 3, "last_index after truncate")?;
    ok(s.append(&ents(4, 5, 3)), "append")?;
    ok(s.sync(), "sync")?;
    let mut s = h.reopen(s);
    let mut want = ents(1, 3, 1);
    want.extend(ents(4, 5, 3));
    expect_eq(read(&mut s)?.entries, want, "entries")
}

fn snapshot_keeps_matching_suffix<H: Harness>(h: &mut H) -> Result<(), String> {
    let mut s = h.create();
    ok(
        s.set_hard_state(HardState {
            term: 2,
            vote: None,
        }),
        "set",
    )?;
    ok(s.append(&ents(1, 4, 1)), "append")?;
    ok(s.append(&ents(5, 8, 2)), "append")?;
    ok(s.sync(), "sync")?;
    let meta = SnapshotMeta { index: 5, term: 2 };
    ok(s.save_snapshot(meta, b"state@5"), "save_snapshot")?;
    let mut s = h.reopen(s);
    let st = read(&mut s)?;
    expect_eq(st.snapshot, Some((meta, b"state@5".to_vec())), "snapshot")?;
    expect_eq(st.entries, ents(6, 8, 2), "suffix")?;
    expect_eq(s.last_index(), 8, "last_index")
}

fn snapshot_discards_on_term_mismatch<H: Harness>(h: &mut H) -> Result<(), String> {
    let mut s = h.create();
    ok(
        s.set_hard_state(HardState {
            term: 3,
            vote: None,
        }),
        "set",
    )?;
    ok(s.append(&ents(1, 6, 1)), "append")?;
    ok(s.sync(), "sync")?;
    let meta = SnapshotMeta { index: 4, term: 3 };
    ok(s.save_snapshot(meta, b"other"), "save_snapshot")?;
    expect_eq(s.last_index(), 4, "last_index")?;
    let mut s = h.reopen(s);
    let st = read(&mut s)?;
    expect_eq(st.snapshot, Some((meta, b"other".to_vec())), "snapshot")?;
    expect_eq(st.entries, vec![], "entries")
}

fn snapshot_past_the_end_discards<H: Harness>(h: &mut H) -> Result<(), String> {
    let mut s = h.create();
    ok(
        s.set_hard_state(HardState {
            term: 2,
            vote: None,
        }),
        "set",
    )?;
    ok(s.append(&ents(1, 3, 1)), "append")?;
    ok(s.sync(), "sync")?;
    let meta = SnapshotMeta { index: 10, term: 2 };
    ok(s.save_snapshot(meta, b"far"), "save_snapshot")?;
    expect_eq(s.last_index(), 10, "last_index")?;
    let mut s = h.reopen(s);
    let st = read(&mut s)?;
    expect_eq(st.snapshot.map(|x| x.0), Some(meta), "snapshot meta")?;
    expect_eq(st.entries, vec![], "entries")
}

fn append_after_snapshot<H: Harness>(h: &mut H) -> Result<(), String> {
    let mut s = h.create();
    ok(
        s.set_hard_state(HardState {
            term: 2,
            vote: None,
        }),
        "set",
    )?;
    let meta = SnapshotMeta { index: 10, term: 2 };
    ok(s.save_snapshot(meta, b"far"), "save_snapshot")?;
    ok(s.append(&ents(11, 12, 2)), "append")?;
    ok(s.sync(), "sync")?;
    let mut s = h.reopen(s);
    let st = read(&mut s)?;
    expect_eq(st.entries, ents(11, 12, 2), "entries")
}

fn raft_node_restarts_with_its_state<H: Harness>(h: &mut H) -> Result<(), String> {
    let s = h.create();
    let cfg = Config::new(0, 1, 1);
    let mut node = Raft::new(cfg.clone(), s).map_err(|e| e.to_string())?;
    while !node.is_leader() {
        node.tick().map_err(|e| e.to_string())?;
    }
    for i in 0..25u32 {
        node.propose(i.to_le_bytes().to_vec())
            .map_err(|e| e.to_string())?;
    }
    let applied = node.take_applies();
    expect_eq(applied.len(), 25, "applied")?;
    node.snapshot(20, b"snap@20".to_vec())
        .map_err(|e| e.to_string())?;
    node.propose(b"last".to_vec()).map_err(|e| e.to_string())?;
    let term = node.term();
    let log = node.log().clone();
    let store = node.into_storage();
    let store = h.reopen(store);
    let mut node = Raft::new(cfg, store).map_err(|e| e.to_string())?;
    expect_eq(node.term(), term, "term")?;
    expect_eq(node.log(), &log, "log")?;
    let applies = node.take_applies();
    expect_eq(
        applies
            .first()
            .map(|a| (a.index(), matches!(a, crate::Apply::Snapshot { .. }))),
        Some((20, true)),
        "first apply after restart",
    )
}
