//! The header file: term, vote and the log base, in two checksummed slots.
//!
//! Layout of `HEADER` (1024 bytes: slot 0 at offset 0, slot 1 at offset 512, each slot in its
//! own 512-byte sector so a torn write of one never touches the other):
//!
//! ```text
//! off  size  field (within a slot)
//!   0     8  magic "RWALHDR1"
//!   8     4  format version (u32)
//!  12     4  flags (u32): bit 0 vote present, bit 1 snapshot data stored
//!  16     8  sequence (u64): the slot with the higher valid sequence is current
//!  24     8  term (u64)
//!  32     8  vote (u64, meaningful when bit 0 is set)
//!  40     8  base index (u64): last index covered by the snapshot
//!  48     8  base term (u64)
//!  56     8  truncation index (u64): the last index kept by the latest suffix truncation
//!  64   444  reserved, zero
//! 508     4  crc32 over (slot number as u32 ‖ bytes [0, 508))
//! ```
//!
//! An update writes the *older* slot with the next sequence number and `fdatasync`s the file:
//! one sync per update; a crash mid-write leaves the other slot valid. The file is created
//! whole under a temporary name, synced, and renamed into place, so a `HEADER` that exists
//! always had both sectors durable.

use std::path::{Path, PathBuf};

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::error::{Error, Result};
use crate::format::{FORMAT_VERSION, TMP_SUFFIX};
use crate::io::{OpenMode, Vfs, VfsFile};
use crate::types::{HardState, SnapshotMeta};

/// Name of the header file inside a WAL directory.
pub(crate) const HEADER_FILE: &str = "HEADER";
const MAGIC: [u8; 8] = *b"RWALHDR1";
/// Bytes per slot.
pub(crate) const SLOT_LEN: usize = 512;
/// Size of the whole header file.
pub(crate) const FILE_LEN: usize = 2 * SLOT_LEN;
const OFF_VERSION: usize = 8;
const OFF_FLAGS: usize = 12;
const OFF_SEQ: usize = 16;
const OFF_TERM: usize = 24;
const OFF_VOTE: usize = 32;
const OFF_BASE_INDEX: usize = 40;
const OFF_BASE_TERM: usize = 48;
const OFF_TRUNC_INDEX: usize = 56;
const OFF_CRC: usize = 508;
const FLAG_VOTE: u32 = 1;
const FLAG_SNAPSHOT: u32 = 2;

/// What the header records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct HeaderState {
    pub hard: HardState,
    pub base: SnapshotMeta,
    /// A snapshot file for `base.index` holds the state machine's data.
    pub has_snapshot: bool,
    /// The last index kept by the latest `truncate_suffix` (0 if none): the record at this
    /// index ends a batch even if it was written in the middle of one.
    pub trunc_index: u64,
}

/// One decoded slot, or why it is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A valid slot.
    Valid { seq: u64, state: HeaderState },
    /// Never written (all zero).
    Empty,
    /// Not a raftwal header slot (wrong magic or version).
    Foreign(String),
    /// Checksum mismatch: torn or corrupted.
    Damaged(String),
}

impl Slot {
    fn describe(&self, slot_no: u32) -> String {
        match self {
            Slot::Valid { seq, .. } => format!("valid, sequence {seq}"),
            Slot::Empty => format!(
                "slot {slot_no} at offset {}: never written",
                slot_no as usize * SLOT_LEN
            ),
            Slot::Foreign(r) | Slot::Damaged(r) => r.clone(),
        }
    }
}

pub(crate) fn encode_slot(slot_no: u32, seq: u64, st: &HeaderState) -> [u8; SLOT_LEN] {
    let mut b = [0u8; SLOT_LEN];
    b[0..8].copy_from_slice(&MAGIC);
    LE::write_u32(&mut b[OFF_VERSION..], FORMAT_VERSION);
    let mut flags = 0;
    if st.hard.vote.is_some() {
        flags |= FLAG_VOTE;
    }
    if st.has_snapshot {
        flags |= FLAG_SNAPSHOT;
    }
    LE::write_u32(&mut b[OFF_FLAGS..], flags);
    LE::write_u64(&mut b[OFF_SEQ..], seq);
    LE::write_u64(&mut b[OFF_TERM..], st.hard.term);
    LE::write_u64(&mut b[OFF_VOTE..], st.hard.vote.unwrap_or(0));
    LE::write_u64(&mut b[OFF_BASE_INDEX..], st.base.index);
    LE::write_u64(&mut b[OFF_BASE_TERM..], st.base.term);
    LE::write_u64(&mut b[OFF_TRUNC_INDEX..], st.trunc_index);
    let crc = slot_crc(slot_no, &b);
    LE::write_u32(&mut b[OFF_CRC..], crc);
    b
}

fn slot_crc(slot_no: u32, b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&slot_no.to_le_bytes());
    h.update(&b[..OFF_CRC]);
    h.finalize()
}

pub(crate) fn decode_slot(slot_no: u32, b: &[u8]) -> Slot {
    if b.iter().all(|&x| x == 0) {
        return Slot::Empty;
    }
    if b[0..8] != MAGIC {
        return Slot::Foreign(format!(
            "slot {slot_no} at offset {}: wrong magic {:02x?}",
            slot_no as usize * SLOT_LEN,
            &b[0..8]
        ));
    }
    let stored = LE::read_u32(&b[OFF_CRC..]);
    let computed = slot_crc(slot_no, b);
    if stored != computed {
        return Slot::Damaged(format!(
            "slot {slot_no} at offset {}: checksum mismatch (stored {stored:#010x}, computed \
             {computed:#010x})",
            slot_no as usize * SLOT_LEN
        ));
    }
    let version = LE::read_u32(&b[OFF_VERSION..]);
    if version != FORMAT_VERSION {
        return Slot::Foreign(format!(
            "slot {slot_no} at offset {}: format version {version}, this build reads \
             {FORMAT_VERSION}",
            slot_no as usize * SLOT_LEN + OFF_VERSION
        ));
    }
    let flags = LE::read_u32(&b[OFF_FLAGS..]);
    if LE::read_u64(&b[OFF_BASE_INDEX..]) == u64::MAX {
        // Never written by the WAL (a base must leave room for the next index).
        return Slot::Damaged(format!(
            "slot {slot_no} at offset {}: base index {} is out of range",
            slot_no as usize * SLOT_LEN + OFF_BASE_INDEX,
            u64::MAX
        ));
    }
    Slot::Valid {
        seq: LE::read_u64(&b[OFF_SEQ..]),
        state: HeaderState {
            hard: HardState {
                term: LE::read_u64(&b[OFF_TERM..]),
                vote: (flags & FLAG_VOTE != 0).then(|| LE::read_u64(&b[OFF_VOTE..])),
            },
            base: SnapshotMeta {
                index: LE::read_u64(&b[OFF_BASE_INDEX..]),
                term: LE::read_u64(&b[OFF_BASE_TERM..]),
            },
            has_snapshot: flags & FLAG_SNAPSHOT != 0,
            trunc_index: LE::read_u64(&b[OFF_TRUNC_INDEX..]),
        },
    }
}

/// Reads and validates the header file's bytes; returns the current sequence and state.
pub(crate) fn decode_file(path: &Path, bytes: &[u8]) -> Result<(u64, HeaderState, [Slot; 2])> {
    if bytes.len() < FILE_LEN {
        return Err(Error::NotAWalFile {
            path: path.to_owned(),
            reason: format!(
                "header file ends at offset {}, expected {FILE_LEN} bytes",
                bytes.len()
            ),
        });
    }
    let slots = [
        decode_slot(0, &bytes[..SLOT_LEN]),
        decode_slot(1, &bytes[SLOT_LEN..FILE_LEN]),
    ];
    let best = slots
        .iter()
        .filter_map(|s| match s {
            Slot::Valid { seq, state } => Some((*seq, *state)),
            _ => None,
        })
        .max_by_key(|(seq, _)| *seq);
    match best {
        Some((seq, state)) => Ok((seq, state, slots)),
        None => {
            if slots.iter().all(|s| matches!(s, Slot::Foreign(_))) {
                Err(Error::NotAWalFile {
                    path: path.to_owned(),
                    reason: format!("{}; {}", slots[0].describe(0), slots[1].describe(1)),
                })
            } else {
                Err(Error::HeaderLost {
                    path: path.to_owned(),
                    slot_a: slots[0].describe(0),
                    slot_b: slots[1].describe(1),
                })
            }
        }
    }
}

/// The open header file.
pub(crate) struct HeaderFile<F: VfsFile> {
    file: F,
    path: PathBuf,
    seq: u64,
    state: HeaderState,
}

impl<F: VfsFile> HeaderFile<F> {
    /// Creates the header file of a new WAL directory: written whole under a temporary name,
    /// synced, renamed into place; the caller syncs the directory.
    pub(crate) fn create<V: Vfs<File = F>>(vfs: &V, dir: &Path) -> Result<Self> {
        let path = dir.join(HEADER_FILE);
        let tmp = dir.join(format!("{HEADER_FILE}{TMP_SUFFIX}"));
        let state = HeaderState::default();
        let mut bytes = vec![0u8; FILE_LEN];
        // Sequence 1 lives in slot 1; slot 0 stays empty until the first update.
        bytes[SLOT_LEN..].copy_from_slice(&encode_slot(1, 1, &state));
        crate::io::remove_if_present(vfs, &tmp)?;
        let file = vfs
            .open(&tmp, OpenMode::CreateNew)
            .map_err(|e| Error::io("create", &tmp, e))?;
        file.write_all_at(&bytes, 0)
            .map_err(|e| Error::io("write", &tmp, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
        vfs.rename(&tmp, &path)
            .map_err(|e| Error::io("rename", &tmp, e))?;
        Ok(HeaderFile {
            file,
            path,
            seq: 1,
            state,
        })
    }

    /// Opens and validates an existing header file.
    pub(crate) fn open<V: Vfs<File = F>>(vfs: &V, dir: &Path, mode: OpenMode) -> Result<Self> {
        let path = dir.join(HEADER_FILE);
        let file = vfs
            .open(&path, mode)
            .map_err(|e| Error::io("open", &path, e))?;
        let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
        let mut bytes = vec![0u8; (len as usize).min(FILE_LEN)];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| Error::io("read", &path, e))?;
        let (seq, state, _) = decode_file(&path, &bytes)?;
        Ok(HeaderFile {
            file,
            path,
            seq,
            state,
        })
    }

    pub(crate) fn state(&self) -> HeaderState {
        self.state
    }

    /// Durably replaces the state: writes the older slot, one fdatasync.
    pub(crate) fn update(&mut self, state: HeaderState) -> Result<()> {
        let seq = self.seq + 1;
        let slot_no = (seq % 2) as u32;
        let bytes = encode_slot(slot_no, seq, &state);
        self.file
            .write_all_at(&bytes, u64::from(slot_no) * SLOT_LEN as u64)
            .map_err(|e| Error::io("write", &self.path, e))?;
        self.file
            .sync_data()
            .map_err(|e| Error::io("fdatasync", &self.path, e))?;
        self.seq = seq;
        self.state = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(term: u64, vote: Option<u64>) -> HeaderState {
        HeaderState {
            hard: HardState { term, vote },
            base: SnapshotMeta { index: 4, term: 2 },
            has_snapshot: true,
            trunc_index: 9,
        }
    }

    #[test]
    fn slot_roundtrip() {
        let s = st(7, Some(3));
        let b = encode_slot(1, 9, &s);
        assert_eq!(decode_slot(1, &b), Slot::Valid { seq: 9, state: s });
        // A slot copied to the other position does not verify.
        assert!(matches!(decode_slot(0, &b), Slot::Damaged(_)));
        assert_eq!(decode_slot(0, &[0u8; SLOT_LEN]), Slot::Empty);
    }

    #[test]
    fn highest_valid_sequence_wins_and_torn_slot_falls_back() {
        let p = Path::new("HEADER");
        let mut file = vec![0u8; FILE_LEN];
        file[..SLOT_LEN].copy_from_slice(&encode_slot(0, 4, &st(5, None)));
        file[SLOT_LEN..].copy_from_slice(&encode_slot(1, 5, &st(6, Some(1))));
        let (seq, state, _) = decode_file(p, &file).unwrap();
        assert_eq!((seq, state), (5, st(6, Some(1))));
        file[SLOT_LEN + 100] ^= 0x40; // torn newer slot
        let (seq, state, _) = decode_file(p, &file).unwrap();
        assert_eq!((seq, state), (4, st(5, None)));
        file[10] ^= 1; // both bad
        assert!(matches!(
            decode_file(p, &file),
            Err(Error::HeaderLost { .. })
        ));
        assert!(matches!(
            decode_file(p, &[b'x'; FILE_LEN]),
            Err(Error::NotAWalFile { .. })
        ));
        assert!(matches!(
            decode_file(p, &[]),
            Err(Error::NotAWalFile { .. })
        ));
    }

    #[test]
    fn errors_name_the_offset_of_the_bad_slot() {
        let p = Path::new("HEADER");
        let mut file = vec![0u8; FILE_LEN];
        file[..SLOT_LEN].copy_from_slice(&encode_slot(0, 2, &st(1, None)));
        file[SLOT_LEN..].copy_from_slice(&encode_slot(1, 3, &st(1, Some(1))));
        file[3] ^= 0xff; // slot 0's magic
        file[SLOT_LEN + 30] ^= 1; // slot 1's checksum
        let msg = decode_file(p, &file).unwrap_err().to_string();
        assert!(msg.contains("slot 0 at offset 0"), "{msg}");
        assert!(msg.contains("slot 1 at offset 512"), "{msg}");
        let msg = decode_file(p, &file[..700]).unwrap_err().to_string();
        assert!(msg.contains("offset 700"), "{msg}");
        let msg = decode_file(p, &[0u8; FILE_LEN]).unwrap_err().to_string();
        assert!(msg.contains("offset 512"), "{msg}");
    }
}
