//! Logs of a chosen size, and the time to open them again: recovery cost against retained log
//! size, from a warm page cache or a cold one.

use std::path::Path;
use std::time::{Duration, Instant};

use raftwal::{Options, RecoveryReport, Wal};

use crate::workload::{renumber, wal_batch, Cell};
use crate::Result;

/// Payload bytes per batch while building a log (one sync each).
const BUILD_BATCH_BYTES: usize = 1 << 20;

/// Fills a fresh raftwal log in `dir` with `entry_size`-byte entries until `payload_bytes` of
/// payload are durable. Returns the number of entries.
pub fn build_raftwal(
    dir: &Path,
    opts: &Options,
    payload_bytes: u64,
    entry_size: usize,
) -> Result<u64> {
    let mut wal = Wal::open(dir, opts.clone())?;
    let per_batch = (BUILD_BATCH_BYTES / entry_size).max(1);
    let cell = Cell::single(entry_size, per_batch);
    let mut batch = wal_batch(&cell, 0xB11D);
    let total = payload_bytes.div_ceil(entry_size as u64);
    let mut written = 0u64;
    while written < total {
        let n = (total - written).min(per_batch as u64) as usize;
        renumber(&mut batch[..n], wal.last_index() + 1);
        wal.append(&batch[..n])?;
        wal.sync()?;
        written += n as u64;
    }
    Ok(written)
}

/// Opens the raftwal log in `dir`: how long recovery took and what it reported.
pub fn open_raftwal(dir: &Path, opts: &Options) -> Result<(Duration, RecoveryReport)> {
    let t = Instant::now();
    let wal = Wal::open(dir, opts.clone())?;
    let took = t.elapsed();
    let report = wal.recovery_report().clone();
    drop(wal);
    Ok((took, report))
}

/// What follows the last record of a log built for the torn-tail measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// Nothing: the preallocated zeros.
    Clean,
    /// A record header that never arrived (zeros), then `bytes` of random payload: a torn
    /// write of a large batch whose first sector was lost.
    Random(usize),
    /// A lost record header, then `bytes` whose every 8-byte word is a plausible index and
    /// a plausible length for this segment: client data crafted to look like records.
    Plausible(usize),
}

/// The bytes to write after a log's last record (at `end`, in the segment starting at
/// index `first`) to make `tail`; empty for a clean tail.
pub fn tail_bytes(tail: Tail, first: u64) -> Vec<u8> {
    let (n, plausible) = match tail {
        Tail::Clean => return Vec::new(),
        Tail::Random(n) => (n, false),
        Tail::Plausible(n) => (n, true),
    };
    let mut out = vec![0u8; 40];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < 40 + n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let word = if plausible {
            // Alternately a small length and an index inside the segment.
            if (out.len() / 8) % 2 == 0 {
                (x % 60_000) << 32 | (x % 4096)
            } else {
                first + x % 50_000
            }
        } else {
            x
        };
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.truncate(40 + n);
    out
}

/// Writes `tail` after the last record of the single-segment log in `dir` (whose records
/// end at `end`): the state a torn write leaves. Returns the segment's path.
pub fn damage_tail(dir: &Path, end: u64, tail: Tail) -> Result<std::path::PathBuf> {
    use std::os::unix::fs::FileExt;
    let seg = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "wal"))
        .ok_or("no segment")?;
    let first: u64 = seg
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .ok_or("segment name")?;
    let f = std::fs::OpenOptions::new().write(true).open(&seg)?;
    f.write_all_at(&tail_bytes(tail, first), end)?;
    f.sync_all()?;
    Ok(seg)
}

/// Fills a fresh raft-engine in `dir` (region 1) like [`build_raftwal`].
#[cfg(feature = "raft-engine")]
pub fn build_raft_engine(
    dir: &Path,
    opts: &crate::raft_engine::EngineOptions,
    payload_bytes: u64,
    entry_size: usize,
) -> Result<u64> {
    use crate::raft_engine::{open, pb_batch, PbEntryExt};
    let engine = open(dir, opts)?;
    let per_batch = (BUILD_BATCH_BYTES / entry_size).max(1);
    let mut batch = pb_batch(&Cell::single(entry_size, per_batch), 0xB11D);
    let total = payload_bytes.div_ceil(entry_size as u64);
    let mut written = 0u64;
    let mut log_batch = raft_engine::LogBatch::with_capacity(per_batch);
    while written < total {
        let n = (total - written).min(per_batch as u64) as usize;
        for (i, e) in batch[..n].iter_mut().enumerate() {
            e.index = written + 1 + i as u64;
        }
        log_batch.add_entries::<PbEntryExt>(1, &batch[..n])?;
        engine.write(&mut log_batch, true)?;
        written += n as u64;
    }
    Ok(written)
}

/// Opens the raft-engine in `dir`: how long recovery took, and its last index of region 1.
#[cfg(feature = "raft-engine")]
pub fn open_raft_engine(
    dir: &Path,
    opts: &crate::raft_engine::EngineOptions,
) -> Result<(Duration, u64)> {
    let t = Instant::now();
    let engine = crate::raft_engine::open(dir, opts)?;
    let took = t.elapsed();
    let last = engine.last_index(1).unwrap_or(0);
    drop(engine);
    Ok((took, last))
}
