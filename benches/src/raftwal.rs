//! The workload through raftwal: [`raftwal::Wal`] for one writer (append a batch, `sync`), and
//! [`raftwal::group_commit::GroupCommit`] for several writers sharing one log.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use raftwal::group_commit::GroupCommit;
use raftwal::{Options, Wal};

use crate::latency::Latencies;
use crate::steady::{Compactions, Steady};
use crate::workload::{renumber, wal_batch, Budget, Cell, Sample, Session};
use crate::Result;

/// raftwal on one cell, slice after slice, the log growing on through them.
pub struct WalSession {
    cell: Cell,
    log: Log,
}

enum Log {
    /// One writer: append a batch, `sync`, repeat (and in a steady state compact).
    Single {
        wal: Box<Wal>,
        batch: Vec<raftwal::Entry>,
        steady: Option<Steady>,
    },
    /// Several writers through one [`GroupCommit`].
    Shared(Arc<GroupCommit>),
}

impl WalSession {
    /// Opens a fresh WAL in `dir` with `opts`, before any timing.
    ///
    /// A fresh log zero-fills its first segment at open: that write is left to drain (see
    /// [`Budget::cool_down`]) before the first slice, as the other systems' setup is.
    ///
    /// With `steady`, the log is compacted behind a moving snapshot point inside every slice
    /// (`Wal::compact`), and warmed up first, untimed, until compaction recurs (one writer
    /// only: several writers are refused).
    pub fn open(
        cell: &Cell,
        dir: &Path,
        opts: &Options,
        budget: &Budget,
        steady: Option<Steady>,
    ) -> Result<Self> {
        let wal = Wal::open(dir, opts.clone())?;
        budget.cool_down(wal.stats().spare_bytes_zeroed);
        if cell.writers > 1 {
            if steady.is_some() {
                return Err("the steady state runs one writer per log".into());
            }
            let log = Log::Shared(Arc::new(GroupCommit::new(wal)));
            return Ok(WalSession { cell: *cell, log });
        }
        let mut wal = Box::new(wal);
        let mut batch = wal_batch(cell, 0x5EED);
        if let Some(st) = steady {
            let warm = Budget {
                time: std::time::Duration::ZERO,
                min_batches: 1,
                max_bytes: st.warm_bytes(opts.segment_size),
                ..*budget
            };
            let s = run_single(cell, &mut wal, &mut batch, &warm, steady)?;
            budget.cool_down(s.payload_bytes);
        }
        let log = Log::Single { wal, batch, steady };
        Ok(WalSession { cell: *cell, log })
    }
}

impl Session for WalSession {
    fn slice(&mut self, budget: &Budget) -> Result<Sample> {
        match &mut self.log {
            Log::Single { wal, batch, steady } => {
                run_single(&self.cell, wal, batch, budget, *steady)
            }
            Log::Shared(gc) => run_concurrent(&self.cell, gc, budget),
        }
    }
}

/// One writer appending `batch` (renumbered) and syncing until the budget is spent; in a
/// steady state compacting whenever the log has grown past it.
fn run_single(
    cell: &Cell,
    wal: &mut Wal,
    batch: &mut [raftwal::Entry],
    budget: &Budget,
    steady: Option<Steady>,
) -> Result<Sample> {
    let before = wal.stats();
    let per_batch = cell.batch_bytes() as u64;
    let mut next = wal.last_index() + 1;
    let mut lat = Latencies::with_capacity(1024);
    let mut compactions = Compactions::default();
    let (mut batches, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    loop {
        renumber(batch, next);
        let t = Instant::now();
        wal.append(batch)?;
        wal.sync()?;
        lat.record(t.elapsed());
        if let Some(to) =
            steady.and_then(|s| s.compact_point(cell, wal.first_index(), wal.last_index()))
        {
            compactions.time(|| wal.compact(to))?;
        }
        next += cell.batch as u64;
        batches += 1;
        bytes += per_batch;
        if budget.done(start.elapsed(), batches, bytes) {
            break;
        }
    }
    let elapsed = start.elapsed();
    let after = wal.stats();
    Ok(Sample {
        entries: batches * cell.batch as u64,
        payload_bytes: bytes,
        batches,
        elapsed,
        latencies: lat,
        file_syncs: Some(after.file_syncs - before.file_syncs),
        writes: Some(after.writes - before.writes),
        compactions,
        files_created: Some(new_files(&before, &after)),
        files_reused: Some(after.segments_from_pool - before.segments_from_pool),
        ..Sample::default()
    })
}

/// `cell.writers` threads, each committing `cell.batch` entries at a time through `gc`
/// until the budget is spent.
fn run_concurrent(cell: &Cell, gc: &Arc<GroupCommit>, budget: &Budget) -> Result<Sample> {
    let before = gc.stats()?;
    let bytes = Arc::new(AtomicU64::new(0));
    let start_line = Arc::new(Barrier::new(cell.writers + 1));
    let per_batch = cell.batch_bytes() as u64;
    let threads: Vec<_> = (0..cell.writers)
        .map(|w| {
            let (gc, bytes, start_line) = (gc.clone(), bytes.clone(), start_line.clone());
            let (cell, budget) = (*cell, *budget);
            std::thread::spawn(move || -> Result<(Latencies, u64)> {
                let mut batch = wal_batch(&cell, 0x5EED ^ (w as u64) << 40);
                let mut lat = Latencies::with_capacity(1024);
                let mut batches = 0u64;
                start_line.wait();
                let start = Instant::now();
                loop {
                    let t = Instant::now();
                    // Pipelined: the batch is appended even while the leader's fdatasync
                    // is in flight, and the next sync covers it.
                    gc.commit_append(|next| {
                        renumber(&mut batch, next);
                        batch.clone()
                    })?;
                    lat.record(t.elapsed());
                    batches += 1;
                    let total = bytes.fetch_add(per_batch, Ordering::Relaxed) + per_batch;
                    if budget.done(start.elapsed(), batches, total) {
                        return Ok((lat, batches));
                    }
                }
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    let mut sample = Sample::default();
    for t in threads {
        let (lat, batches) = t.join().map_err(|_| "writer thread panicked")??;
        sample.latencies.merge(&lat);
        sample.batches += batches;
    }
    sample.elapsed = start.elapsed();
    sample.entries = sample.batches * cell.batch as u64;
    sample.payload_bytes = sample.batches * per_batch;
    let after = gc.stats()?;
    sample.file_syncs = Some(after.file_syncs - before.file_syncs);
    sample.writes = Some(after.writes - before.writes);
    sample.files_created = Some(new_files(&before, &after));
    sample.files_reused = Some(after.segments_from_pool - before.segments_from_pool);
    Ok(sample)
}

/// Segment files created between two readings of the counters (rotations not served by the
/// recycle pool).
fn new_files(before: &raftwal::Stats, after: &raftwal::Stats) -> u64 {
    let rotations = after.segments_created - before.segments_created;
    rotations - (after.segments_from_pool - before.segments_from_pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_continue_one_log() {
        let budget = Budget {
            time: std::time::Duration::ZERO,
            min_batches: 3,
            max_bytes: u64::MAX,
            cooldown_mib_per_sec: 0.0,
        };
        let opts = Options::default()
            .with_segment_size(1 << 20)
            .with_prepare(raftwal::SegmentPrepare::Allocate);
        for writers in [1, 3] {
            let dir = tempfile::tempdir().unwrap();
            let cell = Cell {
                entry_size: 100,
                batch: 4,
                writers,
            };
            let mut session = WalSession::open(&cell, dir.path(), &opts, &budget, None).unwrap();
            let mut entries = 0;
            for _ in 0..2 {
                let s = session.slice(&budget).unwrap();
                assert!(s.batches >= 3, "{s:?}");
                assert_eq!(s.entries, s.batches * 4);
                assert_eq!(s.payload_bytes, s.entries * 100);
                assert!(s.file_syncs.unwrap() >= 1);
                entries += s.entries;
            }
            drop(session);
            let wal = Wal::open(dir.path(), opts.clone()).unwrap();
            assert_eq!(wal.last_index(), entries, "{writers} writer(s)");
            assert_eq!(wal.entry(entries).unwrap().data.len(), 100);
        }
    }

    #[test]
    fn a_steady_log_stays_near_its_retained_size_and_keeps_rotating() {
        let budget = Budget {
            time: std::time::Duration::ZERO,
            // 3,200 entries: compactions at 1,500 entries held (500 past the retained 1,000)
            // and again after, with rotations between into the files they freed.
            min_batches: 800,
            max_bytes: u64::MAX,
            cooldown_mib_per_sec: 0.0,
        };
        let opts = Options::default()
            .with_segment_size(64 << 10)
            .with_prepare(raftwal::SegmentPrepare::ZeroFill);
        let dir = tempfile::tempdir().unwrap();
        let cell = Cell::single(100, 4);
        let steady = Steady {
            retain_bytes: 100 * 1000,
        };
        let mut session =
            WalSession::open(&cell, dir.path(), &opts, &budget, Some(steady)).unwrap();
        let s = session.slice(&budget).unwrap();
        assert!(s.compactions.count >= 1, "{:?}", s.compactions);
        // Compaction refills the pool, rotations take from it.
        assert!(s.files_reused.unwrap() >= 1, "{s:?}");
        drop(session);
        let wal = Wal::open(dir.path(), opts).unwrap();
        let held = wal.last_index() + 1 - wal.first_index();
        assert!((1000..1500).contains(&held), "{held} entries retained");
    }
}
