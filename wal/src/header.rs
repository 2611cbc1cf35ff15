//! The header file: term, vote, the log base and the truncation fence, in two checksummed
//! slots.
//!
//! Layout of `HEADER` (format 3, 8192 bytes): slot 0 at offset 0, slot 1 at offset 4096 —
//! each slot in a 4 KiB page of its own, so the writeback of one slot's page never carries
//! the other slot (a device that tears a page write can damage any sector of that page).
//!
//! ```text
//! off  size  field (within a slot; bytes 512..4096 of each page are zero)
//!   0     8  magic "RWALHDR1"
//!   8     4  format version (u32): 3 (2 in a format-2 slot)
//!  12     4  flags (u32): bit 0 vote present, bit 1 snapshot data stored
//!  16     8  sequence (u64): the slot with the higher valid sequence is current
//!  24     8  term (u64)
//!  32     8  vote (u64, meaningful when bit 0 is set)
//!  40     8  base index (u64): last index covered by the snapshot
//!  48     8  base term (u64)
//!  56     8  fence index (u64): entries up to it are durable; see fence group
//!  64     8  fence group (u64): a record past the fence index whose sync group is below
//!            this was removed (by a truncation, or cut by recovery) and is void
//!  72     8  segment sequence high-water mark (u64): no segment sequence above it was ever
//!            used, so none is reused after the segments holding it are removed
//!  80     2  application metadata length n (u16, at most 256)
//!  82     2  reserved, zero
//!  84   256  application metadata: n opaque bytes, then zeros
//! 340   168  reserved, zero
//! 508     4  crc32 over (slot number as u32 ‖ bytes [0, 508))
//! ```
//!
//! Format 2 kept both slots in one 1024-byte file (slots at 0 and 512) without the fence
//! group and high-water fields (zero there); such a file is read, and open rewrites it in
//! the current layout.
//!
//! An update writes the slot that is *not* current with the next sequence number and
//! `fdatasync`s the file: one sync per term/vote change; a crash mid-write leaves the
//! current slot valid. An update that reshapes the log (truncation, compaction, snapshot,
//! open) then writes the same state into the other slot under the same sequence, a second
//! sync, so that neither slot is the only record of it. The file is created whole under a
//! temporary name, synced, and renamed into place, so a `HEADER` that exists always had
//! both slots' pages durable.

use std::path::Path;

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::error::{Error, Result};
use crate::file::WalFile;
use crate::format::{FORMAT_VERSION, PREVIOUS_VERSION};
use crate::io::{OpenMode, Vfs, VfsFile};
use crate::types::{HardState, SnapshotMeta};

/// Name of the header file inside a WAL directory.
pub const HEADER_FILE: &str = "HEADER";
const MAGIC: [u8; 8] = *b"RWALHDR1";
/// Bytes per slot.
pub(crate) const SLOT_LEN: usize = 512;
/// Distance between the slots of the current layout: a page each.
pub(crate) const SLOT_STRIDE: usize = 4096;
/// Size of the whole header file.
pub(crate) const FILE_LEN: usize = 2 * SLOT_STRIDE;
/// Size of a format-2 header file (slots at 0 and 512).
pub(crate) const V2_FILE_LEN: usize = 2 * SLOT_LEN;
const OFF_VERSION: usize = 8;
const OFF_FLAGS: usize = 12;
const OFF_SEQ: usize = 16;
const OFF_TERM: usize = 24;
const OFF_VOTE: usize = 32;
const OFF_BASE_INDEX: usize = 40;
const OFF_BASE_TERM: usize = 48;
const OFF_FENCE_INDEX: usize = 56;
const OFF_FENCE_GROUP: usize = 64;
const OFF_SEQ_HWM: usize = 72;
const OFF_APP_LEN: usize = 80;
const OFF_APP: usize = 84;
const OFF_CRC: usize = 508;
/// Largest application metadata blob a slot holds.
pub const APP_META_MAX: usize = 256;
const FLAG_VOTE: u32 = 1;
const FLAG_SNAPSHOT: u32 = 2;

/// Records past `index` whose sync group is below `group` are void: a truncation (or a
/// recovery cut) removed them, and every record written since carries a group at or above
/// `group`. Entries up to `index` were durable when the fence was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Fence {
    pub index: u64,
    pub group: u64,
}

impl Fence {
    /// Whether a record at `index` of sync group `group` was removed by the fence.
    pub(crate) fn voids(&self, index: u64, group: u64) -> bool {
        index > self.index && group < self.group
    }
}

/// What the header records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct HeaderState {
    pub hard: HardState,
    pub base: SnapshotMeta,
    /// A snapshot file for `base.index` holds the state machine's data.
    pub has_snapshot: bool,
    /// The latest truncation point (a suffix truncation's kept end, or the end open kept):
    /// the record at `fence.index` ends a batch even if it was written in the middle of one.
    pub fence: Fence,
    /// The highest segment sequence number ever used in the directory.
    pub seq_hwm: u64,
    /// The application's metadata (`Wal::set_app_meta`).
    pub app: AppMeta,
}

/// An opaque application blob of at most [`APP_META_MAX`] bytes, kept in the header slots.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct AppMeta {
    len: u16,
    bytes: [u8; APP_META_MAX],
}

impl Default for AppMeta {
    fn default() -> Self {
        AppMeta {
            len: 0,
            bytes: [0; APP_META_MAX],
        }
    }
}

impl std::fmt::Debug for AppMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppMeta({:02x?})", self.as_bytes())
    }
}

impl AppMeta {
    /// `bytes` as metadata, if it fits.
    pub(crate) fn new(bytes: &[u8]) -> Option<Self> {
        let mut m = AppMeta::default();
        m.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        m.len = bytes.len() as u16;
        Some(m)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// One decoded slot, or why it is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
// A valid slot carries its 256-byte application blob inline; there are two slots, decoded
// once per open: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Slot {
    /// A valid slot.
    Valid { seq: u64, state: HeaderState },
    /// Never written (all zero).
    Empty,
    /// Not a raftwal header slot (wrong magic or version).
    Foreign(String),
    /// Checksum mismatch or impossible contents: torn or corrupted.
    Damaged(String),
    /// Reading it failed (a media error).
    Unreadable(String),
}

impl Slot {
    pub(crate) fn describe(&self, slot_no: u32, layout: Layout) -> String {
        match self {
            Slot::Valid { seq, .. } => format!("valid, sequence {seq}"),
            Slot::Empty => format!(
                "slot {slot_no} at offset {}: never written",
                layout.offset(slot_no)
            ),
            Slot::Foreign(r) | Slot::Damaged(r) | Slot::Unreadable(r) => r.clone(),
        }
    }
}

/// Where the slots are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Format 2: both slots in the first kilobyte.
    V2,
    /// Format 3: a page per slot.
    V3,
}

impl Layout {
    /// File offset of slot `slot_no`.
    pub(crate) fn offset(self, slot_no: u32) -> u64 {
        let stride = match self {
            Layout::V2 => SLOT_LEN,
            Layout::V3 => SLOT_STRIDE,
        };
        u64::from(slot_no) * stride as u64
    }

    /// The layout of a header file of `len` bytes.
    fn of_len(path: &Path, len: u64) -> Result<Layout> {
        match len {
            l if l == V2_FILE_LEN as u64 => Ok(Layout::V2),
            l if l >= FILE_LEN as u64 => Ok(Layout::V3),
            _ => Err(Error::NotAWalFile {
                path: path.to_owned(),
                reason: format!(
                    "header file ends at offset {len}, expected {FILE_LEN} bytes (or \
                     {V2_FILE_LEN} in format {PREVIOUS_VERSION})"
                ),
            }),
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
    LE::write_u64(&mut b[OFF_FENCE_INDEX..], st.fence.index);
    LE::write_u64(&mut b[OFF_FENCE_GROUP..], st.fence.group);
    LE::write_u64(&mut b[OFF_SEQ_HWM..], st.seq_hwm);
    LE::write_u16(&mut b[OFF_APP_LEN..], st.app.len);
    b[OFF_APP..OFF_APP + APP_META_MAX].copy_from_slice(&st.app.bytes);
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

pub(crate) fn decode_slot(slot_no: u32, layout: Layout, b: &[u8]) -> Slot {
    let at = layout.offset(slot_no);
    if b.len() < SLOT_LEN {
        return Slot::Damaged(format!("slot {slot_no} at offset {at}: short"));
    }
    let b = &b[..SLOT_LEN];
    if b.iter().all(|&x| x == 0) {
        return Slot::Empty;
    }
    if b[0..8] != MAGIC {
        return Slot::Foreign(format!(
            "slot {slot_no} at offset {at}: wrong magic {:02x?}",
            &b[0..8]
        ));
    }
    let stored = LE::read_u32(&b[OFF_CRC..]);
    let computed = slot_crc(slot_no, b);
    if stored != computed {
        return Slot::Damaged(format!(
            "slot {slot_no} at offset {at}: checksum mismatch (stored {stored:#010x}, computed \
             {computed:#010x})"
        ));
    }
    let version = LE::read_u32(&b[OFF_VERSION..]);
    if version != FORMAT_VERSION && version != PREVIOUS_VERSION {
        return Slot::Foreign(format!(
            "slot {slot_no} at offset {}: format version {version}, this build reads \
             {PREVIOUS_VERSION} and {FORMAT_VERSION}",
            at + OFF_VERSION as u64
        ));
    }
    let u64_at = |off: usize| LE::read_u64(&b[off..off + 8]);
    let flags = LE::read_u32(&b[OFF_FLAGS..]);
    let state = HeaderState {
        hard: HardState {
            term: u64_at(OFF_TERM),
            vote: (flags & FLAG_VOTE != 0).then(|| u64_at(OFF_VOTE)),
        },
        base: SnapshotMeta {
            index: u64_at(OFF_BASE_INDEX),
            term: u64_at(OFF_BASE_TERM),
        },
        has_snapshot: flags & FLAG_SNAPSHOT != 0,
        fence: Fence {
            index: u64_at(OFF_FENCE_INDEX),
            group: u64_at(OFF_FENCE_GROUP),
        },
        seq_hwm: u64_at(OFF_SEQ_HWM),
        app: AppMeta::default(),
    };
    let app_len = usize::from(LE::read_u16(&b[OFF_APP_LEN..]));
    let state = match AppMeta::new(&b[OFF_APP..OFF_APP + app_len.min(APP_META_MAX)]) {
        Some(app) if app_len <= APP_META_MAX => HeaderState { app, ..state },
        _ => {
            return Slot::Damaged(format!(
                "slot {slot_no} at offset {}: application metadata length {app_len} is above                  {APP_META_MAX}",
                at + OFF_APP_LEN as u64
            ))
        }
    };
    let seq = u64_at(OFF_SEQ);
    // Checksummed but never written by the WAL: values whose successor does not exist.
    let absurd = [
        (seq == u64::MAX, OFF_SEQ, "sequence"),
        (state.base.index == u64::MAX, OFF_BASE_INDEX, "base index"),
        (
            state.seq_hwm == u64::MAX,
            OFF_SEQ_HWM,
            "segment sequence mark",
        ),
        (
            state.fence.group > crate::format::rec::GROUP_MASK,
            OFF_FENCE_GROUP,
            "fence group",
        ),
    ];
    if let Some((_, off, what)) = absurd.iter().find(|(bad, _, _)| *bad) {
        return Slot::Damaged(format!(
            "slot {slot_no} at offset {}: {what} out of range",
            at + *off as u64
        ));
    }
    Slot::Valid { seq, state }
}

/// The two slots as read from a header file, and the current one.
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    pub slots: [Slot; 2],
    pub layout: Layout,
}

impl Slots {
    /// The current slot: the valid one with the higher sequence.
    pub(crate) fn current(&self) -> Option<(u32, u64, HeaderState)> {
        let mut best: Option<(u32, u64, HeaderState)> = None;
        for (i, s) in self.slots.iter().enumerate() {
            if let Slot::Valid { seq, state } = s {
                if best.is_none_or(|(_, b, _)| *seq > b) {
                    best = Some((i as u32, *seq, *state));
                }
            }
        }
        best
    }

    /// Why there is no current slot.
    fn lost(&self, path: &Path) -> Error {
        let describe = |i: u32| self.slots[i as usize].describe(i, self.layout);
        if self.slots.iter().all(|s| matches!(s, Slot::Foreign(_))) {
            Error::NotAWalFile {
                path: path.to_owned(),
                reason: format!("{}; {}", describe(0), describe(1)),
            }
        } else {
            Error::HeaderLost {
                path: path.to_owned(),
                slot_a: describe(0),
                slot_b: describe(1),
            }
        }
    }
}

/// Decodes the slots of a whole header file's bytes.
#[cfg(test)]
pub(crate) fn decode_file(path: &Path, bytes: &[u8]) -> Result<(u64, HeaderState, Slots)> {
    let layout = Layout::of_len(path, bytes.len() as u64)?;
    let slot = |i: u32| {
        let at = layout.offset(i) as usize;
        decode_slot(i, layout, &bytes[at..at + SLOT_LEN])
    };
    let slots = Slots {
        slots: [slot(0), slot(1)],
        layout,
    };
    match slots.current() {
        Some((_, seq, state)) => Ok((seq, state, slots)),
        None => Err(slots.lost(path)),
    }
}

/// Reads the slots of the header file `file` one at a time: a slot that cannot be read is an
/// unreadable (damaged) slot, not a failed open.
fn read_slots<F: VfsFile>(file: &WalFile<F>) -> Result<Slots> {
    let path = file.path();
    let len = file.len()?;
    let layout = Layout::of_len(path, len)?;
    let mut slots = [Slot::Empty, Slot::Empty];
    let mut errors = Vec::new();
    for (i, slot) in slots.iter_mut().enumerate() {
        let i = i as u32;
        let mut b = [0u8; SLOT_LEN];
        *slot = match file.raw().read_exact_at(&mut b, layout.offset(i)) {
            Ok(()) => decode_slot(i, layout, &b),
            Err(e) => {
                let reason = format!("slot {i} at offset {}: {e}", layout.offset(i));
                errors.push(e);
                Slot::Unreadable(reason)
            }
        };
    }
    if errors.len() == 2 {
        let e = errors.remove(0);
        return Err(Error::io("read", path, e));
    }
    Ok(Slots { slots, layout })
}

/// The slots of `dir`'s header file, read one at a time and read-only (for inspection);
/// `None` if there is no header file.
pub(crate) fn read_slots_at<V: Vfs>(vfs: &V, dir: &Path) -> Result<Option<Slots>> {
    let path = dir.join(HEADER_FILE);
    match vfs.open(&path, OpenMode::Read) {
        Ok(f) => read_slots(&WalFile::new(f, path)).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("open", &path, e)),
    }
}

/// The open header file.
pub(crate) struct HeaderFile<F: VfsFile> {
    file: WalFile<F>,
    seq: u64,
    state: HeaderState,
    /// The slot holding `seq`.
    current: u32,
    /// The slots as open found them (for the rollback check and `inspect`).
    found: Slots,
}

impl<F: VfsFile> HeaderFile<F> {
    /// Creates the header file of a new WAL directory durably: written whole under a
    /// temporary name, synced, renamed into place, the directory synced.
    pub(crate) fn create<V: Vfs<File = F>>(vfs: &V, dir: &Path) -> Result<Self> {
        // Sequence 1 lives in slot 1; slot 0 stays empty until the first update.
        Self::write_new(vfs, dir, [None, Some((1, HeaderState::default()))])
    }

    /// Writes a complete header file durably (`io::create_durably`), replacing `HEADER`.
    /// `slots` gives each slot's sequence and state.
    fn write_new<V: Vfs<File = F>>(
        vfs: &V,
        dir: &Path,
        slots: [Option<(u64, HeaderState)>; 2],
    ) -> Result<Self> {
        let path = dir.join(HEADER_FILE);
        let mut bytes = vec![0u8; FILE_LEN];
        let mut found = [Slot::Empty, Slot::Empty];
        for (i, s) in slots.iter().enumerate() {
            if let Some((seq, st)) = s {
                let at = Layout::V3.offset(i as u32) as usize;
                bytes[at..at + SLOT_LEN].copy_from_slice(&encode_slot(i as u32, *seq, st));
                found[i] = Slot::Valid {
                    seq: *seq,
                    state: *st,
                };
            }
        }
        let file = crate::io::create_durably(vfs, dir, &path, |file| file.write_all_at(&bytes, 0))?;
        let found = Slots {
            slots: found,
            layout: Layout::V3,
        };
        let (current, seq, state) = found.current().ok_or_else(|| Error::Internal {
            reason: "a new header file without a valid slot".into(),
        })?;
        Ok(HeaderFile {
            file,
            seq,
            state,
            current,
            found,
        })
    }

    /// Opens and validates an existing header file.
    pub(crate) fn open<V: Vfs<File = F>>(vfs: &V, dir: &Path, mode: OpenMode) -> Result<Self> {
        let path = dir.join(HEADER_FILE);
        let file = WalFile::open(vfs, &path, mode)?;
        let found = read_slots(&file)?;
        let Some((current, seq, state)) = found.current() else {
            return Err(found.lost(&path));
        };
        Ok(HeaderFile {
            file,
            seq,
            state,
            current,
            found,
        })
    }

    pub(crate) fn state(&self) -> HeaderState {
        self.state
    }

    /// The application metadata of the current state.
    pub(crate) fn app_meta(&self) -> &[u8] {
        self.state.app.as_bytes()
    }

    /// The current sequence number (records carry its low 32 bits).
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }

    /// The slot that is not current, if open found it damaged or unreadable (not merely
    /// never written): it may have held a newer state than the current one.
    pub(crate) fn damaged_other_slot(&self) -> Option<(u32, String)> {
        let other = 1 - self.current;
        match &self.found.slots[other as usize] {
            Slot::Valid { .. } | Slot::Empty => None,
            s => Some((other, s.describe(other, self.found.layout))),
        }
    }

    /// Whether open must rewrite the file rather than update a slot in place: it is in the
    /// format-2 layout (both slots in one page), or a slot could not be read (its sectors
    /// may keep failing; a new file gets new blocks).
    pub(crate) fn needs_rewrite(&self) -> bool {
        self.found.layout == Layout::V2
            || self
                .found
                .slots
                .iter()
                .any(|s| matches!(s, Slot::Unreadable(_)))
    }

    /// Durably replaces the state: writes the slot that is not current, one fdatasync.
    pub(crate) fn update(&mut self, state: HeaderState) -> Result<()> {
        let seq = self.next_seq()?;
        self.write_slot(1 - self.current, seq, &state)?;
        self.seq = seq;
        self.state = state;
        self.current = 1 - self.current;
        Ok(())
    }

    /// Durably replaces the state in both slots, under one new sequence number: the slot
    /// that is not current first, then the other, each followed by an fdatasync. For states
    /// that reshape the log (a truncation's fence, a new base, what open kept): with the
    /// newest slot the only record of them, bit rot there would make open fall back to a
    /// state that no longer fits the segments. A crash between the two writes leaves the
    /// new state in the first slot and a torn or old second one, as `update` would.
    /// Records appended afterwards carry the sequence both slots hold, so neither slot's
    /// loss looks like a rollback.
    pub(crate) fn update_both(&mut self, state: HeaderState) -> Result<()> {
        let seq = self.next_seq()?;
        let first = 1 - self.current;
        self.write_slot(first, seq, &state)?;
        self.seq = seq;
        self.state = state;
        self.current = first;
        self.write_slot(1 - first, seq, &state)
    }

    fn write_slot(&mut self, slot_no: u32, seq: u64, state: &HeaderState) -> Result<()> {
        if self.found.layout != Layout::V3 {
            return Err(Error::Internal {
                reason: "a format-2 header updated in place".into(),
            });
        }
        let bytes = encode_slot(slot_no, seq, state);
        self.file.write_all_at(&bytes, Layout::V3.offset(slot_no))?;
        self.file.sync_data()
    }

    /// Durably replaces the whole file with one in the current layout holding `state` in
    /// both slots under one new sequence number, renamed over the old one, the directory synced.
    pub(crate) fn rewrite<V: Vfs<File = F>>(
        &mut self,
        vfs: &V,
        dir: &Path,
        state: HeaderState,
    ) -> Result<()> {
        // One sequence in both slots, as `update_both` writes: records appended afterwards
        // carry it, so rot in either slot leaves the other's identical state and no
        // evidence of a rollback.
        let seq = self.next_seq()?;
        *self = Self::write_new(vfs, dir, [Some((seq, state)), Some((seq, state))])?;
        Ok(())
    }

    fn next_seq(&self) -> Result<u64> {
        self.seq.checked_add(1).ok_or_else(|| self.exhausted())
    }

    fn exhausted(&self) -> Error {
        Error::corrupt(self.path(), 0, None, "header sequence numbers exhausted")
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
            fence: Fence {
                index: 9,
                group: 12,
            },
            seq_hwm: 33,
            app: AppMeta::new(b"adapter state").unwrap(),
        }
    }

    #[test]
    fn application_metadata_round_trips_and_an_absurd_length_is_damage() {
        let state = st(3, Some(1));
        let b = encode_slot(0, 7, &state);
        assert_eq!(
            decode_slot(0, Layout::V3, &b),
            Slot::Valid { seq: 7, state }
        );
        assert!(AppMeta::new(&[1; APP_META_MAX + 1]).is_none());
        let mut bad = b;
        LE::write_u16(&mut bad[OFF_APP_LEN..], (APP_META_MAX + 1) as u16);
        let crc = slot_crc(0, &bad);
        LE::write_u32(&mut bad[OFF_CRC..], crc);
        assert!(
            matches!(decode_slot(0, Layout::V3, &bad), Slot::Damaged(r) if r.contains("metadata"))
        );
    }

    fn file_with(slots: [Option<(u64, HeaderState)>; 2]) -> Vec<u8> {
        let mut file = vec![0u8; FILE_LEN];
        for (i, s) in slots.iter().enumerate() {
            if let Some((seq, state)) = s {
                let at = i * SLOT_STRIDE;
                file[at..at + SLOT_LEN].copy_from_slice(&encode_slot(i as u32, *seq, state));
            }
        }
        file
    }

    #[test]
    fn slot_roundtrip() {
        let s = st(7, Some(3));
        let b = encode_slot(1, 9, &s);
        assert_eq!(
            decode_slot(1, Layout::V3, &b),
            Slot::Valid { seq: 9, state: s }
        );
        // A slot copied to the other position does not verify.
        assert!(matches!(decode_slot(0, Layout::V3, &b), Slot::Damaged(_)));
        assert_eq!(decode_slot(0, Layout::V3, &[0u8; SLOT_LEN]), Slot::Empty);
    }

    #[test]
    fn highest_valid_sequence_wins_and_torn_slot_falls_back() {
        let p = Path::new("HEADER");
        let mut file = file_with([Some((4, st(5, None))), Some((5, st(6, Some(1))))]);
        let (seq, state, _) = decode_file(p, &file).unwrap();
        assert_eq!((seq, state), (5, st(6, Some(1))));
        file[SLOT_STRIDE + 100] ^= 0x40; // torn newer slot
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
    fn the_slots_live_in_different_pages() {
        assert_eq!(Layout::V3.offset(1), 4096);
        const { assert!(SLOT_LEN <= SLOT_STRIDE && FILE_LEN == 2 * 4096) };
    }

    #[test]
    fn absurd_checksummed_fields_make_a_damaged_slot() {
        for (field, off) in [
            ("sequence", OFF_SEQ),
            ("base index", OFF_BASE_INDEX),
            ("segment sequence mark", OFF_SEQ_HWM),
        ] {
            let mut b = encode_slot(0, 3, &st(1, None));
            LE::write_u64(&mut b[off..], u64::MAX);
            let crc = slot_crc(0, &b);
            LE::write_u32(&mut b[OFF_CRC..], crc);
            assert!(
                matches!(decode_slot(0, Layout::V3, &b), Slot::Damaged(r) if r.contains(field)),
                "{field}"
            );
        }
    }

    #[test]
    fn a_format_2_file_is_read_with_no_fence_group() {
        let p = Path::new("HEADER");
        let mut file = vec![0u8; V2_FILE_LEN];
        let mut s = st(5, Some(2));
        s.fence.group = 0;
        s.seq_hwm = 0;
        let mut b = encode_slot(1, 8, &s);
        LE::write_u32(&mut b[OFF_VERSION..], PREVIOUS_VERSION);
        let crc = slot_crc(1, &b);
        LE::write_u32(&mut b[OFF_CRC..], crc);
        file[SLOT_LEN..].copy_from_slice(&b);
        let (seq, state, slots) = decode_file(p, &file).unwrap();
        assert_eq!((seq, state, slots.layout), (8, s, Layout::V2));
    }

    #[test]
    fn errors_name_the_offset_of_the_bad_slot() {
        let p = Path::new("HEADER");
        let mut file = file_with([Some((2, st(1, None))), Some((3, st(1, Some(1))))]);
        file[3] ^= 0xff; // slot 0's magic
        file[SLOT_STRIDE + 30] ^= 1; // slot 1's checksum
        let msg = decode_file(p, &file).unwrap_err().to_string();
        assert!(msg.contains("slot 0 at offset 0"), "{msg}");
        assert!(msg.contains("slot 1 at offset 4096"), "{msg}");
        let msg = decode_file(p, &file[..700]).unwrap_err().to_string();
        assert!(msg.contains("offset 700"), "{msg}");
        let msg = decode_file(p, &[0u8; FILE_LEN]).unwrap_err().to_string();
        assert!(msg.contains("offset 4096"), "{msg}");
    }
}
