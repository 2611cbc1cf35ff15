//! WAL bug (defect 9 of the durability review): `Wal::open` created the WAL directory and its
//! missing parents with `mkdir` and never fsynced a parent, so on a file system that makes
//! a directory entry durable only when its parent is synced (POSIX; ext4's journal happens
//! to commit it sooner), a power cut after the first acknowledged call could take the whole
//! directory — HEADER, term, vote, entries — with it; the next open then created a fresh,
//! empty WAL (term 0).
//!
//! Found by the exhaustive explorer once `SimFs` made a created directory durable only after
//! its parent's `sync_dir` (seeds 1–3: "term decreased: acknowledged 1, recovered 0").

use std::path::Path;

use raftwal::io::Vfs;
use raftwal::{Entry, HardState, Options, Wal};
use raftwal_fault::{CrashMode, SimFs};

fn opts() -> Options {
    Options::default().with_segment_size(8192)
}

#[test]
fn a_power_cut_after_the_first_acknowledged_call_keeps_the_created_directories() {
    let fs = SimFs::new(1);
    fs.mkdir_durable(Path::new("/data"));
    let dir = Path::new("/data/node1/wal");
    let mut w = Wal::open_with(fs.clone(), dir, opts()).unwrap();
    let hs = HardState {
        term: 1,
        vote: Some(1),
    };
    w.set_hard_state(hs).unwrap();
    let e = Entry {
        index: 1,
        term: 1,
        data: b"x".to_vec(),
    };
    w.append_sync(std::slice::from_ref(&e)).unwrap();
    drop(w);
    // Every directory operation not made durable is undone.
    fs.crash_with(CrashMode::LoseAll, 0);
    assert!(fs.list(dir).is_ok(), "the WAL directory survives the cut");
    let w = Wal::open_with(fs.clone(), dir, opts()).unwrap();
    assert_eq!(w.hard_state(), hs);
    assert_eq!(w.entry(1).unwrap(), e);
}

#[test]
fn a_directory_the_caller_created_is_made_durable_too() {
    // The caller ran `mkdir` (pending in the parent) and handed the WAL an existing, empty
    // directory: the WAL cannot know it is not durable, so creating a WAL syncs its parent.
    let fs = SimFs::new(2);
    fs.mkdir_durable(Path::new("/data"));
    let dir = Path::new("/data/wal");
    fs.create_dir(dir).unwrap();
    let mut w = Wal::open_with(fs.clone(), dir, opts()).unwrap();
    let hs = HardState {
        term: 3,
        vote: None,
    };
    w.set_hard_state(hs).unwrap();
    drop(w);
    fs.crash_with(CrashMode::LoseAll, 0);
    let w = Wal::open_with(fs.clone(), dir, opts()).unwrap();
    assert_eq!(w.hard_state(), hs);
}

#[test]
fn a_relative_directory_syncs_the_current_directory() {
    let fs = SimFs::new(3);
    let mut w = Wal::open_with(fs.clone(), Path::new("wal"), opts()).unwrap();
    let hs = HardState {
        term: 2,
        vote: Some(2),
    };
    w.set_hard_state(hs).unwrap();
    drop(w);
    fs.crash_with(CrashMode::LoseAll, 0);
    let w = Wal::open_with(fs.clone(), Path::new("wal"), opts()).unwrap();
    assert_eq!(w.hard_state(), hs);
}
