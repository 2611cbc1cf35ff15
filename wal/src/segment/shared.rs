//! [`SharedSegment`]: the part of a segment that readers share with the writer — its file,
//! identity, index, written length and write buffer — and every read of its records.
//!
//! Locking: one `RwLock` per segment over the mutable state ([`State`]), never held across
//! an `fdatasync` or `fsync`. A reader holds the read lock while it `pread`s a record, so
//! the bytes below `written` cannot change under it (only a truncation lowers `written`,
//! under the write lock, and the file is cut after the lock is released). The writer holds
//! the read lock, not the write lock, while it `pwrite`s buffered records past `written`,
//! which no reader reads from the file; then takes the write lock to advance `written` and
//! drop them from the buffer. So a reader waits at most behind a short memory update or
//! another reader, and never behind a sync.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::file::WalFile;
use crate::format::{
    check_header, check_payload, decode_frame, rec, seg, Frame, HeaderCheck, RecordFormat,
};
use crate::header::Fence;
use crate::io::VfsFile;
use crate::reader::{Rule, Window};
use crate::segment::index::Index;
use crate::types::Entry;

/// A segment as readers see it. Immutable but for [`State`].
pub(crate) struct SharedSegment<F: VfsFile> {
    /// Shared with a sync in flight (`Wal::begin_sync`), which fdatasyncs it outside the
    /// `Wal`'s borrow.
    pub(crate) file: Arc<WalFile<F>>,
    pub(crate) first_index: u64,
    /// The sync group current when it was created (from its header).
    pub(crate) first_group: u64,
    /// Record layout (format 2 segments are read only: appends go to a new segment).
    pub(crate) format: RecordFormat,
    /// CRC state binding this segment's identity into each record checksum.
    pub(crate) identity: crc32fast::Hasher,
    pub(crate) state: RwLock<State>,
}

/// What changes as records are appended, written, cut or the segment is dropped.
pub(crate) struct State {
    /// The entries' index: set from the start for a segment open scanned or that was
    /// created since, built on first use for a sealed segment a lazy open skipped.
    pub(crate) index: Option<Index>,
    /// For a segment whose index is not built yet: its entries (from the file names: the
    /// next segment's first index minus this one's) and the fence to build it under.
    pub(crate) unindexed: (u64, Fence),
    /// Bytes of the file holding written frames (the end of the last record written).
    pub(crate) written: u64,
    /// Encoded records not yet written; they start at file offset `written`.
    pub(crate) pending: Vec<u8>,
    /// The segment left the log (truncated away or compacted): a reader that still holds it
    /// finds no entry in it.
    pub(crate) gone: bool,
}

impl State {
    /// Number of entries.
    pub(crate) fn len(&self) -> u64 {
        self.index
            .as_ref()
            .map_or(self.unindexed.0, |ix| ix.offsets.len() as u64)
    }
}

impl<F: VfsFile> SharedSegment<F> {
    /// A segment with an empty index and `written` bytes of frames.
    pub(crate) fn new(
        file: WalFile<F>,
        (first_index, first_group, format): (u64, u64, RecordFormat),
        identity: crc32fast::Hasher,
        written: u64,
    ) -> Self {
        SharedSegment {
            file: Arc::new(file),
            first_index,
            first_group,
            format,
            identity,
            state: RwLock::new(State {
                index: Some(Index::default()),
                unindexed: (0, Fence::default()),
                written,
                pending: Vec::new(),
                gone: false,
            }),
        }
    }

    /// The segment's file path.
    pub(crate) fn path(&self) -> &std::path::Path {
        self.file.path()
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> u64 {
        self.state.read().len()
    }

    /// Runs `f` on the index, built first if a lazy open skipped it: every record is read
    /// and verified (checksums bound to this segment and index; consecutive indexes from
    /// `first_index` to the entry before the next segment; terms and sync groups never
    /// going backwards; none voided by the fence). Any failure is [`Error::Corrupt`] naming
    /// the file and offset: such a segment lies before a segment holding a later sync
    /// group, so all of it was synced. The build reads without holding the lock.
    pub(crate) fn with_index<R>(&self, f: impl FnOnce(&Index) -> R) -> Result<R> {
        self.build_index()?;
        let st = self.state.read();
        match &st.index {
            Some(ix) => Ok(f(ix)),
            None => Err(self.index_missing()),
        }
    }

    /// Builds the index if it is not built yet (see [`SharedSegment::with_index`]).
    pub(crate) fn build_index(&self) -> Result<()> {
        let (unindexed, written) = {
            let st = self.state.read();
            if st.index.is_some() {
                return Ok(());
            }
            (st.unindexed, st.written)
        };
        let built = self.scan_index(unindexed, written)?;
        let mut st = self.state.write();
        if st.index.is_none() {
            st.index = Some(built);
        }
        Ok(())
    }

    pub(crate) fn index_missing(&self) -> Error {
        Error::Internal {
            reason: format!(
                "{}: segment index missing after it was built",
                self.path().display()
            ),
        }
    }

    fn scan_index(&self, (entries, fence): (u64, Fence), written: u64) -> Result<Index> {
        let mut w = Window::new(&self.file, written);
        let mut ix = Index::default();
        let mut off = seg::DATA_START as u64;
        let next_first = self.first_index.saturating_add(entries);
        let mut rule = Rule {
            expected: self.first_index,
            term: 0,
            group: self.first_group,
            fence,
        };
        let bad = |off: u64, index: Option<u64>, reason: String| {
            Err(Error::corrupt(self.path(), off, index, reason))
        };
        while rule.expected < next_first {
            match w.frame_at(off, self.format, &self.identity)? {
                Frame::Record { header: h, end } => {
                    if let Some(reason) = rule.reject(&h) {
                        return bad(off, Some(rule.expected), reason);
                    }
                    rule.accept(&h);
                    ix.push(h.index, h.term, off);
                    off = end as u64;
                }
                Frame::Zero => {
                    return bad(
                        off,
                        Some(rule.expected),
                        format!(
                            "the segment ends before entry {}; the next segment starts at \
                             {next_first}",
                            rule.expected
                        ),
                    )
                }
                Frame::Bad(reason) => return bad(off, Some(rule.expected), reason),
            }
        }
        // What follows the last entry is not read: the next segment holds the next one.
        ix.data_end = Some(off);
        Ok(ix)
    }

    /// Whether entry `index` is in this segment (and the segment still in the log).
    pub(crate) fn contains(&self, index: u64) -> bool {
        let st = self.state.read();
        !st.gone && index >= self.first_index && index - self.first_index < st.len()
    }

    /// Term of entry `index` (`None` if not contained, or a compacted placeholder).
    pub(crate) fn term_of(&self, index: u64) -> Result<Option<u64>> {
        if !self.contains(index) {
            return Ok(None);
        }
        self.with_index(|ix| ix.term_of(self.first_index, index))
    }

    /// Offset of entry `index` (`None` if not contained).
    pub(crate) fn offset_of(&self, index: u64) -> Result<Option<u64>> {
        if !self.contains(index) {
            return Ok(None);
        }
        self.with_index(|ix| ix.offset_of(self.first_index, index))
    }

    /// Reads and verifies entry `index`: from the write buffer if it is not written yet,
    /// else from the file (holding the read lock across the `pread`; see the module docs).
    /// `None` if the segment does not hold it (any more).
    pub(crate) fn read_entry(&self, index: u64) -> Result<Option<Entry>> {
        self.build_index()?;
        let st = self.state.read();
        let Some(ix) = st.index.as_ref() else {
            return Err(self.index_missing());
        };
        if st.gone || index < self.first_index {
            return Ok(None);
        }
        let Some(offset) = ix.offset_of(self.first_index, index) else {
            return Ok(None);
        };
        if offset >= st.written {
            return self.read_buffered(&st, index, offset).map(Some);
        }
        self.read_record(index, offset, st.written).map(Some)
    }

    fn read_buffered(&self, st: &State, index: u64, offset: u64) -> Result<Entry> {
        let at = (offset - st.written) as usize;
        match decode_frame(self.format, &st.pending, at, &self.identity) {
            Frame::Record { header, .. } if header.index == index => {
                let start = at + self.format.header_len();
                Ok(Entry {
                    index,
                    term: header.term,
                    data: st.pending[start..start + header.len as usize].to_vec(),
                })
            }
            _ => Err(Error::Internal {
                reason: format!("buffered record of entry {index} does not decode"),
            }),
        }
    }

    /// Reads the record of entry `index` at `offset` (below `written`) with two positional
    /// reads (header, then the payload straight into the entry's buffer) and verifies it.
    fn read_record(&self, index: u64, offset: u64, written: u64) -> Result<Entry> {
        let hl = self.format.header_len();
        let mut head = [0u8; rec::HEADER_LEN];
        let head = &mut head[..hl];
        self.file.read_exact_at(head, offset)?;
        let bad = |reason: String| Error::corrupt(self.path(), offset, Some(index), reason);
        let h = match check_header(self.format, head, &self.identity) {
            HeaderCheck::Verified(h) | HeaderCheck::Unverified(h) => h,
            HeaderCheck::Zero => return Err(bad("record header is zeros".into())),
            HeaderCheck::Bad(reason) => return Err(bad(reason)),
        };
        let len = h.len as usize;
        let end = offset
            .saturating_add(hl as u64)
            .saturating_add(u64::from(h.len));
        if len > rec::MAX_PAYLOAD || end > written {
            return Err(bad(format!(
                "record length {len} runs past the written data"
            )));
        }
        if h.index != index {
            return Err(bad(format!(
                "record holds index {} where {index} was expected",
                h.index
            )));
        }
        let mut data = vec![0u8; len];
        self.file.read_exact_at(&mut data, offset + hl as u64)?;
        check_payload(self.format, head, &data, &self.identity).map_err(bad)?;
        Ok(Entry {
            index,
            term: h.term,
            data,
        })
    }
}
