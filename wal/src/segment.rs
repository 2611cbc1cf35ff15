//! A segment file `<first-index>.wal` and its in-memory index.
//!
//! File layout: a 64-byte segment header (see `format::seg`) padded with zeros to 4 KiB, then
//! record frames (see `format::rec`) from offset 4096, then zeros up to the preallocated size. A segment is created under
//! `<name>.tmp` with its header written, preallocated and synced, then renamed into place and
//! the directory synced — so every `<first-index>.wal` has a durable, valid header.
//!
//! The in-memory index costs 4 bytes per entry (the record's offset, `u32`) plus 16 bytes per
//! run of equal terms.

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
    /// Offset of each entry's record, entry `first_index + i` at `offsets[i]`.
    pub(crate) offsets: Vec<u32>,
    /// Runs of equal terms: (first index of the run, term).
    pub(crate) terms: Vec<(u64, u64)>,
    /// Bytes of the file holding written frames (the end of the last record written).
    pub(crate) written: u64,
    /// Written since the last fdatasync of this file.
    pub(crate) dirty: bool,
    /// Read view of a sealed segment, taken on first read.
    pub(crate) map: OnceLock<F::Map>,
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
        vfs.rename(&tmp, &path)
            .map_err(|e| Error::io("rename", &tmp, e))?;
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
        let path = dir.join(segment_name(first_index));
        let file = vfs
            .open(spare, OpenMode::ReadWrite)
            .map_err(|e| Error::io("open", spare, e))?;
        let header = encode_segment_header(seq, first_index, first_group);
        file.write_all_at(&header, 0)
            .map_err(|e| Error::io("write", spare, e))?;
        file.sync_data()
            .map_err(|e| Error::io("fdatasync", spare, e))?;
        vfs.rename(spare, &path)
            .map_err(|e| Error::io("rename", spare, e))?;
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
            offsets: Vec::new(),
            terms: Vec::new(),
            written,
            dirty: false,
            map: OnceLock::new(),
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// Index of the last entry, or `first_index - 1` when empty.
    pub(crate) fn last_index(&self) -> u64 {
        self.first_index + self.len() - 1
    }

    pub(crate) fn contains(&self, index: u64) -> bool {
        index >= self.first_index && index < self.first_index + self.len()
    }

    /// Records that entry `index` with `term` starts at `offset`.
    pub(crate) fn push(&mut self, index: u64, term: u64, offset: u64) {
        debug_assert_eq!(index, self.first_index + self.len());
        self.offsets.push(offset as u32);
        if self.terms.last().is_none_or(|&(_, t)| t != term) {
            self.terms.push((index, term));
        }
    }

    /// Records that compacted entry `index` has no readable record (damage stepped over by
    /// recovery). Such an entry is never read: it is at or below the snapshot base.
    pub(crate) fn push_placeholder(&mut self, index: u64) {
        debug_assert_eq!(index, self.first_index + self.len());
        self.offsets.push(u32::MAX);
    }

    /// Term of entry `index` (must be contained).
    pub(crate) fn term_of(&self, index: u64) -> Option<u64> {
        if !self.contains(index) || self.offsets[(index - self.first_index) as usize] == u32::MAX {
            return None;
        }
        let run = self.terms.partition_point(|&(first, _)| first <= index);
        self.terms.get(run.checked_sub(1)?).map(|&(_, t)| t)
    }

    /// Offset of entry `index` (must be contained).
    pub(crate) fn offset_of(&self, index: u64) -> Option<u64> {
        if !self.contains(index) {
            return None;
        }
        self.offsets
            .get((index - self.first_index) as usize)
            .map(|&o| u64::from(o))
    }

    /// Forgets entries `from..` in the index.
    pub(crate) fn forget_from(&mut self, from: u64) {
        let keep = from.saturating_sub(self.first_index) as usize;
        self.offsets.truncate(keep);
        let run = self.terms.partition_point(|&(first, _)| first < from);
        self.terms.truncate(run);
    }

    /// Decodes and verifies the record of entry `index` from `bytes`, which start at file
    /// offset `base`.
    pub(crate) fn decode_entry(&self, index: u64, bytes: &[u8], base: u64) -> Result<Entry> {
        let offset = self.offset_of(index).ok_or_else(|| {
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
        let offset = self.offset_of(index).ok_or_else(|| {
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
