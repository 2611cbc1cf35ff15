//! Regression: `compact(i)` at the current base (a repeated purge, as Raft adapters issue
//! after every snapshot) removed the snapshot stored there — an acknowledged snapshot lost,
//! and the log base left without the state it stands for. Found by the model test with
//! injected faults once it shared the torture's model; the torture workload now compacts
//! from the base too.

mod common;

use common::sim::{dir, entries, opts};
use raftwal::{SnapshotMeta, Wal};
use raftwal_fault::SimFs;

#[test]
fn compact_at_the_base_keeps_the_snapshot_through_a_crash() {
    let fs = SimFs::new(11);
    fs.mkdir_durable(dir());
    let mut w = Wal::open_with(fs.clone(), dir(), opts(8192)).unwrap();
    w.append_sync(&entries(1, 10, 1, 100)).unwrap();
    let meta = SnapshotMeta { index: 6, term: 1 };
    w.save_snapshot(meta, b"state at 6").unwrap();
    w.compact(6).unwrap();
    assert_eq!(w.snapshot().unwrap(), Some((meta, b"state at 6".to_vec())));
    drop(w);
    fs.crash(1);
    let w = Wal::open_with(fs, dir(), opts(8192)).unwrap();
    assert_eq!(w.snapshot_meta(), meta);
    assert_eq!(w.snapshot().unwrap(), Some((meta, b"state at 6".to_vec())));
    assert_eq!(w.entry(7).unwrap(), entries(7, 7, 1, 100)[0]);
}
