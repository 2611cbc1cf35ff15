//! Recovery: rebuild exactly the durable state of a WAL directory.
//!
//! The scan is read-only ([`scan`]), in phases: list the directory ([`listing`]), read the
//! header and choose the snapshot, open the segments ([`segments`]), walk their records in
//! order ([`walk`]), decide what the first bad position is ([`decide`]), plan the cut. Open
//! then secures what it accepted ([`secure`]: the fsyncgate defence), records the new state
//! in the header, and applies the plan ([`repair`]). `inspect` and `verify` reuse the scan
//! without repairing.
//!
//! ## Torn tail or corruption?
//!
//! The segments form one stream of records. The scan accepts records while each verifies
//! (checksums bound to its segment's identity), holds the next index, neither its term nor its
//! sync group goes backwards, and the header's fence does not void it. At the first position
//! `P` where that fails, it decides:
//!
//! - The records of a sync group (everything one `sync()` wrote) are written only after the
//!   previous group's fdatasync returned, and the first record of each group carries the
//!   *group start* bit. So if a verified record header that starts a group lies anywhere
//!   after `P`, the group holding `P` was synced — possibly acknowledged — and the bad bytes
//!   at `P` are **corruption of synced data**: open fails naming file, offset and index
//!   (unless the operator chose [`RecoveryMode::TruncateCorrupt`]). So they are too if the
//!   index at `P` is at or below the fence index, which is set only once the entries up to
//!   it are durable.
//! - Otherwise everything from `P` on belongs to the last sync group, whose fdatasync may
//!   never have completed: a **torn tail**, whatever the bytes (zeros, garbage, reordered
//!   sectors). The log is cut at the end of the last complete batch before `P` (or after
//!   the last accepted record, when a later sync group proves its batch was cut short:
//!   [`decide`]), and later segments are removed.
//!
//! Limit: damage confined to the last sync group looks exactly like a torn write of that
//! group, so it is cut as one (and logged with the entries dropped). Nothing on disk can tell
//! them apart without a second fdatasync per sync; Raft re-replicates such a tail from the
//! leader.

pub(crate) mod decide;
mod listing;
mod segments;
mod walk;

use std::path::{Path, PathBuf};

use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::format::seg;
use crate::header::{Fence, HeaderFile, HeaderState};
use crate::io::{OpenMode, Vfs, VfsFile};
use crate::reader::{seq_newer, WINDOW};
use crate::segment::Segment;
use crate::types::{Damage, RecoveryMode, RecoveryReport};

use decide::{decide, Decision, Facts, Pos};
use walk::{search_after, Walked};

/// Where the stream stopped being valid, and what was decided about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every segment ends cleanly.
    Clean,
    /// A torn (never synced) tail starting at `path`:`offset`.
    Torn {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// Corruption of synced data at `path`:`offset`.
    Corrupt {
        path: PathBuf,
        offset: u64,
        index: Option<u64>,
        reason: String,
    },
}

/// The scan of one directory.
pub(crate) struct Scan<F: VfsFile> {
    pub(crate) header: Option<HeaderFile<F>>,
    /// Segments holding the recovered log, after the planned cut, with their index.
    pub(crate) segments: Vec<Segment<F>>,
    /// Where to cut: (segment position in `segments`, new end offset), if a cut is needed.
    pub(crate) cut: Option<(usize, u64)>,
    pub(crate) outcome: Outcome,
    /// Files to remove: temporaries, stale segments and snapshots, segments past the cut.
    pub(crate) remove: Vec<PathBuf>,
    /// Path of the snapshot file the header points at.
    pub(crate) snapshot: Option<PathBuf>,
    /// The fence open records: the last entry kept, and the first sync group new records
    /// get (above every group found on disk).
    pub(crate) fence: Fence,
    /// From here on (segment position, offset) the accepted records are not proven durable
    /// by the disk: the last sync group (see [`secure`]).
    pub(crate) unproven_from: Option<Pos>,
    /// Highest segment sequence number seen anywhere (or recorded in the header).
    pub(crate) max_seq: u64,
    /// The newest header slot is damaged and a record proves it had been acknowledged:
    /// (slot, why it is damaged, the evidence). Open refuses; `inspect` reports it.
    pub(crate) rollback: Option<(u32, String, String)>,
    /// Files of the recycle pool found in the directory (never read by the scan).
    pub(crate) free: Vec<PathBuf>,
    pub(crate) report: RecoveryReport,
}

/// Scans `dir` read-only. `mode` opens files read-only (inspection) or read-write (open).
/// With `lazy` (see `Options::lazy_open`), the sealed segments between the first and the
/// last are accepted unread when that is provably safe, else everything is scanned.
pub(crate) fn scan<V: Vfs>(
    vfs: &V,
    dir: &Path,
    mode: OpenMode,
    recovery: RecoveryMode,
    lazy: bool,
) -> Result<Scan<V::File>> {
    if lazy && recovery == RecoveryMode::Strict {
        // The last segment alone, then the last two: a rotation ahead (`Options::rotate_ahead`)
        // leaves the last one empty, its group start in the one before.
        for tail in [1, 2] {
            if let Some(scan) = scan_with(vfs, dir, mode, recovery, Some(tail))? {
                return Ok(scan);
            }
        }
    }
    scan_with(vfs, dir, mode, recovery, None)?.ok_or_else(|| Error::Internal {
        reason: "the full recovery scan declined to decide".into(),
    })
}

/// The scan. With `lazy: Some(tail)`, the segments between the first and the last `tail`
/// ones are skipped and `None` is returned unless the shortcut is safe: no damage anywhere
/// scanned, the first segment ends exactly where the second begins, and a segment after
/// the skipped ones holds an accepted record that starts a sync group (every record before
/// it, in every earlier segment, was synced before it was written, so nothing skipped can
/// be a torn tail; damage there can only be corruption, reported when the segment is first
/// read).
fn scan_with<V: Vfs>(
    vfs: &V,
    dir: &Path,
    mode: OpenMode,
    recovery: RecoveryMode,
    lazy: Option<usize>,
) -> Result<Option<Scan<V::File>>> {
    let mut list = listing::list(vfs, dir)?;
    if lazy.is_some_and(|tail| list.segments.len() < 2 + tail) {
        return Ok(None); // nothing between a first and the last segments to skip
    }
    let header = listing::open_header(vfs, dir, &list, mode)?;
    let hstate = header.as_ref().map(|h| h.state()).unwrap_or_default();
    let base = hstate.base;
    let snapshot = listing::choose_snapshot(vfs, &mut list, &hstate, lazy.is_none())?;
    listing::drop_segments_below_base(&mut list, base.index);
    let mut report = RecoveryReport {
        segments: list.segments.len(),
        ..RecoveryReport::default()
    };
    let opened = segments::open_all(vfs, &mut list, mode, recovery, &mut report)?;
    let (mut segs, lens) = (opened.segments, opened.lens);
    let skipped = match lazy {
        Some(tail) if segs.len() >= 2 + tail => 1..segs.len() - tail,
        Some(_) => return Ok(None),
        None => 0..0,
    };
    let walked = walk::walk(&mut segs, &lens, base, hstate.fence, skipped.clone())?;
    if !skipped.is_empty() {
        let first_end = segs[0].first_index() + segs[0].len();
        if walked.stop.is_some()
            || !walked.group_start_after_skipped
            || segs[skipped.start].first_index() != first_end
        {
            return Ok(None);
        }
        for si in skipped.clone() {
            let entries = segs[si + 1].first_index() - segs[si].first_index();
            segs[si].unindex(entries, lens[si], hstate.fence);
        }
        report.segments_deferred = skipped.len();
    }
    report.bytes_scanned = walked.bytes_scanned;
    report.compacted_damage = walked.compacted_damage.clone();
    let mut plan = Plan {
        remove: list.remove,
        max_group: walked.max_group.max(opened.max_first_group),
        newest_header_seq: walked.newest_header_seq.map(|x| named(&segs, x)),
        outcome: Outcome::Clean,
        cut: None,
        mark: None,
    };
    if let Some(stop) = &walked.stop {
        plan.decide_stop(
            &mut segs,
            &lens,
            &walked,
            stop,
            &hstate,
            recovery,
            &mut report,
        )?;
    }
    let mut cut = plan.cut;
    // Entries at or below the base are compacted; if nothing is above it, every segment is
    // stale. An entry at the base must agree with the snapshot's term.
    let last = segs.last().map(|s| s.last_index()).unwrap_or(base.index);
    let mut base_gap = None;
    if !segs.is_empty() && last <= base.index {
        plan.remove
            .extend(segs.drain(..).map(|s| s.path().to_path_buf()));
        cut = None;
    } else if let Err(e) = check_base(&segs, &hstate) {
        // With the newer slot damaged, a log that does not fit the current slot's base was
        // compacted under the newer one: falling back would roll that back.
        match header.as_ref().and_then(|h| h.damaged_other_slot()) {
            Some((slot, reason)) => base_gap = Some((slot, reason, e.to_string())),
            None => return Err(e),
        }
    }
    report.entries = segs
        .iter()
        .map(|s| {
            let lo = s.first_index().max(base.index + 1);
            (s.last_index() + 1).saturating_sub(lo)
        })
        .sum();
    let last_index = segs
        .iter()
        .rev()
        .find(|s| s.len() > 0)
        .map_or(base.index, |s| s.last_index())
        .max(base.index);
    let rollback = match &header {
        Some(h) => rollback_evidence(h, plan.newest_header_seq.as_ref())
            .or(base_gap)
            .or(fence_not_reached(h, dir, last_index, recovery)?),
        None => None,
    };
    let fence_index = plan.mark.unwrap_or(last_index).max(base.index);
    let unproven_from = walked.last_group_start.filter(|&(si, _)| si < segs.len());
    // One more: a pool file may carry a header written ahead (`Options::take_ahead`) with
    // the sequence number after every one recorded or seen; recovery never reads pool
    // files, so that number counts as used. (At most one: the next is written ahead only
    // after the rotation made that one's segment durable, and a segment leaves the
    // directory only after a header update recorded its number.)
    let max_seq = segs
        .iter()
        .map(|s| s.seq())
        .chain(std::iter::once(opened.max_seq))
        .chain(std::iter::once(hstate.seq_hwm))
        .max()
        .unwrap_or(0)
        .saturating_add(1);
    Ok(Some(Scan {
        header,
        segments: segs,
        cut,
        outcome: plan.outcome,
        remove: plan.remove,
        snapshot,
        // New records get a group above every one on disk and never below the fence's:
        // records a truncation removed may still sit on the disk (a cut that failed after
        // the fence was durable) where the page cache no longer shows them.
        fence: Fence {
            index: fence_index,
            group: (plan.max_group + 1).max(hstate.fence.group),
        },
        unproven_from,
        max_seq,
        rollback,
        free: list.free,
        report,
    }))
}

/// What the scan decided beyond the walk.
struct Plan {
    remove: Vec<PathBuf>,
    max_group: u64,
    /// The newest header sequence a record carries: (sequence, file, offset, index).
    newest_header_seq: Option<(u32, String, u64, u64)>,
    outcome: Outcome,
    cut: Option<(usize, u64)>,
    /// The last record kept, when a cut keeps a batch no bit on disk marks as ended.
    mark: Option<u64>,
}

impl Plan {
    /// Decides what the bytes at `stop` are and plans the cut (or refuses).
    #[allow(clippy::too_many_arguments)]
    fn decide_stop<F: VfsFile>(
        &mut self,
        segs: &mut Vec<Segment<F>>,
        lens: &[u64],
        walked: &Walked,
        stop: &walk::Stop,
        hstate: &HeaderState,
        recovery: RecoveryMode,
        report: &mut RecoveryReport,
    ) -> Result<()> {
        let after = search_after(segs, lens, stop.at, hstate.fence)?;
        self.max_group = self.max_group.max(after.max_group);
        if let Some(seen) = after.newest_header_seq.map(|x| named(segs, x)) {
            let newer = self
                .newest_header_seq
                .as_ref()
                .is_none_or(|(s, ..)| seq_newer(seen.0, *s));
            if newer {
                self.newest_header_seq = Some(seen);
            }
        }
        let facts = Facts {
            stop: stop.at,
            index: stop.index,
            group_start_after: after.group_start,
            fence_index: hstate.fence.index,
            later_group: after.later_group,
            last: walked.last,
            last_batch_end: walked.last_batch_end,
            last_batch_end_mark: walked.last_batch_end_mark,
            last_accepted_end: walked.last_accepted_end,
        };
        let path = segs[stop.at.0].path().to_path_buf();
        let (cut, mark) = match decide(&facts) {
            Decision::Corrupt { proof, cut } => {
                let reason = format!("{}; {proof}", stop.reason);
                if recovery == RecoveryMode::Strict {
                    return Err(Error::corrupt(&path, stop.at.1, stop.index, reason));
                }
                report.corruption_truncated.push(Damage {
                    path: path.clone(),
                    offset: stop.at.1,
                    reason: reason.clone(),
                });
                self.outcome = Outcome::Corrupt {
                    path,
                    offset: stop.at.1,
                    index: stop.index,
                    reason,
                };
                (cut, walked.last_batch_end_mark)
            }
            Decision::Torn { cut, mark } => {
                self.outcome = Outcome::Torn {
                    path,
                    offset: stop.at.1,
                    reason: stop.reason.clone(),
                };
                (cut, mark)
            }
        };
        self.mark = mark;
        self.plan_cut(segs, lens, cut, report)
    }

    /// Cuts the stream at `(csi, coff)`: later segments go, the index forgets what follows.
    fn plan_cut<F: VfsFile>(
        &mut self,
        segs: &mut Vec<Segment<F>>,
        lens: &[u64],
        (csi, coff): Pos,
        report: &mut RecoveryReport,
    ) -> Result<()> {
        self.remove
            .extend(segs.drain(csi + 1..).map(|s| s.path().to_path_buf()));
        let s = &mut segs[csi];
        let keep = s
            .shared()
            .with_index(|ix| ix.offsets.partition_point(|&o| u64::from(o) < coff))?;
        let from = s.first_index() + keep as u64;
        s.forget_from(from)?;
        // Bytes cut: from the cut to the last non-zero byte (preallocated zeros are not data).
        report.torn_bytes_truncated = data_after(s, lens[csi], coff)?;
        s.set_written(coff);
        self.cut = Some((csi, coff));
        Ok(())
    }
}

/// A record seen at a segment position, with the segment's file name.
fn named<F: VfsFile>(
    segs: &[Segment<F>],
    (seq, si, off, index): walk::HeaderSeqSeen,
) -> (u32, String, u64, u64) {
    let path = segs
        .get(si)
        .map_or_else(String::new, |s| s.path().display().to_string());
    (seq, path, off, index)
}

/// Bytes from `from` to the last non-zero byte of the segment's first `len` bytes.
fn data_after<F: VfsFile>(s: &Segment<F>, len: u64, from: u64) -> Result<u64> {
    let mut w = crate::reader::Window::new(s.file(), len);
    let (mut at, mut last) = (from, from);
    while at < len {
        let chunk = w.get(at, WINDOW)?;
        if !crate::format::all_zero(chunk) {
            let p = chunk.iter().rposition(|&b| b != 0).unwrap_or(0);
            last = at + p as u64 + 1;
        }
        at += chunk.len() as u64;
    }
    Ok(last - from)
}

/// The log must reach `base + 1` if it has anything above the base, and an entry at the base
/// must have the base's term.
fn check_base<F: VfsFile>(segs: &[Segment<F>], hstate: &HeaderState) -> Result<()> {
    let base = hstate.base;
    let Some(first) = segs.first() else {
        return Ok(());
    };
    if first.first_index() > base.index + 1 {
        return Err(Error::corrupt(
            first.path(),
            0,
            Some(base.index + 1),
            format!(
                "the log starts at index {} but the snapshot base is {}: entries are missing",
                first.first_index(),
                base.index
            ),
        ));
    }
    if base.index > 0 && first.first_index() <= base.index {
        if let Some(t) = first.term_of(base.index)? {
            if t != base.term {
                return Err(Error::corrupt(
                    first.path(),
                    first.offset_of(base.index)?.unwrap_or(0),
                    Some(base.index),
                    format!(
                        "entry at the snapshot base has term {t}, the snapshot says {}",
                        base.term
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Whether the disk proves that the header's damaged other slot held acknowledged state: a
/// record (format 3) was appended under a header sequence newer than the current slot's,
/// which it can only be after that newer slot's update returned.
fn rollback_evidence<F: VfsFile>(
    header: &HeaderFile<F>,
    newest: Option<&(u32, String, u64, u64)>,
) -> Option<(u32, String, String)> {
    let (slot, reason) = header.damaged_other_slot()?;
    let (seq, path, offset, index) = newest?;
    seq_newer(*seq, header.seq() as u32).then(|| {
        (
            slot,
            reason,
            format!(
                "the record of entry {index} at {path}:{offset} was appended under header \
                 sequence {seq} (low 32 bits), after the current slot's {}",
                header.seq()
            ),
        )
    })
}

/// The log must reach the current slot's fence index: the entries up to it were durable when
/// that slot was written (an open keeps only what it made durable; a truncation keeps what
/// was there), and only a newer slot's truncation or compaction removes any of them. So a
/// log that ends short of it lost synced entries — unless the newer slot is damaged: then
/// that slot was acted on (its compaction deleted segments, or its truncation cut them), and
/// falling back to the current one would roll it back. `TruncateCorrupt` accepts the loss.
fn fence_not_reached<F: VfsFile>(
    header: &HeaderFile<F>,
    dir: &Path,
    last_index: u64,
    recovery: RecoveryMode,
) -> Result<Option<(u32, String, String)>> {
    let st = header.state();
    if last_index >= st.fence.index || recovery == RecoveryMode::TruncateCorrupt {
        return Ok(None);
    }
    let evidence = format!(
        "the log ends at index {last_index}, short of the current slot's fence index {}",
        st.fence.index
    );
    match header.damaged_other_slot() {
        Some((slot, reason)) => Ok(Some((slot, reason, evidence))),
        None => Err(Error::corrupt(
            dir.join(crate::header::HEADER_FILE),
            0,
            Some(last_index + 1),
            format!("{evidence}: entries synced before the last truncation or open are missing"),
        )),
    }
}

/// The fsyncgate defence: after a failed fsync, the page cache may hold pages that were
/// marked clean without reaching the disk, so what the scan read need not be what the disk
/// holds. Everything before the last sync group is proven durable by the disk itself (the
/// group's first record was written only after the previous fdatasync returned); the last
/// group is not. So its bytes, from its first record to the end of the accepted data, are
/// read back and written again in place, and each file written is fdatasynced: the pages
/// are dirty again, and the sync writes them. Costs one write and one fdatasync of the last
/// sync group (usually a few KiB) per open.
pub(crate) fn secure<F: VfsFile>(scan: &Scan<F>) -> Result<u64> {
    let Some((si, off)) = scan.unproven_from else {
        return Ok(0);
    };
    let mut rewritten = 0;
    for (i, seg) in scan.segments.iter().enumerate().skip(si) {
        let from = if i == si { off } else { seg::DATA_START as u64 };
        rewritten += seg.rewrite_from(from)?;
    }
    Ok(rewritten)
}

/// Applies the scan's plan: cuts a torn tail, removes stale files, durably. Idempotent: a
/// crash part-way leaves a directory that the next scan plans the same repair for.
pub(crate) fn repair<V: Vfs>(
    vfs: &V,
    dir: &Path,
    scan: &mut Scan<V::File>,
    preallocate: Option<u64>,
) -> Result<()> {
    if let Some((si, end)) = scan.cut {
        let seg = &mut scan.segments[si];
        if let Outcome::Torn {
            path,
            offset,
            reason,
        } = &scan.outcome
        {
            warn!(
                file = %path.display(), offset, cut_at = end, bytes = scan.report.torn_bytes_truncated,
                reason = %reason, "torn tail: cutting the unsynced write"
            );
        }
        seg.cut_file(end, preallocate)?;
    }
    // Remove from the highest name down, each removal made durable before the next, so a
    // crash part-way leaves the segments as a prefix by index: never a hole that the next
    // open would take for missing entries. (Several removals are rare: a torn tail in one
    // segment with an empty one after it, stale files after a compaction.)
    scan.remove.sort();
    for path in scan.remove.iter().rev() {
        crate::io::remove_durably(vfs, dir, path)?;
        info!(file = %path.display(), "removed stale file");
    }
    scan.report.files_removed = scan.remove.len();
    crate::io::sync_dir(vfs, dir)?;
    Ok(())
}

/// The header state, or the default for a directory without one.
pub(crate) fn header_state<F: VfsFile>(scan: &Scan<F>) -> HeaderState {
    scan.header.as_ref().map(|h| h.state()).unwrap_or_default()
}
