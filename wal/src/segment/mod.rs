//! A segment file `<first-index>.wal` and its in-memory index.
//!
//! File layout: a 64-byte segment header (see `format::seg`) padded with zeros to 4 KiB,
//! then record frames (see `format::rec`) from offset 4096, then zeros up to the
//! preallocated size (none under `SegmentPrepare::Grow`). A segment is created under
//! `<name>.tmp` with its header written, preallocated and synced, or made from the spare
//! (`crate::spare`: header written and synced), then renamed into place and the directory
//! synced — so every `<first-index>.wal` has a durable, valid header.
//!
//! The in-memory index ([`index::Index`]) costs 4 bytes per entry plus 16 bytes per run of
//! equal terms. A sealed segment that open did not scan (`Options::lazy_open`) builds its
//! index, verifying every record, the first time it is read
//! ([`SharedSegment::with_index`]). Records are read with positional reads (`pread`), never
//! through a memory map, so a media error is an `Error::Io`.
//!
//! [`Segment`] is the writer's handle; what readers on other threads share with it — the
//! file, the index, the written length and the write buffer — is the [`SharedSegment`]
//! (its module says how the two lock).

use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLockUpgradableReadGuard;

use crate::error::{Error, Result};
use crate::file::WalFile;
use crate::format::{encode_record, encode_segment_header, seg, segment_identity, segment_name};
use crate::format::{RecordFormat, RecordHeader, SegmentHeader};
use crate::header::Fence;
use crate::io::{OpenMode, Vfs, VfsFile};
use crate::types::Entry;

pub(crate) mod index;
pub(crate) mod shared;

pub(crate) use shared::SharedSegment;

/// One segment file, the index of its entries, and (for the active segment) the records
/// appended but not yet written: the writer's handle on a [`SharedSegment`] that readers
/// (`crate::WalReader`) share.
///
/// The segment does its own I/O — buffer, write out, `fdatasync`, cut — and reports it as
/// [`Error::Io`] naming the file; the [`crate::Wal`] decides when each step runs (the fsync
/// order in `docs/FORMAT.md`), counts it and poisons itself on failure.
pub(crate) struct Segment<F: VfsFile> {
    shared: Arc<SharedSegment<F>>,
    seq: u64,
    /// Made from a recycled file: stale bytes may follow the records.
    recycled: bool,
    /// Written since the last fdatasync of this file.
    dirty: bool,
    /// Start within the buffer of the last buffered record (kept back by early
    /// write-outs).
    last_record: Option<usize>,
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
        let header = encode_segment_header(seq, first_index, first_group, false);
        let file = crate::io::create_durably(vfs, dir, &path, |file| {
            file.write_all_at(&header, 0)?;
            match preallocate {
                Some(size) => file.allocate(size),
                None => Ok(()),
            }
        })?;
        let header = SegmentHeader {
            seq,
            first_index,
            first_group,
            format: RecordFormat::V3,
            recycled: false,
            ahead: false,
        };
        Ok(Self::from_parts(file, header, seg::DATA_START as u64))
    }

    /// Turns a prepared file at `from` — the spare (written, synced zeros; see
    /// `crate::spare`) or a file of the recycle pool (a compacted segment's old bytes; see
    /// `crate::recycle`), as `recycled` says — into a new segment durably: header written
    /// and `fdatasync`ed, renamed into place, directory fsynced.
    pub(crate) fn from_prepared<V: Vfs<File = F>>(
        vfs: &V,
        dir: &Path,
        from: &Path,
        (seq, first_index, first_group): (u64, u64, u64),
        recycled: bool,
    ) -> Result<Self> {
        let file = WalFile::open(vfs, from, OpenMode::ReadWrite)?;
        let header = encode_segment_header(seq, first_index, first_group, recycled);
        file.write_all_at(&header, 0)?;
        file.sync_data()?;
        // From the rename on the segment exists durably, and records may be written to it.
        let path = dir.join(segment_name(first_index));
        crate::io::rename_durably(vfs, dir, from, &path)?;
        let header = SegmentHeader {
            seq,
            first_index,
            first_group,
            format: RecordFormat::V3,
            recycled,
            ahead: false,
        };
        Ok(Self::from_parts(
            file.renamed(path),
            header,
            seg::DATA_START as u64,
        ))
    }

    /// Turns a pool file whose header was written and synced ahead (`crate::recycle`,
    /// [`crate::format::encode_ahead_header`]: sequence `seq`, first group at least
    /// `group_floor`, first index the file name's) into the segment starting at
    /// `first_index`: renamed into place, directory fsynced. No write and no `fdatasync`:
    /// the header on disk is already the segment's.
    pub(crate) fn from_ahead<V: Vfs<File = F>>(
        vfs: &V,
        dir: &Path,
        from: &Path,
        (seq, first_index, group_floor): (u64, u64, u64),
    ) -> Result<Self> {
        let file = WalFile::open(vfs, from, OpenMode::ReadWrite)?;
        let path = dir.join(segment_name(first_index));
        crate::io::rename_durably(vfs, dir, from, &path)?;
        let header = SegmentHeader {
            seq,
            first_index,
            first_group: group_floor,
            format: RecordFormat::V3,
            recycled: true,
            ahead: true,
        };
        Ok(Self::from_parts(
            file.renamed(path),
            header,
            seg::DATA_START as u64,
        ))
    }

    /// A segment from its file and decoded header, with an empty index and `written` bytes
    /// of frames.
    pub(crate) fn from_parts(file: WalFile<F>, h: SegmentHeader, written: u64) -> Self {
        let identity = segment_identity(h.seq, h.first_index);
        let header = (h.first_index, h.first_group, h.format);
        Segment {
            shared: Arc::new(SharedSegment::new(file, header, identity, written)),
            seq: h.seq,
            recycled: h.recycled,
            dirty: false,
            last_record: None,
        }
    }

    /// What readers share.
    pub(crate) fn shared(&self) -> &Arc<SharedSegment<F>> {
        &self.shared
    }

    /// The segment's file path.
    pub(crate) fn path(&self) -> &Path {
        self.shared.path()
    }

    /// The open file.
    pub(crate) fn file(&self) -> &WalFile<F> {
        &self.shared.file
    }

    /// If the file was written since its last sync: marks it clean and returns a handle for
    /// the caller to `fdatasync` (a sync begun by `Wal::begin_sync`).
    pub(crate) fn take_dirty(&mut self) -> Option<Arc<WalFile<F>>> {
        std::mem::take(&mut self.dirty).then(|| Arc::clone(&self.shared.file))
    }

    /// The sequence number in its header (its identity with `first_index`).
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether the segment was made from a recycled file (stale bytes may follow its
    /// records).
    pub(crate) fn recycled(&self) -> bool {
        self.recycled
    }

    /// Index of its first entry (also its file name).
    pub(crate) fn first_index(&self) -> u64 {
        self.shared.first_index
    }

    /// The sync group current when it was created.
    pub(crate) fn first_group(&self) -> u64 {
        self.shared.first_group
    }

    /// Its record layout.
    pub(crate) fn format(&self) -> RecordFormat {
        self.shared.format
    }

    /// The CRC state its records' checksums start from.
    pub(crate) fn identity(&self) -> &crc32fast::Hasher {
        &self.shared.identity
    }

    /// Bytes of the file holding written frames.
    pub(crate) fn written(&self) -> u64 {
        self.shared.state.read().written
    }

    /// Where the records end once the buffered ones are written.
    pub(crate) fn end(&self) -> u64 {
        let st = self.shared.state.read();
        st.written + st.pending.len() as u64
    }

    /// Bytes of records buffered, not yet written.
    pub(crate) fn buffered(&self) -> usize {
        self.shared.state.read().pending.len()
    }

    /// Whether it was written since its last fdatasync.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Records where the scan found its records to end (nothing is written).
    pub(crate) fn set_written(&mut self, end: u64) {
        self.shared.state.write().written = end;
    }

    /// Hands the write buffer's allocation, if it is empty, to `next` (the segment a
    /// rotation starts) when it is at most `limit` bytes, else frees it: a buffer that
    /// already grew to the size of a batch is reused instead of being faulted in again page
    /// by page (at 32 MiB batches, with a rotation per batch, those page faults were a
    /// fifth of the CPU per batch), and a sealed segment holds no allocation.
    pub(crate) fn pass_buffer(&mut self, next: &mut Segment<F>, limit: usize) {
        let mut st = self.shared.state.write();
        if !st.pending.is_empty() {
            return;
        }
        let buf = std::mem::take(&mut st.pending);
        let mut nst = next.shared.state.write();
        if buf.capacity() <= limit && nst.pending.is_empty() {
            nst.pending = buf;
        }
    }

    /// Frees the write buffer's allocation if it is empty (a sealed segment written out).
    pub(crate) fn release_buffer(&mut self) {
        let mut st = self.shared.state.write();
        if st.pending.is_empty() {
            st.pending = Vec::new();
        }
    }

    /// Encodes the records of a batch into the write buffer and indexes them, under one
    /// lock: readers see the whole batch or none of it. `bytes`: the frames' total size
    /// (reserved at once).
    pub(crate) fn buffer<'a>(
        &mut self,
        bytes: usize,
        records: impl Iterator<Item = (RecordHeader, &'a [u8])>,
    ) {
        let mut st = self.shared.state.write();
        let st = &mut *st;
        st.pending.reserve(bytes);
        for (header, data) in records {
            let start = st.pending.len();
            encode_record(&mut st.pending, &self.shared.identity, &header, data);
            if let Some(ix) = st.index.as_mut() {
                ix.push(header.index, header.term, st.written + start as u64);
            }
            self.last_record = Some(start);
        }
    }

    /// Writes the buffered records (no sync): all of them, or with `keep_last` all but the
    /// newest (an early write-out ahead of the sync). One `pwrite`, or with a non-zero
    /// `chunk` one per `chunk`-aligned piece, each piece's writeback started as soon as it
    /// is written (`Options::writeback_chunk`). Returns the bytes written and the `pwrite`
    /// calls. Readers go on meanwhile (see `shared`'s module docs).
    pub(crate) fn write_out(&mut self, keep_last: bool, chunk: u64) -> Result<(usize, u64)> {
        let st = self.shared.state.upgradable_read();
        let upto = match (keep_last, self.last_record) {
            (true, Some(last)) => last,
            _ => st.pending.len(),
        };
        if upto == 0 {
            return Ok((0, 0));
        }
        let writes = self.write_chunked(&st.pending[..upto], st.written, chunk)?;
        let mut st = RwLockUpgradableReadGuard::upgrade(st);
        st.written += upto as u64;
        st.pending.drain(..upto);
        self.dirty = true;
        self.last_record = self.last_record.and_then(|p| p.checked_sub(upto));
        Ok((upto, writes))
    }

    /// Writes `buf` at `at`: in one piece when it fits in `chunk` (or `chunk` is 0), else in
    /// pieces that end on multiples of `chunk` in the file, starting each piece's writeback
    /// as soon as it is in the page cache. The device then writes one piece while the next
    /// is copied, and the `fdatasync` after waits for less. (The last piece's writeback is
    /// left to the sync.) Returns the number of pieces.
    fn write_chunked(&self, buf: &[u8], at: u64, chunk: u64) -> Result<u64> {
        let file = &self.shared.file;
        let end = at + buf.len() as u64;
        if chunk == 0 || buf.len() as u64 <= chunk {
            return file.write_all_at(buf, at).map(|()| 1);
        }
        let (mut from, mut pieces) = (at, 0);
        while from < end {
            pieces += 1;
            let to = ((from / chunk + 1) * chunk).min(end);
            let piece = &buf[(from - at) as usize..(to - at) as usize];
            file.write_all_at(piece, from)?;
            if to < end {
                file.start_writeback(from, to - from)?;
            }
            from = to;
        }
        Ok(pieces)
    }

    /// Cuts the file at `at` (records end there), reserves `reserve` bytes again, and
    /// `fsync`s (the length changed). The buffer must be empty. Readers no longer see past
    /// `at` before the file changes, and do not wait for the sync.
    pub(crate) fn cut_file(&mut self, at: u64, reserve: Option<u64>) -> Result<()> {
        {
            let mut st = self.shared.state.write();
            debug_assert!(st.pending.is_empty());
            st.written = at;
        }
        let file = &self.shared.file;
        file.set_len(at)?;
        if let Some(size) = reserve {
            file.allocate(size)?;
        }
        file.sync_all()?;
        self.dirty = false;
        Ok(())
    }

    /// Where entry `from`'s record starts: the offset to cut at to drop `from..`.
    pub(crate) fn cut_offset(&self, from: u64) -> Result<u64> {
        if self.first_index() >= from {
            return Ok(seg::DATA_START as u64);
        }
        Ok(self.offset_of(from)?.unwrap_or(self.written()))
    }

    /// Reads back bytes `from..written` and writes them again in place, then `fdatasync`s:
    /// pages a failed fsync may have marked clean are dirty again and reach the disk.
    /// Returns the bytes rewritten.
    pub(crate) fn rewrite_from(&self, from: u64) -> Result<u64> {
        let written = self.written();
        if written <= from {
            return Ok(0);
        }
        let file = &self.shared.file;
        let mut buf = Vec::new();
        let mut at = from;
        while at < written {
            let n = (written - at).min(crate::reader::WINDOW as u64) as usize;
            buf.resize(n, 0);
            file.read_exact_at(&mut buf, at)?;
            file.write_all_at(&buf, at)?;
            at += n as u64;
        }
        file.sync_data()?;
        Ok(written - from)
    }

    /// Whether appends may go into this segment (one in the current format).
    pub(crate) fn appendable(&self) -> bool {
        self.format() == RecordFormat::V3
    }

    /// Drops the index of a sealed segment of `entries` entries that a lazy open did not
    /// read (`file_len`: its length): it is built under `fence`, and every record verified,
    /// on first use (`SharedSegment::with_index`).
    pub(crate) fn unindex(&mut self, entries: u64, file_len: u64, fence: Fence) {
        let mut st = self.shared.state.write();
        st.index = None;
        st.unindexed = (entries, fence);
        st.written = file_len;
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> u64 {
        self.shared.len()
    }

    /// Runs `f` on the index (built first if needed) with the write lock held.
    fn with_index_mut<R>(&mut self, f: impl FnOnce(&mut shared::State) -> R) -> Result<R> {
        self.shared.build_index()?;
        let mut st = self.shared.state.write();
        if st.index.is_none() {
            return Err(self.shared.index_missing());
        }
        Ok(f(&mut st))
    }

    /// Builds the index if a lazy open skipped it, and sets `written` to where the records
    /// end: for a sealed segment that becomes the active one again (a suffix truncation
    /// removed the segments after it).
    pub(crate) fn make_writable(&mut self) -> Result<()> {
        // The lazily found end is right only until the segment is written again: from here
        // on `written` is kept by the appends and truncations, so the end is used once.
        self.with_index_mut(|st| {
            if let Some(end) = st.index.as_mut().and_then(|ix| ix.data_end.take()) {
                st.written = end;
            }
        })
    }

    /// Index of the last entry, or `first_index - 1` when empty.
    pub(crate) fn last_index(&self) -> u64 {
        (self.first_index() + self.len()).saturating_sub(1)
    }

    pub(crate) fn contains(&self, index: u64) -> bool {
        self.shared.contains(index)
    }

    /// Records that entry `index` with `term` starts at `offset`.
    /// Only for an indexed segment (the active one, or one being scanned).
    pub(crate) fn push(&mut self, index: u64, term: u64, offset: u64) {
        debug_assert_eq!(index, self.first_index() + self.len());
        if let Some(ix) = self.shared.state.write().index.as_mut() {
            ix.push(index, term, offset);
        }
    }

    /// Records that compacted entry `index` has no readable record (damage stepped over by
    /// recovery). Such an entry is never read: it is at or below the snapshot base.
    pub(crate) fn push_placeholder(&mut self, index: u64) {
        debug_assert_eq!(index, self.first_index() + self.len());
        if let Some(ix) = self.shared.state.write().index.as_mut() {
            ix.offsets.push(u32::MAX);
        }
    }

    /// Term of entry `index` (`None` if not contained, or a compacted placeholder).
    pub(crate) fn term_of(&self, index: u64) -> Result<Option<u64>> {
        self.shared.term_of(index)
    }

    /// Offset of entry `index` (`None` if not contained).
    pub(crate) fn offset_of(&self, index: u64) -> Result<Option<u64>> {
        self.shared.offset_of(index)
    }

    /// Forgets entries `from..` in the index (building it first if needed).
    pub(crate) fn forget_from(&mut self, from: u64) -> Result<()> {
        let first = self.first_index();
        self.with_index_mut(|st| {
            if let Some(ix) = st.index.as_mut() {
                ix.forget_from(first, from);
            }
        })
    }

    /// Marks the segment as out of the log (removed by a truncation or a compaction): a
    /// reader still holding it finds nothing in it.
    pub(crate) fn leave_log(&self) {
        self.shared.state.write().gone = true;
    }

    /// Reads and verifies entry `index`: from the write buffer if it is not written yet,
    /// else from the file.
    pub(crate) fn read_entry(&self, index: u64) -> Result<Entry> {
        self.shared
            .read_entry(index)?
            .ok_or_else(|| Error::corrupt(self.path(), 0, Some(index), "index not in this segment"))
    }
}
