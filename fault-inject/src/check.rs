//! The fault model's invariants (`docs/FAULT-MODEL.md`), checked after every recovery.
//!
//! After a crash with no corruption injected, open always succeeds; every acknowledged entry
//! is present and unchanged at its index; nothing truncated or never written appears; the
//! term never decreases and a term's vote never changes (the hard state is the acknowledged
//! one or the one in flight); the snapshot and the log base agree.

use std::fmt;

use raftwal::io::Vfs;
use raftwal::{Entry, HardState, SnapshotMeta, Wal};

use crate::model::{Model, Op};

/// Everything a recovered WAL reports, read back through its API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// `hard_state()`.
    pub hard: HardState,
    /// `snapshot_meta()`.
    pub base: SnapshotMeta,
    /// `first_index()`.
    pub first: u64,
    /// `last_index()`.
    pub last: u64,
    /// `term(base.index)`.
    pub base_term: u64,
    /// `entries(first, last + 1)`.
    pub entries: Vec<Entry>,
    /// `snapshot()`.
    pub snapshot: Option<(SnapshotMeta, Vec<u8>)>,
    /// `app_meta()`.
    pub app: Vec<u8>,
}

impl Recovered {
    /// Reads the whole state of `wal`.
    pub fn read<V: Vfs>(wal: &Wal<V>) -> raftwal::Result<Recovered> {
        let base = wal.snapshot_meta();
        let first = wal.first_index();
        let last = wal.last_index();
        let entries = if last >= first {
            wal.entries(first, last + 1)?
        } else {
            Vec::new()
        };
        Ok(Recovered {
            hard: wal.hard_state(),
            base,
            first,
            last,
            base_term: wal.term(base.index)?,
            entries,
            snapshot: wal.snapshot()?,
            app: wal.app_meta().to_vec(),
        })
    }

    /// A short description.
    pub fn summary(&self) -> String {
        format!(
            "recovered: hard (term {}, vote {:?}), base ({}, {}), entries {}..={}",
            self.hard.term, self.hard.vote, self.base.index, self.base.term, self.first, self.last
        )
    }
}

/// A broken invariant, with what is needed to reproduce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The seed of the run that found it.
    pub seed: u64,
    /// Which invariant, in a sentence.
    pub what: String,
    /// The history that led there (operations, crash, model).
    pub context: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {}: {}\n  {}", self.seed, self.what, self.context)
    }
}

impl std::error::Error for Violation {}

/// Checks a recovered state against the model; returns the number of entries verified, or
/// the first broken invariant.
pub fn check(model: &Model, rec: &Recovered) -> Result<u64, String> {
    check_hard_state(model, rec)?;
    check_app_meta(model, rec)?;
    check_base(model, rec)?;
    check_entries(model, rec)?;
    check_snapshot(model, rec)?;
    Ok(rec.entries.len() as u64)
}

fn check_hard_state(model: &Model, rec: &Recovered) -> Result<(), String> {
    let in_flight = match &model.in_flight {
        Some(Op::SetHardState(hs)) => Some(*hs),
        _ => None,
    };
    if rec.hard == model.hard || Some(rec.hard) == in_flight {
        return Ok(());
    }
    let (got, want) = (rec.hard, model.hard);
    Err(if got.term < want.term {
        format!(
            "term decreased: acknowledged {}, recovered {}",
            want.term, got.term
        )
    } else if got.term == want.term && want.vote.is_some() {
        format!(
            "vote of term {} changed: acknowledged {:?}, recovered {:?}",
            want.term, want.vote, got.vote
        )
    } else {
        format!("hard state {got:?} was never acknowledged nor in flight (acknowledged {want:?})")
    })
}

fn check_app_meta(model: &Model, rec: &Recovered) -> Result<(), String> {
    let in_flight = match &model.in_flight {
        Some(Op::SetAppMeta(b)) => Some(b),
        _ => None,
    };
    if rec.app == model.app || Some(&rec.app) == in_flight {
        return Ok(());
    }
    Err(format!(
        "application metadata of {} bytes is neither the acknowledged one ({} bytes) nor the \
         one in flight",
        rec.app.len(),
        model.app.len()
    ))
}

fn check_base(model: &Model, rec: &Recovered) -> Result<(), String> {
    let in_flight = match &model.in_flight {
        Some(Op::Compact(i)) if *i > model.base.index => {
            model.term(*i).map(|term| SnapshotMeta { index: *i, term })
        }
        Some(Op::SaveSnapshot(m, _)) | Some(Op::CompactTo(m)) => Some(*m),
        _ => None,
    };
    if rec.base != model.base && Some(rec.base) != in_flight {
        return Err(format!(
            "log base {:?} is neither the acknowledged {:?} nor the one in flight {in_flight:?}",
            rec.base, model.base
        ));
    }
    if rec.first != rec.base.index + 1 {
        return Err(format!(
            "first index {} does not follow the base index {}",
            rec.first, rec.base.index
        ));
    }
    if rec.base_term != rec.base.term {
        return Err(format!(
            "term(base index {}) = {} but the base term is {}",
            rec.base.index, rec.base_term, rec.base.term
        ));
    }
    Ok(())
}

/// The index every recovery must reach: the last acknowledged entry, unless a call in
/// flight may have removed entries before it.
pub fn must_reach(model: &Model) -> u64 {
    match &model.in_flight {
        Some(Op::TruncateSuffix(from)) => model.acked_last.min(from.saturating_sub(1)),
        // A conflicting snapshot first truncates the log before its index durably.
        Some(Op::SaveSnapshot(m, _) | Op::CompactTo(m)) if model.snapshot_conflicts(m) => {
            model.acked_last.min(m.index.saturating_sub(1))
        }
        _ => model.acked_last,
    }
}

fn check_entries(model: &Model, rec: &Recovered) -> Result<(), String> {
    let must_reach = must_reach(model);
    if rec.last < must_reach {
        return Err(format!(
            "acknowledged entries lost: last index {} but entries up to {must_reach} were acknowledged",
            rec.last
        ));
    }
    if rec.last < rec.base.index {
        return Err(format!(
            "last index {} below the base {}",
            rec.last, rec.base.index
        ));
    }
    let expected = rec.last - rec.base.index;
    if rec.entries.len() as u64 != expected {
        return Err(format!(
            "entries({}, {}) returned {} entries, expected {expected}",
            rec.first,
            rec.last + 1,
            rec.entries.len()
        ));
    }
    let mut prev_term = rec.base.term;
    for (k, e) in rec.entries.iter().enumerate() {
        let index = rec.base.index + 1 + k as u64;
        if e.index != index {
            return Err(format!(
                "entry at position {index} reports index {}",
                e.index
            ));
        }
        match model.log.get(&index) {
            None => {
                return Err(format!(
                    "entry {index} (term {}) was never written or was truncated, yet it is in the log",
                    e.term
                ))
            }
            Some(want) if want != e => {
                return Err(format!(
                    "entry {index} changed: appended (term {}, {} bytes), recovered (term {}, {} bytes)",
                    want.term,
                    want.data.len(),
                    e.term,
                    e.data.len()
                ))
            }
            Some(_) => {}
        }
        if e.term < prev_term {
            return Err(format!(
                "term goes backwards at entry {index}: {} after {prev_term}",
                e.term
            ));
        }
        prev_term = e.term;
    }
    Ok(())
}

fn check_snapshot(model: &Model, rec: &Recovered) -> Result<(), String> {
    match &rec.snapshot {
        Some((meta, data)) => {
            match model.snapshots.get(meta) {
                Some(saved) if saved.contains(data) => {}
                Some(_) => {
                    return Err(format!(
                        "snapshot {meta:?} data differs from what was saved"
                    ))
                }
                None => return Err(format!("snapshot {meta:?} was never saved")),
            }
            if meta.index > rec.base.index {
                return Err(format!(
                    "snapshot {meta:?} is ahead of the log base {:?}",
                    rec.base
                ));
            }
        }
        None => {
            let from_snapshot = if rec.base == model.base {
                model.base_has_snapshot
            } else {
                matches!(&model.in_flight, Some(Op::SaveSnapshot(m, _)) if *m == rec.base)
            };
            if rec.base.index > 0 && from_snapshot {
                return Err(format!(
                    "the log base {:?} was set by save_snapshot, but no snapshot is found",
                    rec.base
                ));
            }
        }
    }
    Ok(())
}

/// After a successful check following a crash: the recovered state is now what is durable,
/// so it becomes the acknowledged state (entries lost beyond it must never come back).
pub fn promote(model: &mut Model, rec: &Recovered) {
    model.group_starts.retain(|&g| g <= rec.last);
    if rec.last > model.acked_last {
        model.group_starts.insert(model.acked_last + 1);
    }
    model.hard = rec.hard;
    model.app = rec.app.clone();
    model.base = rec.base;
    model.last = rec.last;
    model.acked_last = rec.last;
    model.log = rec.entries.iter().map(|e| (e.index, e.clone())).collect();
    model.base_has_snapshot = matches!(&rec.snapshot, Some((m, _)) if *m == rec.base);
    model.in_flight = None;
    // The open that recovered `rec` rewrote the header.
    model.header_updated();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: vec![index as u8; 3],
        }
    }

    fn model_with(entries: &[Entry], acked: u64) -> Model {
        let mut m = Model::default();
        let op = Op::Append(entries.to_vec());
        m.begin(&op);
        m.complete(&op);
        m.acked_last = acked;
        m.hard = HardState {
            term: 2,
            vote: Some(1),
        };
        m
    }

    fn rec_with(entries: &[Entry], hard: HardState) -> Recovered {
        Recovered {
            hard,
            base: SnapshotMeta::default(),
            first: 1,
            last: entries.len() as u64,
            base_term: 0,
            entries: entries.to_vec(),
            snapshot: None,
            app: Vec::new(),
        }
    }

    #[test]
    fn unacknowledged_tail_may_be_lost_but_acknowledged_entries_may_not() {
        let es = [e(1, 1), e(2, 1), e(3, 2)];
        let m = model_with(&es, 2);
        let hs = m.hard;
        assert_eq!(check(&m, &rec_with(&es, hs)), Ok(3));
        assert_eq!(check(&m, &rec_with(&es[..2], hs)), Ok(2));
        let err = check(&m, &rec_with(&es[..1], hs)).unwrap_err();
        assert!(err.contains("acknowledged entries lost"), "{err}");
    }

    #[test]
    fn changed_or_phantom_entries_and_hard_state_rollback_are_caught() {
        let es = [e(1, 1), e(2, 1)];
        let m = model_with(&es, 2);
        let hs = m.hard;
        let mut changed = es.to_vec();
        changed[1].data = b"other".to_vec();
        assert!(check(&m, &rec_with(&changed, hs))
            .unwrap_err()
            .contains("changed"));
        let phantom = [e(1, 1), e(2, 1), e(3, 1)];
        assert!(check(&m, &rec_with(&phantom, hs))
            .unwrap_err()
            .contains("never written"));
        let older = HardState {
            term: 1,
            vote: Some(1),
        };
        assert!(check(&m, &rec_with(&es, older))
            .unwrap_err()
            .contains("term decreased"));
        let revote = HardState {
            term: 2,
            vote: Some(3),
        };
        assert!(check(&m, &rec_with(&es, revote))
            .unwrap_err()
            .contains("vote of term 2 changed"));
    }

    #[test]
    fn promotion_makes_the_recovered_state_acknowledged() {
        let es = [e(1, 1), e(2, 1), e(3, 1)];
        let mut m = model_with(&es, 1);
        let rec = rec_with(&es[..2], m.hard);
        promote(&mut m, &rec);
        assert_eq!((m.acked_last, m.last), (2, 2));
        // Entry 3 was lost: it must never come back.
        assert!(check(&m, &rec_with(&es, m.hard)).is_err());
    }
}
