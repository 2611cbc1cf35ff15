//! [`SimFs`]: the simulated file system's public face — setup, faults, power cuts, forks,
//! inspection. Its state lives in `disk.rs`, its `raftwal::io::Vfs` calls in `sim_vfs.rs`.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::counters::Counters;
use crate::crash::{
    crash_file, crash_file_pages, rng, CrashMode, CrashPlan, CrashReport, Overwrite, PendingState,
    Writeback,
};
use crate::disk::Disk;
use crate::fault::{path_matches, ActiveFault, Fault, FaultCounts};
use crate::inode::to_usize;
use crate::namespace::{InodeId, Namespace};

/// Default tear unit: a 512-byte sector.
pub const SECTOR_SIZE: u64 = 512;

/// A bit flipped in durable data by [`SimFs::flip_random_bits`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitFlip {
    /// The file.
    pub path: PathBuf,
    /// Byte offset.
    pub offset: u64,
    /// Bit within the byte (0..8).
    pub bit: u8,
}

/// The machine at one I/O call, recorded by [`SimFs::start_recording`].
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Number of mutating I/O calls served when this was taken.
    pub io_call: u64,
    /// The call just served (`"write /d/1.wal 120@4096"`).
    pub what: String,
    disk: Disk,
}

impl Checkpoint {
    /// A new, independent file system in this state (no handles open, no locks held).
    pub fn to_fs(&self) -> SimFs {
        let mut disk = self.disk.clone();
        disk.locks.clear();
        disk.epoch += 1;
        SimFs::from_disk(disk)
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) disk: Disk,
    recording: Option<Vec<Checkpoint>>,
    /// Runs at the start of every file sync (see [`SimFs::set_sync_hook`]).
    pub(crate) sync_hook: Option<SyncHook>,
}

/// A closure run at the start of every file sync, outside the file system's lock.
#[derive(Clone)]
pub(crate) struct SyncHook(pub(crate) Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for SyncHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncHook")
    }
}

/// An in-memory file system with a page cache that a power cut can tear (see the crate docs).
/// Clones share the same state.
#[derive(Debug, Clone)]
pub struct SimFs {
    pub(crate) inner: Arc<Mutex<Inner>>,
}

impl Default for SimFs {
    fn default() -> Self {
        Self::new(0)
    }
}

impl SimFs {
    /// An empty file system whose fault behaviour (short writes, sync failure modes) is
    /// seeded by `seed`.
    pub fn new(seed: u64) -> Self {
        Self::from_disk(Disk {
            inodes: BTreeMap::new(),
            next_ino: 1,
            ns: Namespace::default(),
            epoch: 0,
            locks: BTreeSet::new(),
            faults: Vec::new(),
            space_budget: None,
            sector: SECTOR_SIZE,
            writeback: Writeback::Writes,
            overwrite: Overwrite::Powersafe,
            fallocate: true,
            rng: StdRng::seed_from_u64(seed),
            counters: Counters::default(),
            fault_counts: FaultCounts::default(),
            crashes: 0,
            identities: Default::default(),
            io_calls: 0,
        })
    }

    fn from_disk(disk: Disk) -> Self {
        SimFs {
            inner: Arc::new(Mutex::new(Inner {
                disk,
                recording: None,
                sync_hook: None,
            })),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the tear unit (default 512 bytes); a small unit tears inside a header slot.
    pub fn set_sector_size(&self, bytes: u64) {
        self.state().disk.sector = bytes.max(1);
    }

    /// Sets how unsynced data reaches the disk in a power cut (default: write by write; see
    /// [`Writeback`]).
    pub fn set_writeback(&self, writeback: Writeback) {
        self.state().disk.writeback = writeback;
    }

    /// Sets what a torn write can damage (default: powersafe overwrite, see [`Overwrite`]).
    pub fn set_overwrite(&self, overwrite: Overwrite) {
        self.state().disk.overwrite = overwrite;
    }

    /// With `false`, `allocate` writes zeros over the new space instead of reserving it, as
    /// on a file system without `fallocate`; those writes are pending until synced and tear
    /// in a crash like any other.
    pub fn set_fallocate(&self, supported: bool) {
        self.state().disk.fallocate = supported;
    }

    /// Creates `dir` and its missing parents durably, as if they existed before the
    /// simulation started (test setup; the WAL's own `create_dir` calls are pending until
    /// their parent directory is synced).
    pub fn mkdir_durable(&self, dir: &Path) {
        self.state().disk.ns.add_durable_dir(dir);
    }

    /// A deep copy that shares nothing with `self` (no handles, no locks).
    pub fn fork(&self) -> SimFs {
        let st = self.state();
        Checkpoint {
            io_call: st.disk.io_calls,
            what: String::new(),
            disk: st.disk.clone(),
        }
        .to_fs()
    }

    // ----- faults -------------------------------------------------------------------------

    /// Installs a fault.
    pub fn inject(&self, fault: Fault) {
        let mut st = self.state();
        let ino = match &fault {
            Fault::ReadEio { path, .. } => {
                let mut matching = st
                    .disk
                    .ns
                    .live
                    .entries
                    .iter()
                    .filter(|(p, _)| p.to_string_lossy().contains(path.as_str()))
                    .map(|(_, ino)| *ino);
                match (matching.next(), matching.next()) {
                    (Some(ino), None) => Some(ino),
                    _ => None,
                }
            }
            _ => None,
        };
        st.disk.faults.push(ActiveFault {
            fault,
            seen: 0,
            ino,
        });
    }

    /// Runs `hook` at the start of every file sync (`sync_data`/`sync_all`), before the
    /// sync takes effect and outside the file system's lock; `None` removes it. A test uses
    /// it to hold a sync in flight until other threads have done something — a slow disk
    /// without sleeping.
    pub fn set_sync_hook(&self, hook: Option<Arc<dyn Fn() + Send + Sync>>) {
        self.state().sync_hook = hook.map(SyncHook);
    }

    /// Removes every installed fault (not the space budget).
    pub fn clear_faults(&self) {
        self.state().disk.faults.clear();
    }

    /// ENOSPC once the live bytes of all files would exceed `budget`; `None` lifts the limit.
    pub fn set_space_budget(&self, budget: Option<u64>) {
        self.state().disk.space_budget = budget;
    }

    /// Bytes held by all files in the live namespace.
    pub fn live_bytes(&self) -> u64 {
        self.state().disk.live_bytes()
    }

    /// Faults fired so far, by kind.
    pub fn fault_counts(&self) -> FaultCounts {
        self.state().disk.fault_counts
    }

    /// Flips bit `bit` of byte `offset` of the durable image of `path` (and of its cached
    /// copy, as if the cache had been re-read from the disk).
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) -> io::Result<()> {
        let mut st = self.state();
        let disk = &mut st.disk;
        let ino = disk.lookup(path)?;
        let inode = disk.inode_mut(ino)?;
        let at = to_usize(offset);
        if at >= inode.durable.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "flip at {offset} past the durable end ({}) of {}",
                    inode.durable.len(),
                    path.display()
                ),
            ));
        }
        let mask = 1u8 << (bit % 8);
        inode.durable[at] ^= mask;
        if let Some(b) = inode.live.get_mut(at) {
            *b ^= mask;
        }
        disk.fault_counts.bit_flips += 1;
        Ok(())
    }

    /// Flips `n` seeded random bits in the durable data of files whose path contains
    /// `filter` (all files if `None`); returns where.
    pub fn flip_random_bits(&self, seed: u64, n: usize, filter: Option<&str>) -> Vec<BitFlip> {
        let candidates: Vec<(PathBuf, u64)> = {
            let st = self.state();
            st.disk
                .ns
                .live
                .entries
                .iter()
                .filter(|(p, _)| path_matches(filter, &p.to_string_lossy()))
                .filter_map(|(p, ino)| {
                    let len = st.disk.inodes.get(ino)?.durable.len() as u64;
                    (len > 0).then(|| (p.clone(), len))
                })
                .collect()
        };
        let mut flips = Vec::new();
        if candidates.is_empty() {
            return flips;
        }
        let mut r = rng(seed);
        for _ in 0..n {
            let (path, len) = &candidates[r.gen_range(0..candidates.len())];
            let flip = BitFlip {
                path: path.clone(),
                offset: r.gen_range(0..*len),
                bit: r.gen_range(0..8),
            };
            if self.flip_bit(&flip.path, flip.offset, flip.bit).is_ok() {
                flips.push(flip);
            }
        }
        flips
    }

    // ----- crashes ------------------------------------------------------------------------

    /// What is unsynced now: the choices a crash would make.
    pub fn pending(&self) -> PendingState {
        self.state().disk.pending()
    }

    /// A power cut with a seeded random outcome (see [`CrashMode::Random`]).
    pub fn crash(&self, seed: u64) -> CrashReport {
        self.crash_with(CrashMode::Random { fill: None }, seed)
    }

    /// A power cut: replaces the state in place with what the disk holds afterwards. Every
    /// handle opened before becomes invalid and every lock is released. `seed` drives the
    /// random choices and the garbage bytes.
    pub fn crash_with(&self, mode: CrashMode, seed: u64) -> CrashReport {
        let mut st = self.state();
        let disk = &mut st.disk;
        let pending = disk.pending();
        let mut r = rng(seed);
        let plan = match mode {
            CrashMode::LoseAll => CrashPlan::default(),
            CrashMode::KeepAll => pending.plan_from_mask(u64::MAX),
            CrashMode::Random { fill } => pending.random_plan(&mut r, fill),
            CrashMode::Plan(p) => p,
        };
        let mut report = CrashReport {
            seed,
            ..CrashReport::default()
        };
        let sector = disk.sector;
        let overwrite = disk.overwrite;
        let page = match disk.writeback {
            Writeback::Pages { page } => page,
            Writeback::Writes => 4096,
        };
        for f in &pending.files {
            let path = f
                .path
                .as_ref()
                .map_or_else(|| format!("#{}", f.ino), |p| p.display().to_string());
            let Some(inode) = disk.inodes.get_mut(&f.ino) else {
                continue;
            };
            report.files.push(match plan.pages.get(&f.ino) {
                Some(pc) => {
                    crash_file_pages(inode, Some(pc), (page, sector, overwrite), &mut r, path)
                }
                None => crash_file(
                    inode,
                    plan.files.get(&f.ino),
                    (sector, overwrite),
                    &mut r,
                    path,
                ),
            });
        }
        let undone = disk.ns.crash(&plan.dir_keep);
        report.dir_ops_kept = pending.dir_ops.len() - undone.len();
        report.dir_ops_undone = undone.iter().map(ToString::to_string).collect();
        // Only what a durable entry names survives; the cache of every file is dropped.
        let named: BTreeSet<InodeId> = disk.ns.durable.entries.values().copied().collect();
        disk.inodes.retain(|ino, _| named.contains(ino));
        for inode in disk.inodes.values_mut() {
            inode.reset_to_durable();
        }
        disk.epoch += 1;
        disk.locks.clear();
        disk.crashes += 1;
        tracing::debug!(target: "fault_inject", "{report}");
        report
    }

    /// Crashes so far.
    pub fn crashes(&self) -> u64 {
        self.state().disk.crashes
    }

    /// A hash of the durable state (namespace and file contents): equal hashes mean the
    /// same crash state.
    pub fn durable_hash(&self) -> u64 {
        let st = self.state();
        let mut h = DefaultHasher::new();
        for dir in &st.disk.ns.durable.dirs {
            dir.hash(&mut h);
        }
        for (path, ino) in &st.disk.ns.durable.entries {
            path.hash(&mut h);
            if let Some(inode) = st.disk.inodes.get(ino) {
                inode.durable.hash(&mut h);
            }
        }
        h.finish()
    }

    /// The durable bytes of `path` (durable namespace), if it exists there.
    pub fn durable_contents(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.state();
        let ino = st.disk.ns.durable.entries.get(path)?;
        st.disk.inodes.get(ino).map(|i| i.durable.clone())
    }

    /// The file (inode) the durable namespace names `path`, if any.
    pub fn durable_inode(&self, path: &Path) -> Option<InodeId> {
        self.state().disk.ns.durable.entries.get(path).copied()
    }

    /// The live bytes of `path`, if it exists.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.state();
        let ino = st.disk.ns.live.entries.get(path)?;
        st.disk.inodes.get(ino).map(|i| i.live.clone())
    }

    // ----- counters and recording ---------------------------------------------------------

    /// Calls served so far.
    pub fn counters(&self) -> Counters {
        self.state().disk.counters.clone()
    }

    /// Zeroes the counters.
    pub fn reset_counters(&self) {
        self.state().disk.counters = Counters::default();
    }

    /// The first segment identity written twice (`Identities`), if any: a sequence number
    /// given to a second segment header, since this file system was made.
    pub fn identity_reuse(&self) -> Option<String> {
        self.state().disk.identities.reuse().map(str::to_owned)
    }

    /// Mutating I/O calls served so far.
    pub fn io_calls(&self) -> u64 {
        self.state().disk.io_calls
    }

    /// From now on, keep a [`Checkpoint`] after every mutating I/O call (and one now).
    pub fn start_recording(&self) {
        let mut st = self.state();
        let first = Checkpoint {
            io_call: st.disk.io_calls,
            what: "start".into(),
            disk: st.disk.clone(),
        };
        st.recording = Some(vec![first]);
    }

    /// Stops recording and returns the checkpoints.
    pub fn take_recording(&self) -> Vec<Checkpoint> {
        self.state().recording.take().unwrap_or_default()
    }
}

impl Inner {
    /// Counts a mutating I/O call and records a checkpoint if recording.
    pub(crate) fn served(&mut self, what: impl FnOnce() -> String) {
        self.disk.io_calls += 1;
        if let Some(rec) = &mut self.recording {
            rec.push(Checkpoint {
                io_call: self.disk.io_calls,
                what: what(),
                disk: self.disk.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

    use raftwal::io::{OpenMode, Vfs, VfsFile};

    use super::*;
    use crate::crash::{FileCrash, TornFill, TornWrite};
    use crate::fault::SyncFailure;
    use crate::sim_file::SimFile;

    fn dir() -> &'static Path {
        Path::new("/d")
    }

    fn fs_with_dir() -> SimFs {
        let fs = SimFs::new(1);
        fs.mkdir_durable(dir());
        fs
    }

    fn read_all(fs: &SimFs, path: &Path) -> Vec<u8> {
        fs.contents(path).unwrap()
    }

    #[test]
    fn reads_see_the_cache_and_only_synced_data_survives_a_cut() {
        let fs = fs_with_dir();
        let p = dir().join("f");
        let f = fs.open(&p, OpenMode::CreateNew).unwrap();
        fs.sync_dir(dir()).unwrap();
        f.write_all_at(b"synced", 0).unwrap();
        f.sync_data().unwrap();
        f.write_all_at(b"!lost", 6).unwrap();
        let mut buf = [0u8; 11];
        f.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"synced!lost");
        fs.crash_with(CrashMode::LoseAll, 0);
        assert_eq!(read_all(&fs, &p), b"synced");
        let err = f.write_all_at(b"x", 0).unwrap_err();
        assert!(err.to_string().contains("stale handle"));
        assert!(f.len().is_err());
    }

    #[test]
    fn keep_all_crash_keeps_every_unsynced_write() {
        let fs = fs_with_dir();
        let p = dir().join("f");
        let f = fs.open(&p, OpenMode::CreateNew).unwrap();
        f.write_all_at(b"abc", 0).unwrap();
        f.set_len(2).unwrap();
        let r = fs.crash_with(CrashMode::KeepAll, 0);
        assert_eq!(r.files[0].kept, 2);
        assert_eq!(r.dir_ops_kept, 1);
        assert_eq!(read_all(&fs, &p), b"ab");
    }

    #[test]
    fn a_new_file_vanishes_without_sync_dir_even_if_its_data_was_synced() {
        let fs = fs_with_dir();
        let p = dir().join("1.wal");
        let f = fs.open(&p, OpenMode::CreateNew).unwrap();
        f.write_all_at(b"data", 0).unwrap();
        f.sync_all().unwrap();
        let r = fs.crash_with(CrashMode::LoseAll, 0);
        assert_eq!(r.dir_ops_undone, vec!["create /d/1.wal".to_owned()]);
        assert!(fs.list(dir()).unwrap().is_empty());
        assert_eq!(
            fs.open(&p, OpenMode::Read).unwrap_err().kind(),
            ErrorKind::NotFound
        );

        let f = fs.open(&p, OpenMode::CreateNew).unwrap();
        f.write_all_at(b"data", 0).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(dir()).unwrap();
        fs.crash_with(CrashMode::LoseAll, 0);
        assert_eq!(read_all(&fs, &p), b"data");
    }

    #[test]
    fn unsynced_rename_and_remove_come_back_after_a_cut() {
        let fs = fs_with_dir();
        let tmp = dir().join("snap.tmp");
        let fin = dir().join("snap");
        let old = dir().join("old");
        let f = fs.open(&tmp, OpenMode::CreateNew).unwrap();
        f.write_all_at(b"S", 0).unwrap();
        f.sync_data().unwrap();
        drop(fs.open(&old, OpenMode::CreateNew).unwrap());
        fs.sync_dir(dir()).unwrap();
        fs.rename(&tmp, &fin).unwrap();
        fs.remove(&old).unwrap();
        assert_eq!(fs.list(dir()).unwrap(), vec!["snap".to_owned()]);
        // Keep the remove, undo the rename: each directory operation independently.
        let plan = CrashPlan {
            dir_keep: vec![false, true],
            ..CrashPlan::default()
        };
        let r = fs.crash_with(CrashMode::Plan(plan), 0);
        assert_eq!(r.dir_ops_kept, 1);
        assert_eq!(fs.list(dir()).unwrap(), vec!["snap.tmp".to_owned()]);
        assert_eq!(read_all(&fs, &tmp), b"S");
    }

    #[test]
    fn directory_lock_is_exclusive_and_released_on_drop_and_on_crash() {
        let fs = fs_with_dir();
        let held = fs.lock(dir()).unwrap();
        assert_eq!(fs.lock(dir()).unwrap_err().kind(), ErrorKind::WouldBlock);
        drop(held);
        let held = fs.lock(dir()).unwrap();
        fs.crash(3);
        let again = fs.lock(dir()).unwrap();
        drop(held); // the pre-crash lock must not release the new one
        assert_eq!(fs.lock(dir()).unwrap_err().kind(), ErrorKind::WouldBlock);
        drop(again);
        assert!(fs.lock(dir()).is_ok());
    }

    #[test]
    fn nth_write_fails_with_eio_on_the_matching_file_only() {
        let fs = fs_with_dir();
        let a = fs.open(&dir().join("a.wal"), OpenMode::CreateNew).unwrap();
        let h = fs.open(&dir().join("hdr"), OpenMode::CreateNew).unwrap();
        fs.inject(Fault::WriteEio {
            after: 1,
            path: Some(".wal".into()),
        });
        a.write_all_at(b"1", 0).unwrap();
        h.write_all_at(b"h", 0).unwrap();
        let err = a.write_all_at(b"2", 1).unwrap_err();
        assert_eq!(err.raw_os_error(), None);
        assert_eq!(err.kind(), io::Error::from_raw_os_error(libc::EIO).kind());
        a.write_all_at(b"3", 1).unwrap(); // one-shot
        assert_eq!(fs.fault_counts().write_eio, 1);
    }

    fn synced_then_dirty(fs: &SimFs, failure: SyncFailure) -> (SimFile, PathBuf) {
        let p = dir().join("f");
        let f = fs.open(&p, OpenMode::CreateNew).unwrap();
        fs.sync_dir(dir()).unwrap();
        f.write_all_at(b"old", 0).unwrap();
        f.sync_data().unwrap();
        f.write_all_at(b"new", 0).unwrap();
        fs.inject(Fault::SyncEio {
            after: 0,
            path: None,
            failure,
        });
        assert!(f.sync_data().is_err());
        (f, p)
    }

    #[test]
    fn fsyncgate_mark_clean_reads_new_data_but_a_crash_loses_it() {
        let fs = fs_with_dir();
        let (f, p) = synced_then_dirty(&fs, SyncFailure::MarkClean);
        assert_eq!(read_all(&fs, &p), b"new");
        f.sync_data().unwrap(); // succeeds, writes nothing: the pages are clean
        fs.crash_with(CrashMode::KeepAll, 0);
        assert_eq!(read_all(&fs, &p), b"old");
        assert_eq!(fs.fault_counts().sync_eio, 1);
    }

    #[test]
    fn fsyncgate_invalidate_drops_the_dirty_pages_from_the_cache() {
        let fs = fs_with_dir();
        let (_f, p) = synced_then_dirty(&fs, SyncFailure::Invalidate);
        assert_eq!(read_all(&fs, &p), b"old");
    }

    #[test]
    fn failed_sync_keep_pending_may_still_persist() {
        let fs = fs_with_dir();
        let (_f, p) = synced_then_dirty(&fs, SyncFailure::KeepPending);
        fs.crash_with(CrashMode::KeepAll, 0);
        assert_eq!(read_all(&fs, &p), b"new");
    }

    #[test]
    fn enospc_past_the_budget_and_space_returns_when_freed() {
        let fs = fs_with_dir();
        let p = dir().join("f");
        let f = fs.open(&p, OpenMode::CreateNew).unwrap();
        fs.set_space_budget(Some(10));
        f.write_all_at(&[1; 8], 0).unwrap();
        let err = f.write_all_at(&[2; 8], 8).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StorageFull);
        let len = f.len().unwrap();
        assert!(
            len == 8 || len == 10,
            "whole failure or short write, got {len}"
        );
        assert_eq!(f.allocate(64).unwrap_err().kind(), ErrorKind::StorageFull);
        f.write_all_at(&[3; 2], 0).unwrap(); // overwrites need no space
        fs.set_space_budget(None);
        f.allocate(64).unwrap();
        assert_eq!(f.len().unwrap(), 64);
        assert_eq!(fs.fault_counts().enospc, 2);
    }

    #[test]
    fn latent_sector_error_fails_overlapping_reads() {
        let fs = fs_with_dir();
        let p = dir().join("1.wal");
        let f = fs.open(&p, OpenMode::CreateNew).unwrap();
        f.write_all_at(&[9; 2048], 0).unwrap();
        fs.inject(Fault::ReadEio {
            path: "1.wal".into(),
            offset: 1024,
            len: 512,
        });
        let mut buf = [0u8; 512];
        f.read_exact_at(&mut buf, 0).unwrap();
        assert!(f.read_exact_at(&mut buf, 1000).is_err());
        let mut head = [0u8; 1024];
        f.read_exact_at(&mut head, 0).unwrap();
        fs.clear_faults();
        f.read_exact_at(&mut buf, 1024).unwrap();
        assert_eq!(fs.fault_counts().read_eio, 1);
    }

    #[test]
    fn bit_flips_change_durable_data_deterministically() {
        let fs = fs_with_dir();
        let p = dir().join("1.wal");
        let f = fs.open(&p, OpenMode::CreateNew).unwrap();
        fs.sync_dir(dir()).unwrap();
        f.write_all_at(&[0; 64], 0).unwrap();
        f.sync_data().unwrap();
        fs.flip_bit(&p, 3, 1).unwrap();
        assert_eq!(fs.durable_contents(&p).unwrap()[3], 2);
        assert_eq!(read_all(&fs, &p)[3], 2);
        assert!(fs.flip_bit(&p, 64, 0).is_err());
        let a = fs.fork().flip_random_bits(5, 3, Some(".wal"));
        let b = fs.fork().flip_random_bits(5, 3, Some(".wal"));
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);
        assert!(fs.flip_random_bits(5, 3, Some("nothing")).is_empty());
    }

    #[test]
    fn counters_count_calls_per_kind_and_path() {
        let fs = fs_with_dir();
        let p = dir().join("f");
        let f = fs.open(&p, OpenMode::CreateNew).unwrap();
        f.write_all_at(b"abc", 0).unwrap();
        f.write_all_at(b"de", 3).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(dir()).unwrap();
        let c = fs.counters();
        assert_eq!((c.writes, c.bytes_written, c.file_syncs), (2, 5, 1));
        assert_eq!((c.dir_syncs, c.creates), (1, 1));
        assert_eq!(c.per_path[&p].syncs, 1);
        fs.reset_counters();
        assert_eq!(fs.counters().writes, 0);
    }

    #[test]
    fn random_crashes_are_deterministic_and_tear_at_sectors() {
        let build = || {
            let fs = fs_with_dir();
            let f = fs.open(&dir().join("f"), OpenMode::CreateNew).unwrap();
            fs.sync_dir(dir()).unwrap();
            for i in 0..6u8 {
                f.write_all_at(&[i + 1; 700], u64::from(i) * 700).unwrap();
            }
            fs
        };
        let mut hashes = BTreeSet::new();
        let mut torn = 0;
        for seed in 0..40 {
            let (a, b) = (build(), build());
            let ra = a.crash(seed);
            let rb = b.crash(seed);
            assert_eq!(ra, rb);
            assert_eq!(a.durable_hash(), b.durable_hash());
            hashes.insert(a.durable_hash());
            torn += usize::from(ra.torn());
        }
        assert!(hashes.len() > 10, "crashes should differ: {}", hashes.len());
        assert!(torn > 5);

        let fs = build();
        let ino = fs.pending().files[0].ino;
        let mut files = BTreeMap::new();
        files.insert(
            ino,
            FileCrash {
                keep: vec![true; 6],
                torn: Some(TornWrite {
                    op: 5,
                    sectors_kept: 0,
                    fill: TornFill::Garbage,
                }),
            },
        );
        let r = fs.crash_with(
            CrashMode::Plan(CrashPlan {
                files,
                ..CrashPlan::default()
            }),
            1,
        );
        assert_eq!(r.files[0].torn, Some((5, 0, 3, TornFill::Garbage)));
        let data = fs.contents(&dir().join("f")).unwrap();
        assert_eq!(data.len(), 4200);
        assert!(data[3500..].iter().any(|&b| b != 6));
        assert!(r.to_string().contains("torn at 0/3 sectors (garbage)"));
    }

    #[test]
    fn recording_checkpoints_every_mutating_call() {
        let fs = fs_with_dir();
        fs.start_recording();
        let f = fs.open(&dir().join("f"), OpenMode::CreateNew).unwrap();
        f.write_all_at(b"x", 0).unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(dir()).unwrap();
        let cps = fs.take_recording();
        assert_eq!(cps.len(), 5);
        assert_eq!(cps[2].what, "write /d/f 1@0");
        let at_write = cps[2].to_fs();
        at_write.crash_with(CrashMode::LoseAll, 0);
        assert!(at_write.list(dir()).unwrap().is_empty());
        assert_eq!(fs.contents(&dir().join("f")).unwrap(), b"x");
    }
}
