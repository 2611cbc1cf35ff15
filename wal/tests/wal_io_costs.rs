//! I/O costs of the WAL, counted by SimFs: group commit means one fdatasync per `sync()`
//! however many batches were appended, and one per hard-state update.

use std::path::Path;

use raftwal::{Entry, HardState, Options, Wal};
use raftwal_fault::SimFs;

fn setup() -> (SimFs, Wal<SimFs>) {
    let fs = SimFs::new(0);
    let dir = Path::new("/wal");
    fs.mkdir_durable(dir);
    let opts = Options::default().with_segment_size(1 << 20);
    let w = Wal::open_with(fs.clone(), dir, opts).unwrap();
    (fs, w)
}

fn entry(index: u64) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![7; 64],
    }
}

#[test]
fn one_fdatasync_per_sync_whatever_the_number_of_batches() {
    let (fs, mut w) = setup();
    // The first sync also creates the first segment (its own fsyncs): not measured.
    w.append(&[entry(1)]).unwrap();
    w.sync().unwrap();
    fs.reset_counters();
    for batches in [1u64, 5, 20] {
        let before = fs.counters();
        let first = w.last_index() + 1;
        for i in first..first + batches {
            w.append(&[entry(i)]).unwrap();
        }
        w.sync().unwrap();
        let after = fs.counters();
        assert_eq!(
            after.file_syncs - before.file_syncs,
            1,
            "{batches} batches, one segment: one fdatasync"
        );
        assert_eq!(after.dir_syncs, before.dir_syncs, "no directory fsync");
    }
}

#[test]
fn one_fdatasync_per_hard_state_update() {
    let (fs, mut w) = setup();
    for term in 1..=5 {
        let before = fs.counters();
        w.set_hard_state(HardState {
            term,
            vote: Some(1),
        })
        .unwrap();
        let after = fs.counters();
        assert_eq!(after.file_syncs - before.file_syncs, 1);
        assert_eq!(after.writes - before.writes, 1, "one slot write");
    }
}

#[test]
fn sync_with_nothing_appended_costs_nothing() {
    let (fs, mut w) = setup();
    w.append(&[entry(1)]).unwrap();
    w.sync().unwrap();
    let before = fs.counters();
    w.sync().unwrap();
    assert_eq!(fs.counters().file_syncs, before.file_syncs);
}
