//! The steady state of a Raft node: snapshots compact the log's prefix as fast as the tail
//! grows, so the retained log stays about one size. [`Steady`] says when to compact and to
//! where; the sessions (`raftwal`, `raft_engine`) do it inside their timed loops, so its
//! cost is in the throughput, and warm up untimed until compaction recurs.

use std::time::{Duration, Instant};

use crate::workload::Cell;

/// A retained log of about `retain_bytes` of payload, compacted behind a moving snapshot
/// point: once it holds half as much again, it is compacted back to `retain_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steady {
    /// Payload bytes the log keeps after each compaction.
    pub retain_bytes: u64,
}

impl Steady {
    /// Entries kept after a compaction on `cell` (at least two batches).
    pub fn retain_entries(&self, cell: &Cell) -> u64 {
        (self.retain_bytes / cell.entry_size.max(1) as u64).max(2 * cell.batch as u64)
    }

    /// The index to compact up to (inclusive) when the log holds `first..=last`, if it is
    /// time to.
    pub fn compact_point(&self, cell: &Cell, first: u64, last: u64) -> Option<u64> {
        let keep = self.retain_entries(cell);
        let held = (last + 1).saturating_sub(first);
        (held >= keep + keep / 2).then(|| last - keep)
    }

    /// Payload bytes to write, untimed, before the first slice: the retained log filled
    /// twice over plus `file_size` three times, so files have been created and freed and
    /// compaction recurs.
    pub fn warm_bytes(&self, file_size: u64) -> u64 {
        2 * self.retain_bytes + 3 * file_size
    }
}

/// Compactions of one slice: how many, and how long they took.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Compactions {
    /// Compactions run.
    pub count: u64,
    /// Their total time.
    pub total: Duration,
    /// The longest one.
    pub max: Duration,
}

impl Compactions {
    /// Runs `f` (one compaction) and counts it.
    pub fn time<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        let d = t.elapsed();
        self.count += 1;
        self.total += d;
        self.max = self.max.max(d);
        r
    }

    /// Adds another slice's compactions.
    pub fn merge(&mut self, other: &Compactions) {
        self.count += other.count;
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Mean time per compaction (zero if none).
    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            Duration::ZERO
        } else {
            self.total / self.count as u32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_back_to_the_retained_size_once_it_holds_half_as_much_again() {
        let s = Steady {
            retain_bytes: 1000 * 256,
        };
        let cell = Cell::single(256, 8);
        assert_eq!(s.retain_entries(&cell), 1000);
        assert_eq!(s.compact_point(&cell, 1, 1499), None);
        assert_eq!(s.compact_point(&cell, 1, 1500), Some(500));
        assert_eq!(s.compact_point(&cell, 501, 2000), Some(1000));
        // A tiny retained size still keeps two batches.
        let tiny = Steady { retain_bytes: 1 };
        assert_eq!(tiny.retain_entries(&cell), 16);
    }
}
