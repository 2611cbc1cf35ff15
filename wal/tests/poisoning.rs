//! Poisoning: after a failed write or sync the state of unsynced data is unknown
//! (fsyncgate), so every later write is refused with `Error::Poisoned`; reads keep working;
//! a reopen recovers the acknowledged state.
//!
//! The failures come from a small `Vfs` wrapper around `wal::StdVfs` (below) that fails the
//! n-th file sync or write with EIO — enough for these tests, and independent of the
//! `fault-inject` crate.

mod common;

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{assert_log, ent, small_opts};
use wal::io::{StdFile, StdLock};
use wal::{
    Entry, Error, HardState, MappedRegion, OpenMode, SnapshotMeta, StdVfs, Vfs, VfsFile, Wal,
};

/// Counters shared by a `FailingVfs` and its files: the call numbers (from 1) at which the
/// next file sync / write fails (0 = never).
#[derive(Default)]
struct Plan {
    syncs: AtomicU64,
    writes: AtomicU64,
    fail_sync_at: AtomicU64,
    fail_write_at: AtomicU64,
}

#[derive(Clone, Default)]
struct FailingVfs {
    plan: Arc<Plan>,
}

impl FailingVfs {
    /// Fails the next file sync (`sync_data` or `sync_all`) of any file.
    fn fail_next_sync(&self) {
        let n = self.plan.syncs.load(Ordering::SeqCst);
        self.plan.fail_sync_at.store(n + 1, Ordering::SeqCst);
    }
    /// Fails the next file write.
    fn fail_next_write(&self) {
        let n = self.plan.writes.load(Ordering::SeqCst);
        self.plan.fail_write_at.store(n + 1, Ordering::SeqCst);
    }
}

struct FailingFile {
    inner: StdFile,
    plan: Arc<Plan>,
}

fn eio() -> io::Error {
    io::Error::other("injected EIO")
}

impl FailingFile {
    fn sync_hit(&self) -> bool {
        let n = self.plan.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        n == self.plan.fail_sync_at.load(Ordering::SeqCst)
    }
}

impl VfsFile for FailingFile {
    type Map = MappedRegion;

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let n = self.plan.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.plan.fail_write_at.load(Ordering::SeqCst) {
            // A failed write may leave part of its data behind.
            let _ = self.inner.write_all_at(&buf[..buf.len() / 2], offset);
            return Err(eio());
        }
        self.inner.write_all_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.inner.allocate(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.sync_hit() {
            return Err(eio());
        }
        self.inner.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        if self.sync_hit() {
            return Err(eio());
        }
        self.inner.sync_all()
    }
    fn map(&self, len: u64) -> io::Result<MappedRegion> {
        self.inner.map(len)
    }
}

impl Vfs for FailingVfs {
    type File = FailingFile;
    type Lock = StdLock;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdVfs.create_dir_all(dir)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<FailingFile> {
        Ok(FailingFile {
            inner: StdVfs.open(path, mode)?,
            plan: self.plan.clone(),
        })
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        StdVfs.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdVfs.rename(from, to)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdVfs.list(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        StdVfs.sync_dir(dir)
    }
    fn lock(&self, dir: &Path) -> io::Result<StdLock> {
        StdVfs.lock(dir)
    }
}

/// Every mutating call must return `Error::Poisoned`, and reads of `acked` keep working.
fn assert_poisoned(w: &mut Wal<FailingVfs>, acked: &[Entry]) {
    assert!(w.is_poisoned());
    let next = w.last_index() + 1;
    let term = w.last_term();
    let hs = w.hard_state();
    let results: Vec<(&str, wal::Result<()>)> = vec![
        ("append", w.append(&[ent(next, term, 10)])),
        ("sync", w.sync()),
        ("append_sync", w.append_sync(&[ent(next, term, 10)])),
        (
            "set_hard_state",
            w.set_hard_state(HardState {
                term: hs.term + 1,
                vote: None,
            }),
        ),
        ("truncate_suffix", w.truncate_suffix(2)),
        ("compact", w.compact(1)),
        (
            "save_snapshot",
            w.save_snapshot(SnapshotMeta { index: 1, term: 1 }, b"x"),
        ),
    ];
    for (what, r) in results {
        match r {
            Err(Error::Poisoned { cause }) => assert!(cause.contains("injected EIO"), "{cause}"),
            other => panic!("{what} on a poisoned WAL: {other:?}"),
        }
    }
    for e in acked {
        assert_eq!(
            &w.entry(e.index).unwrap(),
            e,
            "read {} after poisoning",
            e.index
        );
    }
    assert_eq!(w.hard_state(), hs);
}

fn acked_wal(vfs: &FailingVfs, dir: &Path) -> (Wal<FailingVfs>, Vec<Entry>) {
    let mut w = Wal::open_with(vfs.clone(), dir, small_opts()).unwrap();
    w.set_hard_state(HardState {
        term: 1,
        vote: Some(1),
    })
    .unwrap();
    let acked: Vec<_> = (1..=60).map(|i| ent(i, 1, 120)).collect();
    for c in acked.chunks(6) {
        w.append_sync(c).unwrap();
    }
    (w, acked)
}

#[test]
fn a_failed_segment_sync_poisons_and_reopen_recovers_the_acknowledged_state() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = FailingVfs::default();
    let (mut w, acked) = acked_wal(&vfs, dir.path());
    w.append(&[ent(61, 1, 50), ent(62, 1, 50)]).unwrap();
    vfs.fail_next_sync();
    let e = w.sync().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Io {
                op: "fdatasync",
                ..
            }
        ),
        "{e}"
    );
    assert_poisoned(&mut w, &acked);
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    // The unacknowledged batch may or may not have reached the disk; the rest is intact.
    let mut all = acked.clone();
    if w.last_index() == 62 {
        all.extend([ent(61, 1, 50), ent(62, 1, 50)]);
    }
    assert_log(&w, 1, &all);
}

#[test]
fn a_failed_write_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = FailingVfs::default();
    let (mut w, acked) = acked_wal(&vfs, dir.path());
    w.append(&[ent(61, 1, 50)]).unwrap();
    vfs.fail_next_write();
    let e = w.sync().unwrap_err();
    assert!(matches!(e, Error::Io { op: "write", .. }), "{e}");
    assert_poisoned(&mut w, &acked);
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    assert_log(&w, 1, &acked);
}

#[test]
fn a_failed_header_sync_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = FailingVfs::default();
    let (mut w, acked) = acked_wal(&vfs, dir.path());
    vfs.fail_next_sync();
    let e = w
        .set_hard_state(HardState {
            term: 2,
            vote: Some(2),
        })
        .unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    assert_poisoned(&mut w, &acked);
    drop(w);
    let w = Wal::open(dir.path(), small_opts()).unwrap();
    let hs = w.hard_state();
    assert!(
        hs == HardState {
            term: 1,
            vote: Some(1)
        } || hs
            == HardState {
                term: 2,
                vote: Some(2)
            },
        "{hs:?}"
    );
    assert_log(&w, 1, &acked);
}

#[test]
fn a_failed_sync_during_rotation_truncation_or_compaction_poisons() {
    for (what, op) in [
        ("rotation", 0),
        ("truncate_suffix", 1),
        ("compact", 2),
        ("save_snapshot", 3),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let vfs = FailingVfs::default();
        let (mut w, acked) = acked_wal(&vfs, dir.path());
        vfs.fail_next_sync();
        let r = match op {
            0 => w.append(&[ent(61, 1, 4000)]), // needs a new segment
            1 => w.truncate_suffix(30),
            2 => w.compact(30),
            _ => w.save_snapshot(SnapshotMeta { index: 30, term: 1 }, b"s"),
        };
        assert!(matches!(r, Err(Error::Io { .. })), "{what}: {r:?}");
        // Reads of what is still in the log work.
        let keep = if op == 1 { &acked[..29] } else { &acked[30..] };
        assert_poisoned(&mut w, keep);
        drop(w);
        let w = Wal::open(dir.path(), small_opts()).unwrap();
        // Every acknowledged entry still in the log's range is intact.
        assert!(w.last_index() >= if op == 1 { 29 } else { 60 }, "{what}");
        for e in &acked {
            if e.index >= w.first_index() && e.index <= w.last_index() {
                assert_eq!(&w.entry(e.index).unwrap(), e, "{what}");
            }
        }
    }
}
