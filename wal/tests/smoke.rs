use raftwal::{Entry, HardState, Options, SnapshotMeta, Wal};

fn e(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: format!("entry-{index}-{term}").into_bytes(),
    }
}

#[test]
fn smoke_roundtrip_rotation_truncate_compact() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default().with_segment_size(8192);
    let mut w = Wal::open(dir.path(), opts.clone()).unwrap();
    w.set_hard_state(HardState {
        term: 1,
        vote: Some(1),
    })
    .unwrap();
    for i in 1..=300 {
        w.append(&[e(i, 1 + i / 100)]).unwrap();
        if i % 7 == 0 {
            w.sync().unwrap();
        }
    }
    w.sync().unwrap();
    assert!(w.stats().segments_created > 3);
    assert_eq!(w.entry(150).unwrap(), e(150, 2));
    w.truncate_suffix(250).unwrap();
    assert_eq!(w.last_index(), 249);
    w.append(&[e(250, 5), e(251, 5)]).unwrap();
    w.sync().unwrap();
    drop(w);
    let mut w = Wal::open(dir.path(), opts.clone()).unwrap();
    assert_eq!(w.last_index(), 251);
    assert_eq!(w.entry(250).unwrap(), e(250, 5));
    assert_eq!(w.entry(10).unwrap(), e(10, 1));
    assert_eq!(
        w.hard_state(),
        HardState {
            term: 1,
            vote: Some(1)
        }
    );
    w.save_snapshot(
        SnapshotMeta {
            index: 200,
            term: 3,
        },
        b"snap",
    )
    .unwrap();
    assert_eq!(w.first_index(), 201);
    assert_eq!(w.entries(201, 252).unwrap().len(), 51);
    drop(w);
    let w = Wal::open(dir.path(), opts.clone()).unwrap();
    assert_eq!(w.snapshot().unwrap().unwrap().1, b"snap");
    assert_eq!(w.first_index(), 201);
    assert_eq!(w.last_index(), 251);
    assert_eq!(w.entry(201).unwrap(), e(201, 3));
    assert!(Wal::open(dir.path(), opts).is_err());
}
