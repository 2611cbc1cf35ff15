//! The torn-or-corrupt decision, as a pure function over named facts (see `docs/FORMAT.md`,
//! "Recovery", for the table this implements).

/// A position in the segment stream: (segment position, file offset).
pub(crate) type Pos = (usize, u64);

/// The last record the walk accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub index: u64,
    pub term: u64,
    pub group: u64,
}

/// What the walk and the search after it established about the first bad position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Facts {
    /// Where the stream stopped being valid.
    pub stop: Pos,
    /// The index expected there.
    pub index: Option<u64>,
    /// A verified, not fenced-off record header carrying the *group start* bit after the
    /// stop: (file, offset, group). Its group was written only after every earlier group's
    /// fdatasync returned.
    pub group_start_after: Option<(String, u64, u64)>,
    /// The header's fence index (0: none): entries up to it were durable when it was set.
    pub fence_index: u64,
    /// The highest sync group among the verified, not fenced-off headers after the stop.
    pub later_group: u64,
    /// The last accepted record, if any.
    pub last: Option<Accepted>,
    /// Where the last complete batch ends, and the index to record as the fence when the
    /// log is cut there and nothing on disk marks that record as a batch end.
    pub last_batch_end: Pos,
    pub last_batch_end_mark: Option<u64>,
    /// Where the last accepted record ends.
    pub last_accepted_end: Pos,
}

/// What to do about the stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Synced data is damaged: refuse (or, if the operator chose, cut at `cut`).
    Corrupt { proof: String, cut: Pos },
    /// Everything from the stop on belongs to a write that was never acknowledged: cut at
    /// `cut`; `mark` is the index of the last record kept when that record is not marked as
    /// a batch end on disk (it is then recorded as the fence).
    Torn { cut: Pos, mark: Option<u64> },
}

/// Decides what the bytes at the stop are.
///
/// - Corrupt if a group start follows (proof 1) or the expected index is at or below the
///   fence index (proof 2): the data there was synced.
/// - Otherwise torn. The cut keeps whole batches, except that a later sync group seen after
///   the stop proves the last accepted record's group complete: then its open batch was cut
///   short by a truncation (the rest removed), and the log keeps it up to that record.
pub(crate) fn decide(f: &Facts) -> Decision {
    let proof = match &f.group_start_after {
        Some((path, offset, group)) => Some(format!(
            "the record starting sync group {group} at {path}:{offset} proves this data was \
             synced"
        )),
        None => f
            .index
            .filter(|&i| f.fence_index != 0 && i <= f.fence_index)
            .map(|_| {
                format!(
                    "entries up to {} were synced before the last truncation or open (header)",
                    f.fence_index
                )
            }),
    };
    if let Some(proof) = proof {
        return Decision::Corrupt {
            proof,
            cut: f.last_batch_end,
        };
    }
    match f.last {
        Some(p) if f.later_group > p.group && f.last_accepted_end != f.last_batch_end => {
            Decision::Torn {
                cut: f.last_accepted_end,
                mark: Some(p.index),
            }
        }
        _ => Decision::Torn {
            cut: f.last_batch_end,
            mark: f.last_batch_end_mark,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            stop: (1, 5000),
            index: Some(20),
            group_start_after: None,
            fence_index: 0,
            later_group: 0,
            last: Some(Accepted {
                index: 19,
                term: 2,
                group: 7,
            }),
            last_batch_end: (1, 4800),
            last_batch_end_mark: None,
            last_accepted_end: (1, 5000),
        }
    }

    #[test]
    fn damage_in_the_last_sync_group_is_a_torn_tail_cut_at_the_last_whole_batch() {
        assert_eq!(
            decide(&facts()),
            Decision::Torn {
                cut: (1, 4800),
                mark: None
            }
        );
    }

    #[test]
    fn a_group_start_after_the_damage_proves_it_synced() {
        let f = Facts {
            group_start_after: Some(("/w/1.wal".into(), 6000, 8)),
            ..facts()
        };
        assert!(matches!(
            decide(&f),
            Decision::Corrupt { proof, cut: (1, 4800) } if proof.contains("group 8")
        ));
    }

    #[test]
    fn damage_at_or_below_the_fence_index_is_corruption() {
        let f = Facts {
            fence_index: 20,
            ..facts()
        };
        assert!(matches!(decide(&f), Decision::Corrupt { .. }));
        let f = Facts {
            fence_index: 19,
            ..facts()
        };
        assert!(matches!(decide(&f), Decision::Torn { .. }));
    }

    #[test]
    fn a_later_group_keeps_a_batch_a_truncation_cut_short() {
        let f = Facts {
            later_group: 8,
            ..facts()
        };
        assert_eq!(
            decide(&f),
            Decision::Torn {
                cut: (1, 5000),
                mark: Some(19)
            }
        );
        // Not a later group: the open batch is torn.
        let f = Facts {
            later_group: 7,
            ..facts()
        };
        assert_eq!(
            decide(&f),
            Decision::Torn {
                cut: (1, 4800),
                mark: None
            }
        );
    }

    #[test]
    fn a_cut_where_no_bit_marks_the_batch_end_records_the_mark() {
        let f = Facts {
            last_batch_end_mark: Some(18),
            ..facts()
        };
        assert_eq!(
            decide(&f),
            Decision::Torn {
                cut: (1, 4800),
                mark: Some(18)
            }
        );
    }
}
