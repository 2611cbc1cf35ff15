//! The physical limit: a plain loop of `pwrite` + `fdatasync` of the same bytes, in the same
//! batches, to a preallocated file. No encoding, no checksums, no index: what no WAL can beat
//! on this file system.
//!
//! Two kinds of preallocation:
//! - [`RawMode::Fallocate`] (the reference limit): fresh 64 MiB files `fallocate`d ahead
//!   (untimed), as raftwal preallocates its segments. On ext4/xfs the allocated blocks are *unwritten
//!   extents*: the first write into each one converts it, a metadata change that makes the
//!   next `fdatasync` commit the file system journal too.
//! - [`RawMode::Overwrite`]: a file whose blocks were already written (zeros) and synced, and
//!   are overwritten in a ring. `fdatasync` then has only data to flush: the floor for a WAL
//!   that recycles or pre-zeroes its segments.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs2::FileExt as _;

use crate::latency::Latencies;
use crate::workload::{frame_len, payload, Budget, Cell, Sample, Session};
use crate::Result;

/// The raw loop writes preallocated files of this size (raftwal's default segment size): a
/// fresh file is created, `fallocate`d and synced, with its directory, outside the timed part
/// whenever the next batch does not fit. (One file grown in place by further `fallocate`s
/// measured up to 4 times slower on ext4 here: a separate file per chunk is the better
/// limit, and the layout raftwal uses.)
pub const ALLOCATE_CHUNK: u64 = 64 << 20;

/// How the raw loop's file is preallocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawMode {
    /// A fresh `fallocate`d file (unwritten extents), like raftwal's segments.
    Fallocate,
    /// A pre-zeroed, synced file overwritten in a ring.
    Overwrite,
}

/// A pre-zeroed, synced file for [`RawMode::Overwrite`], created once and reused.
#[derive(Debug)]
pub struct OverwriteArea {
    file: File,
    path: PathBuf,
    len: u64,
}

impl OverwriteArea {
    /// Creates `dir/raw-overwrite.dat` of `len` bytes of written, synced zeros.
    pub fn create(dir: &Path, len: u64) -> Result<Self> {
        let path = dir.join("raw-overwrite.dat");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        let chunk = vec![0u8; 8 << 20];
        let mut off = 0;
        while off < len {
            let n = chunk.len().min((len - off) as usize);
            file.write_all_at(&chunk[..n], off)?;
            off += n as u64;
        }
        file.sync_all()?;
        Ok(OverwriteArea { file, path, len })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OverwriteArea {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The bytes of one batch: per entry a record header (index, term, length) and the payload
/// padded to 8 bytes, exactly as many bytes as raftwal writes for the same entries.
pub fn batch_bytes(entry_size: usize, batch: usize, seed: u64) -> Vec<u8> {
    let frame = frame_len(entry_size);
    let mut buf = vec![0u8; frame * batch];
    for (i, rec) in buf.chunks_exact_mut(frame).enumerate() {
        rec[4..8].copy_from_slice(&(entry_size as u32).to_le_bytes());
        rec[8..16].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        rec[16..24].copy_from_slice(&1u64.to_le_bytes());
        let at = crate::workload::RECORD_HEADER;
        rec[at..at + entry_size].copy_from_slice(&payload(entry_size, seed ^ i as u64));
    }
    buf
}

/// Diagnostic variations of the raw loop, read from the environment (each isolates one way a
/// WAL's writes differ from the plain loop's; none is set by default).
#[derive(Debug, Clone, Copy, Default)]
struct Diag {
    /// RAFTWAL_RAW_SRC_SHIFT: start the source buffer this many bytes into its allocation
    /// (the kernel's copy into the page cache depends on source alignment).
    shift: usize,
    /// RAFTWAL_RAW_GROWN: grow the source buffer by reallocation, as a WAL's buffer grows.
    grown: bool,
    /// RAFTWAL_RAW_TOUCH: rewrite the source right before each write, as a WAL encodes it.
    touch: bool,
    /// RAFTWAL_RAW_VARY: distinct bytes in every batch (its number in each record).
    vary: bool,
    /// RAFTWAL_RAW_OFFSET: where data starts in each file (64: raftwal's segment header).
    base_offset: u64,
    /// RAFTWAL_RAW_GAP_US: busy CPU time before each batch, to model a WAL's encoding work.
    gap: Duration,
    /// RAFTWAL_RAW_MIMIC: raftwal's segment creation sequence (header first, then
    /// fallocate, fsync, rename into place, directory fsync).
    mimic: bool,
}

impl Diag {
    fn from_env() -> Self {
        fn num(name: &str) -> u64 {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        }
        let set = |name: &str| std::env::var_os(name).is_some();
        Diag {
            shift: num("RAFTWAL_RAW_SRC_SHIFT") as usize,
            grown: set("RAFTWAL_RAW_GROWN"),
            touch: set("RAFTWAL_RAW_TOUCH"),
            vary: set("RAFTWAL_RAW_VARY"),
            base_offset: num("RAFTWAL_RAW_OFFSET"),
            gap: Duration::from_micros(num("RAFTWAL_RAW_GAP_US")),
            mimic: set("RAFTWAL_RAW_MIMIC"),
        }
    }
}

/// The raw loop on one cell, slice after slice: [`RawMode::Fallocate`] writes on through its
/// preallocated files (a new one, untimed, whenever the next batch does not fit; all removed
/// when the session is dropped), [`RawMode::Overwrite`] around the `area`'s ring. A cell
/// with several writers runs as one writer with `writers × batch` entries per sync: perfect
/// group commit, the limit for that many writers.
#[derive(Debug)]
pub struct RawSession<'a> {
    entries_per_batch: usize,
    entry_size: usize,
    dir: PathBuf,
    area: Option<&'a OverwriteArea>,
    /// Size of each preallocated file.
    chunk: u64,
    keep_files: bool,
    diag: Diag,
    /// The batch's bytes, from `diag.shift` on.
    backing: Vec<u8>,
    /// A pristine copy of `backing`, kept only for `diag.touch`.
    fresh: Option<Vec<u8>>,
    file: Option<File>,
    files_created: usize,
    /// End of the ring (overwrite) or `u64::MAX`.
    ring: u64,
    /// Bytes usable in the current file.
    allocated: u64,
    /// Where the next batch goes.
    off: u64,
    /// Batches over all slices.
    batches: u64,
}

impl<'a> RawSession<'a> {
    /// Prepares the loop (no file is created before the first slice needs one).
    pub fn open(
        cell: &Cell,
        mode: RawMode,
        dir: &Path,
        area: Option<&'a OverwriteArea>,
    ) -> Result<Self> {
        Self::with_files(cell, mode, dir, area, ALLOCATE_CHUNK, false)
    }

    /// [`RawSession::open`] with a chosen preallocation size per file, optionally keeping the
    /// files.
    fn with_files(
        cell: &Cell,
        mode: RawMode,
        dir: &Path,
        area: Option<&'a OverwriteArea>,
        chunk: u64,
        keep_files: bool,
    ) -> Result<Self> {
        let diag = Diag::from_env();
        let entries_per_batch = cell.batch * cell.writers;
        let bytes_of_batch = batch_bytes(cell.entry_size, entries_per_batch, 0x5EED);
        let mut backing = vec![0u8; diag.shift];
        if diag.grown {
            for piece in bytes_of_batch.chunks(4096) {
                backing.extend_from_slice(piece);
            }
        } else {
            backing.extend_from_slice(&bytes_of_batch);
        }
        let area = match mode {
            RawMode::Fallocate => None,
            RawMode::Overwrite => {
                let area = area.ok_or("raw overwrite mode needs an OverwriteArea")?;
                if area.len < bytes_of_batch.len() as u64 {
                    return Err("overwrite area smaller than one batch".into());
                }
                Some(area)
            }
        };
        let (ring, allocated) = area.map_or((u64::MAX, 0), |a| (a.len, a.len));
        Ok(RawSession {
            entries_per_batch,
            entry_size: cell.entry_size,
            dir: dir.to_path_buf(),
            area,
            chunk,
            keep_files,
            diag,
            fresh: diag.touch.then(|| backing.clone()),
            backing,
            file: None,
            files_created: 0,
            ring,
            allocated,
            off: 0,
            batches: 0,
        })
    }

    fn file_name(&self, i: usize) -> PathBuf {
        self.dir.join(format!("raw-{i:06}.dat"))
    }

    /// The next preallocated file (as a WAL rotates to its next segment): create,
    /// `fallocate`, fsync it and its directory.
    fn next_file(&mut self, len: u64) -> Result<()> {
        let name = self.file_name(self.files_created);
        self.files_created += 1;
        self.allocated = self.chunk.max(len);
        let f = if self.diag.mimic {
            let tmp = name.with_extension("tmp");
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all_at(&[0x5a; 64], 0)?;
            f.allocate(self.allocated)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &name)?;
            f
        } else {
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&name)?;
            f.allocate(self.allocated)?;
            f.sync_all()?;
            f
        };
        File::open(&self.dir)?.sync_all()?;
        self.file = Some(f);
        self.off = self.diag.base_offset;
        Ok(())
    }
}

impl Session for RawSession<'_> {
    fn slice(&mut self, budget: &Budget) -> Result<Sample> {
        let buf_len = (self.backing.len() - self.diag.shift) as u64;
        let payload_per_batch = (self.entry_size * self.entries_per_batch) as u64;
        let mut lat = Latencies::with_capacity(1024);
        let (mut batches, mut bytes) = (0u64, 0u64);
        // Time spent preallocating the next file, excluded from the measurement.
        let mut paused = Duration::ZERO;
        let start = Instant::now();
        loop {
            if self.off + buf_len > self.ring {
                self.off = 0;
            }
            if self.area.is_none() && self.off + buf_len > self.allocated {
                let p = Instant::now();
                self.next_file(buf_len)?;
                paused += p.elapsed();
            }
            if !self.diag.gap.is_zero() {
                let until = Instant::now() + self.diag.gap;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            if let Some(fresh) = &self.fresh {
                self.backing.copy_from_slice(fresh);
            }
            if self.diag.vary {
                let frame = frame_len(self.entry_size);
                for rec in self.backing[self.diag.shift..].chunks_exact_mut(frame) {
                    rec[8..16].copy_from_slice(&self.batches.to_le_bytes());
                }
            }
            let file = match (self.area, self.file.as_ref()) {
                (Some(area), _) => &area.file,
                (None, Some(f)) => f,
                (None, None) => return Err("no file".into()),
            };
            let buf = &self.backing[self.diag.shift..];
            let t = Instant::now();
            file.write_all_at(buf, self.off)?;
            file.sync_data()?;
            lat.record(t.elapsed());
            self.off += buf_len;
            self.batches += 1;
            batches += 1;
            bytes += payload_per_batch;
            if budget.done(start.elapsed().saturating_sub(paused), batches, bytes) {
                break;
            }
        }
        Ok(Sample {
            entries: batches * self.entries_per_batch as u64,
            payload_bytes: bytes,
            batches,
            elapsed: start.elapsed().saturating_sub(paused),
            latencies: lat,
            file_syncs: Some(batches),
            writes: Some(batches),
            ..Sample::default()
        })
    }
}

impl Drop for RawSession<'_> {
    fn drop(&mut self) {
        self.file = None;
        for i in (0..self.files_created).filter(|_| !self.keep_files) {
            let _ = std::fs::remove_file(self.file_name(i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallocate_mode_moves_to_a_fresh_file_and_never_overwrites() {
        // Two batches per file: 5 batches, in slices of 2 and 3 that continue one another,
        // must land in 3 files, each batch written once (a regression: the loop once wrapped
        // around inside its first file).
        let dir = tempfile::tempdir().unwrap();
        let budget = |min_batches| Budget {
            time: std::time::Duration::ZERO,
            min_batches,
            max_bytes: u64::MAX,
            cooldown_mib_per_sec: 0.0,
        };
        let cell = Cell::single(100, 4);
        let per_batch = (4 * frame_len(100)) as u64;
        let mut session = RawSession::with_files(
            &cell,
            RawMode::Fallocate,
            dir.path(),
            None,
            2 * per_batch,
            true,
        )
        .unwrap();
        assert_eq!(session.slice(&budget(2)).unwrap().batches, 2);
        let s = session.slice(&budget(3)).unwrap();
        assert_eq!((s.batches, s.entries), (3, 12));
        drop(session);
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["raw-000000.dat", "raw-000001.dat", "raw-000002.dat"]
        );
        // The last file holds one batch at offset 0, then preallocated zeros.
        let last = std::fs::read(dir.path().join("raw-000002.dat")).unwrap();
        assert_eq!(last.len() as u64, 2 * per_batch);
        assert!(last[per_batch as usize..].iter().all(|&b| b == 0));
        assert!(last[..per_batch as usize].iter().any(|&b| b != 0));
    }

    #[test]
    fn raw_loop_writes_the_frame_bytes_in_both_modes() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Budget {
            time: std::time::Duration::ZERO,
            min_batches: 3,
            max_bytes: u64::MAX,
            cooldown_mib_per_sec: 0.0,
        };
        let cell = Cell::single(100, 4);
        let s = RawSession::open(&cell, RawMode::Fallocate, dir.path(), None)
            .and_then(|mut r| r.slice(&budget))
            .unwrap();
        assert_eq!((s.batches, s.entries, s.payload_bytes), (3, 12, 1200));
        assert!(!dir.path().join("raw-000000.dat").exists());
        let area = OverwriteArea::create(dir.path(), 1 << 12).unwrap();
        let s = RawSession::open(&cell, RawMode::Overwrite, dir.path(), Some(&area))
            .and_then(|mut r| r.slice(&budget))
            .unwrap();
        assert_eq!(s.latencies.len(), 3);
        assert_eq!(batch_bytes(100, 4, 1).len(), 4 * frame_len(100));
    }
}
