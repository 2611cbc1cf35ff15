//! Byte layouts shared by the segment, header and snapshot files: magics, versions, named
//! offsets and the checksum helpers. All integers are little-endian with explicit widths.
//! `docs/FORMAT.md` documents the same layouts with the fsync protocol.

use byteorder::{ByteOrder, LittleEndian as LE};

/// On-disk format version this build writes into every file.
pub(crate) const FORMAT_VERSION: u32 = 3;

/// The previous version, still read: its segments are read-only (appends go to a new
/// segment), its header is rewritten in the current layout at the first open.
pub(crate) const PREVIOUS_VERSION: u32 = 2;

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
///   8     4  format version (u32): 3, or 2 for a segment written by the previous version
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
    /// Flags (u32; format 3 wrote zeros here, read as "no flag").
    pub const OFF_FLAGS: usize = 12;
    /// Flag: the file was recycled (`crate::recycle`): bytes past the segment's records may
    /// be a previous segment's, never zeros only.
    pub const FLAG_RECYCLED: u32 = 1;
    /// Flag: the header was written ahead of its segment, into a pool file, before the
    /// first index was known (`crate::recycle`, "taken ahead"): the first-index field is 0
    /// and the first index is the file name's; the first group is a lower bound on the
    /// first record's.
    pub const FLAG_AHEAD: u32 = 2;
    pub const OFF_SEQ: usize = 16;
    pub const OFF_FIRST_INDEX: usize = 24;
    pub const OFF_FIRST_GROUP: usize = 32;
    pub const OFF_CRC: usize = 60;
}

/// Record frame, format 3 (a 40-byte header, then the payload, then zero padding to 8
/// bytes):
///
/// ```text
/// off  size  field
///   0     4  header crc32 over (segment seq u64 ‖ segment first index u64 ‖ bytes [4, 40))
///   4     4  payload length (u32, at most 1 GiB)
///   8     8  index (u64)
///  16     8  term (u64)
///  24     8  group word (u64): bits 0..62 sync group, bit 62 group start, bit 63 batch end
///  32     4  payload crc32 (over the payload bytes)
///  36     4  header sequence (u32): low 32 bits of the HEADER sequence when it was appended
///  40     n  payload
/// ```
///
/// The header has its own checksum, bound to the segment identity, so a position is
/// rejected after 36 bytes whatever length it claims: searching damaged bytes for a record
/// costs time linear in the bytes searched. The payload checksum is bound to its header
/// (the header checksum covers it).
///
/// The sync group numbers the `sync()` calls whose write carried this record; the *batch end*
/// bit marks the last record of one `append` call and the *group start* bit the first record
/// of a sync group. A group's records are written only after the previous group's fdatasync
/// returned, so a valid group-start header proves every byte before it was synced. Recovery
/// uses this to tell a torn tail from corruption. The header sequence proves which header
/// update had returned before the record was written (a newer record than the surviving
/// header slot shows that a lost slot had been acknowledged).
pub(crate) mod rec {
    pub const HEADER_LEN: usize = 40;
    pub const OFF_LEN: usize = 4;
    pub const OFF_INDEX: usize = 8;
    pub const OFF_TERM: usize = 16;
    pub const OFF_GROUP: usize = 24;
    pub const OFF_PAYLOAD_CRC: usize = 32;
    pub const OFF_HEADER_SEQ: usize = 36;
    pub const BATCH_END: u64 = 1 << 63;
    pub const GROUP_START: u64 = 1 << 62;
    pub const GROUP_MASK: u64 = GROUP_START - 1;
    /// Largest payload accepted (keeps every offset inside a segment within u32).
    pub const MAX_PAYLOAD: usize = 1 << 30;
}

/// Record frame, format 2 (read only): a 32-byte header — crc32 over (segment seq ‖ segment
/// first index ‖ bytes [4, 32) ‖ payload), length, index, term, group word at the offsets of
/// format 3 — then the payload, padded to 8 bytes. One checksum covers header and payload.
pub(crate) mod rec_v2 {
    pub const HEADER_LEN: usize = 32;
}

/// The record layout of a segment, from its header's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordFormat {
    /// Format 2: one checksum over header and payload (read only).
    V2,
    /// Format 3: header checksum, payload checksum, header sequence.
    V3,
}

impl RecordFormat {
    /// Bytes of a record header.
    pub(crate) const fn header_len(self) -> usize {
        match self {
            RecordFormat::V2 => rec_v2::HEADER_LEN,
            RecordFormat::V3 => rec::HEADER_LEN,
        }
    }

    /// Bytes a record with `payload_len` bytes of payload occupies.
    pub(crate) const fn record_len(self, payload_len: usize) -> usize {
        align_up(self.header_len() + payload_len)
    }
}

/// Bytes a format-3 record with `payload_len` bytes of payload occupies in a segment.
pub(crate) const fn record_len(payload_len: usize) -> usize {
    RecordFormat::V3.record_len(payload_len)
}

/// The checksum state every record of a segment starts from: it binds the segment identity
/// (sequence number and first index) into each record's header checksum.
pub(crate) fn segment_identity(seq: u64, first_index: u64) -> crc32fast::Hasher {
    let mut id = [0u8; 16];
    LE::write_u64(&mut id[0..8], seq);
    LE::write_u64(&mut id[8..16], first_index);
    let mut h = crc32fast::Hasher::new();
    h.update(&id);
    h
}

fn crc_with(identity: &crc32fast::Hasher, parts: &[&[u8]]) -> u32 {
    let mut h = identity.clone();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// A record header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RecordHeader {
    pub len: u32,
    pub index: u64,
    pub term: u64,
    pub group: u64,
    pub batch_end: bool,
    pub group_start: bool,
    /// Low 32 bits of the HEADER sequence current at append (0 in format 2).
    pub header_seq: u32,
}

impl RecordHeader {
    fn group_word(&self) -> u64 {
        let mut word = self.group & rec::GROUP_MASK;
        if self.batch_end {
            word |= rec::BATCH_END;
        }
        if self.group_start {
            word |= rec::GROUP_START;
        }
        word
    }

    fn decode_common(b: &[u8]) -> Self {
        let word = LE::read_u64(&b[rec::OFF_GROUP..rec::OFF_GROUP + 8]);
        RecordHeader {
            len: LE::read_u32(&b[rec::OFF_LEN..rec::OFF_LEN + 4]),
            index: LE::read_u64(&b[rec::OFF_INDEX..rec::OFF_INDEX + 8]),
            term: LE::read_u64(&b[rec::OFF_TERM..rec::OFF_TERM + 8]),
            group: word & rec::GROUP_MASK,
            batch_end: word & rec::BATCH_END != 0,
            group_start: word & rec::GROUP_START != 0,
            header_seq: 0,
        }
    }
}

/// A CRC state at zero, made once: `crc32fast::hash` detects the CPU's features on every
/// call, which showed in profiles of small records.
fn zero_crc() -> &'static crc32fast::Hasher {
    static ZERO: std::sync::OnceLock<crc32fast::Hasher> = std::sync::OnceLock::new();
    ZERO.get_or_init(crc32fast::Hasher::new)
}

/// Appends the format-3 frame of a record (header, payload, zero padding) to `out`.
pub(crate) fn encode_record(
    out: &mut Vec<u8>,
    identity: &crc32fast::Hasher,
    h: &RecordHeader,
    payload: &[u8],
) {
    let start = out.len();
    out.resize(start + rec::HEADER_LEN, 0);
    let b = &mut out[start..];
    LE::write_u32(&mut b[rec::OFF_LEN..], h.len);
    LE::write_u64(&mut b[rec::OFF_INDEX..], h.index);
    LE::write_u64(&mut b[rec::OFF_TERM..], h.term);
    LE::write_u64(&mut b[rec::OFF_GROUP..], h.group_word());
    LE::write_u32(
        &mut b[rec::OFF_PAYLOAD_CRC..],
        crc_with(zero_crc(), &[payload]),
    );
    LE::write_u32(&mut b[rec::OFF_HEADER_SEQ..], h.header_seq);
    let crc = crc_with(identity, &[&b[4..rec::HEADER_LEN]]);
    LE::write_u32(&mut b[0..4], crc);
    out.extend_from_slice(payload);
    out.resize(start + record_len(payload.len()), 0);
}

/// What a record header's bytes say, before the payload is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderCheck {
    /// Nothing was ever written here: the header bytes are zero.
    Zero,
    /// A header whose own checksum verifies (format 3): it was written by this WAL for this
    /// segment, whatever became of its payload.
    Verified(RecordHeader),
    /// A format-2 header: it carries no checksum of its own, so only the whole record can
    /// be verified.
    Unverified(RecordHeader),
    /// Bytes that are not a record header here.
    Bad(String),
}

/// Checks the record header in `b` (at least `format.header_len()` bytes, else the rest of
/// a file).
pub(crate) fn check_header(
    format: RecordFormat,
    b: &[u8],
    identity: &crc32fast::Hasher,
) -> HeaderCheck {
    let n = format.header_len();
    if b.len() < n {
        return if all_zero(b) {
            HeaderCheck::Zero
        } else {
            HeaderCheck::Bad(format!(
                "{} bytes of a record header before the end of the file",
                b.len()
            ))
        };
    }
    let b = &b[..n];
    if all_zero(b) {
        return HeaderCheck::Zero;
    }
    match format {
        RecordFormat::V2 => HeaderCheck::Unverified(RecordHeader::decode_common(b)),
        RecordFormat::V3 => match verified_header(b, identity) {
            Some(h) => HeaderCheck::Verified(h),
            None => {
                let stored = LE::read_u32(&b[0..4]);
                let computed = crc_with(identity, &[&b[4..n]]);
                HeaderCheck::Bad(format!(
                    "record header checksum mismatch (stored {stored:#010x}, computed \
                     {computed:#010x})"
                ))
            }
        },
    }
}

/// The format-3 record header in `b` (at least 40 bytes) if its checksum verifies: the
/// search's test at every candidate position, so it formats nothing.
pub(crate) fn verified_header(b: &[u8], identity: &crc32fast::Hasher) -> Option<RecordHeader> {
    let b = b.get(..rec::HEADER_LEN)?;
    if LE::read_u32(&b[0..4]) != crc_with(identity, &[&b[4..]]) {
        return None;
    }
    let mut h = RecordHeader::decode_common(b);
    h.header_seq = LE::read_u32(&b[rec::OFF_HEADER_SEQ..]);
    Some(h)
}

/// Verifies a record's payload against its header bytes `hb` (format 3: the payload
/// checksum the verified header holds; format 2: the one checksum over header and payload).
pub(crate) fn check_payload(
    format: RecordFormat,
    hb: &[u8],
    payload: &[u8],
    identity: &crc32fast::Hasher,
) -> Result<(), String> {
    let (stored, computed) = match format {
        RecordFormat::V3 => (
            LE::read_u32(&hb[rec::OFF_PAYLOAD_CRC..rec::OFF_PAYLOAD_CRC + 4]),
            crc32fast::hash(payload),
        ),
        RecordFormat::V2 => (
            LE::read_u32(&hb[0..4]),
            crc_with(identity, &[&hb[4..rec_v2::HEADER_LEN], payload]),
        ),
    };
    if stored == computed {
        Ok(())
    } else {
        Err(format!(
            "record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        ))
    }
}

/// What lies at an offset of a segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A record whose checksums verify; `end` is the offset just past its padding.
    Record { header: RecordHeader, end: usize },
    /// Nothing was ever written here: the header bytes (or what is left) are zero.
    Zero,
    /// Bytes that are not a valid record here.
    Bad(String),
}

/// Decodes the frame at `off` of `buf` (which must hold the whole record if there is one:
/// `buf` is a file's bytes, or a window of them that ends where the file does or past the
/// record), verifying its checksums.
pub(crate) fn decode_frame(
    format: RecordFormat,
    buf: &[u8],
    off: usize,
    identity: &crc32fast::Hasher,
) -> Frame {
    let rest = buf.get(off..).unwrap_or(&[]);
    let h = match check_header(format, rest, identity) {
        HeaderCheck::Zero => return Frame::Zero,
        HeaderCheck::Bad(reason) => return Frame::Bad(reason),
        HeaderCheck::Verified(h) | HeaderCheck::Unverified(h) => h,
    };
    let n = format.header_len();
    let len = h.len as usize;
    if len > rec::MAX_PAYLOAD || len > rest.len() - n {
        return Frame::Bad(format!(
            "record length {len} runs past the end of the file ({} bytes left)",
            rest.len()
        ));
    }
    if let Err(reason) = check_payload(format, &rest[..n], &rest[n..n + len], identity) {
        return Frame::Bad(reason);
    }
    let end = off.saturating_add(format.record_len(len)).min(buf.len());
    Frame::Record { header: h, end }
}

/// True if every byte of `buf` is zero. OR-reduces 4 KiB blocks (the loop vectorizes), so
/// the zeroed tail of a preallocated segment is checked at memory speed.
pub(crate) fn all_zero(buf: &[u8]) -> bool {
    buf.chunks(4096)
        .all(|block| block.iter().fold(0u8, |acc, &b| acc | b) == 0)
}

/// Encodes a segment header (current version).
pub(crate) fn encode_segment_header(
    seq: u64,
    first_index: u64,
    first_group: u64,
    recycled: bool,
) -> [u8; 64] {
    let flags = if recycled { seg::FLAG_RECYCLED } else { 0 };
    encode_header_fields(seq, first_index, first_group, flags)
}

/// Encodes the header of a segment taken ahead (`seg::FLAG_AHEAD`): written into a pool
/// file before its first index is known, `group_floor` at most its first record's group.
pub(crate) fn encode_ahead_header(seq: u64, group_floor: u64) -> [u8; 64] {
    encode_header_fields(seq, 0, group_floor, seg::FLAG_RECYCLED | seg::FLAG_AHEAD)
}

fn encode_header_fields(seq: u64, first_index: u64, first_group: u64, flags: u32) -> [u8; 64] {
    let mut b = [0u8; seg::HEADER_LEN];
    b[0..8].copy_from_slice(&seg::MAGIC);
    LE::write_u32(
        &mut b[seg::OFF_VERSION..seg::OFF_VERSION + 4],
        FORMAT_VERSION,
    );
    LE::write_u32(&mut b[seg::OFF_FLAGS..seg::OFF_FLAGS + 4], flags);
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
    pub format: RecordFormat,
    /// Made from a recycled file: stale bytes may follow its records.
    pub recycled: bool,
    /// Written ahead (`seg::FLAG_AHEAD`): `first_index` is 0 on disk and is the file
    /// name's, `first_group` a lower bound.
    pub ahead: bool,
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
    let format = match version {
        FORMAT_VERSION => RecordFormat::V3,
        PREVIOUS_VERSION => RecordFormat::V2,
        _ => {
            return Err(SegmentHeaderError::Foreign(format!(
                "format version {version} at offset {}, this build reads versions \
                 {PREVIOUS_VERSION} and {FORMAT_VERSION}",
                seg::OFF_VERSION
            )))
        }
    };
    let flags = LE::read_u32(&b[seg::OFF_FLAGS..seg::OFF_FLAGS + 4]);
    Ok(SegmentHeader {
        seq: LE::read_u64(&b[seg::OFF_SEQ..seg::OFF_SEQ + 8]),
        first_index: LE::read_u64(&b[seg::OFF_FIRST_INDEX..seg::OFF_FIRST_INDEX + 8]),
        first_group: LE::read_u64(&b[seg::OFF_FIRST_GROUP..seg::OFF_FIRST_GROUP + 8]),
        format,
        recycled: flags & seg::FLAG_RECYCLED != 0,
        ahead: flags & seg::FLAG_AHEAD != 0,
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

/// File name of a recycled file in the pool, by the sequence number of the segment it was
/// (unique: sequence numbers are never reused).
pub(crate) fn free_name(seq: u64) -> String {
    format!("{seq:020}{FREE_SUFFIX}")
}

/// Suffix of the recycle pool's files (see `crate::recycle`).
pub(crate) const FREE_SUFFIX: &str = ".free";

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

    fn header(index: u64) -> RecordHeader {
        RecordHeader {
            len: 5,
            index,
            term: 3,
            group: 9,
            batch_end: true,
            group_start: false,
            header_seq: 17,
        }
    }

    #[test]
    fn record_roundtrip_and_identity_binding() {
        let id = segment_identity(7, 100);
        let mut buf = Vec::new();
        encode_record(&mut buf, &id, &header(100), b"hello");
        assert_eq!(buf.len(), 48);
        match decode_frame(RecordFormat::V3, &buf, 0, &id) {
            Frame::Record { header: h, end } => {
                assert_eq!(h, header(100));
                assert_eq!(end, 48);
            }
            other => panic!("{other:?}"),
        }
        // The same bytes in another segment do not verify.
        for other in [segment_identity(8, 100), segment_identity(7, 101)] {
            assert!(matches!(
                decode_frame(RecordFormat::V3, &buf, 0, &other),
                Frame::Bad(_)
            ));
        }
    }

    #[test]
    fn a_damaged_payload_fails_its_own_checksum_under_a_verified_header() {
        let id = segment_identity(1, 1);
        let mut buf = Vec::new();
        encode_record(&mut buf, &id, &header(1), b"hello");
        buf[rec::HEADER_LEN + 1] ^= 1;
        assert!(matches!(
            check_header(RecordFormat::V3, &buf, &id),
            HeaderCheck::Verified(_)
        ));
        assert!(matches!(
            decode_frame(RecordFormat::V3, &buf, 0, &id),
            Frame::Bad(r) if r.contains("record checksum")
        ));
        buf[rec::OFF_TERM] ^= 1;
        assert!(matches!(
            check_header(RecordFormat::V3, &buf, &id),
            HeaderCheck::Bad(r) if r.contains("header checksum")
        ));
    }

    #[test]
    fn an_empty_payload_is_a_record() {
        let id = segment_identity(1, 1);
        let mut buf = Vec::new();
        let h = RecordHeader {
            len: 0,
            ..header(1)
        };
        encode_record(&mut buf, &id, &h, b"");
        assert_eq!(buf.len(), rec::HEADER_LEN);
        assert!(matches!(
            decode_frame(RecordFormat::V3, &buf, 0, &id),
            Frame::Record { end: 40, .. }
        ));
    }

    #[test]
    fn a_format_2_record_verifies_with_one_checksum() {
        let id = segment_identity(3, 10);
        let payload = b"abc";
        let mut buf = vec![0u8; RecordFormat::V2.record_len(payload.len())];
        LE::write_u32(&mut buf[rec::OFF_LEN..], 3);
        LE::write_u64(&mut buf[rec::OFF_INDEX..], 10);
        LE::write_u64(&mut buf[rec::OFF_TERM..], 2);
        LE::write_u64(&mut buf[rec::OFF_GROUP..], 5 | rec::BATCH_END);
        buf[32..35].copy_from_slice(payload);
        let crc = crc_with(&id, &[&buf[4..35]]);
        LE::write_u32(&mut buf[0..4], crc);
        match decode_frame(RecordFormat::V2, &buf, 0, &id) {
            Frame::Record { header: h, end } => {
                assert_eq!((h.index, h.term, h.group, h.batch_end), (10, 2, 5, true));
                assert_eq!(end, 40);
            }
            other => panic!("{other:?}"),
        }
        buf[33] ^= 1;
        assert!(matches!(
            decode_frame(RecordFormat::V2, &buf, 0, &id),
            Frame::Bad(_)
        ));
    }

    #[test]
    fn zero_and_short_frames() {
        let id = segment_identity(1, 1);
        let v3 = RecordFormat::V3;
        assert_eq!(decode_frame(v3, &[0u8; 64], 0, &id), Frame::Zero);
        assert_eq!(decode_frame(v3, &[0u8; 5], 0, &id), Frame::Zero);
        assert!(matches!(decode_frame(v3, &[1u8; 5], 0, &id), Frame::Bad(_)));
        assert!(matches!(
            decode_frame(v3, &[7u8; 64], 0, &id),
            Frame::Bad(_)
        ));
        // A verified header claiming more payload than the file holds.
        let mut buf = Vec::new();
        encode_record(&mut buf, &id, &header(1), b"hello");
        assert!(matches!(
            decode_frame(v3, &buf[..44], 0, &id),
            Frame::Bad(r) if r.contains("runs past the end")
        ));
    }

    #[test]
    fn segment_header_roundtrip_and_damage() {
        let b = encode_segment_header(3, 42, 5, false);
        let h = decode_segment_header(&b).unwrap();
        assert_eq!((h.seq, h.first_index, h.first_group), (3, 42, 5));
        assert_eq!(h.format, RecordFormat::V3);
        assert!(!h.recycled);
        let r = decode_segment_header(&encode_segment_header(3, 42, 5, true)).unwrap();
        assert!(r.recycled);
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
        let mut v2 = b;
        LE::write_u32(&mut v2[seg::OFF_VERSION..], PREVIOUS_VERSION);
        let crc = crc32fast::hash(&v2[..seg::OFF_CRC]);
        LE::write_u32(&mut v2[seg::OFF_CRC..], crc);
        assert_eq!(decode_segment_header(&v2).unwrap().format, RecordFormat::V2);
        let mut v9 = v2;
        LE::write_u32(&mut v9[seg::OFF_VERSION..], 9);
        let crc = crc32fast::hash(&v9[..seg::OFF_CRC]);
        LE::write_u32(&mut v9[seg::OFF_CRC..], crc);
        assert!(matches!(
            decode_segment_header(&v9),
            Err(SegmentHeaderError::Foreign(r)) if r.contains("version 9")
        ));
    }

    #[test]
    fn names() {
        assert_eq!(segment_name(5), "00000000000000000005.wal");
        assert_eq!(parse_numbered("00000000000000000005.wal", ".wal"), Some(5));
        assert_eq!(parse_numbered("0005.wal", ".wal"), None);
        assert_eq!(parse_numbered("0000000000000000000x.wal", ".wal"), None);
        assert_eq!(parse_numbered("99999999999999999999.wal", ".wal"), None);
        assert!(all_zero(&[0; 17]));
        assert!(!all_zero(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
    }
}
