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
use crate::workload::{frame_len, payload, Budget, Cell, Sample};
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

/// The bytes of one batch: per entry a 32-byte header (index, term, length) and the payload
/// padded to 8 bytes, exactly as many bytes as raftwal writes for the same entries.
pub fn batch_bytes(entry_size: usize, batch: usize, seed: u64) -> Vec<u8> {
    let frame = frame_len(entry_size);
    let mut buf = vec![0u8; frame * batch];
    for (i, rec) in buf.chunks_exact_mut(frame).enumerate() {
        rec[4..8].copy_from_slice(&(entry_size as u32).to_le_bytes());
        rec[8..16].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        rec[16..24].copy_from_slice(&1u64.to_le_bytes());
        rec[32..32 + entry_size].copy_from_slice(&payload(entry_size, seed ^ i as u64));
    }
    buf
}

/// Runs the raw loop on `cell` in `dir` (a fresh file there for [`RawMode::Fallocate`], the
/// `area` for [`RawMode::Overwrite`]). A cell with several writers runs as one writer with
/// `writers × batch` entries per sync: perfect group commit, the limit for that many writers.
pub fn run(
    cell: &Cell,
    mode: RawMode,
    dir: &Path,
    area: Option<&OverwriteArea>,
    budget: &Budget,
) -> Result<Sample> {
    run_in_files(cell, mode, dir, area, budget, ALLOCATE_CHUNK, false)
}

/// [`run`] with a chosen preallocation size per file, optionally keeping the files.
fn run_in_files(
    cell: &Cell,
    mode: RawMode,
    dir: &Path,
    area: Option<&OverwriteArea>,
    budget: &Budget,
    chunk: u64,
    keep_files: bool,
) -> Result<Sample> {
    let batch = cell.batch * cell.writers;
    // RAFTWAL_RAW_SRC_SHIFT: start the source buffer this many bytes into its allocation
    // (diagnostic: the kernel's copy into the page cache depends on source alignment).
    let shift: usize = std::env::var("RAFTWAL_RAW_SRC_SHIFT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let bytes_of_batch = batch_bytes(cell.entry_size, batch, 0x5EED);
    let mut backing = vec![0u8; shift];
    if std::env::var_os("RAFTWAL_RAW_GROWN").is_some() {
        // Diagnostic: grow the source buffer by reallocation, as a WAL's write buffer grows.
        for chunk in bytes_of_batch.chunks(4096) {
            backing.extend_from_slice(chunk);
        }
    } else {
        backing.extend_from_slice(&bytes_of_batch);
    }
    let buf_len = backing.len() - shift;
    let touch = std::env::var_os("RAFTWAL_RAW_TOUCH").is_some();
    let vary = std::env::var_os("RAFTWAL_RAW_VARY").is_some();
    let fresh = backing.clone();
    let payload_per_batch = (cell.entry_size * batch) as u64;
    let mut owned: Option<File> = None;
    let mut files_created = 0usize;
    let shared = match mode {
        RawMode::Fallocate => None,
        RawMode::Overwrite => {
            let area = area.ok_or("raw overwrite mode needs an OverwriteArea")?;
            if area.len < buf_len as u64 {
                return Err("overwrite area smaller than one batch".into());
            }
            Some(area)
        }
    };
    let (ring, mut allocated) = match shared {
        Some(area) => (area.len, area.len),
        None => (u64::MAX, 0),
    };
    // Where data starts in each file: 0, or raftwal's 64-byte segment header when
    // RAFTWAL_RAW_OFFSET=64 (to isolate the effect of unaligned batches).
    let base_offset: u64 = std::env::var("RAFTWAL_RAW_OFFSET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Busy CPU time before each batch (RAFTWAL_RAW_GAP_US), to model a WAL's encoding work.
    let gap = Duration::from_micros(
        std::env::var("RAFTWAL_RAW_GAP_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    );
    let mimic = std::env::var_os("RAFTWAL_RAW_MIMIC").is_some();
    let mut lat = Latencies::with_capacity(1024);
    let mut off = 0u64;
    let mut batches = 0u64;
    let mut bytes = 0u64;
    // Time spent preallocating the next file, excluded from the measurement.
    let mut paused = Duration::ZERO;
    let start = Instant::now();
    loop {
        if off + buf_len as u64 > ring {
            off = 0;
        }
        if shared.is_none() && off + buf_len as u64 > allocated {
            // The next preallocated file (as a WAL rotates to its next segment), untimed:
            // create, fallocate, fsync it and its directory.
            let p = Instant::now();
            let name = dir.join(format!("raw-{files_created:06}.dat"));
            files_created += 1;
            allocated = chunk.max(buf_len as u64);
            let f = if mimic {
                // Diagnostic: raftwal's segment creation sequence (header first, then
                // fallocate, fsync, rename into place, directory fsync).
                let tmp = name.with_extension("tmp");
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&tmp)?;
                f.write_all_at(&[0x5a; 64], 0)?;
                f.allocate(allocated)?;
                f.sync_all()?;
                std::fs::rename(&tmp, &name)?;
                f
            } else {
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .open(&name)?;
                f.allocate(allocated)?;
                f.sync_all()?;
                f
            };
            File::open(dir)?.sync_all()?;
            owned = Some(f);
            off = base_offset;
            paused += p.elapsed();
        }
        let file = match (shared, owned.as_ref()) {
            (Some(area), _) => &area.file,
            (None, Some(f)) => f,
            (None, None) => return Err("no file".into()),
        };
        if !gap.is_zero() {
            let until = Instant::now() + gap;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        if touch {
            // Diagnostic: rewrite the source right before the write, as a WAL encodes it.
            backing.copy_from_slice(&fresh);
        }
        if vary {
            // Distinct bytes in every record of every batch: the batch number in each
            // record's index field.
            let frame = frame_len(cell.entry_size);
            for rec in backing[shift..].chunks_exact_mut(frame) {
                rec[8..16].copy_from_slice(&batches.to_le_bytes());
            }
        }
        let buf = &backing[shift..];
        let t = Instant::now();
        file.write_all_at(buf, off)?;
        file.sync_data()?;
        lat.record(t.elapsed());
        off += buf.len() as u64;
        batches += 1;
        bytes += payload_per_batch;
        if budget.done(start.elapsed().saturating_sub(paused), batches, bytes) {
            break;
        }
    }
    let elapsed = start.elapsed().saturating_sub(paused);
    drop(owned);
    for i in (0..files_created).filter(|_| !keep_files) {
        std::fs::remove_file(dir.join(format!("raw-{i:06}.dat")))?;
    }
    Ok(Sample {
        entries: batches * batch as u64,
        payload_bytes: bytes,
        batches,
        elapsed,
        latencies: lat,
        file_syncs: Some(batches),
        writes: Some(batches),
        slice_rates: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallocate_mode_moves_to_a_fresh_file_and_never_overwrites() {
        // Two batches per file: 5 batches must land in 3 files, each batch written once
        // (a regression: the loop once wrapped around inside its first file).
        let dir = tempfile::tempdir().unwrap();
        let budget = Budget {
            time: std::time::Duration::ZERO,
            min_batches: 5,
            max_bytes: u64::MAX,
            cooldown_mib_per_sec: 0.0,
        };
        let cell = Cell::single(100, 4);
        let per_batch = (4 * frame_len(100)) as u64;
        let s = run_in_files(
            &cell,
            RawMode::Fallocate,
            dir.path(),
            None,
            &budget,
            2 * per_batch,
            true,
        )
        .unwrap();
        assert_eq!(s.batches, 5);
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
        let s = run(&cell, RawMode::Fallocate, dir.path(), None, &budget).unwrap();
        assert_eq!((s.batches, s.entries, s.payload_bytes), (3, 12, 1200));
        assert!(!dir.path().join("raw-000000.dat").exists());
        let area = OverwriteArea::create(dir.path(), 1 << 12).unwrap();
        let s = run(&cell, RawMode::Overwrite, dir.path(), Some(&area), &budget).unwrap();
        assert_eq!(s.latencies.len(), 3);
        assert_eq!(batch_bytes(100, 4, 1).len(), 4 * frame_len(100));
    }
}
