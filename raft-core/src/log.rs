//! [`RaftLog`]: the in-memory log above the snapshot base.

use raftwal::{Entry, SnapshotMeta};

/// The log entries after the snapshot base `base` (the last index and term the latest snapshot
/// covers). Indices are contiguous from `base.index + 1`; terms never decrease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftLog {
    base: SnapshotMeta,
    entries: Vec<Entry>,
}

impl RaftLog {
    /// Builds a log from persisted parts, checking contiguity and term order.
    pub fn from_parts(base: SnapshotMeta, entries: Vec<Entry>) -> Result<Self, String> {
        let mut prev_term = base.term;
        for (k, e) in entries.iter().enumerate() {
            let want = base.index + 1 + k as u64;
            if e.index != want {
                return Err(format!("entry {k} has index {} (expected {want})", e.index));
            }
            if e.term < prev_term {
                return Err(format!(
                    "entry {} has term {} after term {prev_term}",
                    e.index, e.term
                ));
            }
            prev_term = e.term;
        }
        Ok(RaftLog { base, entries })
    }

    /// The snapshot base.
    pub fn base(&self) -> SnapshotMeta {
        self.base
    }

    /// Index of the last entry (the base index when empty).
    pub fn last_index(&self) -> u64 {
        self.base.index + self.entries.len() as u64
    }

    /// Term of the last entry (the base term when empty).
    pub fn last_term(&self) -> u64 {
        self.entries.last().map_or(self.base.term, |e| e.term)
    }

    /// Term at `index`: the base term at the base, `None` below the base or past the end.
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == self.base.index {
            Some(self.base.term)
        } else {
            self.entry(index).map(|e| e.term)
        }
    }

    /// The entry at `index`, if held (not compacted, not past the end).
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        if index <= self.base.index {
            return None;
        }
        self.entries.get((index - self.base.index - 1) as usize)
    }

    /// Entries `[lo, hi)`, clamped to what the log holds.
    pub fn slice(&self, lo: u64, hi: u64) -> &[Entry] {
        let lo = lo.max(self.base.index + 1);
        let hi = hi.min(self.last_index() + 1);
        if lo >= hi {
            return &[];
        }
        let a = (lo - self.base.index - 1) as usize;
        let b = (hi - self.base.index - 1) as usize;
        &self.entries[a..b]
    }

    /// Appends one entry; its index must be `last_index() + 1`.
    pub fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        self.entries.push(entry);
    }

    /// Removes entries `from..` (`from` above the base).
    pub fn truncate_from(&mut self, from: u64) {
        debug_assert!(from > self.base.index);
        let keep = from.saturating_sub(self.base.index + 1) as usize;
        self.entries.truncate(keep);
    }

    /// Moves the base to `meta` (which must not go backwards). Raft's rule (Figure 13): if the
    /// log holds an entry at `meta.index` with `meta.term`, the entries after it are kept;
    /// otherwise the whole log is discarded. Returns whether the suffix was kept.
    pub fn install(&mut self, meta: SnapshotMeta) -> bool {
        debug_assert!(meta.index >= self.base.index);
        let keep = meta.index <= self.last_index() && self.term(meta.index) == Some(meta.term);
        if keep {
            let cut = (meta.index - self.base.index) as usize;
            self.entries.drain(..cut);
        } else {
            self.entries.clear();
        }
        self.base = meta;
        keep
    }

    /// First index of the run of entries with the same term as the entry at `index` (the
    /// lab's XIndex), never below the first index held.
    pub fn first_index_of_term_at(&self, index: u64) -> u64 {
        let Some(t) = self.term(index) else {
            return index;
        };
        let mut i = index;
        while i > self.base.index + 1 && self.term(i - 1) == Some(t) {
            i -= 1;
        }
        i
    }

    /// Last index holding an entry of term `term`, if any entry still held has it.
    pub fn last_index_of_term(&self, term: u64) -> Option<u64> {
        self.entries
            .iter()
            .rev()
            .take_while(|e| e.term >= term)
            .find(|e| e.term == term)
            .map(|e| e.index)
    }

    /// Bytes the log would take in a compact encoding (20 bytes of index, term and length per
    /// entry plus its data), the figure the lab's `LogSize` check bounds.
    pub fn size_bytes(&self) -> usize {
        self.entries.iter().map(|e| 20 + e.data.len()).sum()
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no entry is held above the base.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![index as u8],
        }
    }

    #[test]
    fn install_keeps_suffix_only_on_matching_entry() {
        let mut log =
            RaftLog::from_parts(SnapshotMeta::default(), vec![e(1, 1), e(2, 1), e(3, 2)]).unwrap();
        assert!(log.install(SnapshotMeta { index: 2, term: 1 }));
        assert_eq!(log.last_index(), 3);
        assert_eq!(log.term(2), Some(1));
        assert!(!log.install(SnapshotMeta { index: 3, term: 3 }));
        assert_eq!(log.last_index(), 3);
        assert!(log.is_empty());
        assert!(!log.install(SnapshotMeta { index: 9, term: 3 }));
        assert_eq!(log.last_index(), 9);
    }

    #[test]
    fn from_parts_rejects_gaps_and_backward_terms() {
        assert!(RaftLog::from_parts(SnapshotMeta::default(), vec![e(2, 1)]).is_err());
        assert!(RaftLog::from_parts(SnapshotMeta::default(), vec![e(1, 2), e(2, 1)]).is_err());
    }

    #[test]
    fn term_runs() {
        let log = RaftLog::from_parts(
            SnapshotMeta { index: 1, term: 1 },
            vec![e(2, 1), e(3, 2), e(4, 2), e(5, 4)],
        )
        .unwrap();
        assert_eq!(log.first_index_of_term_at(4), 3);
        assert_eq!(log.first_index_of_term_at(2), 2);
        assert_eq!(log.last_index_of_term(2), Some(4));
        assert_eq!(log.last_index_of_term(3), None);
        assert_eq!(log.slice(0, 100).len(), 4);
        assert_eq!(log.slice(3, 5).len(), 2);
    }
}
