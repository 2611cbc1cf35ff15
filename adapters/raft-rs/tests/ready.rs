//! The write side on a real directory: what a `Ready` costs in `fdatasync`s, what a restart
//! finds, and the operations the storage suite leaves out (`tests/suite.rs`).

use raft::eraftpb::{ConfState, Entry};
use raft::{Config, GetEntriesContext, RawNode, StateRole, Storage, StorageError};
use raftwal_raft_rs::{Error, RaftWalStorage, StorageOptions};

fn logger() -> slog::Logger {
    slog::Logger::root(slog::Discard, slog::o!())
}

fn options(commit_lag: u64) -> StorageOptions {
    let wal = raftwal::Options::default().with_segment_size(4 << 20);
    StorageOptions::default()
        .with_wal(wal)
        .with_commit_lag(commit_lag)
}

/// A one-voter group's leader on `dir`.
fn leader(dir: &std::path::Path, commit_lag: u64) -> RawNode<RaftWalStorage> {
    let mut store = RaftWalStorage::open(dir, options(commit_lag)).unwrap();
    if !store.initial_state().unwrap().initialized() {
        store
            .set_conf_state(ConfState::from((vec![1], vec![])))
            .unwrap();
    }
    let config = Config {
        id: 1,
        ..Config::default()
    };
    let mut node = RawNode::new(&config, store, &logger()).unwrap();
    node.campaign().unwrap();
    drain(&mut node);
    assert_eq!(node.raft.state, StateRole::Leader);
    node
}

/// Handles every Ready; returns (Readies that must sync, file syncs they took).
fn drain(node: &mut RawNode<RaftWalStorage>) -> (u64, u64) {
    let (mut readies, mut syncs) = (0, 0);
    while node.has_ready() {
        let rd = node.ready();
        let before = node.store().wal().stats().file_syncs;
        node.mut_store().persist_ready(&rd).unwrap();
        if rd.must_sync() && !rd.entries().is_empty() {
            readies += 1;
            syncs += node.store().wal().stats().file_syncs - before;
        }
        let light = node.advance(rd);
        node.mut_store().persist_light_ready(&light).unwrap();
        node.advance_apply();
    }
    (readies, syncs)
}

fn all(s: &RaftWalStorage) -> Vec<Entry> {
    let (first, last) = (s.first_index().unwrap(), s.last_index().unwrap());
    s.entries(first, last + 1, None, GetEntriesContext::empty(false))
        .unwrap()
}

#[test]
fn a_steady_state_ready_costs_one_fdatasync() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = leader(dir.path(), 1024);
    let (mut readies, mut syncs) = (0, 0);
    for i in 0..50u32 {
        node.propose(vec![], i.to_le_bytes().to_vec()).unwrap();
        let (r, s) = drain(&mut node);
        readies += r;
        syncs += s;
    }
    assert_eq!(readies, 50);
    assert_eq!(syncs, 50, "one fdatasync per Ready with entries");
    assert_eq!(node.raft.raft_log.committed, 51);
}

#[test]
fn commit_lag_zero_writes_every_commit_advance() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = leader(dir.path(), 0);
    let headers = node.store().wal().stats().header_updates;
    for i in 0..10u32 {
        node.propose(vec![], i.to_le_bytes().to_vec()).unwrap();
        drain(&mut node);
        assert_eq!(node.store().durable_commit(), node.raft.raft_log.committed);
    }
    assert_eq!(node.store().wal().stats().header_updates - headers, 10);
}

#[test]
fn a_restart_finds_term_vote_log_and_at_most_the_commit_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = leader(dir.path(), 1024);
    for i in 0..20u32 {
        node.propose(vec![], i.to_le_bytes().to_vec()).unwrap();
        drain(&mut node);
    }
    let (term, log) = (node.raft.term, all(node.store()));
    drop(node); // no clean shutdown
    let store = RaftWalStorage::open(dir.path(), options(1024)).unwrap();
    let st = store.initial_state().unwrap();
    assert_eq!((st.hard_state.term, st.hard_state.vote), (term, 1));
    assert!(st.hard_state.commit <= 21);
    assert_eq!(all(&store), log);
    // A clean shutdown writes the commit index.
    let mut store = store;
    let mut hs = store.hard_state().clone();
    hs.commit = 21;
    store.set_hard_state(&hs).unwrap();
    store.persist_commit().unwrap();
    drop(store);
    let store = RaftWalStorage::open(dir.path(), options(1024)).unwrap();
    assert_eq!(store.initial_state().unwrap().hard_state.commit, 21);
    // raft-rs takes it back, and the group goes on.
    let config = Config {
        id: 1,
        ..Config::default()
    };
    let mut node = RawNode::new(&config, store, &logger()).unwrap();
    node.campaign().unwrap();
    drain(&mut node);
    node.propose(vec![], b"after".to_vec()).unwrap();
    drain(&mut node);
    assert_eq!(all(node.store()).last().unwrap().data.as_ref(), b"after");
}

#[test]
fn async_persistence_reports_each_ready_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = leader(dir.path(), 1024);
    let mut reported = 0;
    for i in 0..40u32 {
        node.propose(vec![], i.to_le_bytes().to_vec()).unwrap();
        while node.has_ready() {
            let rd = node.ready();
            let number = rd.number();
            node.mut_store().persist_ready_async(&rd).unwrap();
            node.advance_append_async(rd);
            if let Some(n) = node.mut_store().poll_persisted().unwrap() {
                assert!(n <= number && n > reported);
                reported = n;
                node.on_persist_ready(n);
            }
        }
    }
    while node.mut_store().persist_pending() {
        if let Some(n) = node.mut_store().wait_persisted().unwrap() {
            node.on_persist_ready(n);
        }
    }
    let store = node.store();
    assert_eq!(store.durable_last_index(), store.wal().last_index());
    assert_eq!(store.wal().last_index(), 41);
}

#[test]
fn a_conf_state_too_large_for_the_header_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = RaftWalStorage::open(dir.path(), options(0)).unwrap();
    store
        .set_conf_state(ConfState::from((vec![1, 2, 3], vec![])))
        .unwrap();
    let huge = ConfState::from(((0..40u64).map(|i| u64::MAX - i), Vec::<u64>::new()));
    let err = store.set_conf_state(huge).unwrap_err();
    assert!(matches!(err, Error::ConfStateTooLarge { .. }), "{err}");
    assert_eq!(store.conf_state().voters, vec![1, 2, 3]);
    drop(store);
    let store = RaftWalStorage::open(dir.path(), options(0)).unwrap();
    assert_eq!(
        store.initial_state().unwrap().conf_state.voters,
        vec![1, 2, 3]
    );
}

#[test]
fn snapshots_created_served_and_dropped_by_a_later_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = leader(dir.path(), 1024);
    for i in 0..10u32 {
        node.propose(vec![], i.to_le_bytes().to_vec()).unwrap();
        drain(&mut node);
    }
    let store = node.mut_store();
    assert!(
        store.create_snapshot(12, b"x".to_vec()).is_err(),
        "past commit"
    );
    store.create_snapshot(6, b"state at 6".to_vec()).unwrap();
    assert_eq!(store.first_index().unwrap(), 7);
    let snap = store.snapshot(0, 2).unwrap();
    assert_eq!(snap.get_metadata().index, 6);
    assert_eq!(snap.get_metadata().get_conf_state().voters, vec![1]);
    assert_eq!(snap.data.as_ref(), b"state at 6");
    // Compacting every entry: the log is empty, and starts after it.
    store.compact(12).unwrap();
    assert_eq!(store.first_index().unwrap(), 12);
    assert_eq!(store.last_index().unwrap(), 11);
    assert!(matches!(
        store.snapshot(0, 2),
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable
        ))
    ));
    assert!(store.compact(13).is_err());
    drop(node);
    let store = RaftWalStorage::open(dir.path(), options(1024)).unwrap();
    assert_eq!(store.first_index().unwrap(), 12);
    assert_eq!(store.term(11).unwrap(), store.wal().last_term());
    assert!(store.initial_state().unwrap().hard_state.commit >= 11);
}
