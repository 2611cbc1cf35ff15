//! What a power cut leaves: [`CrashPlan`] (an exact choice), [`CrashMode`] (how to choose),
//! and [`CrashReport`] (what was chosen).
//!
//! Per file, any subset of the unsynced operations reaches the disk, in issue order (which
//! models reordering: a later write durable, an earlier one not); one kept write may be torn
//! at sector granularity, its first sectors new and the rest filled with zeros, garbage, or
//! left as they were. Unsynced directory operations are kept or undone independently of
//! file data.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::inode::{sector_pieces, to_usize, write_into, Inode, PendingOp};
use crate::namespace::{DirOp, InodeId};

/// What the unwritten sectors of a torn write hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TornFill {
    /// Zeros (the file grew, the data did not arrive).
    Zeros,
    /// Seeded random bytes (a device that wrote garbage).
    Garbage,
    /// Whatever was there before the write (zeros past the old end): with a small sector
    /// size this gives a half-old, half-new header slot.
    Old,
}

impl fmt::Display for TornFill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TornFill::Zeros => "zeros",
            TornFill::Garbage => "garbage",
            TornFill::Old => "old bytes",
        })
    }
}

/// A write that reached the disk only in part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TornWrite {
    /// Index of the write among the file's pending operations (it must be kept).
    pub op: usize,
    /// How many of its sectors (from the first) hold the new data.
    pub sectors_kept: usize,
    /// What the other sectors hold.
    pub fill: TornFill,
}

/// The crash's choice for one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FileCrash {
    /// Per pending operation, whether it reached the disk (missing = lost).
    pub keep: Vec<bool>,
    /// At most one kept write torn.
    pub torn: Option<TornWrite>,
}

/// An exact crash: per file (by inode), which pending operations reached the disk; which
/// pending directory operations survive. Files not listed lose all pending operations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CrashPlan {
    /// Per inode.
    pub files: BTreeMap<InodeId, FileCrash>,
    /// Per pending directory operation, whether it survives (missing = undone).
    pub dir_keep: Vec<bool>,
}

/// How [`crate::SimFs::crash_with`] chooses what survives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrashMode {
    /// Every unsynced operation lost (the cache is simply dropped).
    LoseAll,
    /// Every unsynced operation reached the disk (as after a clean shutdown).
    KeepAll,
    /// A seeded random subset, possibly with a torn write; `fill` fixes the torn sectors'
    /// content, or `None` lets the seed choose.
    Random {
        /// The fill of torn sectors, if fixed.
        fill: Option<TornFill>,
    },
    /// Exactly this.
    Plan(CrashPlan),
}

/// The unsynced state a crash would decide about (see [`crate::SimFs::pending`]).
#[derive(Debug, Clone, Default)]
pub struct PendingState {
    /// Files with pending operations.
    pub files: Vec<PendingFile>,
    /// Pending directory operations, in order.
    pub dir_ops: Vec<DirOp>,
}

/// One file's pending operations.
#[derive(Debug, Clone)]
pub struct PendingFile {
    /// The inode.
    pub ino: InodeId,
    /// A path naming it (live namespace), if any.
    pub path: Option<PathBuf>,
    /// Per pending operation, the number of sectors it covers (0 for a length change).
    pub op_sectors: Vec<usize>,
}

impl PendingState {
    /// Number of independent survive/lose choices (file operations + directory operations).
    pub fn choices(&self) -> usize {
        self.files.iter().map(|f| f.op_sectors.len()).sum::<usize>() + self.dir_ops.len()
    }

    /// Whether nothing is pending (a crash now changes nothing).
    pub fn is_empty(&self) -> bool {
        self.choices() == 0
    }

    /// The plan that keeps the choices whose bits are set in `mask` (bit `i` = the `i`-th
    /// choice: file operations in file order, then directory operations).
    pub fn plan_from_mask(&self, mask: u64) -> CrashPlan {
        let mut bit = 0u32;
        let mut next = || {
            let set = bit < 64 && mask & (1u64 << bit) != 0;
            bit += 1;
            set
        };
        let mut plan = CrashPlan::default();
        for f in &self.files {
            let keep = f.op_sectors.iter().map(|_| next()).collect();
            plan.files.insert(f.ino, FileCrash { keep, torn: None });
        }
        plan.dir_keep = self.dir_ops.iter().map(|_| next()).collect();
        plan
    }

    /// A seeded random plan: each operation survives with probability 1/2 (with extra weight
    /// on "all" and "none" per file), and with probability 1/2 one kept write of a file is
    /// torn.
    pub fn random_plan(&self, rng: &mut StdRng, fill: Option<TornFill>) -> CrashPlan {
        let mut plan = CrashPlan::default();
        for f in &self.files {
            let n = f.op_sectors.len();
            let keep: Vec<bool> = match rng.gen_range(0..4) {
                0 => vec![false; n],
                1 => vec![true; n],
                2 => {
                    let cut = rng.gen_range(0..=n);
                    (0..n).map(|i| i < cut).collect()
                }
                _ => (0..n).map(|_| rng.gen_bool(0.5)).collect(),
            };
            let tearable: Vec<usize> = (0..n).filter(|&i| keep[i] && f.op_sectors[i] > 0).collect();
            let torn = if !tearable.is_empty() && rng.gen_bool(0.5) {
                let op = tearable[rng.gen_range(0..tearable.len())];
                Some(TornWrite {
                    op,
                    sectors_kept: rng.gen_range(0..f.op_sectors[op]),
                    fill: fill.unwrap_or_else(|| random_fill(rng)),
                })
            } else {
                None
            };
            plan.files.insert(f.ino, FileCrash { keep, torn });
        }
        plan.dir_keep = self.dir_ops.iter().map(|_| rng.gen_bool(0.5)).collect();
        plan
    }
}

/// A seeded choice among the three fills.
pub(crate) fn random_fill(rng: &mut StdRng) -> TornFill {
    match rng.gen_range(0..3) {
        0 => TornFill::Zeros,
        1 => TornFill::Garbage,
        _ => TornFill::Old,
    }
}

/// What a crash did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCrashReport {
    /// A path naming the file before the crash (or `#ino` if it had none).
    pub path: String,
    /// Pending operations.
    pub pending: usize,
    /// Of those, how many reached the disk (whole or torn).
    pub kept: usize,
    /// The torn write: (operation, sectors kept, sectors in all, fill).
    pub torn: Option<(usize, usize, usize, TornFill)>,
}

/// What a crash did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// The seed it was made with.
    pub seed: u64,
    /// Files that had pending operations.
    pub files: Vec<FileCrashReport>,
    /// Pending directory operations that survived.
    pub dir_ops_kept: usize,
    /// Pending directory operations undone (or skipped because they no longer made sense).
    pub dir_ops_undone: Vec<String>,
}

impl CrashReport {
    /// Whether the crash tore a write.
    pub fn torn(&self) -> bool {
        self.files.iter().any(|f| f.torn.is_some())
    }

    /// Unsynced file operations lost.
    pub fn ops_lost(&self) -> usize {
        self.files.iter().map(|f| f.pending - f.kept).sum()
    }
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "crash(seed {})", self.seed)?;
        for file in &self.files {
            write!(f, "; {}: {}/{} kept", file.path, file.kept, file.pending)?;
            if let Some((op, kept, all, fill)) = file.torn {
                write!(f, ", op {op} torn at {kept}/{all} sectors ({fill})")?;
            }
        }
        if self.dir_ops_kept > 0 || !self.dir_ops_undone.is_empty() {
            write!(
                f,
                "; dir ops kept {}, undone [{}]",
                self.dir_ops_kept,
                self.dir_ops_undone.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Applies one file's crash choice: the durable image gets the kept operations, in order.
pub(crate) fn crash_file(
    inode: &mut Inode,
    choice: Option<&FileCrash>,
    sector: u64,
    garbage: &mut StdRng,
    path: String,
) -> FileCrashReport {
    let pending = std::mem::take(&mut inode.pending);
    let mut report = FileCrashReport {
        path,
        pending: pending.len(),
        kept: 0,
        torn: None,
    };
    for (i, op) in pending.iter().enumerate() {
        let keep = choice.and_then(|c| c.keep.get(i).copied()).unwrap_or(false);
        if !keep {
            continue;
        }
        report.kept += 1;
        let torn = choice.and_then(|c| c.torn).filter(|t| t.op == i);
        match (op, torn) {
            (PendingOp::Write { offset, data }, Some(t)) => {
                let pieces = sector_pieces(*offset, data.len(), sector);
                for (k, &(start, len)) in pieces.iter().enumerate() {
                    let at = offset + start as u64;
                    if k < t.sectors_kept {
                        write_into(&mut inode.durable, at, &data[start..start + len]);
                        continue;
                    }
                    match t.fill {
                        TornFill::Zeros => write_into(&mut inode.durable, at, &vec![0; len]),
                        TornFill::Garbage => {
                            let mut junk = vec![0u8; len];
                            garbage.fill(&mut junk[..]);
                            write_into(&mut inode.durable, at, &junk);
                        }
                        TornFill::Old => {
                            let end = to_usize(at).saturating_add(len);
                            if inode.durable.len() < end {
                                inode.durable.resize(end, 0);
                            }
                        }
                    }
                }
                report.torn = Some((i, t.sectors_kept, pieces.len(), t.fill));
            }
            _ => op.apply(&mut inode.durable),
        }
    }
    inode.reset_to_durable();
    report
}

/// A deterministic generator for garbage bytes and random choices.
pub(crate) fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inode_with(ops: Vec<PendingOp>) -> Inode {
        let mut ino = Inode::default();
        for op in ops {
            ino.push(op);
        }
        ino
    }

    #[test]
    fn torn_write_keeps_leading_sectors_and_fills_the_rest() {
        for fill in [TornFill::Zeros, TornFill::Garbage, TornFill::Old] {
            let mut ino = inode_with(vec![PendingOp::Write {
                offset: 0,
                data: vec![7; 1024],
            }]);
            let choice = FileCrash {
                keep: vec![true],
                torn: Some(TornWrite {
                    op: 0,
                    sectors_kept: 1,
                    fill,
                }),
            };
            let r = crash_file(&mut ino, Some(&choice), 512, &mut rng(1), "f".into());
            assert_eq!(r.torn, Some((0, 1, 2, fill)));
            assert_eq!(ino.durable.len(), 1024, "the file grew by the whole write");
            assert!(ino.durable[..512].iter().all(|&b| b == 7));
            match fill {
                TornFill::Zeros | TornFill::Old => {
                    assert!(ino.durable[512..].iter().all(|&b| b == 0))
                }
                TornFill::Garbage => assert!(ino.durable[512..].iter().any(|&b| b != 0)),
            }
            assert_eq!(ino.live, ino.durable);
        }
    }

    #[test]
    fn old_fill_with_small_sectors_leaves_half_old_half_new() {
        let mut ino = Inode::default();
        ino.push(PendingOp::Write {
            offset: 0,
            data: vec![1; 16],
        });
        ino.sync();
        ino.push(PendingOp::Write {
            offset: 0,
            data: vec![2; 16],
        });
        let choice = FileCrash {
            keep: vec![true],
            torn: Some(TornWrite {
                op: 0,
                sectors_kept: 1,
                fill: TornFill::Old,
            }),
        };
        crash_file(&mut ino, Some(&choice), 8, &mut rng(0), "hdr".into());
        assert_eq!(ino.durable, [[2u8; 8], [1u8; 8]].concat());
    }

    #[test]
    fn a_later_write_may_survive_without_an_earlier_one() {
        let mut ino = inode_with(vec![
            PendingOp::Write {
                offset: 0,
                data: vec![1; 512],
            },
            PendingOp::Write {
                offset: 512,
                data: vec![2; 512],
            },
        ]);
        let choice = FileCrash {
            keep: vec![false, true],
            torn: None,
        };
        let r = crash_file(&mut ino, Some(&choice), 512, &mut rng(0), "f".into());
        assert_eq!(r.kept, 1);
        assert_eq!(&ino.durable[..512], &[0u8; 512][..]);
        assert_eq!(&ino.durable[512..], &[2u8; 512][..]);
    }

    #[test]
    fn plans_from_masks_and_seeds_are_deterministic() {
        let st = PendingState {
            files: vec![PendingFile {
                ino: 3,
                path: None,
                op_sectors: vec![1, 0, 2],
            }],
            dir_ops: vec![DirOp::Create {
                path: "/d/x".into(),
                ino: 3,
            }],
        };
        assert_eq!(st.choices(), 4);
        let p = st.plan_from_mask(0b1010);
        assert_eq!(p.files[&3].keep, vec![false, true, false]);
        assert_eq!(p.dir_keep, vec![true]);
        let a = st.random_plan(&mut rng(9), None);
        let b = st.random_plan(&mut rng(9), None);
        assert_eq!(a, b);
    }
}
