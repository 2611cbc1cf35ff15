//! [`Model`]: what the WAL acknowledged, and what it may legitimately hold beyond that.
//!
//! An append is acknowledged when the following `sync()` returned `Ok`; `set_hard_state`,
//! `truncate_suffix`, `compact` and `save_snapshot` are durable when they return `Ok`. An
//! operation that failed, or was cut by a crash, is *in flight*: its effects may or may not
//! be durable, so recovery may show either the state before it or the state after it.

use std::collections::BTreeMap;
use std::fmt;

use raftwal::{Entry, HardState, SnapshotMeta};

/// One call of the WAL's API, as the workloads issue them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `Wal::open_with` (recovery).
    Open,
    /// `append(entries)`.
    Append(Vec<Entry>),
    /// `sync()`.
    Sync,
    /// `set_hard_state(hs)`.
    SetHardState(HardState),
    /// `truncate_suffix(from)`.
    TruncateSuffix(u64),
    /// `compact(index)`.
    Compact(u64),
    /// `save_snapshot(meta, data)`.
    SaveSnapshot(SnapshotMeta, Vec<u8>),
    /// `set_app_meta(blob)`.
    SetAppMeta(Vec<u8>),
    /// `compact_to(meta)`: the base moved without snapshot data, possibly past the end.
    CompactTo(SnapshotMeta),
    /// A pipelined sync: `begin_sync`, these batches appended while it is in flight,
    /// `PendingSync::wait`, `end_sync`. It acknowledges what was appended before it; the
    /// batches are appended, not acknowledged.
    PipelinedSync(Vec<Vec<Entry>>),
}

impl Op {
    /// Whether the operation writes (a poisoned WAL must refuse it).
    pub fn is_write(&self) -> bool {
        !matches!(self, Op::Open)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Open => write!(f, "open"),
            Op::Append(es) => match (es.first(), es.last()) {
                (Some(a), Some(b)) => {
                    write!(f, "append [{}..={}] term {}", a.index, b.index, b.term)
                }
                _ => write!(f, "append []"),
            },
            Op::Sync => write!(f, "sync"),
            Op::SetHardState(hs) => {
                write!(f, "set_hard_state(term {}, vote {:?})", hs.term, hs.vote)
            }
            Op::TruncateSuffix(i) => write!(f, "truncate_suffix({i})"),
            Op::Compact(i) => write!(f, "compact({i})"),
            Op::SetAppMeta(b) => write!(f, "set_app_meta({} bytes)", b.len()),
            Op::CompactTo(m) => write!(f, "compact_to(index {}, term {})", m.index, m.term),
            Op::PipelinedSync(bs) => {
                let n: usize = bs.iter().map(Vec::len).sum();
                write!(f, "pipelined sync, {n} entries appended meanwhile")
            }
            Op::SaveSnapshot(m, d) => {
                write!(
                    f,
                    "save_snapshot(index {}, term {}, {} bytes)",
                    m.index,
                    m.term,
                    d.len()
                )
            }
        }
    }
}

/// The acknowledged state plus everything that may legitimately be found beyond it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    /// Acknowledged term and vote.
    pub hard: HardState,
    /// Acknowledged log base.
    pub base: SnapshotMeta,
    /// Entries `base.index + 1 ..= acked_last` are acknowledged (`acked_last >= base.index`).
    pub acked_last: u64,
    /// The last index appended (acknowledged or not).
    pub last: u64,
    /// What was appended at each index above the base since that index was last truncated:
    /// the only entry allowed there.
    pub log: BTreeMap<u64, Entry>,
    /// Data of every snapshot whose save was attempted, by its meta (a save that failed or
    /// was cut may still have reached the disk).
    pub snapshots: BTreeMap<SnapshotMeta, Vec<Vec<u8>>>,
    /// First index of each group of entries made durable together (by one `sync`, or by a
    /// crash that happened to keep unsynced appends). A damaged record in the last group is
    /// indistinguishable from a torn append.
    pub group_starts: std::collections::BTreeSet<u64>,
    /// Whether the acknowledged base was set by `save_snapshot` (so its snapshot must be
    /// readable), rather than by `compact`.
    pub base_has_snapshot: bool,
    /// The operation whose outcome is unknown (failed, or cut by a crash), if any.
    pub in_flight: Option<Op>,
    /// Entries were appended since the last acknowledged header update (a term or vote
    /// change, a truncation, a compaction, a snapshot, or a recovery).
    pub appended_since_header: bool,
    /// Acknowledged application metadata (`set_app_meta`).
    pub app: Vec<u8>,
    /// The application metadata as of the header update before the last one: what the
    /// older slot may hold.
    pub prev_app: Vec<u8>,
    /// Entries appended since the last acknowledged header update were synced: records
    /// written under the newest header slot's sequence are on the disk, so a fall-back to
    /// the older slot is provably a rollback.
    pub synced_since_header: bool,
}

impl Model {
    /// The term of the entry at `index` as the model knows it (the base term at the base).
    pub fn term(&self, index: u64) -> Option<u64> {
        if index == self.base.index {
            return Some(self.base.term);
        }
        self.log.get(&index).map(|e| e.term)
    }

    /// The highest term of any entry or of the hard state: what new entries should carry.
    pub fn current_term(&self) -> u64 {
        let last_entry_term = self.log.values().next_back().map_or(0, |e| e.term);
        self.hard
            .term
            .max(last_entry_term)
            .max(self.base.term)
            .max(1)
    }

    /// Marks `op` as started: until [`Model::complete`], its outcome is unknown.
    pub fn begin(&mut self, op: &Op) {
        self.in_flight = Some(op.clone());
        // Appended entries may reach the disk even if the call fails half-way.
        match op {
            Op::Append(es) => {
                for e in es {
                    self.log.insert(e.index, e.clone());
                }
            }
            Op::PipelinedSync(bs) => {
                for e in bs.iter().flatten() {
                    self.log.insert(e.index, e.clone());
                }
            }
            Op::SaveSnapshot(meta, data) => {
                let saved = self.snapshots.entry(*meta).or_default();
                if !saved.contains(data) {
                    saved.push(data.clone());
                }
            }
            _ => {}
        }
    }

    /// `op` returned `Ok`: its effects are acknowledged.
    pub fn complete(&mut self, op: &Op) {
        self.in_flight = None;
        match op {
            Op::Open => {}
            Op::Append(es) => {
                if let Some(e) = es.last() {
                    self.last = e.index;
                    self.appended_since_header = true;
                }
            }
            Op::Sync => self.synced(),
            Op::PipelinedSync(bs) => {
                self.synced();
                if let Some(e) = bs.iter().flatten().next_back() {
                    self.last = e.index;
                    self.appended_since_header = true;
                }
            }
            Op::SetHardState(hs) => {
                if *hs != self.hard {
                    self.header_updated();
                }
                self.hard = *hs;
            }
            Op::TruncateSuffix(from) => {
                let keep = from.saturating_sub(1);
                self.log.retain(|&i, _| i <= keep);
                self.group_starts.retain(|&g| g <= keep);
                if *from <= self.last {
                    self.header_updated();
                }
                self.last = self.last.min(keep);
                self.acked_last = self.acked_last.min(keep);
            }
            // At the base, `compact` changes nothing (no header update either).
            Op::Compact(index) if *index > self.base.index => {
                self.base_has_snapshot = false;
                let term = self.term(*index).unwrap_or(self.base.term);
                self.move_base(SnapshotMeta {
                    index: *index,
                    term,
                });
                self.header_updated();
            }
            Op::Compact(_) => {}
            Op::SaveSnapshot(meta, _) => {
                self.move_base(*meta);
                self.base_has_snapshot = true;
                self.header_updated();
            }
            Op::SetAppMeta(blob) => {
                if *blob != self.app {
                    self.header_updated();
                    self.app = blob.clone();
                }
            }
            Op::CompactTo(meta) => {
                if *meta != self.base {
                    self.move_base(*meta);
                    self.base_has_snapshot = false;
                    self.header_updated();
                }
            }
        }
    }

    /// A sync returned: everything appended before it is acknowledged.
    fn synced(&mut self) {
        if self.last > self.acked_last {
            self.group_starts.insert(self.acked_last + 1);
        }
        self.acked_last = self.last;
        self.synced_since_header |= self.appended_since_header;
    }

    /// The header was rewritten: nothing appended under its sequence yet.
    pub fn header_updated(&mut self) {
        self.appended_since_header = false;
        self.synced_since_header = false;
        self.prev_app = self.app.clone();
    }

    /// Whether a snapshot at `meta` discards the whole log (as `Wal::save_snapshot` does):
    /// the log does not hold an entry at `meta.index` with `meta.term` — it ends before that
    /// index (a lagging follower installing a leader's snapshot) or has another term there.
    pub fn snapshot_conflicts(&self, meta: &SnapshotMeta) -> bool {
        meta.index > self.base.index
            && (self.last < meta.index || self.term(meta.index) != Some(meta.term))
    }

    fn move_base(&mut self, meta: SnapshotMeta) {
        if meta.index <= self.base.index {
            return;
        }
        let index = meta.index;
        if self.snapshot_conflicts(&meta) {
            self.log.clear();
            self.group_starts.retain(|&g| g <= index);
            self.last = index;
            self.acked_last = index;
        }
        self.base = meta;
        self.log.retain(|&i, _| i > index);
        self.last = self.last.max(index);
        self.acked_last = self.acked_last.max(index);
    }

    /// `op` failed: its outcome stays unknown (it remains in flight until a recovery decides).
    pub fn fail(&mut self, op: &Op) {
        self.in_flight = Some(op.clone());
    }

    /// First index of the last group made durable together (0 if none is known).
    pub fn last_group_start(&self) -> u64 {
        self.group_starts.iter().next_back().copied().unwrap_or(0)
    }

    /// Acknowledged entries, in order.
    pub fn acked_entries(&self) -> impl Iterator<Item = &Entry> {
        self.log
            .range(self.base.index + 1..=self.acked_last)
            .map(|(_, e)| e)
    }

    /// A short description for violation reports.
    pub fn summary(&self) -> String {
        format!(
            "acked: hard (term {}, vote {:?}), base ({}, {}), entries ..={} (last group from {}); appended ..={}; in flight: {}",
            self.hard.term,
            self.hard.vote,
            self.base.index,
            self.base.term,
            self.acked_last,
            self.last_group_start(),
            self.last,
            self.in_flight
                .as_ref()
                .map_or_else(|| "none".to_owned(), ToString::to_string)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![index as u8],
        }
    }

    fn run(m: &mut Model, op: Op) {
        m.begin(&op);
        m.complete(&op);
    }

    #[test]
    fn appends_are_acknowledged_by_the_next_sync() {
        let mut m = Model::default();
        run(&mut m, Op::Append(vec![e(1, 1), e(2, 1)]));
        assert_eq!((m.last, m.acked_last), (2, 0));
        run(&mut m, Op::Sync);
        assert_eq!(m.acked_last, 2);
        assert_eq!(m.acked_entries().count(), 2);
    }

    #[test]
    fn truncation_forgets_entries_and_compaction_moves_the_base() {
        let mut m = Model::default();
        run(&mut m, Op::Append(vec![e(1, 1), e(2, 1), e(3, 2)]));
        run(&mut m, Op::Sync);
        run(&mut m, Op::TruncateSuffix(3));
        assert_eq!((m.last, m.acked_last, m.log.len()), (2, 2, 2));
        run(&mut m, Op::Compact(1));
        assert_eq!(m.base, SnapshotMeta { index: 1, term: 1 });
        assert_eq!(m.term(2), Some(1));
        let failed = Op::TruncateSuffix(2);
        m.begin(&failed);
        m.fail(&failed);
        assert_eq!(m.in_flight, Some(failed));
        assert!(m.summary().contains("truncate_suffix(2)"));
    }

    #[test]
    fn a_snapshot_the_log_does_not_hold_discards_the_log() {
        let mut m = Model::default();
        run(&mut m, Op::Append(vec![e(1, 1), e(2, 1), e(3, 2)]));
        run(&mut m, Op::Sync);
        let same = SnapshotMeta { index: 2, term: 1 };
        let conflicting = SnapshotMeta { index: 2, term: 3 };
        let past_the_end = SnapshotMeta { index: 9, term: 3 };
        assert!(!m.snapshot_conflicts(&same));
        assert!(m.snapshot_conflicts(&conflicting));
        assert!(m.snapshot_conflicts(&past_the_end));
        let mut kept = m.clone();
        run(&mut kept, Op::SaveSnapshot(same, vec![]));
        assert_eq!((kept.last, kept.acked_last, kept.log.len()), (3, 3, 1));
        run(&mut m, Op::SaveSnapshot(conflicting, vec![]));
        assert_eq!((m.base, m.last, m.acked_last), (conflicting, 2, 2));
        assert!(m.log.is_empty());
        run(&mut m, Op::SaveSnapshot(past_the_end, vec![]));
        assert_eq!((m.base, m.last, m.acked_last), (past_the_end, 9, 9));
    }
}
