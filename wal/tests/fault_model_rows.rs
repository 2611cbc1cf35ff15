//! One scenario per row of docs/FAULT-MODEL.md, each reproduced on SimFs against the WAL.
//! (Crashes in the middle of rotation, truncation, compaction and snapshot save are
//! enumerated exhaustively by `explore_exhaustive.rs`; long random mixes are in
//! `torture_random.rs`.)

use std::path::{Path, PathBuf};

use raftwal::io::Vfs;
use raftwal::{Entry, HardState, Options, Wal};
use raftwal_fault::{
    CrashMode, CrashPlan, Fault, FileCrash, SimFs, SyncFailure, TornFill, TornWrite,
};

const DIR: &str = "/wal";

fn dir() -> &'static Path {
    Path::new(DIR)
}

fn opts() -> Options {
    Options::default()
        .with_segment_size(8192)
        .with_write_buffer(256)
}

fn fs() -> SimFs {
    let fs = SimFs::new(11);
    fs.mkdir_durable(dir());
    fs
}

fn open(fs: &SimFs) -> raftwal::Result<Wal<SimFs>> {
    Wal::open_with(fs.clone(), dir(), opts())
}

/// The error `open` must return.
fn open_err(fs: &SimFs, why: &str) -> raftwal::Error {
    match open(fs) {
        Ok(_) => panic!("{why}"),
        Err(e) => e,
    }
}

/// Entry `index` whose payload is `index` repeated, easy to find on disk.
fn entry(index: u64, len: usize) -> Entry {
    Entry {
        index,
        term: 1,
        data: vec![index as u8; len],
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, len: usize) -> Vec<Entry> {
    range.map(|i| entry(i, len)).collect()
}

fn assert_log(w: &Wal<SimFs>, want: &[Entry]) {
    assert_eq!(w.last_index(), want.last().map_or(0, |e| e.index));
    let got = w.entries(w.first_index(), w.last_index() + 1).unwrap();
    assert_eq!(got, want);
}

fn segments(fs: &SimFs) -> Vec<PathBuf> {
    fs.list(dir())
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".wal"))
        .map(|n| dir().join(n))
        .collect()
}

/// Offset of the first occurrence of `needle` in the durable bytes of `path`.
fn find(fs: &SimFs, path: &Path, needle: &[u8]) -> Option<u64> {
    let bytes = fs.durable_contents(path)?;
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p as u64)
}

/// The plan that keeps every pending operation but tears `op` of the file `path`.
fn tear(fs: &SimFs, path: &Path, op: usize, kept: usize, fill: TornFill) -> CrashPlan {
    let pending = fs.pending();
    let mut plan = pending.plan_from_mask(u64::MAX);
    let f = pending
        .files
        .iter()
        .find(|f| f.path.as_deref() == Some(path))
        .expect("the file has pending writes");
    plan.files.insert(
        f.ino,
        FileCrash {
            keep: (0..f.op_sectors.len()).map(|i| i <= op).collect(),
            torn: Some(TornWrite {
                op,
                sectors_kept: kept,
                fill,
            }),
        },
    );
    plan
}

/// Runs `f` recording, and returns the machine right before the first fdatasync of a
/// segment that `f` issues (all of `f`'s segment writes so far pending).
fn before_segment_sync(fs: &SimFs, f: impl FnOnce()) -> SimFs {
    fs.start_recording();
    f();
    let cps = fs.take_recording();
    let i = cps
        .iter()
        .position(|c| c.what.starts_with("fdatasync") && c.what.contains(".wal"))
        .expect("a segment fdatasync");
    cps[i - 1].to_fs()
}

/// The pending writes of the file `path`: (inode, number of pending operations).
fn pending_of(fs: &SimFs, path: &Path) -> (u64, usize) {
    let pending = fs.pending();
    let f = pending
        .files
        .iter()
        .find(|f| f.path.as_deref() == Some(path))
        .expect("the file has pending writes");
    (f.ino, f.op_sectors.len())
}

#[test]
fn unsynced_data_lost_recovers_the_synced_prefix() {
    let fs = fs();
    let mut w = open(&fs).unwrap();
    let acked = entries(1..=3, 200);
    w.append(&acked).unwrap();
    w.sync().unwrap();
    w.append(&entries(4..=30, 200)).unwrap(); // written out (small buffer), rotates, unsynced
    drop(w);
    // Keep the directory operations (a new segment present) but lose all file data.
    let pending = fs.pending();
    let mut plan = pending.plan_from_mask(0);
    plan.dir_keep = vec![true; pending.dir_ops.len()];
    fs.crash_with(CrashMode::Plan(plan), 1);
    let w = open(&fs).expect("open always succeeds after a crash");
    assert_log(&w, &acked);
}

#[test]
fn torn_append_with_zeros_or_garbage_is_cut_and_synced_entries_stay() {
    for fill in [TornFill::Zeros, TornFill::Garbage] {
        let fs = fs();
        let mut w = open(&fs).unwrap();
        let acked = entries(1..=2, 100);
        w.append(&acked).unwrap();
        w.sync().unwrap();
        let at = before_segment_sync(&fs, || {
            w.append(&entries(3..=3, 1500)).unwrap();
            w.sync().unwrap();
        });
        drop(w);
        let seg = segments(&at)[0].clone();
        let (_, n) = pending_of(&at, &seg);
        at.crash_with(CrashMode::Plan(tear(&at, &seg, n - 1, 1, fill)), 2);
        let w = open(&at).unwrap_or_else(|e| panic!("{fill}: {e}"));
        assert_log(&w, &acked);
        // Recovery is idempotent: open again, same state.
        drop(w);
        assert_log(&open(&at).unwrap(), &acked);
    }
}

#[test]
fn reordered_unsynced_writes_never_leave_a_gap() {
    let fs = fs();
    let mut w = open(&fs).unwrap();
    let acked = entries(1..=2, 100);
    w.append(&acked).unwrap();
    w.sync().unwrap();
    let at = before_segment_sync(&fs, || {
        w.append(&entries(3..=3, 600)).unwrap();
        w.append(&entries(4..=4, 600)).unwrap();
        w.append(&entries(5..=5, 600)).unwrap();
        w.sync().unwrap();
    });
    drop(w);
    let seg = segments(&at)[0].clone();
    let (ino, n) = pending_of(&at, &seg);
    assert!(n >= 2, "several unsynced writes");
    let mut plan = at.pending().plan_from_mask(u64::MAX);
    let mut keep = vec![true; n];
    keep[0] = false; // the earliest write lost, the later ones durable
    plan.files.insert(ino, FileCrash { keep, torn: None });
    at.crash_with(CrashMode::Plan(plan), 3);
    let w = open(&at).unwrap();
    assert_log(&w, &acked);
}

#[test]
fn forgotten_directory_fsync_never_loses_an_acknowledged_rotation() {
    let fs = fs();
    let mut w = open(&fs).unwrap();
    let acked = entries(1..=20, 400); // several segments
    for chunk in acked.chunks(3) {
        w.append(chunk).unwrap();
        w.sync().unwrap();
    }
    assert!(segments(&fs).len() > 1);
    drop(w);
    // Everything not covered by a directory fsync is undone.
    fs.crash_with(CrashMode::LoseAll, 4);
    assert_log(&open(&fs).unwrap(), &acked);
}

#[test]
fn torn_header_overwrite_keeps_a_valid_slot() {
    for fill in [TornFill::Old, TornFill::Zeros, TornFill::Garbage] {
        let fs = fs();
        fs.set_sector_size(64); // tear inside a 512-byte slot
        let mut w = open(&fs).unwrap();
        let old = HardState {
            term: 1,
            vote: Some(1),
        };
        let new = HardState {
            term: 2,
            vote: Some(3),
        };
        w.set_hard_state(old).unwrap();
        fs.start_recording();
        w.set_hard_state(new).unwrap();
        drop(w);
        let cps = fs.take_recording();
        let header = dir().join("HEADER");
        let cp = cps
            .iter()
            .find(|c| c.what.starts_with("write") && c.what.contains("HEADER"))
            .expect("the update writes the header");
        let crashed = cp.to_fs();
        crashed.crash_with(CrashMode::Plan(tear(&crashed, &header, 0, 4, fill)), 5);
        let w = Wal::open_with(crashed, dir(), opts()).unwrap_or_else(|e| panic!("{fill}: {e}"));
        assert!(
            w.hard_state() == old || w.hard_state() == new,
            "{fill}: {:?}",
            w.hard_state()
        );
    }
}

#[test]
fn both_header_slots_bad_refuses_to_start_instead_of_resetting_the_term() {
    let fs = fs();
    let mut w = open(&fs).unwrap();
    w.set_hard_state(HardState {
        term: 5,
        vote: Some(2),
    })
    .unwrap();
    w.set_hard_state(HardState {
        term: 6,
        vote: None,
    })
    .unwrap();
    drop(w);
    let header = dir().join("HEADER");
    fs.flip_bit(&header, 30, 0).unwrap();
    fs.flip_bit(&header, 4096 + 30, 0).unwrap();
    let err = open_err(&fs, "must refuse");
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn bit_rot_in_synced_data_is_reported_not_truncated() {
    let fs = fs();
    let mut w = open(&fs).unwrap();
    let acked = entries(1..=6, 100);
    for e in &acked {
        w.append(std::slice::from_ref(e)).unwrap();
        w.sync().unwrap(); // one sync group each: later groups prove earlier ones synced
    }
    drop(w);
    let seg = segments(&fs)[0].clone();
    let at = find(&fs, &seg, &[2u8; 100]).expect("entry 2's payload") + 50;
    fs.flip_bit(&seg, at, 3).unwrap();
    let err = open_err(&fs, "corruption of synced data must be reported");
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains(".wal"), "names the file: {err}");
}

#[test]
fn latent_sector_error_is_not_taken_for_a_clean_log() {
    let fs = fs();
    let mut w = open(&fs).unwrap();
    let acked = entries(1..=6, 100);
    for e in &acked {
        w.append(std::slice::from_ref(e)).unwrap();
        w.sync().unwrap();
    }
    drop(w);
    let seg = segments(&fs)[0].clone();
    let at = find(&fs, &seg, &[2u8; 100]).unwrap();
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    fs.inject(Fault::ReadEio {
        path: name,
        offset: at,
        len: 1,
    });
    match open(&fs) {
        Err(_) => {}
        Ok(w) => {
            // Whatever is served must be right; an unreadable entry is an error, never a
            // silently shorter log.
            assert!(w.last_index() >= 6, "silently truncated at a read error");
            if let Ok(got) = w.entries(1, 7) {
                assert_eq!(got, acked);
            }
        }
    }
    fs.clear_faults();
    assert_log(&open(&fs).unwrap(), &acked);
}

#[test]
fn stale_records_in_a_preallocated_region_do_not_verify() {
    let fs = fs();
    let mut w = open(&fs).unwrap();
    let acked = entries(1..=12, 500);
    for chunk in acked.chunks(2) {
        w.append(chunk).unwrap();
        w.sync().unwrap();
    }
    drop(w);
    let segs = segments(&fs);
    assert!(segs.len() >= 2);
    let (first, last) = (&segs[0], &segs[segs.len() - 1]);
    // Copy the first segment's records (valid for *its* identity) into the zero tail of the
    // last segment, where a recycled or misdirected write would leave them.
    let old = fs.durable_contents(first).unwrap();
    let tail = fs.durable_contents(last).unwrap();
    let end = tail.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    let at = end.div_ceil(512) * 512;
    let n = old
        .len()
        .min(tail.len().saturating_sub(at))
        .saturating_sub(64);
    if n > 0 {
        let f = fs.open(last, raftwal::io::OpenMode::ReadWrite).unwrap();
        use raftwal::io::VfsFile;
        f.write_all_at(&old[64..64 + n], at as u64).unwrap();
        f.sync_data().unwrap();
    }
    let w = open(&fs).unwrap();
    assert_log(&w, &acked);
}

#[test]
fn fsync_eio_poisons_and_reopen_keeps_everything_acknowledged() {
    for failure in [
        SyncFailure::KeepPending,
        SyncFailure::MarkClean,
        SyncFailure::PersistSome,
        SyncFailure::Invalidate,
    ] {
        let fs = fs();
        let mut w = open(&fs).unwrap();
        let acked = entries(1..=3, 100);
        w.append(&acked).unwrap();
        w.sync().unwrap();
        fs.inject(Fault::SyncEio {
            after: 0,
            path: Some(".wal".into()),
            failure,
        });
        w.append(&entries(4..=5, 100)).unwrap();
        assert!(w.sync().is_err());
        assert!(matches!(
            w.append(&entries(6..=6, 10)),
            Err(raftwal::Error::Poisoned { .. })
        ));
        assert!(matches!(w.sync(), Err(raftwal::Error::Poisoned { .. })));
        drop(w);
        fs.clear_faults();
        fs.crash_with(CrashMode::Random { fill: None }, 6);
        let w = open(&fs).unwrap();
        assert!(w.last_index() >= 3, "{failure:?}");
        assert_eq!(w.entries(1, 4).unwrap(), acked, "{failure:?}");
    }
}

#[test]
fn enospc_refuses_the_append_keeps_reads_and_resumes_after_reopen() {
    let fs = fs();
    let mut w = open(&fs).unwrap();
    let acked = entries(1..=3, 100);
    w.append(&acked).unwrap();
    w.sync().unwrap();
    fs.set_space_budget(Some(fs.live_bytes() + 100));
    let big = entries(4..=40, 300);
    let failed = w.append(&big).and_then(|()| w.sync());
    assert!(failed.is_err(), "the append cannot fit");
    assert_eq!(w.entry(2).unwrap(), acked[1], "reads still work");
    assert!(
        w.append(&entries(4..=4, 1)).is_err(),
        "later writes refused"
    );
    drop(w);
    fs.set_space_budget(None);
    let mut w = open(&fs).unwrap();
    assert!(w.last_index() >= 3);
    assert_eq!(w.entries(1, 4).unwrap(), acked);
    let next = w.last_index() + 1;
    w.append(&[entry(next, 10)]).unwrap();
    w.sync().unwrap();
}

#[test]
fn bad_input_is_a_clear_error_never_a_panic() {
    // A segment-named file full of garbage, durable.
    let fs = fs();
    drop(open(&fs).unwrap());
    let bogus = dir().join("00000000000000000001.wal");
    let f = fs.open(&bogus, raftwal::io::OpenMode::CreateNew).unwrap();
    use raftwal::io::VfsFile;
    f.write_all_at(&[0x5a; 700], 0).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(dir()).unwrap();
    let err = open_err(&fs, "garbage segment must be refused");
    assert!(err.is_corruption(), "{err}");
    assert!(
        err.to_string().contains("00000000000000000001.wal"),
        "{err}"
    );

    // A header that is not ours.
    let fs2 = fs_with_header(&[0x42; 8192]);
    let err = open_err(&fs2, "foreign header must be refused");
    assert!(err.is_corruption(), "{err}");
}

fn fs_with_header(bytes: &[u8]) -> SimFs {
    let fs = fs();
    drop(open(&fs).unwrap());
    let header = dir().join("HEADER");
    let f = fs.open(&header, raftwal::io::OpenMode::ReadWrite).unwrap();
    use raftwal::io::VfsFile;
    f.write_all_at(bytes, 0).unwrap();
    f.sync_data().unwrap();
    fs
}

#[test]
fn a_poisoned_handle_tells_a_full_disk_from_a_failing_one() {
    // ENOSPC: the kind survives the poisoning, so a caller can free space and reopen.
    let fs = fs();
    let mut w = open(&fs).unwrap();
    w.append_sync(&entries(1..=3, 100)).unwrap();
    fs.set_space_budget(Some(fs.live_bytes()));
    let err = (4..400)
        .find_map(|i| w.append_sync(&entries(i..=i, 3000)).err())
        .expect("the disk fills up");
    assert_eq!(
        err.io_kind(),
        Some(std::io::ErrorKind::StorageFull),
        "{err}"
    );
    let later = w.sync().unwrap_err();
    assert!(matches!(later, raftwal::Error::Poisoned { .. }), "{later}");
    assert_eq!(
        later.io_kind(),
        Some(std::io::ErrorKind::StorageFull),
        "{later}"
    );
    drop(w);
    // EIO: a different kind.
    fs.set_space_budget(None);
    let mut w = open(&fs).unwrap();
    fs.inject(Fault::SyncEio {
        after: 0,
        path: Some(".wal".into()),
        failure: SyncFailure::KeepPending,
    });
    w.append(&entries(w.last_index() + 1..=w.last_index() + 1, 10))
        .unwrap();
    assert!(w.sync().is_err());
    let later = w.sync().unwrap_err();
    assert!(matches!(later, raftwal::Error::Poisoned { .. }), "{later}");
    assert_ne!(
        later.io_kind(),
        Some(std::io::ErrorKind::StorageFull),
        "{later}"
    );
    assert!(later.io_kind().is_some(), "{later}");
}
