//! A segment file `<first-index>.wal` and its in-memory index.
//!
//! File layout: a 64-byte segment header (see `format::seg`) padded with zeros to 4 KiB,
//! then record frames (see `format::rec`) from offset 4096, then zeros up to the
//! preallocated size (none under `SegmentPrepare::Grow`). A segment is created under
//! `<name>.tmp` with its header written, preallocated and synced, or made from the spare
//! (`crate::spare`: header written and synced), then renamed into place and the directory
//! synced — so every `<first-index>.wal` has a durable, valid header.
//!
//! The in-memory index costs 4 bytes per entry (the record's offset, `u32`) plus 16 bytes per
//! run of equal terms. A sealed segment that open did not scan (`Options::lazy_open`) builds
//! its index, verifying every record, the first time it is read ([`Segment::index`]).
//! Records are read with positional reads (`pread`), never through a memory map, so a media
//! error is an `Error::Io`.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::file::WalFile;
use crate::format::{
    check_header, check_payload, decode_frame, encode_record, encode_segment_header, rec, seg,
    segment_identity, segment_name, Frame, HeaderCheck, RecordFormat, RecordHeader,
};
use crate::header::Fence;
use crate::io::{OpenMode, Vfs, VfsFile};
use crate::reader::{Rule, Window};
use crate::types::Entry;

/// One segment file, the index of its entries, and (for the active segment) the records
/// appended but not yet written.
///
/// The segment does its own I/O — buffer, write out, `fdatasync`, cut — and reports it as
/// [`Error::Io`] naming the file; the [`crate::Wal`] decides when each step runs (the fsync
/// order in `docs/FORMAT.md`), counts it and poisons itself on failure.
pub(crate) struct Segment<F: VfsFile> {
    /// Shared with a sync in flight (`Wal::begin_sync`), which fdatasyncs it outside the
    /// `Wal`'s borrow.
    file: Arc<WalFile<F>>,
    seq: u64,
    first_index: u64,
    first_group: u64,
    /// Record layout (format 2 segments are read only: appends go to a new segment).
    format: RecordFormat,
    /// CRC state binding this segment's identity into each record checksum.
    identity: crc32fast::Hasher,
    /// The entries' index: set from the start for a segment open scanned or that was
    /// created since, built on first use for a sealed segment a lazy open skipped.
    index: OnceLock<Index>,
    /// For a segment whose index is not built yet: its entries (from the file names: the
    /// next segment's first index minus this one's) and the fence to build it under.
    unindexed: (u64, Fence),
    /// Bytes of the file holding written frames (the end of the last record written).
    written: u64,
    /// Written since the last fdatasync of this file.
    dirty: bool,
    /// Encoded records not yet written; they start at file offset `written`.
    pending: Vec<u8>,
    /// Start within `pending` of the last buffered record (kept back by early write-outs).
    last_record: Option<usize>,
}
/// Where each entry's record is and what term it has.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Offset of each entry's record, entry `first_index + i` at `offsets[i]`.
    pub(crate) offsets: Vec<u32>,
    /// Runs of equal terms: (first index of the run, term).
    pub(crate) terms: Vec<(u64, u64)>,
    /// For an index built on first use, until its records change (an append, a truncation)
    /// or the segment becomes writable again: the file offset where the last record ends.
    /// After that, `Segment::written` is kept by the writes themselves.
    pub(crate) data_end: Option<u64>,
}

impl Index {
    /// Records that the next entry, `index` with `term`, starts at `offset`.
    fn push(&mut self, index: u64, term: u64, offset: u64) {
        // A change to the records ends what a lazy build found (see `data_end`).
        self.data_end = None;
        self.offsets.push(offset as u32);
        if self.terms.last().is_none_or(|&(_, t)| t != term) {
            self.terms.push((index, term));
        }
    }
}

impl<F: VfsFile> Segment<F> {
    /// Creates a new segment durably (tmp file, header, preallocation, fsync, rename, dir
    /// fsync).
    pub(crate) fn create<V: Vfs<File = F>>(
        vfs: &V,
        dir: &Path,
        seq: u64,
        first_index: u64,
        first_group: u64,
        preallocate: Option<u64>,
    ) -> Result<Self> {
        let path = dir.join(segment_name(first_index));
        let header = encode_segment_header(seq, first_index, first_group);
        let file = crate::io::create_durably(vfs, dir, &path, |file| {
            file.write_all_at(&header, 0)?;
            match preallocate {
                Some(size) => file.allocate(size),
                None => Ok(()),
            }
        })?;
        let header = (seq, first_index, first_group, RecordFormat::V3);
        Ok(Self::from_parts(file, header, seg::DATA_START as u64))
    }

    /// Turns the spare file at `spare` (written, synced zeros; see `crate::spare`) into a new
    /// segment durably: header written and `fdatasync`ed, renamed into place, directory
    /// fsynced. Its blocks are already written, so later `fdatasync`s flush data only.
    pub(crate) fn from_spare<V: Vfs<File = F>>(
        vfs: &V,
        dir: &Path,
        spare: &Path,
        seq: u64,
        first_index: u64,
        first_group: u64,
    ) -> Result<Self> {
        let file = WalFile::open(vfs, spare, OpenMode::ReadWrite)?;
        file.write_all_at(&encode_segment_header(seq, first_index, first_group), 0)?;
        file.sync_data()?;
        // From the rename on the segment exists durably, and records may be written to it.
        let path = dir.join(segment_name(first_index));
        crate::io::rename_durably(vfs, dir, spare, &path)?;
        let header = (seq, first_index, first_group, RecordFormat::V3);
        Ok(Self::from_parts(
            file.renamed(path),
            header,
            seg::DATA_START as u64,
        ))
    }

    /// A segment from its file and decoded header `(seq, first index, first group,
    /// format)`, with an empty index and `written` bytes of frames.
    pub(crate) fn from_parts(
        file: WalFile<F>,
        (seq, first_index, first_group, format): (u64, u64, u64, RecordFormat),
        written: u64,
    ) -> Self {
        Segment {
            file: Arc::new(file),
            seq,
            first_index,
            first_group,
            format,
            identity: segment_identity(seq, first_index),
            index: OnceLock::from(Index::default()),
            unindexed: (0, Fence::default()),
            written,
            dirty: false,
            pending: Vec::new(),
            last_record: None,
        }
    }

    /// The segment's file path.
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    /// The open file.
    pub(crate) fn file(&self) -> &WalFile<F> {
        &self.file
    }

    /// If the file was written since its last sync: marks it clean and returns a handle for
    /// the caller to `fdatasync` (a sync begun by `Wal::begin_sync`).
    pub(crate) fn take_dirty(&mut self) -> Option<Arc<WalFile<F>>> {
        std::mem::take(&mut self.dirty).then(|| Arc::clone(&self.file))
    }

    /// The sequence number in its header (its identity with `first_index`).
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Index of its first entry (also its file name).
    pub(crate) fn first_index(&self) -> u64 {
        self.first_index
    }

    /// The sync group current when it was created.
    pub(crate) fn first_group(&self) -> u64 {
        self.first_group
    }

    /// Its record layout.
    pub(crate) fn format(&self) -> RecordFormat {
        self.format
    }

    /// The CRC state its records' checksums start from.
    pub(crate) fn identity(&self) -> &crc32fast::Hasher {
        &self.identity
    }

    /// Bytes of the file holding written frames.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Where the records end once the buffered ones are written.
    pub(crate) fn end(&self) -> u64 {
        self.written + self.pending.len() as u64
    }

    /// Bytes of records buffered, not yet written.
    pub(crate) fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// Whether it was written since its last fdatasync.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Records where the scan found its records to end (nothing is written).
    pub(crate) fn set_written(&mut self, end: u64) {
        self.written = end;
    }

    /// Encodes the record of entry `header.index` into the write buffer and indexes it.
    pub(crate) fn buffer(&mut self, header: &RecordHeader, data: &[u8]) {
        let start = self.pending.len();
        encode_record(&mut self.pending, &self.identity, header, data);
        self.push(header.index, header.term, self.written + start as u64);
        self.last_record = Some(start);
    }

    /// Writes the buffered records (one `pwrite`, no sync): all of them, or with
    /// `keep_last` all but the newest (an early write-out ahead of the sync). Returns the
    /// bytes written.
    pub(crate) fn write_out(&mut self, keep_last: bool) -> Result<usize> {
        let upto = match (keep_last, self.last_record) {
            (true, Some(last)) => last,
            _ => self.pending.len(),
        };
        if upto == 0 {
            return Ok(0);
        }
        self.file
            .write_all_at(&self.pending[..upto], self.written)?;
        self.written += upto as u64;
        self.dirty = true;
        self.pending.drain(..upto);
        self.last_record = self.last_record.and_then(|p| p.checked_sub(upto));
        Ok(upto)
    }

    /// Cuts the file at `at` (records end there), reserves `reserve` bytes again, and
    /// `fsync`s (the length changed). The buffer must be empty.
    pub(crate) fn cut_file(&mut self, at: u64, reserve: Option<u64>) -> Result<()> {
        debug_assert!(self.pending.is_empty());
        self.written = at;
        self.file.set_len(at)?;
        if let Some(size) = reserve {
            self.file.allocate(size)?;
        }
        self.file.sync_all()?;
        self.dirty = false;
        Ok(())
    }

    /// Where entry `from`'s record starts: the offset to cut at to drop `from..`.
    pub(crate) fn cut_offset(&self, from: u64) -> Result<u64> {
        if self.first_index >= from {
            return Ok(seg::DATA_START as u64);
        }
        Ok(self.offset_of(from)?.unwrap_or(self.written))
    }

    /// Reads back bytes `from..written` and writes them again in place, then `fdatasync`s:
    /// pages a failed fsync may have marked clean are dirty again and reach the disk.
    /// Returns the bytes rewritten.
    pub(crate) fn rewrite_from(&self, from: u64) -> Result<u64> {
        if self.written <= from {
            return Ok(0);
        }
        let mut buf = Vec::new();
        let mut at = from;
        while at < self.written {
            let n = (self.written - at).min(crate::reader::WINDOW as u64) as usize;
            buf.resize(n, 0);
            self.file.read_exact_at(&mut buf, at)?;
            self.file.write_all_at(&buf, at)?;
            at += n as u64;
        }
        self.file.sync_data()?;
        Ok(self.written - from)
    }

    /// Whether appends may go into this segment (one in the current format).
    pub(crate) fn appendable(&self) -> bool {
        self.format == RecordFormat::V3
    }

    /// Drops the index of a sealed segment of `entries` entries that a lazy open did not
    /// read (`file_len`: its length): it is built under `fence`, and every record verified,
    /// on first use ([`Segment::index`]).
    pub(crate) fn unindex(&mut self, entries: u64, file_len: u64, fence: Fence) {
        self.index = OnceLock::new();
        self.unindexed = (entries, fence);
        self.written = file_len;
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> u64 {
        self.index
            .get()
            .map_or(self.unindexed.0, |ix| ix.offsets.len() as u64)
    }

    /// The index, built on first use for a segment a lazy open skipped: every record is read
    /// and verified (checksums bound to this segment and index; consecutive indexes from
    /// `first_index` to the entry before the next segment; terms and sync groups never
    /// going backwards; none voided by the fence). Any failure is
    /// [`Error::Corrupt`] naming the file and offset: such a segment lies before a segment
    /// holding a later sync group, so all of it was synced.
    pub(crate) fn index(&self) -> Result<&Index> {
        if let Some(ix) = self.index.get() {
            return Ok(ix);
        }
        let built = self.build_index()?;
        Ok(self.index.get_or_init(|| built))
    }

    fn index_mut(&mut self) -> Result<&mut Index> {
        self.index()?;
        let file = &self.file;
        self.index.get_mut().ok_or_else(|| Error::Internal {
            reason: format!(
                "{}: segment index missing after it was built",
                file.path().display()
            ),
        })
    }

    fn build_index(&self) -> Result<Index> {
        let (entries, fence) = self.unindexed;
        let mut w = Window::new(&self.file, self.written);
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

    /// Builds the index if a lazy open skipped it, and sets `written` to where the records
    /// end: for a sealed segment that becomes the active one again (a suffix truncation
    /// removed the segments after it).
    pub(crate) fn make_writable(&mut self) -> Result<()> {
        // The lazily found end is right only until the segment is written again: from here
        // on `written` is kept by the appends and truncations, so the end is used once.
        if let Some(end) = self.index_mut()?.data_end.take() {
            self.written = end;
        }
        Ok(())
    }

    /// Index of the last entry, or `first_index - 1` when empty.
    pub(crate) fn last_index(&self) -> u64 {
        (self.first_index + self.len()).saturating_sub(1)
    }

    pub(crate) fn contains(&self, index: u64) -> bool {
        index >= self.first_index && index - self.first_index < self.len()
    }

    /// Records that entry `index` with `term` starts at `offset`.
    /// Only for an indexed segment (the active one, or one being scanned).
    pub(crate) fn push(&mut self, index: u64, term: u64, offset: u64) {
        debug_assert_eq!(index, self.first_index + self.len());
        if let Some(ix) = self.index.get_mut() {
            ix.push(index, term, offset);
        }
    }

    /// Records that compacted entry `index` has no readable record (damage stepped over by
    /// recovery). Such an entry is never read: it is at or below the snapshot base.
    pub(crate) fn push_placeholder(&mut self, index: u64) {
        debug_assert_eq!(index, self.first_index + self.len());
        if let Some(ix) = self.index.get_mut() {
            ix.offsets.push(u32::MAX);
        }
    }

    /// Term of entry `index` (`None` if not contained, or a compacted placeholder).
    pub(crate) fn term_of(&self, index: u64) -> Result<Option<u64>> {
        if !self.contains(index) {
            return Ok(None);
        }
        let ix = self.index()?;
        if ix.offsets[(index - self.first_index) as usize] == u32::MAX {
            return Ok(None);
        }
        let run = ix.terms.partition_point(|&(first, _)| first <= index);
        Ok(run
            .checked_sub(1)
            .and_then(|r| ix.terms.get(r))
            .map(|&(_, t)| t))
    }

    /// Offset of entry `index` (`None` if not contained).
    pub(crate) fn offset_of(&self, index: u64) -> Result<Option<u64>> {
        if !self.contains(index) {
            return Ok(None);
        }
        Ok(self
            .index()?
            .offsets
            .get((index - self.first_index) as usize)
            .map(|&o| u64::from(o)))
    }

    /// Forgets entries `from..` in the index (building it first if needed).
    pub(crate) fn forget_from(&mut self, from: u64) -> Result<()> {
        let first = self.first_index;
        let ix = self.index_mut()?;
        let keep = from.saturating_sub(first) as usize;
        ix.offsets.truncate(keep);
        ix.data_end = None;
        let run = ix.terms.partition_point(|&(f, _)| f < from);
        ix.terms.truncate(run);
        Ok(())
    }

    /// Reads and verifies entry `index`: from the write buffer if it is not written yet,
    /// else from the file.
    pub(crate) fn read_entry(&self, index: u64) -> Result<Entry> {
        let offset = self.offset_of(index)?.ok_or_else(|| {
            Error::corrupt(self.path(), 0, Some(index), "index not in this segment")
        })?;
        let pending = &self.pending[..];
        if offset >= self.written {
            let at = (offset - self.written) as usize;
            return match decode_frame(self.format, pending, at, &self.identity) {
                Frame::Record { header, .. } if header.index == index => {
                    let start = at + self.format.header_len();
                    Ok(self.entry(
                        index,
                        header.term,
                        &pending[start..start + header.len as usize],
                    ))
                }
                _ => Err(Error::Internal {
                    reason: format!("buffered record of entry {index} does not decode"),
                }),
            };
        }
        self.read_record(index, offset)
    }

    fn entry(&self, index: u64, term: u64, data: &[u8]) -> Entry {
        Entry {
            index,
            term,
            data: data.to_vec(),
        }
    }

    /// Reads the record of entry `index` at `offset` with two positional reads (header,
    /// then the payload straight into the entry's buffer) and verifies it.
    fn read_record(&self, index: u64, offset: u64) -> Result<Entry> {
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
        if len > rec::MAX_PAYLOAD || end > self.written {
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
