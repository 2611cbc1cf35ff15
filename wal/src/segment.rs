//! A segment file `<first-index>.wal` and its in-memory index.
//!
//! File layout: a 64-byte segment header (see `format::seg`) padded with zeros to 4 KiB, then
//! record frames (see `format::rec`) from offset 4096, then zeros up to the preallocated size. A segment is created under
//! `<name>.tmp` with its header written, preallocated and synced, then renamed into place and
//! the directory synced — so every `<first-index>.wal` has a durable, valid header.
//!
//! The in-memory index costs 4 bytes per entry (the record's offset, `u32`) plus 16 bytes per
//! run of equal terms. A sealed segment that open did not scan (`Options::lazy_open`) builds
//! its index, verifying every record, the first time it is read ([`Segment::index`]).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::format::{
    decode_frame, encode_segment_header, rec, seg, segment_identity, segment_name, Frame,
    RecordHeader, TMP_SUFFIX,
};
use crate::io::{OpenMode, Vfs, VfsFile};
use crate::types::Entry;

/// One segment file and the index of its entries.
pub(crate) struct Segment<F: VfsFile> {
    pub(crate) path: PathBuf,
    pub(crate) file: F,
    pub(crate) seq: u64,
    pub(crate) first_index: u64,
    pub(crate) first_group: u64,
    /// CRC state binding this segment's identity into each record checksum.
    pub(crate) identity: crc32fast::Hasher,
    /// The entries' index: set from the start for a segment open scanned or that was
    /// created since, built on first use for a sealed segment a lazy open skipped.
    index: OnceLock<Index>,
    /// Entries of a segment whose index is not built yet (from the file names: the next
    /// segment's first index minus this one's).
    unindexed_len: u64,
    /// Bytes of the file holding written frames (the end of the last record written).
    pub(crate) written: u64,
    /// Written since the last fdatasync of this file.
    pub(crate) dirty: bool,
    /// Read view of a sealed segment, taken on first read.
    pub(crate) map: OnceLock<F::Map>,
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
        let tmp = dir.join(format!("{}{TMP_SUFFIX}", segment_name(first_index)));
        crate::io::remove_if_present(vfs, &tmp)?;
        let file = vfs
            .open(&tmp, OpenMode::CreateNew)
            .map_err(|e| Error::io("create", &tmp, e))?;
        let header = encode_segment_header(seq, first_index, first_group);
        file.write_all_at(&header, 0)
            .map_err(|e| Error::io("write", &tmp, e))?;
        if let Some(size) = preallocate {
            file.allocate(size)
                .map_err(|e| Error::io("allocate", &tmp, e))?;
        }
        file.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
        Self::install(vfs, dir, &tmp, file, seq, first_index, first_group)
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
        let file = vfs
            .open(spare, OpenMode::ReadWrite)
            .map_err(|e| Error::io("open", spare, e))?;
        let header = encode_segment_header(seq, first_index, first_group);
        file.write_all_at(&header, 0)
            .map_err(|e| Error::io("write", spare, e))?;
        file.sync_data()
            .map_err(|e| Error::io("fdatasync", spare, e))?;
        Self::install(vfs, dir, spare, file, seq, first_index, first_group)
    }

    /// Renames `from` (a file holding a synced, valid segment header) to the segment's name
    /// and fsyncs the directory: from here on the segment exists durably, and records may be
    /// written to it.
    fn install<V: Vfs<File = F>>(
        vfs: &V,
        dir: &Path,
        from: &Path,
        file: F,
        seq: u64,
        first_index: u64,
        first_group: u64,
    ) -> Result<Self> {
        let path = dir.join(segment_name(first_index));
        vfs.rename(from, &path)
            .map_err(|e| Error::io("rename", from, e))?;
        vfs.sync_dir(dir)
            .map_err(|e| Error::io("fsync dir", dir, e))?;
        Ok(Self::from_parts(
            path,
            file,
            seq,
            first_index,
            first_group,
            seg::DATA_START as u64,
        ))
    }

    pub(crate) fn from_parts(
        path: PathBuf,
        file: F,
        seq: u64,
        first_index: u64,
        first_group: u64,
        written: u64,
    ) -> Self {
        Segment {
            path,
            file,
            seq,
            first_index,
            first_group,
            identity: segment_identity(seq, first_index),
            index: OnceLock::from(Index::default()),
            unindexed_len: 0,
            written,
            dirty: false,
            map: OnceLock::new(),
        }
    }

    /// Drops the index of a sealed segment of `entries` entries that a lazy open did not
    /// read (`file_len`: its length, the extent of the read view): it is built, and every
    /// record verified, on first use ([`Segment::index`]).
    pub(crate) fn unindex(&mut self, entries: u64, file_len: u64) {
        self.index = OnceLock::new();
        self.unindexed_len = entries;
        self.written = file_len;
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> u64 {
        self.index
            .get()
            .map_or(self.unindexed_len, |ix| ix.offsets.len() as u64)
    }

    /// The index, built on first use for a segment a lazy open skipped: every record is read
    /// and verified (checksum bound to this segment and index; consecutive indexes from
    /// `first_index` to the entry before the next segment; terms and sync groups never
    /// going backwards; nothing but zeros after the last one). Any failure is
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
        self.index.get_mut().ok_or_else(|| {
            Error::corrupt(
                &self.path,
                0,
                None,
                "segment index missing after it was built",
            )
        })
    }

    /// The read view of the whole file (a sealed segment's), mapped on first use.
    pub(crate) fn mapped(&self) -> Result<&F::Map> {
        if let Some(m) = self.map.get() {
            return Ok(m);
        }
        let m = self
            .file
            .map(self.written)
            .map_err(|e| Error::io("map", &self.path, e))?;
        Ok(self.map.get_or_init(|| m))
    }

    fn build_index(&self) -> Result<Index> {
        let buf: &[u8] = self.mapped()?;
        let mut ix = Index::default();
        let mut off = seg::DATA_START;
        let (mut term, mut group) = (0u64, self.first_group);
        let next_first = self.first_index + self.unindexed_len;
        let mut expected = self.first_index;
        let bad = |off: usize, index: Option<u64>, reason: String| {
            Err(Error::corrupt(&self.path, off as u64, index, reason))
        };
        while expected < next_first {
            match decode_frame(buf, off, &self.identity) {
                Frame::Record { header: h, end } => {
                    if h.index != expected {
                        return bad(
                            off,
                            Some(expected),
                            format!(
                                "record holds index {} where {expected} was expected",
                                h.index
                            ),
                        );
                    }
                    if h.term < term || h.group < group {
                        return bad(
                            off,
                            Some(expected),
                            "term or sync group goes backwards".into(),
                        );
                    }
                    (term, group) = (h.term, h.group);
                    ix.push(h.index, h.term, off as u64);
                    expected += 1;
                    off = end;
                }
                Frame::Zero => {
                    return bad(
                        off,
                        Some(expected),
                        format!(
                            "the segment ends before entry {expected}; \
                             the next segment starts at {next_first}"
                        ),
                    )
                }
                Frame::Bad(reason) => return bad(off, Some(expected), reason),
            }
        }
        if !matches!(decode_frame(buf, off, &self.identity), Frame::Zero)
            || !crate::format::all_zero(&buf[off.min(buf.len())..])
        {
            return bad(
                off,
                Some(next_first),
                "bytes after the segment's last entry are not zeros".into(),
            );
        }
        ix.data_end = Some(off as u64);
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
        self.first_index + self.len() - 1
    }

    pub(crate) fn contains(&self, index: u64) -> bool {
        index >= self.first_index && index < self.first_index + self.len()
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

    /// Decodes and verifies the record of entry `index` from `bytes`, which start at file
    /// offset `base`.
    pub(crate) fn decode_entry(&self, index: u64, bytes: &[u8], base: u64) -> Result<Entry> {
        let offset = self.offset_of(index)?.ok_or_else(|| {
            Error::corrupt(&self.path, 0, Some(index), "index not in this segment")
        })?;
        let at = (offset - base) as usize;
        match decode_frame(bytes, at, &self.identity) {
            Frame::Record { header, .. } if header.index == index => {
                let start = at + rec::HEADER_LEN;
                Ok(Entry {
                    index,
                    term: header.term,
                    data: bytes[start..start + header.len as usize].to_vec(),
                })
            }
            Frame::Record { header, .. } => Err(Error::corrupt(
                &self.path,
                offset,
                Some(index),
                format!(
                    "record holds index {} where {index} was expected",
                    header.index
                ),
            )),
            Frame::Zero => Err(Error::corrupt(
                &self.path,
                offset,
                Some(index),
                "record header reads back as zeros",
            )),
            Frame::Bad(reason) => Err(Error::corrupt(&self.path, offset, Some(index), reason)),
        }
    }

    /// Reads entry `index` from the file (pread of header, then payload).
    pub(crate) fn read_entry_pread(&self, index: u64) -> Result<Entry> {
        let offset = self.offset_of(index)?.ok_or_else(|| {
            Error::corrupt(&self.path, 0, Some(index), "index not in this segment")
        })?;
        let mut head = [0u8; rec::HEADER_LEN];
        self.file
            .read_exact_at(&mut head, offset)
            .map_err(|e| Error::io("read", &self.path, e))?;
        let len = RecordHeader::decode(&head).len as usize;
        if len > rec::MAX_PAYLOAD || offset + (rec::HEADER_LEN + len) as u64 > self.written {
            return Err(Error::corrupt(
                &self.path,
                offset,
                Some(index),
                format!("record length {len} runs past the written data"),
            ));
        }
        let mut buf = vec![0u8; rec::HEADER_LEN + len];
        buf[..rec::HEADER_LEN].copy_from_slice(&head);
        self.file
            .read_exact_at(&mut buf[rec::HEADER_LEN..], offset + rec::HEADER_LEN as u64)
            .map_err(|e| Error::io("read", &self.path, e))?;
        self.decode_entry(index, &buf, offset)
    }
}
