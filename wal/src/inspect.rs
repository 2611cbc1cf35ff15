//! Read-only inspection and verification of a WAL directory (`raftwal inspect`/`verify`).
//!
//! Runs the same scan as recovery, opening every file read-only and repairing nothing: every
//! record checksum is verified, and what recovery *would* do (cut a torn tail, remove stale
//! files) is reported instead of done. No lock is taken, so a WAL being written may show a
//! torn tail that is only a write in flight.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::header::Slot;

/// The name of the header file every WAL directory holds.
pub use crate::header::HEADER_FILE;
use crate::io::{OpenMode, Vfs};
use crate::recovery::{self, Outcome};
use crate::types::{HardState, RecoveryMode, SnapshotMeta};

/// One header slot as found on disk.
#[derive(Debug, Clone)]
pub struct SlotReport {
    /// 0 or 1.
    pub slot: u32,
    /// `valid, sequence N`, `never written`, or why it is invalid.
    pub status: String,
    /// Decoded fields of a valid slot: sequence, hard state, base, snapshot flag.
    pub fields: Option<(u64, HardState, SnapshotMeta, bool)>,
}

/// One segment file.
#[derive(Debug, Clone)]
pub struct SegmentReport {
    /// The file.
    pub path: PathBuf,
    /// Segment sequence number (its identity in every record checksum).
    pub seq: u64,
    /// First index (the file name).
    pub first_index: u64,
    /// Last index held, if any entry.
    pub last_index: Option<u64>,
    /// Entries held (including any at or below the snapshot base).
    pub entries: u64,
    /// Bytes of verified records (header included).
    pub used_bytes: u64,
    /// File size (including preallocated space).
    pub file_bytes: u64,
}

/// What the scan concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Every checksum verifies and every file ends cleanly.
    Clean,
    /// An unsynced tail that open would cut: the file, offset, bytes that would be cut, why.
    TornTail {
        /// File holding the torn write.
        path: PathBuf,
        /// Offset of the first bad byte.
        offset: u64,
        /// Bytes open would cut.
        bytes: u64,
        /// What is wrong there.
        reason: String,
    },
    /// Corruption of synced data.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Offset of the bad record.
        offset: u64,
        /// Log index of the bad record, when known.
        index: Option<u64>,
        /// What is wrong.
        reason: String,
    },
}

/// Everything `inspect` reports about a directory.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The directory.
    pub dir: PathBuf,
    /// Both header slots.
    pub slots: Vec<SlotReport>,
    /// Current term and vote.
    pub hard_state: HardState,
    /// Log base.
    pub base: SnapshotMeta,
    /// The snapshot file the header points at, its data length, and whether its data
    /// checksum verified.
    pub snapshot: Option<(PathBuf, u64, bool)>,
    /// Segment files holding the log, in order.
    pub segments: Vec<SegmentReport>,
    /// Files open would remove (temporaries, stale segments and snapshots, segments after a
    /// torn tail).
    pub stale_files: Vec<PathBuf>,
    /// First and last index of the log recovery would produce.
    pub first_index: u64,
    /// Last index (the base index when empty).
    pub last_index: u64,
    /// The scan's conclusion.
    pub finding: Finding,
    /// Damaged records at or below the snapshot base (no longer needed), stepped over:
    /// (file, offset, reason).
    pub compacted_damage: Vec<crate::Damage>,
}

impl Inspection {
    /// True when the directory holds no corruption (a torn tail is not corruption).
    pub fn is_ok(&self) -> bool {
        !matches!(self.finding, Finding::Corrupt { .. })
            && self.snapshot.as_ref().is_none_or(|(_, _, ok)| *ok)
    }
}

/// The length of a segment header, at offset 0 of a segment file.
pub const SEGMENT_HEADER_LEN: usize = crate::format::seg::HEADER_LEN;

/// The offset of a segment's first record: the header page ends there.
pub const SEGMENT_DATA_START: u64 = crate::format::seg::DATA_START as u64;

/// The sequence number (the segment's identity) a segment header carries, if `bytes` start
/// with a valid one (docs/FORMAT.md, "Segment header"): for tools that watch identities as
/// they are written, such as the fault-inject oracle that no identity is ever reused.
pub fn segment_header_seq(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < SEGMENT_HEADER_LEN {
        return None;
    }
    crate::format::decode_segment_header(bytes)
        .ok()
        .map(|h| h.seq)
}

/// Inspects `dir` read-only: verifies every record, the header slots and the snapshot.
/// Errors that prevent any reading (no directory, a header both of whose slots are bad, a
/// foreign file) are returned as `Err`; corruption found in the log is a [`Finding`].
pub fn inspect<V: Vfs>(vfs: &V, dir: &Path) -> Result<Inspection> {
    let mut slots = Vec::new();
    if let Some(found) = crate::header::read_slots_at(vfs, dir)? {
        for (i, s) in found.slots.iter().enumerate() {
            let slot = i as u32;
            let (status, fields) = match s {
                Slot::Valid { seq, state } => (
                    format!("valid, sequence {seq}"),
                    Some((*seq, state.hard, state.base, state.has_snapshot)),
                ),
                Slot::Empty => ("never written".to_string(), None),
                other => (other.describe(slot, found.layout), None),
            };
            slots.push(SlotReport {
                slot,
                status,
                fields,
            });
        }
    }
    let scan = read_only_scan(vfs, dir)?;
    let hs = recovery::header_state(&scan);
    let snapshot = match &scan.snapshot {
        Some(p) => {
            let (_, len) = crate::snapshot::read_header(vfs, p)?;
            let ok = crate::snapshot::read(vfs, p).is_ok();
            Some((p.clone(), len, ok))
        }
        None => None,
    };
    let mut segments = Vec::new();
    for s in &scan.segments {
        let file_bytes = s.file().len()?;
        segments.push(SegmentReport {
            path: s.path().to_path_buf(),
            seq: s.seq(),
            first_index: s.first_index(),
            last_index: (s.len() > 0).then(|| s.last_index()),
            entries: s.len(),
            used_bytes: s.written(),
            file_bytes,
        });
    }
    let last_index = scan
        .segments
        .last()
        .filter(|s| s.len() > 0)
        .map_or(hs.base.index, |s| s.last_index())
        .max(hs.base.index);
    // The scan runs in TruncateCorrupt mode so it can report instead of failing: damage it
    // would cut (a damaged segment header, a bad record proven synced) is corruption.
    let cut_damage = scan
        .report
        .corruption_truncated
        .first()
        .map(|d| Finding::Corrupt {
            path: d.path.clone(),
            offset: d.offset,
            index: None,
            reason: d.reason.clone(),
        });
    let rollback = scan
        .rollback
        .as_ref()
        .map(|(slot, reason, evidence)| Finding::Corrupt {
            path: dir.join(HEADER_FILE),
            offset: u64::from(*slot) * crate::header::SLOT_STRIDE as u64,
            index: None,
            reason: format!("header slot {slot} is damaged ({reason}), but {evidence}"),
        });
    let finding = match &scan.outcome {
        _ if rollback.is_some() => rollback.unwrap_or(Finding::Clean),
        Outcome::Clean | Outcome::Torn { .. } if cut_damage.is_some() => {
            cut_damage.unwrap_or(Finding::Clean)
        }
        Outcome::Clean => Finding::Clean,
        Outcome::Torn {
            path,
            offset,
            reason,
        } => Finding::TornTail {
            path: path.clone(),
            offset: *offset,
            bytes: scan.report.torn_bytes_truncated,
            reason: reason.clone(),
        },
        Outcome::Corrupt {
            path,
            offset,
            index,
            reason,
        } => Finding::Corrupt {
            path: path.clone(),
            offset: *offset,
            index: *index,
            reason: reason.clone(),
        },
    };
    Ok(Inspection {
        dir: dir.to_owned(),
        slots,
        hard_state: hs.hard,
        base: hs.base,
        snapshot,
        segments,
        stale_files: scan.remove.clone(),
        first_index: hs.base.index + 1,
        last_index,
        finding,
        compacted_damage: scan.report.compacted_damage.clone(),
    })
}

/// Reads entries `[lo, hi)` read-only (no lock, no repair), each verified; entries outside
/// the recoverable log are skipped.
pub fn read_entries<V: Vfs>(vfs: &V, dir: &Path, lo: u64, hi: u64) -> Result<Vec<crate::Entry>> {
    let mut out = Vec::new();
    for_each_entry(vfs, dir, lo, hi, |e| {
        out.push(e);
        Ok(())
    })?;
    Ok(out)
}

/// Hands entries `[lo, hi)` to `f` one at a time, in index order, read-only (no lock, no
/// repair) and each verified, so a range of any size is read in the memory of one entry
/// (plus the index the scan builds: 4 bytes per entry). Entries outside the recoverable log
/// are skipped; `f`'s error stops the walk.
pub fn for_each_entry<V: Vfs>(
    vfs: &V,
    dir: &Path,
    lo: u64,
    hi: u64,
    mut f: impl FnMut(crate::Entry) -> Result<()>,
) -> Result<()> {
    let scan = read_only_scan(vfs, dir)?;
    let base = recovery::header_state(&scan).base;
    for s in &scan.segments {
        let from = lo.max(s.first_index()).max(base.index + 1);
        let to = hi.min(s.first_index() + s.len());
        for i in from..to {
            f(s.read_entry(i)?)?;
        }
    }
    Ok(())
}

/// The full, read-only scan behind `inspect`, `verify` and `read_entries`: every segment is
/// read (never the lazy shortcut), and damage is reported as found, not refused.
fn read_only_scan<V: Vfs>(vfs: &V, dir: &Path) -> Result<recovery::Scan<V::File>> {
    recovery::scan(
        vfs,
        dir,
        OpenMode::Read,
        RecoveryMode::TruncateCorrupt,
        false,
    )
}
