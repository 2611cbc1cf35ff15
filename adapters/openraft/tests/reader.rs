//! openraft's log reader (`get_log_reader`, one per replication task) never waits behind a
//! sync of the store's: while `save_vote`, `save_committed`, `truncate` or `purge` holds the
//! store's lock across its header `fdatasync` (held here on the simulated disk until the
//! reader has read), the reader reads the whole live log.

use std::path::Path;
use std::time::Duration;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, Vote};
use raftwal::{Options, SegmentPrepare};
use raftwal_fault::sync_gate::hold_each_sync;
use raftwal_fault::SimFs;
use raftwal_openraft::{KvConfig, KvRequest, WalLogReader, WalLogStore};

type Log = WalLogStore<KvConfig, SimFs>;

fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

fn entry(index: u64) -> Entry<KvConfig> {
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(KvRequest::Set {
            key: format!("k{index}"),
            value: "v".repeat((index % 50) as usize),
        }),
    }
}

fn open(fs: &SimFs) -> Log {
    fs.mkdir_durable(Path::new("/node"));
    let opts = Options::default()
        .with_segment_size(8192)
        .with_prepare(SegmentPrepare::ZeroFill);
    WalLogStore::open_with(fs.clone(), "/node/log", opts).expect("opening the log store")
}

/// Runs `op` on the store on another thread, holding each of its file syncs until this
/// thread's reader has read the live log; panics if the reader had to wait for one (a held
/// sync is let go after 20 s, and that is reported). Returns the syncs held.
fn read_during_each_sync(
    fs: &SimFs,
    reader: &mut WalLogReader<KvConfig, SimFs>,
    what: &str,
    op: impl std::future::Future<Output = ()> + Send,
) -> usize {
    let rt = || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    };
    let (op_rt, read_rt) = (rt(), rt());
    let read = || {
        let got = read_rt
            .block_on(reader.try_get_log_entries(..))
            .expect("reading");
        for e in &got {
            assert_eq!(*e, entry(e.log_id.index), "{what}");
        }
    };
    let seen = hold_each_sync(fs, Duration::from_secs(20), || op_rt.block_on(op), read);
    assert!(
        !seen.timed_out,
        "the log reader waited behind a sync of {what}"
    );
    seen.held
}

#[test]
fn the_log_reader_never_waits_behind_the_stores_syncs() {
    let fs = SimFs::new(11);
    let mut store = open(&fs);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    rt.block_on(store.blocking_append((0..200).map(entry)))
        .expect("appending");
    let mut reader = rt.block_on(store.get_log_reader());
    let mut held = Vec::new();
    let mut s = store.clone();
    let op = async move { s.save_vote(&Vote::new(2, 1)).await.unwrap() };
    held.push((
        "save_vote",
        read_during_each_sync(&fs, &mut reader, "save_vote", op),
    ));
    let mut s = store.clone();
    let op = async move { s.save_committed(Some(log_id(150))).await.unwrap() };
    let n = read_during_each_sync(&fs, &mut reader, "save_committed", op);
    held.push(("save_committed", n));
    let mut s = store.clone();
    let op = async move { s.truncate(log_id(180)).await.unwrap() };
    held.push((
        "truncate",
        read_during_each_sync(&fs, &mut reader, "truncate", op),
    ));
    let mut s = store.clone();
    let op = async move { s.purge(log_id(100)).await.unwrap() };
    held.push((
        "purge",
        read_during_each_sync(&fs, &mut reader, "purge", op),
    ));
    println!("syncs held: {held:?}");
    assert!(held.iter().all(|&(_, n)| n >= 1), "{held:?}");
    let live = rt.block_on(reader.try_get_log_entries(..)).unwrap();
    assert_eq!(live, (101..180).map(entry).collect::<Vec<_>>());
}
