//! Reading a segment's records as stored: positional reads through a window, and the one
//! rule for which record is accepted, shared by recovery, the lazy index build and
//! inspection.
//!
//! No memory map is involved: a media error while reading is an [`Error::Io`] naming the
//! file, never a `SIGBUS` that kills the process.

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::error::Result;
use crate::file::WalFile;
use crate::format::{
    align_up, all_zero, check_header, decode_frame, rec, verified_header, Frame, HeaderCheck,
    RecordFormat, RecordHeader, ALIGN,
};
use crate::header::Fence;
use crate::io::VfsFile;

/// Bytes read at a time by a scan.
pub(crate) const WINDOW: usize = 1 << 20;

/// The search steps over runs of zeros this many bytes at a time.
const ZERO_BLOCK: usize = 512;

/// Positional reads of one file through a window of [`WINDOW`] bytes (or one record, if
/// larger): a forward scan reads every byte once, in large reads.
pub(crate) struct Window<'a, F: VfsFile> {
    file: &'a WalFile<F>,
    len: u64,
    start: u64,
    buf: Vec<u8>,
}

impl<'a, F: VfsFile> Window<'a, F> {
    /// A window over the first `len` bytes of `file`.
    pub(crate) fn new(file: &'a WalFile<F>, len: u64) -> Self {
        Window {
            file,
            len,
            start: 0,
            buf: Vec::new(),
        }
    }

    /// Bytes `[off, off + n)`, fewer if the file ends first (none at or past its end).
    pub(crate) fn get(&mut self, off: u64, n: usize) -> Result<&[u8]> {
        if off >= self.len {
            return Ok(&[]);
        }
        let end = off.saturating_add(n as u64).min(self.len);
        let have_end = self.start + self.buf.len() as u64;
        if off < self.start || end > have_end {
            let want = end
                .saturating_sub(off)
                .max(WINDOW as u64)
                .min(self.len - off);
            self.buf.resize(want as usize, 0);
            self.start = off;
            if let Err(e) = self.file.read_exact_at(&mut self.buf, off) {
                self.buf.clear();
                return Err(e);
            }
        }
        let from = (off - self.start) as usize;
        Ok(&self.buf[from..from + (end - off) as usize])
    }

    /// The frame at `off` of a segment of `format` whose records carry `identity`.
    pub(crate) fn frame_at(
        &mut self,
        off: u64,
        format: RecordFormat,
        identity: &crc32fast::Hasher,
    ) -> Result<Frame> {
        let hl = format.header_len();
        let h = match check_header(format, self.get(off, hl)?, identity) {
            HeaderCheck::Zero => return Ok(Frame::Zero),
            HeaderCheck::Bad(reason) => return Ok(Frame::Bad(reason)),
            HeaderCheck::Verified(h) | HeaderCheck::Unverified(h) => h,
        };
        let left = self.len - off;
        let total = (hl as u64).saturating_add(u64::from(h.len));
        if h.len as usize > rec::MAX_PAYLOAD || total > left {
            return Ok(Frame::Bad(format!(
                "record length {} runs past the end of the file ({left} bytes left)",
                h.len
            )));
        }
        // With its padding (which a file may end inside of: the end is clipped there).
        let bytes = self.get(off, format.record_len(h.len as usize))?;
        Ok(match decode_frame(format, bytes, 0, identity) {
            Frame::Record { header, end } => Frame::Record {
                header,
                end: (off as usize).saturating_add(end),
            },
            other => other,
        })
    }

    /// Whether every byte from `off` to the end of the file is zero.
    pub(crate) fn zero_from(&mut self, off: u64) -> Result<bool> {
        let mut at = off;
        while at < self.len {
            let chunk = self.get(at, WINDOW)?;
            if !all_zero(chunk) {
                return Ok(false);
            }
            at += chunk.len() as u64;
        }
        Ok(true)
    }

    /// Searches from `from` to the end of the file for the record headers of this segment
    /// (format, `identity`, indexes from `first_index`), calling `visit` on each verified
    /// one in order until it returns `true`; returns that header and its offset. At each
    /// 8-byte position a plausible index is required before the header checksum is
    /// computed, so the search is linear in the bytes read whatever they hold (a format-2
    /// header has no checksum of its own: a plausible one is verified with its payload).
    pub(crate) fn search(
        &mut self,
        from: u64,
        format: RecordFormat,
        identity: &crc32fast::Hasher,
        first_index: u64,
        mut visit: impl FnMut(u64, &RecordHeader) -> bool,
    ) -> Result<Option<(u64, RecordHeader)>> {
        let hl = format.header_len();
        // No record of this segment can hold an index past this.
        let span = self.len / rec::HEADER_LEN.min(hl) as u64 + 1;
        let mut pos = align_up(from as usize) as u64;
        while pos.saturating_add(hl as u64) <= self.len {
            let chunk = self.get(pos, WINDOW + hl)?;
            let mut plausible = Vec::new();
            let mut p = 0usize;
            while p + hl <= chunk.len() && p < WINDOW {
                // A block of zeros holds no header start (its index fields read 0).
                if p % ZERO_BLOCK == 0
                    && chunk.len() >= p + ZERO_BLOCK
                    && all_zero(&chunk[p..p + ZERO_BLOCK])
                {
                    p += ZERO_BLOCK;
                    continue;
                }
                let index = LE::read_u64(&chunk[p + rec::OFF_INDEX..p + rec::OFF_INDEX + 8]);
                if index.wrapping_sub(first_index) <= span {
                    plausible.push(pos + p as u64);
                }
                p += ALIGN;
            }
            for at in plausible {
                let header = match format {
                    RecordFormat::V3 => verified_header(self.get(at, hl)?, identity),
                    RecordFormat::V2 => match self.frame_at(at, format, identity)? {
                        Frame::Record { header, .. } => Some(header),
                        _ => None,
                    },
                };
                if let Some(h) = header {
                    if visit(at, &h) {
                        return Ok(Some((at, h)));
                    }
                }
            }
            if p == 0 {
                break;
            }
            pos += p as u64;
        }
        Ok(None)
    }
}

/// The rule every accepted record follows, in stream order: it verifies (checked by the
/// caller's frame decoding), holds the next index, its term and sync group do not go
/// backwards, and the header's fence does not void it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    /// The index the next record must hold.
    pub expected: u64,
    /// The last accepted term (0 before any).
    pub term: u64,
    /// The last accepted sync group (a segment's first group before any).
    pub group: u64,
    /// The header's truncation fence.
    pub fence: Fence,
}

impl Rule {
    /// Why the record with header `h` cannot be the next one, if it cannot.
    pub(crate) fn reject(&self, h: &RecordHeader) -> Option<String> {
        if self.fence.voids(h.index, h.group) {
            Some(format!(
                "record {} of sync group {} lies past the fence at index {} (group {}): \
                 removed by a truncation",
                h.index, h.group, self.fence.index, self.fence.group
            ))
        } else if h.index != self.expected {
            Some(format!(
                "record holds index {} where {} was expected",
                h.index, self.expected
            ))
        } else if h.index == u64::MAX {
            Some(format!("record index {} is out of range", h.index))
        } else if h.term < self.term {
            Some(format!(
                "term {} goes backwards (after {})",
                h.term, self.term
            ))
        } else if h.group < self.group {
            Some(format!(
                "sync group {} goes backwards (after {})",
                h.group, self.group
            ))
        } else {
            None
        }
    }

    /// Records that `h` was accepted.
    pub(crate) fn accept(&mut self, h: &RecordHeader) {
        self.expected = h.index + 1; // `reject` refused u64::MAX
        self.term = h.term;
        self.group = h.group;
    }
}

/// Whether header sequence `a` (low 32 bits) is newer than `b`, in serial-number arithmetic.
pub(crate) fn seq_newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_record, segment_identity};

    fn header(index: u64, group: u64) -> RecordHeader {
        RecordHeader {
            len: 3,
            index,
            term: 1,
            group,
            batch_end: true,
            group_start: true,
            header_seq: 4,
        }
    }

    #[test]
    fn the_rule_rejects_gaps_regressions_and_fenced_records() {
        let mut r = Rule {
            expected: 5,
            term: 2,
            group: 3,
            fence: Fence { index: 6, group: 9 },
        };
        let h = |index, term, group| RecordHeader {
            index,
            term,
            group,
            ..RecordHeader::default()
        };
        assert!(r.reject(&h(5, 2, 3)).is_none());
        assert!(r.reject(&h(6, 2, 3)).unwrap().contains("expected"));
        assert!(r.reject(&h(5, 1, 3)).unwrap().contains("term"));
        assert!(r.reject(&h(5, 2, 2)).unwrap().contains("sync group"));
        r.accept(&h(5, 2, 3));
        r.accept(&h(6, 2, 3));
        assert!(r.reject(&h(7, 2, 4)).unwrap().contains("fence"));
        assert!(r.reject(&h(7, 2, 9)).is_none());
    }

    #[test]
    fn serial_comparison_of_header_sequences() {
        assert!(seq_newer(5, 4));
        assert!(!seq_newer(4, 4));
        assert!(!seq_newer(3, 4));
        assert!(seq_newer(2, u32::MAX));
    }

    #[test]
    fn search_finds_a_verified_header_among_garbage_in_linear_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let vfs = crate::io::StdVfs;
        let file = WalFile::open(&vfs, &path, crate::io::OpenMode::CreateNew).unwrap();
        let id = segment_identity(1, 100);
        // Garbage whose 8-byte words are all plausible indexes, then one real record.
        let mut bytes = Vec::new();
        for i in 0..(3 * WINDOW / 8) as u64 {
            bytes.extend_from_slice(&(100 + i % 50).to_le_bytes());
        }
        let at = bytes.len() as u64;
        encode_record(&mut bytes, &id, &header(120, 7), b"abc");
        file.write_all_at(&bytes, 0).unwrap();
        let mut w = Window::new(&file, bytes.len() as u64);
        let mut seen = 0;
        let s = w
            .search(0, RecordFormat::V3, &id, 100, |_, h| {
                seen += 1;
                h.group_start
            })
            .unwrap();
        assert_eq!(s.map(|(off, h)| (off, h.index)), Some((at, 120)));
        assert_eq!(seen, 1, "no garbage position verified");
        let none = w
            .search(at + 8, RecordFormat::V3, &id, 100, |_, _| true)
            .unwrap();
        assert!(none.is_none());
    }
}
