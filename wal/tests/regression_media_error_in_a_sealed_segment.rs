//! WAL weakness (durability review): sealed segments were read through mmap, so a media
//! error while reading one was a SIGBUS that killed the process, not an error. Every read is
//! a positional read now: a latent sector error is an `Error::Io` naming the file, the rest
//! of the log reads normally, and appends go on.

mod common;

use common::sim::dir;
use raftwal::{Entry, Error, Options, Wal};
use raftwal_fault::{CrashMode, Fault, SimFs};

fn opts(lazy_open: bool) -> Options {
    common::sim::opts(8192).with_lazy_open(lazy_open)
}

fn entry(index: u64) -> Entry {
    common::sim::entry(index, 1, 700)
}

#[test]
fn a_bad_sector_in_a_sealed_segment_is_an_io_error_on_read() {
    let fs = SimFs::new(6);
    fs.mkdir_durable(dir());
    let mut w = Wal::open_with(fs.clone(), dir(), opts(false)).unwrap();
    for i in 1..=30 {
        w.append_sync(&[entry(i)]).unwrap();
    }
    drop(w);
    fs.crash_with(CrashMode::LoseAll, 0);
    // A bad sector in the second segment, over its first record's payload.
    fs.inject(Fault::ReadEio {
        path: "00000000000000000006.wal".into(),
        offset: 4096,
        len: 512,
    });
    // A full open reads every record: it fails, naming the file.
    match Wal::open_with(fs.clone(), dir(), opts(false)) {
        Err(Error::Io { path, .. }) => assert!(path.ends_with("00000000000000000006.wal")),
        other => panic!("expected an I/O error, got {other:?}"),
    }
    // A lazy open defers that segment: reading into it fails, the rest reads and appends.
    let mut w = Wal::open_with(fs.clone(), dir(), opts(true)).unwrap();
    assert!(w.recovery_report().segments_deferred > 0);
    assert!(matches!(w.entry(6), Err(Error::Io { .. })));
    assert_eq!(w.entry(1).unwrap(), entry(1));
    assert_eq!(w.entry(30).unwrap(), entry(30));
    w.append_sync(&[entry(31)]).unwrap();
    assert_eq!(w.entry(31).unwrap(), entry(31));
}
