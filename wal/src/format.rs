//! Byte layouts shared by the segment, header and snapshot files: magics, versions, named
//! offsets and the checksum helpers. All integers are little-endian with explicit widths.
//! `docs/FORMAT.md` documents the same layouts with the fsync protocol.

use byteorder::{ByteOrder, LittleEndian as LE};

/// Current on-disk format version of every raftwal file.
pub(crate) const FORMAT_VERSION: u32 = 2;

/// Records and segment headers are aligned to this many bytes.
pub(crate) const ALIGN: usize = 8;

/// Rounds `n` up to a multiple of [`ALIGN`].
pub(crate) const fn align_up(n: usize) -> usize {
    (n + ALIGN - 1) & !(ALIGN - 1)
}

/// Segment file header (64 bytes at offset 0 of every `<first-index>.wal`, then zeros up to
/// [`seg::DATA_START`] = 4096, where the first record starts):
///
/// ```text
/// off  size  field
///   0     8  magic "RWALSEG1"
///   8     4  format version (u32)
///  12     4  reserved, zero
///  16     8  segment sequence number (u64): unique per segment created in this directory
///  24     8  first index (u64): index of the segment's first record; equals the file name
///  32     8  first group (u64): sync group of the segment's first record
///  40    20  reserved, zero
///  60     4  crc32 of bytes [0, 60)
/// ```
pub(crate) mod seg {
    pub const MAGIC: [u8; 8] = *b"RWALSEG1";
    pub const HEADER_LEN: usize = 64;
    /// Offset of the first record: the header is padded with zeros to a 4 KiB page, so a
    /// batch whose frames fill whole pages never shares a page with the header or (when the
    /// batches before it did too) with an earlier batch: an `fdatasync` then never rewrites a
    /// page it already wrote.
    pub const DATA_START: usize = 4096;
    pub const OFF_VERSION: usize = 8;
    pub const OFF_SEQ: usize = 16;
    pub const OFF_FIRST_INDEX: usize = 24;
    pub const OFF_FIRST_GROUP: usize = 32;
    pub const OFF_CRC: usize = 60;
}

/// Record frame (32-byte header, then the payload, then zero padding to 8 bytes):
///
/// ```text
/// off  size  field
///   0     4  crc32 over (segment seq ‖ segment first index ‖ bytes [4, 32) ‖ payload)
///   4     4  payload length (u32)
///   8     8  index (u64)
///  16     8  term (u64)
///  24     8  group word (u64): bits 0..62 sync group, bit 62 group start, bit 63 batch end
///  32     n  payload
/// ```
///
/// The sync group numbers the `sync()` calls whose write carried this record; the *batch end*
/// bit marks the last record of one `append` call and the *group start* bit the first record
/// of a sync group. A group's records are written only after the previous group's fdatasync
/// returned, so a valid group-start record proves every byte before it was synced. Recovery
/// uses this to tell a torn tail from corruption.
pub(crate) mod rec {
    pub const HEADER_LEN: usize = 32;
    pub const OFF_LEN: usize = 4;
    pub const OFF_INDEX: usize = 8;
    pub const OFF_TERM: usize = 16;
    pub const OFF_GROUP: usize = 24;
    pub const BATCH_END: u64 = 1 << 63;
    pub const GROUP_START: u64 = 1 << 62;
    pub const GROUP_MASK: u64 = GROUP_START - 1;
    /// Largest payload accepted (keeps every offset inside a segment within u32).
    pub const MAX_PAYLOAD: usize = 1 << 30;
}

/// Bytes a record with `payload_len` bytes of payload occupies in a segment.
pub(crate) const fn record_len(payload_len: usize) -> usize {
    align_up(rec::HEADER_LEN + payload_len)
}

/// The checksum state every record of a segment starts from: it binds the segment identity
/// (sequence number and first index) into each record's CRC.
pub(crate) fn segment_identity(seq: u64, first_index: u64) -> crc32fast::Hasher {
    let mut id = [0u8; 16];
    LE::write_u64(&mut id[0..8], seq);
    LE::write_u64(&mut id[8..16], first_index);
    let mut h = crc32fast::Hasher::new();
    h.update(&id);
    h
}

/// CRC of a record: identity ‖ header bytes [4, 32) ‖ payload, computed in one pass over
/// `fields`, the record's bytes from offset 4 through the end of its payload (header and
/// payload are adjacent wherever a record is encoded or decoded).
pub(crate) fn record_crc(identity: &crc32fast::Hasher, fields: &[u8]) -> u32 {
    let mut h = identity.clone();
    h.update(fields);
    h.finalize()
}

/// A decoded record header, before its payload is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub crc: u32,
    pub len: u32,
    pub index: u64,
    pub term: u64,
    pub group: u64,
    pub batch_end: bool,
    pub group_start: bool,
}

impl RecordHeader {
    pub(crate) fn encode(&self, out: &mut [u8]) {
        let mut word = self.group & rec::GROUP_MASK;
        if self.batch_end {
            word |= rec::BATCH_END;
        }
        if self.group_start {
            word |= rec::GROUP_START;
        }
        LE::write_u32(&mut out[0..4], self.crc);
        LE::write_u32(&mut out[rec::OFF_LEN..rec::OFF_LEN + 4], self.len);
        LE::write_u64(&mut out[rec::OFF_INDEX..rec::OFF_INDEX + 8], self.index);
        LE::write_u64(&mut out[rec::OFF_TERM..rec::OFF_TERM + 8], self.term);
        LE::write_u64(&mut out[rec::OFF_GROUP..rec::OFF_GROUP + 8], word);
    }

    pub(crate) fn decode(b: &[u8]) -> Self {
        let word = LE::read_u64(&b[rec::OFF_GROUP..rec::OFF_GROUP + 8]);
        RecordHeader {
            crc: LE::read_u32(&b[0..4]),
            len: LE::read_u32(&b[rec::OFF_LEN..rec::OFF_LEN + 4]),
            index: LE::read_u64(&b[rec::OFF_INDEX..rec::OFF_INDEX + 8]),
            term: LE::read_u64(&b[rec::OFF_TERM..rec::OFF_TERM + 8]),
            group: word & rec::GROUP_MASK,
            batch_end: word & rec::BATCH_END != 0,
            group_start: word & rec::GROUP_START != 0,
        }
    }
}

/// What lies at an offset of a segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A record whose checksum verifies; `end` is the offset just past its padding.
    Record { header: RecordHeader, end: usize },
    /// Nothing was ever written here: the 32 header bytes (or what is left) are zero.
    Zero,
    /// Bytes that are not a valid record here.
    Bad(String),
}

/// Decodes the frame at `off` of `buf`, verifying its checksum.
pub(crate) fn decode_frame(buf: &[u8], off: usize, identity: &crc32fast::Hasher) -> Frame {
    let rest = buf.get(off..).unwrap_or(&[]);
    if rest.len() < rec::HEADER_LEN {
        return if rest.iter().all(|&b| b == 0) {
            Frame::Zero
        } else {
            Frame::Bad(format!(
                "{} bytes of a record header before the end of the file",
                rest.len()
            ))
        };
    }
    let hbytes = &rest[..rec::HEADER_LEN];
    if hbytes.iter().all(|&b| b == 0) {
        return Frame::Zero;
    }
    let header = RecordHeader::decode(hbytes);
    let len = header.len as usize;
    if len > rec::MAX_PAYLOAD || rec::HEADER_LEN + len > rest.len() {
        return Frame::Bad(format!(
            "record length {len} runs past the end of the file ({} bytes left)",
            rest.len()
        ));
    }
    let crc = record_crc(identity, &rest[4..rec::HEADER_LEN + len]);
    if crc != header.crc {
        return Frame::Bad(format!(
            "record checksum mismatch (stored {:#010x}, computed {crc:#010x})",
            header.crc
        ));
    }
    let end = (off + record_len(len)).min(buf.len());
    Frame::Record { header, end }
}

/// True if every byte of `buf` is zero. OR-reduces 4 KiB blocks (the loop vectorizes), so
/// the zeroed tail of a preallocated segment is checked at memory speed.
pub(crate) fn all_zero(buf: &[u8]) -> bool {
    buf.chunks(4096)
        .all(|block| block.iter().fold(0u8, |acc, &b| acc | b) == 0)
}

/// Encodes a segment header.
pub(crate) fn encode_segment_header(seq: u64, first_index: u64, first_group: u64) -> [u8; 64] {
    let mut b = [0u8; seg::HEADER_LEN];
    b[0..8].copy_from_slice(&seg::MAGIC);
    LE::write_u32(
        &mut b[seg::OFF_VERSION..seg::OFF_VERSION + 4],
        FORMAT_VERSION,
    );
    LE::write_u64(&mut b[seg::OFF_SEQ..seg::OFF_SEQ + 8], seq);
    LE::write_u64(
        &mut b[seg::OFF_FIRST_INDEX..seg::OFF_FIRST_INDEX + 8],
        first_index,
    );
    LE::write_u64(
        &mut b[seg::OFF_FIRST_GROUP..seg::OFF_FIRST_GROUP + 8],
        first_group,
    );
    let crc = crc32fast::hash(&b[..seg::OFF_CRC]);
    LE::write_u32(&mut b[seg::OFF_CRC..seg::OFF_CRC + 4], crc);
    b
}

/// A decoded segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub seq: u64,
    pub first_index: u64,
    pub first_group: u64,
}

/// Why a segment header is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SegmentHeaderError {
    /// Not a raftwal segment at all (magic) or an unknown version.
    Foreign(String),
    /// Ours, but damaged.
    Damaged(String),
}

/// Decodes and verifies a segment header.
pub(crate) fn decode_segment_header(b: &[u8]) -> Result<SegmentHeader, SegmentHeaderError> {
    if b.len() < seg::HEADER_LEN {
        return Err(SegmentHeaderError::Damaged(format!(
            "file is {} bytes, shorter than a segment header",
            b.len()
        )));
    }
    if b[0..8] != seg::MAGIC {
        return Err(SegmentHeaderError::Foreign(format!(
            "wrong magic {:02x?} at offset 0 (expected \"RWALSEG1\")",
            &b[0..8]
        )));
    }
    let stored = LE::read_u32(&b[seg::OFF_CRC..seg::OFF_CRC + 4]);
    let computed = crc32fast::hash(&b[..seg::OFF_CRC]);
    if stored != computed {
        return Err(SegmentHeaderError::Damaged(format!(
            "segment header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        )));
    }
    let version = LE::read_u32(&b[seg::OFF_VERSION..seg::OFF_VERSION + 4]);
    if version != FORMAT_VERSION {
        return Err(SegmentHeaderError::Foreign(format!(
            "format version {version} at offset {}, this build reads version {FORMAT_VERSION}",
            seg::OFF_VERSION
        )));
    }
    Ok(SegmentHeader {
        seq: LE::read_u64(&b[seg::OFF_SEQ..seg::OFF_SEQ + 8]),
        first_index: LE::read_u64(&b[seg::OFF_FIRST_INDEX..seg::OFF_FIRST_INDEX + 8]),
        first_group: LE::read_u64(&b[seg::OFF_FIRST_GROUP..seg::OFF_FIRST_GROUP + 8]),
    })
}

/// File name of the segment whose first index is `first_index`.
pub(crate) fn segment_name(first_index: u64) -> String {
    format!("{first_index:020}.wal")
}

/// File name of the snapshot whose last included index is `index`.
pub(crate) fn snapshot_name(index: u64) -> String {
    format!("{index:020}.snap")
}

/// Parses `<20 digits><suffix>`.
pub(crate) fn parse_numbered(name: &str, suffix: &str) -> Option<u64> {
    let stem = name.strip_suffix(suffix)?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Suffix of files being written before their atomic rename.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_roundtrip_and_identity_binding() {
        let id = segment_identity(7, 100);
        let payload = b"hello";
        let mut buf = vec![0u8; record_len(payload.len())];
        let mut h = RecordHeader {
            crc: 0,
            len: payload.len() as u32,
            index: 100,
            term: 3,
            group: 9,
            batch_end: true,
            group_start: false,
        };
        h.encode(&mut buf);
        buf[rec::HEADER_LEN..rec::HEADER_LEN + payload.len()].copy_from_slice(payload);
        h.crc = record_crc(&id, &buf[4..rec::HEADER_LEN + payload.len()]);
        h.encode(&mut buf);
        match decode_frame(&buf, 0, &id) {
            Frame::Record { header, end } => {
                assert_eq!(header, h);
                assert_eq!(end, 40);
            }
            other => panic!("{other:?}"),
        }
        // The same bytes in another segment do not verify.
        assert!(matches!(
            decode_frame(&buf, 0, &segment_identity(8, 100)),
            Frame::Bad(_)
        ));
        assert!(matches!(
            decode_frame(&buf, 0, &segment_identity(7, 101)),
            Frame::Bad(_)
        ));
    }

    #[test]
    fn zero_and_short_frames() {
        let id = segment_identity(1, 1);
        assert_eq!(decode_frame(&[0u8; 64], 0, &id), Frame::Zero);
        assert_eq!(decode_frame(&[0u8; 5], 0, &id), Frame::Zero);
        assert!(matches!(decode_frame(&[1u8; 5], 0, &id), Frame::Bad(_)));
        let mut b = [0u8; 64];
        b[4] = 0xff; // huge length
        b[5] = 0xff;
        assert!(matches!(decode_frame(&b, 0, &id), Frame::Bad(_)));
    }

    #[test]
    fn segment_header_roundtrip_and_damage() {
        let b = encode_segment_header(3, 42, 5);
        let h = decode_segment_header(&b).unwrap();
        assert_eq!((h.seq, h.first_index, h.first_group), (3, 42, 5));
        let mut bad = b;
        bad[20] ^= 1;
        assert!(matches!(
            decode_segment_header(&bad),
            Err(SegmentHeaderError::Damaged(_))
        ));
        let mut foreign = b;
        foreign[0] = b'X';
        assert!(matches!(
            decode_segment_header(&foreign),
            Err(SegmentHeaderError::Foreign(_))
        ));
        assert!(decode_segment_header(&b[..10]).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(segment_name(5), "00000000000000000005.wal");
        assert_eq!(parse_numbered("00000000000000000005.wal", ".wal"), Some(5));
        assert_eq!(parse_numbered("0005.wal", ".wal"), None);
        assert_eq!(parse_numbered("0000000000000000000x.wal", ".wal"), None);
        assert!(all_zero(&[0; 17]));
        assert!(!all_zero(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
    }
}
