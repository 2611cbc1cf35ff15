//! The stream walk: the segments' records in order, accepted by [`Rule`] until the first
//! position where the stream stops being valid, and the search after that position for what
//! proves (or not) that the bytes there were synced.

use std::ops::Range;

use crate::error::Result;
use crate::format::{seg, Frame};
use crate::header::Fence;
use crate::io::VfsFile;
use crate::reader::{Rule, Window};
use crate::segment::Segment;
use crate::types::{Damage, SnapshotMeta};

use super::decide::{Accepted, Pos};

/// Where the walk stopped, and why.
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    pub at: Pos,
    pub index: Option<u64>,
    pub reason: String,
}

/// The newest header sequence a format-3 record carries: (sequence, segment position,
/// offset, index).
pub(crate) type HeaderSeqSeen = (u32, usize, u64, u64);

/// What the walk of the stream found.
#[derive(Debug, Clone)]
pub(crate) struct Walked {
    /// The first position where the stream is not valid (`None`: every segment ends
    /// cleanly).
    pub stop: Option<Stop>,
    pub last: Option<Accepted>,
    pub last_batch_end: Pos,
    /// The index of the record just before `last_batch_end` when nothing on disk marks it
    /// as a batch end (a group start or a segment boundary closed its batch): a cut there
    /// must record it as the fence, or the next open would cut it again.
    pub last_batch_end_mark: Option<u64>,
    pub last_accepted_end: Pos,
    /// Where the last sync group's first accepted record is (else the first accepted
    /// record): from there on, what the scan accepted is not proven durable by the disk.
    pub last_group_start: Option<Pos>,
    /// An accepted record after the skipped segments starts a sync group: every record
    /// before it, all of the skipped segments', was synced before it was written.
    pub group_start_after_skipped: bool,
    pub max_group: u64,
    pub newest_header_seq: Option<HeaderSeqSeen>,
    pub bytes_scanned: u64,
    /// Damaged records at or below the base, stepped over: (file, offset, reason).
    pub compacted_damage: Vec<Damage>,
}

/// What a segment's walk adds to its index.
enum Push {
    Record { index: u64, term: u64, offset: u64 },
    Placeholder(u64),
}

/// The walk in progress.
struct Stream {
    rule: Rule,
    /// The segment after the skipped ones (0 if none are skipped).
    skipped_end: usize,
    base: SnapshotMeta,
    batch_open_at_end: bool,
    walked: Walked,
}

/// Walks `segs` (their file lengths in `lens`), skipping the segments in `skipped` (a lazy
/// open resumes after them as at the start of a log), and builds their indexes.
pub(crate) fn walk<F: VfsFile>(
    segs: &mut [Segment<F>],
    lens: &[u64],
    base: SnapshotMeta,
    fence: Fence,
    skipped: Range<usize>,
) -> Result<Walked> {
    let start = (0, seg::DATA_START as u64);
    let mut s = Stream {
        rule: Rule {
            expected: segs.first().map_or(0, |s| s.first_index()),
            term: 0,
            group: segs.first().map_or(0, |s| s.first_group()),
            fence,
        },
        skipped_end: skipped.end,
        base,
        batch_open_at_end: false,
        walked: Walked {
            stop: None,
            last: None,
            last_batch_end: start,
            last_batch_end_mark: None,
            last_accepted_end: start,
            last_group_start: None,
            group_start_after_skipped: false,
            max_group: 0,
            newest_header_seq: None,
            bytes_scanned: 0,
            compacted_damage: Vec::new(),
        },
    };
    let mut first_accepted = None;
    let n = segs.len();
    for si in 0..n {
        if skipped.contains(&si) {
            continue;
        }
        if si > 0 && si == skipped.end {
            // Resume after the skipped segments as at the start of a log: the next index is
            // this segment's first; its sync groups start at its header's.
            s.rule.expected = segs[si].first_index();
            s.rule.term = 0;
            s.rule.group = segs[si].first_group();
            s.walked.last = None;
            s.batch_open_at_end = false;
        } else if si > 0 && !s.enter(si, &segs[si]) {
            break;
        }
        let next_first = segs.get(si + 1).map(|s| s.first_index());
        let (pushes, end) = s.walk_segment(si, &segs[si], lens[si], next_first)?;
        let seg = &mut segs[si];
        for p in pushes {
            match p {
                Push::Record {
                    index,
                    term,
                    offset,
                } => {
                    first_accepted.get_or_insert((si, offset));
                    seg.push(index, term, offset);
                }
                Push::Placeholder(index) => seg.push_placeholder(index),
            }
        }
        if let Some(end) = end {
            seg.set_written(end);
        }
        if s.walked.stop.is_some() {
            break;
        }
    }
    if s.walked.last_group_start.is_none() {
        s.walked.last_group_start = first_accepted;
    }
    Ok(s.walked)
}

impl Stream {
    /// Moves on to segment `si`: it must start at the expected index (or step over a hole of
    /// compacted entries). False if the stream stops there.
    fn enter<F: VfsFile>(&mut self, si: usize, seg: &Segment<F>) -> bool {
        let expected = self.rule.expected;
        let first = seg.first_index();
        if first != expected
            && expected <= self.base.index
            && first > expected
            && first <= self.base.index + 1
        {
            // Missing entries are all compacted: step over the hole.
            self.walked.compacted_damage.push(Damage {
                path: seg.path().to_path_buf(),
                offset: seg::DATA_START as u64,
                reason: format!("entries {expected}..{first} (compacted) are missing"),
            });
            self.rule.expected = first;
        }
        if first != self.rule.expected {
            self.stop(
                (si, seg::DATA_START as u64),
                format!("segment starts at index {first}, index {expected} was expected"),
            );
            return false;
        }
        self.walked.last_batch_end = (si, seg::DATA_START as u64);
        self.walked.last_batch_end_mark = if self.batch_open_at_end {
            self.walked.last.map(|p| p.index)
        } else {
            None
        };
        true
    }

    fn stop(&mut self, at: Pos, reason: String) {
        self.walked.stop = Some(Stop {
            at,
            index: Some(self.rule.expected),
            reason,
        });
    }

    /// Walks one segment's records. Returns the index entries to add and the offset where
    /// its accepted records end (if it accepted any). `next_first` is the next segment's
    /// first index: a sealed segment ends where its records reach it, whatever bytes follow
    /// (stale bytes the disk kept where the page cache showed zeros — a cut whose fsync
    /// failed — or, later, a recycled file's old records): no entry can be missing there, as
    /// the next segment holds the next one.
    fn walk_segment<F: VfsFile>(
        &mut self,
        si: usize,
        seg: &Segment<F>,
        len: u64,
        next_first: Option<u64>,
    ) -> Result<(Vec<Push>, Option<u64>)> {
        let last_segment = next_first.is_none();
        let mut w = Window::new(seg.file(), len);
        let mut pushes = Vec::new();
        let mut written = None;
        let mut off = seg::DATA_START as u64;
        let mut batch_open = false;
        loop {
            if next_first == Some(self.rule.expected) {
                // The next segment holds this index: whatever follows here is stale, even
                // a record that verifies (a suffix truncation's cut whose fsync failed left
                // it on the disk, and a later open moved the fence past its index).
                self.batch_open_at_end = batch_open;
                return Ok((pushes, written));
            }
            let frame = w.frame_at(off, seg.format(), seg.identity())?;
            // Whether everything from here to the end of the file is zero: checked once.
            let zero_tail = matches!(frame, Frame::Zero) && w.zero_from(off)?;
            let damage = match &frame {
                Frame::Record { header, .. } => self.rule.reject(header),
                Frame::Bad(reason) => Some(reason.clone()),
                Frame::Zero if !zero_tail => {
                    Some("zeroed record header followed by non-zero bytes".into())
                }
                Frame::Zero => None,
            };
            // A recycled segment holds a previous segment's bytes past its records: where
            // nothing after this position verifies as a record of this segment, the
            // segment ends here as it would at zeros (see `docs/FORMAT.md`, "Recycle pool").
            let stale_end = damage.is_some()
                && last_segment
                && seg.recycled()
                && nothing_of_this_segment(&mut w, seg, off)?;
            if let Some(reason) = damage.filter(|_| !stale_end) {
                if self.rule.expected <= self.base.index {
                    if let Some((pos, index)) = self.resync(&mut w, seg, off)? {
                        // Damage among compacted entries: resume at the next record that
                        // verifies and still lies at or below base + 1.
                        self.walked.compacted_damage.push(Damage {
                            path: seg.path().to_path_buf(),
                            offset: off,
                            reason,
                        });
                        while self.rule.expected < index {
                            pushes.push(Push::Placeholder(self.rule.expected));
                            self.rule.expected += 1;
                        }
                        off = pos;
                        batch_open = false;
                        continue;
                    }
                }
                self.stop((si, off), reason);
                return Ok((pushes, written));
            }
            let Frame::Record { header: h, end } = frame else {
                // A clean end: a batch left open here was cut short by a suffix truncation
                // when the next segment continues at the next index (a batch never spans
                // segments, so no record of it can be missing); at the end of the log it
                // must end at the fence index (checked when accepted), or it is a torn
                // write — unless the records it lacks are compacted: then this is a segment
                // a compaction removed non-durably, cut inside a batch by an earlier
                // truncation whose mark a later one replaced, and nothing retained is
                // missing.
                if batch_open && last_segment && self.rule.expected > self.base.index {
                    self.stop((si, off), "batch ends before its last record".into());
                } else {
                    self.batch_open_at_end = batch_open;
                }
                return Ok((pushes, written));
            };
            let end = end as u64;
            self.rule.accept(&h);
            pushes.push(Push::Record {
                index: h.index,
                term: h.term,
                offset: off,
            });
            written = Some(end);
            let wk = &mut self.walked;
            wk.group_start_after_skipped |= h.group_start && si >= self.skipped_end;
            wk.bytes_scanned += end - off;
            wk.max_group = wk.max_group.max(h.group);
            if seg.appendable() {
                wk.newest_header_seq = Some((h.header_seq, si, off, h.index));
            }
            if h.group_start {
                wk.last_group_start = Some((si, off));
                if (si, off) != wk.last_batch_end {
                    // A sync group starts at a batch boundary: whatever came before is
                    // complete (even a batch cut short by an older truncation).
                    wk.last_batch_end = (si, off);
                    wk.last_batch_end_mark = wk.last.map(|p| p.index);
                }
            }
            // A suffix truncation may have cut a batch short: its last kept record (the
            // fence index, recorded before the cut) ends that batch.
            let batch_end =
                h.batch_end || (self.rule.fence.index != 0 && h.index == self.rule.fence.index);
            batch_open = !batch_end;
            if batch_end {
                wk.last_batch_end = (si, end);
                wk.last_batch_end_mark = None;
            }
            wk.last_accepted_end = (si, end);
            wk.last = Some(Accepted {
                index: h.index,
                term: h.term,
                group: h.group,
            });
            off = end;
        }
    }

    /// After damage at `from` among compacted entries: the first record that verifies with
    /// an index in `(expected, base + 1]`, and that index.
    fn resync<F: VfsFile>(
        &self,
        w: &mut Window<'_, F>,
        seg: &Segment<F>,
        from: u64,
    ) -> Result<Option<(u64, u64)>> {
        let (expected, limit) = (self.rule.expected, self.base.index + 1);
        let mut start = from + 8;
        loop {
            let hit = w.search(
                start,
                seg.format(),
                seg.identity(),
                seg.first_index(),
                |_, h| h.index > expected && h.index <= limit,
            )?;
            let Some((pos, h)) = hit else { return Ok(None) };
            // The header verified; the record must too, payload included.
            if matches!(
                w.frame_at(pos, seg.format(), seg.identity())?,
                Frame::Record { .. }
            ) {
                return Ok(Some((pos, h.index)));
            }
            start = pos + 8;
        }
    }
}

/// Whether no record header of `seg` verifies at or after `from`: the bytes there are not
/// this segment's (a recycled file's old records, or garbage), whatever they are.
fn nothing_of_this_segment<F: VfsFile>(
    w: &mut Window<'_, F>,
    seg: &Segment<F>,
    from: u64,
) -> Result<bool> {
    let hit = w.search(
        from,
        seg.format(),
        seg.identity(),
        seg.first_index(),
        |_, _| true,
    )?;
    Ok(hit.is_none())
}

/// The search after a stop: across the rest of the stream, the first verified header that
/// is not fenced off and starts a sync group (the record at the stop itself excepted), the
/// highest sync group of the verified, not fenced-off headers before it, and the highest of
/// all verified headers (fenced-off ones included) and the newest header sequence, for the
/// groups and the rollback check.
pub(crate) struct AfterStop {
    pub group_start: Option<(String, u64, u64)>,
    pub later_group: u64,
    pub max_group: u64,
    pub newest_header_seq: Option<HeaderSeqSeen>,
}

pub(crate) fn search_after<F: VfsFile>(
    segs: &[Segment<F>],
    lens: &[u64],
    stop: Pos,
    fence: Fence,
) -> Result<AfterStop> {
    let mut out = AfterStop {
        group_start: None,
        later_group: 0,
        max_group: 0,
        newest_header_seq: None,
    };
    for si in stop.0..segs.len() {
        let seg = &segs[si];
        let mut w = Window::new(seg.file(), lens[si]);
        let from = if si == stop.0 {
            stop.1
        } else {
            seg::DATA_START as u64
        };
        let appendable = seg.appendable();
        let hit = w.search(
            from,
            seg.format(),
            seg.identity(),
            seg.first_index(),
            |at, h| {
                out.max_group = out.max_group.max(h.group);
                if appendable
                    && out
                        .newest_header_seq
                        .as_ref()
                        .is_none_or(|(s, ..)| crate::reader::seq_newer(h.header_seq, *s))
                {
                    out.newest_header_seq = Some((h.header_seq, si, at, h.index));
                }
                if fence.voids(h.index, h.group) {
                    return false;
                }
                out.later_group = out.later_group.max(h.group);
                h.group_start && (si, at) != stop
            },
        )?;
        if let Some((at, h)) = hit {
            out.group_start = Some((seg.path().display().to_string(), at, h.group));
            break;
        }
    }
    Ok(out)
}
