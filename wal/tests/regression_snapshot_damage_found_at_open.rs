//! WAL weakness (durability review): only a snapshot's 64-byte header was verified at open,
//! so a node whose snapshot data had rotted "started" and then could not restore its state
//! machine. Open now verifies the data's checksum (streaming, memory bounded) and refuses,
//! naming the file; with `lazy_open` the check is deferred to `snapshot()`, which reports
//! the same error.

use raftwal::{Entry, Error, Options, SnapshotMeta, Wal};

fn opts(lazy_open: bool) -> Options {
    Options::default()
        .with_segment_size(8192)
        .with_lazy_open(lazy_open)
}

#[test]
fn rotted_snapshot_data_is_reported_at_open_or_at_the_read_with_lazy_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), opts(false)).unwrap();
    for i in 1..=30 {
        w.append_sync(&[Entry {
            index: i,
            term: 1,
            data: vec![i as u8; 700],
        }])
        .unwrap();
    }
    let data = vec![0x5au8; 3 << 20];
    w.save_snapshot(SnapshotMeta { index: 10, term: 1 }, &data)
        .unwrap();
    drop(w);
    let snap = dir.path().join("00000000000000000010.snap");
    let mut bytes = std::fs::read(&snap).unwrap();
    bytes[64 + (2 << 20)] ^= 1;
    std::fs::write(&snap, &bytes).unwrap();
    match Wal::open(dir.path(), opts(false)) {
        Err(Error::Corrupt { path, .. }) => assert_eq!(path, snap),
        other => panic!("expected the snapshot's corruption, got {other:?}"),
    }
    let w = Wal::open(dir.path(), opts(true)).unwrap();
    match w.snapshot() {
        Err(Error::Corrupt { path, .. }) => assert_eq!(path, snap),
        other => panic!("expected the snapshot's corruption on read, got {other:?}"),
    }
}
