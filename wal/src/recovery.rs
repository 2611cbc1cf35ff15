//! Recovery: rebuild exactly the durable state of a WAL directory.
//!
//! The scan is read-only ([`scan`]); [`repair`] then applies what it planned. `inspect` and
//! `verify` reuse the scan without repairing.
//!
//! ## Torn tail or corruption?
//!
//! The segments form one stream of records. The scan accepts records while each verifies
//! (checksum bound to its segment's identity), holds the next index, and neither its term nor
//! its sync group goes backwards. At the first position `P` where that fails, it decides:
//!
//! - The records of a sync group (everything one `sync()` wrote) are written only after the
//!   previous group's fdatasync returned, and the first record of each group carries the
//!   *group start* bit. So if a record that verifies and starts a group lies anywhere after
//!   `P`, the group holding `P` was synced — possibly acknowledged — and the bad bytes at `P`
//!   are **corruption of synced data**: open fails naming file, offset and index (unless the
//!   operator chose [`RecoveryMode::TruncateCorrupt`]).
//! - Otherwise everything from `P` on belongs to the last sync group, whose fdatasync may
//!   never have completed: a **torn tail**, whatever the bytes (zeros, garbage, reordered
//!   sectors). The log is cut at the end of the last complete batch before `P`, and later
//!   segments are removed.
//!
//! Limit: damage confined to the last sync group looks exactly like a torn write of that
//! group, so it is cut as one (and logged with the entries dropped). Nothing on disk can tell
//! them apart without a second fdatasync per sync; Raft re-replicates such a tail from the
//! leader.

use std::path::{Path, PathBuf};

use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::format::{
    all_zero, decode_frame, decode_segment_header, parse_numbered, rec, seg, Frame,
    SegmentHeaderError, ALIGN, TMP_SUFFIX,
};
use crate::header::{HeaderFile, HeaderState, HEADER_FILE};
use crate::io::{OpenMode, Vfs, VfsFile};
use crate::segment::Segment;
use crate::types::{RecoveryMode, RecoveryReport};

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
    /// When the cut keeps a batch that lacks its end bit: the index of its last kept record,
    /// to be recorded as the header's truncation index before the cut is made.
    pub(crate) kept_end_index: Option<u64>,
    /// Highest sync group and segment sequence number seen anywhere.
    pub(crate) max_group: u64,
    pub(crate) max_seq: u64,
    pub(crate) report: RecoveryReport,
}

struct Accepted {
    index: u64,
    term: u64,
    group: u64,
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
        if let Some(scan) = scan_with(vfs, dir, mode, recovery, true)? {
            return Ok(scan);
        }
    }
    scan_with(vfs, dir, mode, recovery, false)?.ok_or_else(|| Error::InvalidArgument {
        reason: "the full recovery scan declined to decide".into(),
    })
}

/// The scan. With `lazy`, segments `1..n-1` are skipped and `None` is returned unless the
/// shortcut is safe: no damage anywhere scanned, the first segment ends exactly where the
/// second begins, and the last segment holds an accepted record that starts a sync group
/// (every record before it, in every earlier segment, was synced before it was written, so
/// nothing skipped can be a torn tail; damage there can only be corruption, reported when
/// the segment is first read).
fn scan_with<V: Vfs>(
    vfs: &V,
    dir: &Path,
    mode: OpenMode,
    recovery: RecoveryMode,
    lazy: bool,
) -> Result<Option<Scan<V::File>>> {
    let names = vfs.list(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut remove = Vec::new();
    let mut seg_names = Vec::new();
    let mut snap_names = Vec::new();
    let mut has_header = false;
    for name in &names {
        if name.ends_with(TMP_SUFFIX) {
            remove.push(dir.join(name));
        } else if name == HEADER_FILE {
            has_header = true;
        } else if let Some(first) = parse_numbered(name, ".wal") {
            seg_names.push((first, dir.join(name)));
        } else if let Some(index) = parse_numbered(name, ".snap") {
            snap_names.push((index, dir.join(name)));
        }
    }
    seg_names.sort();
    if lazy && seg_names.len() < 3 {
        return Ok(None); // nothing between a first and a last segment to skip
    }
    let header = if has_header {
        Some(HeaderFile::open(vfs, dir, mode)?)
    } else if let Some((_, p)) = seg_names.first().or(snap_names.first()) {
        return Err(Error::corrupt(
            p,
            0,
            None,
            format!("{HEADER_FILE} is missing while log files exist"),
        ));
    } else {
        None
    };
    let hstate = header.as_ref().map(|h| h.state()).unwrap_or_default();
    let base = hstate.base;

    // Snapshot files: the one the header points at must exist; others are stale.
    let mut snapshot = None;
    for (index, path) in snap_names {
        if hstate.has_snapshot && index == base.index {
            let (meta, _) = crate::snapshot::read_header(vfs, &path)?;
            if meta != base {
                return Err(Error::corrupt(
                    &path,
                    0,
                    Some(base.index),
                    format!(
                        "snapshot is of index {} term {}, the header's base is index {} term {}",
                        meta.index, meta.term, base.index, base.term
                    ),
                ));
            }
            snapshot = Some(path);
        } else {
            remove.push(path);
        }
    }
    if hstate.has_snapshot && snapshot.is_none() {
        return Err(Error::corrupt(
            dir.join(crate::format::snapshot_name(base.index)),
            0,
            Some(base.index),
            "the header's snapshot file is missing",
        ));
    }

    // Segments wholly at or below the base are stale (a compaction's removals not yet
    // durable); keep from the last segment whose first index is <= base + 1.
    let keep_from = seg_names
        .iter()
        .rposition(|(first, _)| *first <= base.index + 1)
        .unwrap_or(0);
    for (_, p) in seg_names.drain(..keep_from) {
        remove.push(p);
    }

    let mut report = RecoveryReport {
        segments: seg_names.len(),
        ..RecoveryReport::default()
    };
    let mut segs: Vec<Segment<V::File>> = Vec::new();
    let mut maps = Vec::new();
    let mut max_seq = 0;
    let mut max_group = 0;
    let mut seg_iter = seg_names.into_iter();
    while let Some((first, path)) = seg_iter.next() {
        let file = vfs
            .open(&path, mode)
            .map_err(|e| Error::io("open", &path, e))?;
        let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
        let map = file.map(len).map_err(|e| Error::io("map", &path, e))?;
        let h = match decode_segment_header(&map) {
            Err(SegmentHeaderError::Foreign(reason)) => {
                // Not ours (or a version we cannot read): never removed, whatever the mode.
                return Err(Error::NotAWalFile { path, reason });
            }
            Err(SegmentHeaderError::Damaged(reason)) => Err((0, reason)),
            // Log indices start at 1: a segment claiming index 0 is not one we wrote.
            Ok(h) if h.first_index == 0 => Err((
                seg::OFF_FIRST_INDEX as u64,
                "segment header says first index 0; log indices start at 1".to_string(),
            )),
            Ok(h) if h.first_index != first => Err((
                seg::OFF_FIRST_INDEX as u64,
                format!(
                    "segment header says first index {}, the file name {first}",
                    h.first_index
                ),
            )),
            Ok(h) => Ok(h),
        };
        let h = match h {
            Ok(h) => h,
            Err((offset, reason)) if recovery == RecoveryMode::Strict => {
                return Err(Error::corrupt(&path, offset, None, reason));
            }
            Err((offset, reason)) => {
                // The operator's choice: the log ends before this segment; it and every
                // later segment are removed.
                warn!(file = %path.display(), offset, reason = %reason,
                    "damaged segment header: cutting the log before this segment");
                report.corruption_truncated.push((
                    path.display().to_string(),
                    offset,
                    format!("{reason}; this segment and every later one removed"),
                ));
                remove.push(path);
                remove.extend(seg_iter.by_ref().map(|(_, p)| p));
                break;
            }
        };
        max_seq = max_seq.max(h.seq);
        max_group = max_group.max(h.first_group);
        segs.push(Segment::from_parts(
            path,
            file,
            h.seq,
            h.first_index,
            h.first_group,
            seg::DATA_START as u64,
        ));
        maps.push(map);
    }

    // The stream scan.
    let mut prev: Option<Accepted> = None;
    let mut bad: Option<(usize, usize, Option<u64>, String)> = None;
    let mut last_batch_end: (usize, u64) = (0, seg::DATA_START as u64);
    // The index of the record just before `last_batch_end` when nothing on disk marks it as
    // a batch end (a group start or a segment boundary closed its batch): a cut there must
    // record it in the header, or the next open would cut it again.
    let mut last_batch_end_mark: Option<u64> = None;
    let mut batch_open_at_end = false;
    let mut last_accepted_end: (usize, u64) = (0, seg::DATA_START as u64);
    let mut expected = segs.first().map(|s| s.first_index).unwrap_or(0);
    // The lazy shortcut: which segments are skipped, and whether it still holds.
    let skipped = if lazy && segs.len() >= 3 {
        1..segs.len() - 1
    } else if lazy {
        return Ok(None);
    } else {
        0..0
    };
    let mut group_start_in_last = false;
    'stream: for si in 0..segs.len() {
        if skipped.contains(&si) {
            if si == skipped.start && segs[si].first_index != expected {
                return Ok(None);
            }
            continue;
        }
        if si > 0 && si == skipped.end {
            // Resume after the skipped segments as at the start of a log: the next index
            // is this segment's first; its sync groups start at its header's.
            expected = segs[si].first_index;
            prev = None;
            batch_open_at_end = false;
        }
        if si > 0 {
            if segs[si].first_index != expected
                && expected <= base.index
                && segs[si].first_index > expected
                && segs[si].first_index <= base.index + 1
            {
                // Missing entries are all compacted: step over the hole.
                report.compacted_damage.push((
                    segs[si].path.display().to_string(),
                    seg::DATA_START as u64,
                    format!(
                        "entries {expected}..{} (compacted) are missing",
                        segs[si].first_index
                    ),
                ));
                expected = segs[si].first_index;
            }
            if segs[si].first_index != expected {
                bad = Some((
                    si,
                    seg::DATA_START,
                    Some(expected),
                    format!(
                        "segment starts at index {}, index {expected} was expected",
                        segs[si].first_index
                    ),
                ));
                break;
            }
            last_batch_end = (si, seg::DATA_START as u64);
            last_batch_end_mark = if batch_open_at_end {
                prev.as_ref().map(|p| p.index)
            } else {
                None
            };
        }
        let buf: &[u8] = &maps[si];
        let mut off = seg::DATA_START;
        let mut batch_open = false;
        loop {
            let frame = decode_frame(buf, off, &segs[si].identity);
            // Whether everything from here to the end of the file is zero: checked once.
            let zero_tail = matches!(frame, Frame::Zero) && all_zero(&buf[off.min(buf.len())..]);
            let damaged = match &frame {
                Frame::Record { header: h, .. } if h.index != expected => Some(format!(
                    "record holds index {} where {expected} was expected",
                    h.index
                )),
                Frame::Bad(reason) => Some(reason.clone()),
                Frame::Zero if !zero_tail => {
                    Some("zeroed record header followed by non-zero bytes".into())
                }
                _ => None,
            };
            if let Some(reason) = damaged.filter(|_| expected <= base.index) {
                // Damage among compacted entries: resume at the next record that verifies
                // and still lies at or below base + 1, if there is one in this segment.
                if let Some((pos, index)) =
                    resync(buf, off, &segs[si].identity, expected, base.index + 1)
                {
                    report.compacted_damage.push((
                        segs[si].path.display().to_string(),
                        off as u64,
                        reason,
                    ));
                    while expected < index {
                        segs[si].push_placeholder(expected);
                        expected += 1;
                    }
                    off = pos;
                    batch_open = false;
                    continue;
                }
            }
            match frame {
                Frame::Record { header: h, end } => {
                    let why = if h.index != expected {
                        Some(format!(
                            "record holds index {} where {expected} was expected",
                            h.index
                        ))
                    } else if prev.as_ref().is_some_and(|p| h.term < p.term) {
                        Some(format!("term {} goes backwards", h.term))
                    } else if h.group < prev.as_ref().map_or(segs[si].first_group, |p| p.group) {
                        Some(format!("sync group {} goes backwards", h.group))
                    } else {
                        None
                    };
                    if let Some(reason) = why {
                        bad = Some((si, off, Some(expected), reason));
                        break 'stream;
                    }
                    segs[si].push(h.index, h.term, off as u64);
                    segs[si].written = end as u64;
                    group_start_in_last |= h.group_start && si + 1 == segs.len();
                    report.bytes_scanned += (end - off) as u64;
                    max_group = max_group.max(h.group);
                    expected += 1;
                    // A suffix truncation may have cut a batch short: its last kept record
                    // (recorded in the header before the cut) ends that batch.
                    if h.group_start && (si, off as u64) != last_batch_end {
                        // A sync group starts at a batch boundary: whatever came before is
                        // complete (even a batch cut short by an older truncation).
                        last_batch_end = (si, off as u64);
                        last_batch_end_mark = prev.as_ref().map(|p| p.index);
                    }
                    let batch_end =
                        h.batch_end || (hstate.trunc_index != 0 && h.index == hstate.trunc_index);
                    batch_open = !batch_end;
                    if batch_end {
                        last_batch_end = (si, end as u64);
                        last_batch_end_mark = None;
                    }
                    last_accepted_end = (si, end as u64);
                    prev = Some(Accepted {
                        index: h.index,
                        term: h.term,
                        group: h.group,
                    });
                    off = end;
                }
                Frame::Zero if zero_tail => {
                    // A batch left open at the end of a segment was cut short by a suffix
                    // truncation when the next segment continues at the next index (a batch
                    // never spans segments, so no record of it can be missing); at the end
                    // of the log it must end at the header's truncation index (checked
                    // above), or it is a torn write — unless the records it lacks from
                    // `expected` on are compacted: then this is a segment the compaction
                    // removed non-durably, cut inside a batch by an earlier truncation
                    // whose mark a later one replaced, and nothing retained is missing.
                    if batch_open && si + 1 == segs.len() && expected > base.index {
                        bad = Some((
                            si,
                            off,
                            Some(expected),
                            "batch ends before its last record".into(),
                        ));
                        break 'stream;
                    }
                    batch_open_at_end = batch_open;
                    break;
                }
                Frame::Zero => {
                    bad = Some((
                        si,
                        off,
                        Some(expected),
                        "zeroed record header followed by non-zero bytes".into(),
                    ));
                    break 'stream;
                }
                Frame::Bad(reason) => {
                    bad = Some((si, off, Some(expected), reason));
                    break 'stream;
                }
            }
        }
    }

    if !skipped.is_empty() {
        if bad.is_some() || !group_start_in_last {
            return Ok(None);
        }
        for si in skipped.clone() {
            let entries = segs[si + 1].first_index - segs[si].first_index;
            let file_len = maps[si].len() as u64;
            segs[si].unindex(entries, file_len);
        }
        report.segments_deferred = skipped.len();
    }
    let mut outcome = Outcome::Clean;
    let mut cut = None;
    let mut kept_end_index = None;
    if let Some((bsi, boff, index, reason)) = bad {
        let mut later = 0u64;
        // Look past the bad position for a record that starts a sync group: proof that the
        // group holding the bad position was synced.
        let mut proof: Option<(PathBuf, u64, u64)> = None;
        'search: for si in bsi..segs.len() {
            let buf: &[u8] = &maps[si];
            let mut pos = if si == bsi { boff } else { seg::DATA_START };
            while pos + rec::HEADER_LEN <= buf.len() {
                if all_zero(&buf[pos..pos + rec::HEADER_LEN]) {
                    pos += ALIGN;
                    continue;
                }
                match decode_frame(buf, pos, &segs[si].identity) {
                    Frame::Record { header, end } => {
                        later = later.max(header.group);
                        if header.group_start && (si, pos) != (bsi, boff) {
                            proof = Some((segs[si].path.clone(), pos as u64, header.group));
                            break 'search;
                        }
                        pos = end;
                    }
                    _ => pos += ALIGN,
                }
            }
        }
        max_group = max_group.max(later);
        let path = segs[bsi].path.clone();
        // A second proof: `truncate_suffix` syncs everything before it records its kept end
        // in the header, so every entry up to the truncation index was durable.
        let proof = match proof {
            Some((ppath, poff, pgroup)) => Some(format!(
                "the record starting sync group {pgroup} at {}:{poff} proves this data was synced",
                ppath.display()
            )),
            None => index
                .filter(|&i| hstate.trunc_index != 0 && i <= hstate.trunc_index)
                .map(|_| {
                    format!(
                        "entries up to {} were synced before the last truncation (header)",
                        hstate.trunc_index
                    )
                }),
        };
        if let Some(proof) = proof {
            let corrupt = Outcome::Corrupt {
                path: path.clone(),
                offset: boff as u64,
                index,
                reason: format!("{reason}; {proof}"),
            };
            if recovery == RecoveryMode::Strict {
                let Outcome::Corrupt {
                    path,
                    offset,
                    index,
                    reason,
                } = corrupt
                else {
                    unreachable!("just built")
                };
                return Err(Error::Corrupt {
                    path,
                    offset,
                    index,
                    reason,
                });
            }
            if let Outcome::Corrupt {
                path,
                offset,
                reason,
                ..
            } = &corrupt
            {
                report.corruption_truncated.push((
                    path.display().to_string(),
                    *offset,
                    reason.clone(),
                ));
            }
            outcome = corrupt;
        } else {
            outcome = Outcome::Torn {
                path,
                offset: boff as u64,
                reason,
            };
        }
        // Cut at the end of the last complete batch before the bad position — unless, for a
        // torn tail, a verifying record after it belongs to a later sync group than the last
        // good record:
        // that group was written after the last good record's group was synced, so all of
        // that group is kept (its open batch was cut short by a truncation, not torn).
        let torn = matches!(outcome, Outcome::Torn { .. });
        let (csi, coff) = match &prev {
            Some(p) if torn && later > p.group && last_accepted_end != last_batch_end => {
                // The kept end may be inside a batch: record it like a truncation does, or
                // the next open would take that batch for a torn write.
                kept_end_index = Some(p.index);
                last_accepted_end
            }
            _ => {
                kept_end_index = last_batch_end_mark;
                last_batch_end
            }
        };
        for s in segs.drain(csi + 1..) {
            remove.push(s.path.clone());
        }
        maps.truncate(csi + 1);
        let keep_to = {
            let s = &segs[csi];
            s.index()?.offsets.partition_point(|&o| u64::from(o) < coff)
        };
        let s = &mut segs[csi];
        let from = s.first_index + keep_to as u64;
        s.forget_from(from)?;
        // Bytes cut: from the cut to the last non-zero byte (preallocated zeros are not data).
        let tail = maps[csi].get(coff as usize..).unwrap_or(&[]);
        let data_end = tail.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        report.torn_bytes_truncated = data_end as u64;
        s.written = coff;
        cut = Some((csi, coff));
    }

    // Entries at or below the base are compacted; if nothing is above it, every segment is
    // stale. An entry at the base must agree with the snapshot's term.
    let last = segs.last().map(|s| s.last_index()).unwrap_or(base.index);
    if !segs.is_empty() && last <= base.index {
        for s in segs.drain(..) {
            remove.push(s.path.clone());
        }
        cut = None;
    } else if let Some(first) = segs.first() {
        if first.first_index > base.index + 1 {
            return Err(Error::corrupt(
                &first.path,
                0,
                Some(base.index + 1),
                format!(
                    "the log starts at index {} but the snapshot base is {}: entries are missing",
                    first.first_index, base.index
                ),
            ));
        }
        if base.index > 0 && first.first_index <= base.index {
            if let Some(t) = first.term_of(base.index)? {
                if t != base.term {
                    return Err(Error::corrupt(
                        &first.path,
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
    }
    report.entries = segs
        .iter()
        .map(|s| {
            let lo = s.first_index.max(base.index + 1);
            (s.last_index() + 1).saturating_sub(lo)
        })
        .sum();
    drop(maps);
    Ok(Some(Scan {
        header,
        segments: segs,
        cut,
        kept_end_index,
        outcome,
        remove,
        snapshot,
        max_group,
        max_seq,
        report,
    }))
}

/// Applies the scan's plan: removes stale files and cuts a torn tail, durably. Idempotent: a
/// crash part-way leaves a directory that the next scan plans the same repair for.
pub(crate) fn repair<V: Vfs>(
    vfs: &V,
    dir: &Path,
    scan: &mut Scan<V::File>,
    preallocate: Option<u64>,
) -> Result<()> {
    if let Some((si, end)) = scan.cut {
        let seg = &scan.segments[si];
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
        seg.file
            .set_len(end)
            .map_err(|e| Error::io("truncate", &seg.path, e))?;
        if let Some(size) = preallocate {
            seg.file
                .allocate(size)
                .map_err(|e| Error::io("allocate", &seg.path, e))?;
        }
        seg.file
            .sync_all()
            .map_err(|e| Error::io("fsync", &seg.path, e))?;
    }
    // Remove from the highest name down, each removal made durable before the next, so a
    // crash part-way leaves the segments as a prefix by index: never a hole that the next
    // open would take for missing entries. (Several removals are rare: a torn tail in one
    // segment with an empty one after it, stale files after a compaction.)
    scan.remove.sort();
    for path in scan.remove.iter().rev() {
        match vfs.remove(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("remove", path, e)),
        }
        info!(file = %path.display(), "removed stale file");
        vfs.sync_dir(dir)
            .map_err(|e| Error::io("fsync dir", dir, e))?;
    }
    scan.report.files_removed = scan.remove.len();
    vfs.sync_dir(dir)
        .map_err(|e| Error::io("fsync dir", dir, e))?;
    Ok(())
}

/// The header state, or the default for a directory without one.
pub(crate) fn header_state<F: VfsFile>(scan: &Scan<F>) -> HeaderState {
    scan.header.as_ref().map(|h| h.state()).unwrap_or_default()
}

/// After damage at `from`, the first verifying record with an index in `(expected, limit]`.
fn resync(
    buf: &[u8],
    from: usize,
    identity: &crc32fast::Hasher,
    expected: u64,
    limit: u64,
) -> Option<(usize, u64)> {
    let mut pos = from + ALIGN;
    while pos + rec::HEADER_LEN <= buf.len() {
        if let Frame::Record { header, .. } = decode_frame(buf, pos, identity) {
            if header.index > expected && header.index <= limit {
                return Some((pos, header.index));
            }
        }
        pos += ALIGN;
    }
    None
}
