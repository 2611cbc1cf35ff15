//! The workload every system runs: what one cell is, how long a slice lasts, the payloads,
//! and what a slice measured.

use std::time::Duration;

use crate::latency::Latencies;

/// Entry sizes of the full grid, in bytes.
pub const ENTRY_SIZES: [usize; 5] = [64, 256, 1024, 4096, 65536];
/// Batch sizes (entries per `fdatasync`) of the full grid.
pub const BATCH_SIZES: [usize; 4] = [1, 8, 64, 512];
/// Concurrent writer counts of the group-commit cells.
pub const WRITERS: [usize; 3] = [1, 4, 16];

/// Bytes raftwal writes for one entry: a 40-byte record header, then the payload padded to
/// 8 bytes (`raftwal`'s record frame, format 3). The raw loop writes exactly as many bytes, so
/// the limit it measures is for the same byte stream.
pub const fn frame_len(entry_size: usize) -> usize {
    (RECORD_HEADER + entry_size + 7) & !7
}

/// Bytes of a record header in `raftwal`'s format.
pub const RECORD_HEADER: usize = 40;

/// One cell of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cell {
    /// Payload bytes per entry.
    pub entry_size: usize,
    /// Entries per batch: each writer appends this many entries, then waits until they are
    /// durable.
    pub batch: usize,
    /// Concurrent writers (1 = one thread, append + sync in a loop).
    pub writers: usize,
}

impl Cell {
    /// A single-writer cell.
    pub const fn single(entry_size: usize, batch: usize) -> Self {
        Cell {
            entry_size,
            batch,
            writers: 1,
        }
    }

    /// Payload bytes of one batch.
    pub const fn batch_bytes(&self) -> usize {
        self.entry_size * self.batch
    }

    /// A short label, e.g. `256B x64` or `256B x1 w16`.
    pub fn label(&self) -> String {
        let size = human_size(self.entry_size as u64);
        if self.writers > 1 {
            format!("{size} x{} w{}", self.batch, self.writers)
        } else {
            format!("{size} x{}", self.batch)
        }
    }
}

/// `64B`, `4KiB`, `1MiB`, `1GiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size && n % size == 0 {
            return format!("{}{unit}", n / size);
        }
    }
    format!("{n}B")
}

/// How long one measured slice runs: until `time` has passed (and at least `min_batches`
/// batches completed), or `max_bytes` of payload were written, whichever comes first.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Target duration.
    pub time: Duration,
    /// Minimum number of batches, even if `time` has passed.
    pub min_batches: u64,
    /// Cap on payload bytes (bounds disk use; the raw loop preallocates this much).
    pub max_bytes: u64,
    /// Idle time per byte written outside the timed part (MiB/s; 0: none): after a slice,
    /// and after a setup that wrote to the disk, so a disk that absorbs bursts (a write-back
    /// cache, burst credits) starts every timed part in the same state.
    pub cooldown_mib_per_sec: f64,
}

impl Budget {
    /// True once the slice should stop.
    #[inline]
    pub fn done(&self, elapsed: Duration, batches: u64, bytes: u64) -> bool {
        bytes >= self.max_bytes || (elapsed >= self.time && batches >= self.min_batches)
    }

    /// Stays idle for `bytes` written at [`Budget::cooldown_mib_per_sec`] (at most 10 s).
    pub fn cool_down(&self, bytes: u64) {
        if self.cooldown_mib_per_sec > 0.0 && bytes > 0 {
            let secs = bytes as f64 / f64::from(1 << 20) / self.cooldown_mib_per_sec;
            std::thread::sleep(Duration::from_secs_f64(secs.min(10.0)));
        }
    }
}

/// One system set up on one cell, measured in slices: each slice continues the same log
/// where the previous one stopped. So the slices of several systems can alternate finely
/// (the device's drift, which on a virtual disk moves throughput by tens of percent over
/// seconds, then hits them alike), and each system pays its setup once per cell, untimed.
pub trait Session {
    /// Runs one timed slice, until `budget` is spent, and returns what it measured.
    fn slice(&mut self, budget: &Budget) -> crate::Result<Sample>;
}

/// What one slice of one system on one cell measured.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Entries made durable.
    pub entries: u64,
    /// Payload bytes made durable.
    pub payload_bytes: u64,
    /// Batches (commits) completed.
    pub batches: u64,
    /// Wall time from the first batch's start to the last one's end.
    pub elapsed: Duration,
    /// Per-batch latency: from the start of the append to the end of the sync covering it.
    pub latencies: Latencies,
    /// File syncs the system reports it issued (raftwal's `Stats::file_syncs`), if known.
    pub file_syncs: Option<u64>,
    /// Write calls the system reports (raftwal's `Stats::writes`), if known.
    pub writes: Option<u64>,
    /// Entries per second of each slice merged into this one, in merge order (empty for a
    /// single slice): what pairs repetitions of two systems run side by side.
    pub slice_rates: Vec<f64>,
    /// Compactions run inside the slice (steady state only).
    pub compactions: crate::steady::Compactions,
    /// Segment files the system created during the slice (raftwal's rotations not served
    /// by its recycle pool), if known: in a steady state that recycles, near zero.
    pub files_created: Option<u64>,
    /// Segments made from recycled files during the slice (raftwal's
    /// `Stats::segments_from_pool`), if known.
    pub files_reused: Option<u64>,
    /// CPU time the process spent during the slice (all threads), where the runner
    /// measured it.
    pub cpu: Option<Duration>,
}

impl Sample {
    /// Adds another slice of the same system and cell.
    pub fn merge(&mut self, other: &Sample) {
        if other.slice_rates.is_empty() {
            self.slice_rates.push(other.entries_per_sec());
        } else {
            self.slice_rates.extend_from_slice(&other.slice_rates);
        }
        self.entries += other.entries;
        self.payload_bytes += other.payload_bytes;
        self.batches += other.batches;
        self.elapsed += other.elapsed;
        self.latencies.merge(&other.latencies);
        self.file_syncs = sum_opt(self.file_syncs, other.file_syncs);
        self.writes = sum_opt(self.writes, other.writes);
        self.compactions.merge(&other.compactions);
        self.files_created = sum_opt(self.files_created, other.files_created);
        self.files_reused = sum_opt(self.files_reused, other.files_reused);
        self.cpu = match (self.cpu, other.cpu) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }

    /// Entries per second.
    pub fn entries_per_sec(&self) -> f64 {
        self.entries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// This sample's per-slice rates over `base`'s, slice by slice (repetition `i` of one
    /// against repetition `i` of the other, which ran next to it): `(min, median, max)`, or
    /// `None` without pairs.
    pub fn paired_ratios(&self, base: &Sample) -> Option<(f64, f64, f64)> {
        let mut r: Vec<f64> = self
            .slice_rates
            .iter()
            .zip(&base.slice_rates)
            .filter(|(_, b)| **b > 0.0)
            .map(|(a, b)| a / b)
            .collect();
        if r.is_empty() {
            return None;
        }
        r.sort_by(f64::total_cmp);
        let n = r.len();
        let median = if n % 2 == 1 {
            r[n / 2]
        } else {
            (r[n / 2 - 1] + r[n / 2]) / 2.0
        };
        Some((r[0], median, r[n - 1]))
    }

    /// Payload MiB per second.
    pub fn mib_per_sec(&self) -> f64 {
        self.payload_bytes as f64 / (1 << 20) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn sum_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, None) if a.is_some() => a,
        (None, b) => b,
        _ => None,
    }
}

/// `len` deterministic pseudo-random bytes (xorshift64*, seeded): incompressible, so no
/// system gains from compression, and the same bytes for every system.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// One batch of `cell.batch` raftwal entries with payloads, indices to be filled in.
pub fn wal_batch(cell: &Cell, seed: u64) -> Vec<raftwal::Entry> {
    (0..cell.batch)
        .map(|i| raftwal::Entry {
            index: 0,
            term: 1,
            data: payload(cell.entry_size, seed ^ (i as u64) << 20),
        })
        .collect()
}

/// Sets consecutive indices starting at `first`.
#[inline]
pub fn renumber(batch: &mut [raftwal::Entry], first: u64) {
    for (i, e) in batch.iter_mut().enumerate() {
        e.index = first + i as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_deterministic_and_distinct() {
        assert_eq!(payload(100, 1), payload(100, 1));
        assert_ne!(payload(100, 1), payload(100, 2));
        assert_eq!(payload(3, 9).len(), 3);
    }

    #[test]
    fn frame_len_matches_wal_record_frame() {
        assert_eq!(frame_len(0), 40);
        assert_eq!(frame_len(1), 48);
        assert_eq!(frame_len(64), 104);
        assert_eq!(frame_len(65536), 65576);
    }

    fn slice(entries: u64, millis: u64) -> Sample {
        Sample {
            entries,
            elapsed: Duration::from_millis(millis),
            ..Sample::default()
        }
    }

    #[test]
    fn merged_slices_keep_their_rates_and_pair_up_in_order() {
        let (mut a, mut b) = (Sample::default(), Sample::default());
        // Repetition by repetition: a/b = 1.0, 0.5, 2.0.
        for (x, y) in [(100, 100), (100, 200), (400, 200)] {
            a.merge(&slice(x, 1000));
            b.merge(&slice(y, 1000));
        }
        assert_eq!(a.slice_rates, vec![100.0, 100.0, 400.0]);
        assert_eq!(a.entries, 600);
        assert_eq!(a.paired_ratios(&b), Some((0.5, 1.0, 2.0)));
        // An even count takes the mean of the middle two.
        a.merge(&slice(300, 1000));
        b.merge(&slice(100, 1000));
        assert_eq!(a.paired_ratios(&b), Some((0.5, 1.5, 3.0)));
        // Merging merged samples keeps every slice.
        let mut c = Sample::default();
        c.merge(&a);
        c.merge(&a);
        assert_eq!(c.slice_rates.len(), 8);
        assert_eq!(Sample::default().paired_ratios(&b), None);
    }

    #[test]
    fn labels() {
        assert_eq!(Cell::single(256, 64).label(), "256B x64");
        assert_eq!(human_size(65536), "64KiB");
        let c = Cell {
            entry_size: 1024,
            batch: 1,
            writers: 16,
        };
        assert_eq!(c.label(), "1KiB x1 w16");
    }
}
