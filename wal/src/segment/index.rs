//! [`Index`]: where each entry of a segment is and what term it has.

/// Where each entry's record is and what term it has: 4 bytes per entry (the record's
/// offset, `u32`) plus 16 bytes per run of equal terms.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Offset of each entry's record, entry `first_index + i` at `offsets[i]`; `u32::MAX`
    /// for a compacted entry recovery found no readable record for.
    pub(crate) offsets: Vec<u32>,
    /// Runs of equal terms: (first index of the run, term).
    pub(crate) terms: Vec<(u64, u64)>,
    /// For an index built on first use, until its records change (an append, a truncation)
    /// or the segment becomes writable again: the file offset where the last record ends.
    /// After that, the segment's `written` is kept by the writes themselves.
    pub(crate) data_end: Option<u64>,
}

impl Index {
    /// Records that the next entry, `index` with `term`, starts at `offset`.
    pub(crate) fn push(&mut self, index: u64, term: u64, offset: u64) {
        // A change to the records ends what a lazy build found (see `data_end`).
        self.data_end = None;
        self.offsets.push(offset as u32);
        if self.terms.last().is_none_or(|&(_, t)| t != term) {
            self.terms.push((index, term));
        }
    }

    /// Offset of entry `index` of a segment starting at `first` (`None` if not held).
    pub(crate) fn offset_of(&self, first: u64, index: u64) -> Option<u64> {
        let i = usize::try_from(index.checked_sub(first)?).ok()?;
        self.offsets.get(i).map(|&o| u64::from(o))
    }

    /// Term of entry `index` of a segment starting at `first` (`None` if not held, or a
    /// compacted placeholder).
    pub(crate) fn term_of(&self, first: u64, index: u64) -> Option<u64> {
        if self.offset_of(first, index)? == u64::from(u32::MAX) {
            return None;
        }
        let run = self.terms.partition_point(|&(f, _)| f <= index);
        run.checked_sub(1)
            .and_then(|r| self.terms.get(r))
            .map(|&(_, t)| t)
    }

    /// Forgets entries `from..` of a segment starting at `first`.
    pub(crate) fn forget_from(&mut self, first: u64, from: u64) {
        let keep = from.saturating_sub(first) as usize;
        self.offsets.truncate(keep);
        self.data_end = None;
        let run = self.terms.partition_point(|&(f, _)| f < from);
        self.terms.truncate(run);
    }
}
