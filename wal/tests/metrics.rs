//! The `metrics` feature: counters, latencies and group-commit sizes reach the installed
//! recorder (a debugging recorder here), with values that match `Wal::stats`.
//! Run with `cargo test -p raftwal --release --features metrics --test metrics` (CI does).
#![cfg(feature = "metrics")]

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use raftwal::{Entry, GroupCommit, HardState, Options, Wal};

/// Every metric the recorder saw: (name, value).
fn snapshot(recorder: &DebuggingRecorder) -> Vec<(String, DebugValue)> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| (key.key().name().to_owned(), value))
        .collect()
}

fn counter(seen: &[(String, DebugValue)], name: &str) -> u64 {
    seen.iter()
        .find_map(|(n, v)| match v {
            DebugValue::Counter(c) if n == name => Some(*c),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no counter {name}"))
}

fn histogram(seen: &[(String, DebugValue)], name: &str) -> Vec<f64> {
    seen.iter()
        .find_map(|(n, v)| match v {
            DebugValue::Histogram(h) if n == name => {
                Some(h.iter().map(|x| x.into_inner()).collect())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no histogram {name}"))
}

#[test]
fn counters_and_latencies_reach_the_recorder_and_match_stats() {
    let recorder = DebuggingRecorder::new();
    let dir = tempfile::tempdir().unwrap();
    let stats = metrics::with_local_recorder(&recorder, || {
        let mut w = Wal::open(dir.path(), Options::default()).unwrap();
        w.set_hard_state(HardState {
            term: 1,
            vote: Some(1),
        })
        .unwrap();
        for i in 1..=10u64 {
            let e = Entry {
                index: i,
                term: 1,
                data: vec![7; 100],
            };
            w.append_sync(&[e]).unwrap();
        }
        w.stats()
    });
    let seen = snapshot(&recorder);
    assert_eq!(counter(&seen, "raftwal_entries_appended_total"), 10);
    assert_eq!(counter(&seen, "raftwal_file_syncs_total"), stats.file_syncs);
    assert_eq!(
        counter(&seen, "raftwal_bytes_written_total"),
        stats.bytes_written
    );
    assert_eq!(counter(&seen, "raftwal_header_updates_total"), 1);
    let syncs = histogram(&seen, "raftwal_sync_seconds");
    assert_eq!(syncs.len(), 10, "one sample per Wal::sync");
    let fdatasyncs = histogram(&seen, "raftwal_fdatasync_seconds");
    assert_eq!(fdatasyncs.len(), 10, "one sample per segment fdatasync");
    assert!(fdatasyncs.iter().all(|&s| s >= 0.0));
}

#[test]
fn group_commit_sizes_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let dir = tempfile::tempdir().unwrap();
    metrics::with_local_recorder(&recorder, || {
        let gc = GroupCommit::new(Wal::open(dir.path(), Options::default()).unwrap());
        for i in 1..=3u64 {
            gc.commit(|w| {
                w.append(&[Entry {
                    index: i,
                    term: 1,
                    data: vec![1; 10],
                }])
            })
            .unwrap();
        }
    });
    let sizes = histogram(&snapshot(&recorder), "raftwal_group_commit_size");
    assert_eq!(
        sizes,
        vec![1.0, 1.0, 1.0],
        "one commit per group, single thread"
    );
}
