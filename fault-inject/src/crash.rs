//! What a power cut leaves: [`CrashPlan`] (an exact choice), [`CrashMode`] (how to choose),
//! and [`CrashReport`] (what was chosen).
//!
//! Two models of how a file's unsynced data reaches the disk ([`Writeback`]):
//!
//! - **Writes** (the default): any subset of the unsynced operations reaches the disk, in
//!   issue order (which models reordering: a later write durable, an earlier one not); one
//!   kept write may be torn at sector granularity, its first sectors new and the rest filled
//!   with zeros, garbage, or left as they were.
//! - **Pages**: a page cache writes back whole pages. Every page a pending write dirtied is
//!   independently lost, or written as the cache held it right after one of the writes that
//!   dirtied it — *all* of the page, including bytes the write did not change — and a
//!   written page may be torn: any subset of its sectors (not only a suffix: sectors of one
//!   write persist out of order) holds zeros, garbage or the old bytes instead. So several
//!   writes of a file may be torn at once, and a write into one half of a page can destroy
//!   the other half. Length changes reach the disk as a prefix of them.
//!
//! Unsynced directory operations are kept or undone independently of file data.

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

/// How one dirty page fares in a page-level crash ([`Writeback::Pages`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageFate {
    /// The page reached the disk as the cache held it right after this many (from 1) of
    /// the pending writes that dirtied it.
    pub writes: usize,
    /// Sectors of that page write that did not arrive (bit `i`: the page's `i`-th sector).
    pub lost_sectors: u64,
    /// What the lost sectors hold.
    pub fill: TornFill,
}

/// The crash's choice for one file under page-level writeback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PageCrash {
    /// Length changes (`set_len`, `allocate`) that reached the disk: this many, from the
    /// first.
    pub resizes_kept: usize,
    /// Per dirty page (by page number), its fate; a page not listed never reached the disk.
    pub pages: BTreeMap<u64, PageFate>,
}

/// How unsynced file data reaches the disk in a power cut (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writeback {
    /// Each pending operation is a unit: kept, lost, or (one per file) torn.
    Writes,
    /// Each dirty page of `page` bytes is a unit: lost, written whole as of one of its
    /// writes, or torn in any subset of its sectors.
    Pages {
        /// Page size in bytes (4096 on Linux).
        page: u64,
    },
}

/// What a torn write can damage: the device's overwrite semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Powersafe overwrite (SQLite's term): bytes a write does not change keep their content
    /// whatever happens to the write; the changed bytes of a lost sector end up old, zeroed
    /// or garbage. The assumption SQLite makes by default, and PostgreSQL's, etcd's and
    /// raft-engine's logs make about the page they append into.
    Powersafe,
    /// A device without powersafe overwrite: any sector being written may end up zeroed or
    /// garbage, even where its bytes did not change — under page writeback, any sector of a
    /// page being written back (shorn writes on some SSDs without power-loss protection).
    Shorn,
}

/// An exact crash: per file (by inode), which pending operations (or, in `pages`, which
/// dirty pages) reached the disk; which pending directory operations survive. Files listed
/// in neither map lose all pending operations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CrashPlan {
    /// Per inode, under the write model.
    pub files: BTreeMap<InodeId, FileCrash>,
    /// Per inode, under the page model (takes precedence over `files`).
    pub pages: BTreeMap<InodeId, PageCrash>,
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
#[derive(Debug, Clone)]
pub struct PendingState {
    /// Files with pending operations.
    pub files: Vec<PendingFile>,
    /// Pending directory operations, in order.
    pub dir_ops: Vec<DirOp>,
    /// How the file system writes back dirty data.
    pub writeback: Writeback,
    /// Tear unit in bytes.
    pub sector: u64,
}

impl Default for PendingState {
    fn default() -> Self {
        PendingState {
            files: Vec::new(),
            dir_ops: Vec::new(),
            writeback: Writeback::Writes,
            sector: 512,
        }
    }
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
    /// Under page writeback: each dirty page and how many pending writes dirtied it.
    pub dirty_pages: Vec<(u64, usize)>,
    /// Pending length changes.
    pub resizes: usize,
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
    /// torn. Under page writeback, the same per dirty page instead (see
    /// [`PendingState::random_page_crash`]).
    pub fn random_plan(&self, rng: &mut StdRng, fill: Option<TornFill>) -> CrashPlan {
        let mut plan = CrashPlan::default();
        if let Writeback::Pages { page } = self.writeback {
            for f in &self.files {
                let crash = self.random_page_crash(f, page, rng, fill);
                plan.pages.insert(f.ino, crash);
            }
            plan.dir_keep = self.dir_ops.iter().map(|_| rng.gen_bool(0.5)).collect();
            return plan;
        }
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

impl PendingState {
    /// Sectors per page under page writeback (at most 64: the width of a sector mask).
    pub fn sectors_per_page(&self, page: u64) -> u32 {
        (page / self.sector.max(1)).clamp(1, 64) as u32
    }

    /// A seeded page-level crash of one file: all pages lost, all written, or each written
    /// with probability 1/2; a written page as of its last write (mostly) or an earlier
    /// one; a quarter of written pages torn in a random subset of sectors.
    pub fn random_page_crash(
        &self,
        f: &PendingFile,
        page: u64,
        rng: &mut StdRng,
        fill: Option<TornFill>,
    ) -> PageCrash {
        let per_page = self.sectors_per_page(page);
        let all_sectors = if per_page == 64 {
            u64::MAX
        } else {
            (1u64 << per_page) - 1
        };
        let mode = rng.gen_range(0..4);
        let resizes_kept = match rng.gen_range(0..3) {
            0 => 0,
            1 => f.resizes,
            _ => rng.gen_range(0..=f.resizes),
        };
        let mut pages = BTreeMap::new();
        for &(p, n) in &f.dirty_pages {
            let written = match mode {
                0 => false,
                1 => true,
                _ => rng.gen_bool(0.5),
            };
            if !written || n == 0 {
                continue;
            }
            let writes = if rng.gen_bool(0.75) {
                n
            } else {
                rng.gen_range(1..=n)
            };
            let lost_sectors = if rng.gen_bool(0.25) {
                rng.gen::<u64>() & all_sectors
            } else {
                0
            };
            let fill = fill.unwrap_or_else(|| random_fill(rng));
            pages.insert(
                p,
                PageFate {
                    writes,
                    lost_sectors,
                    fill,
                },
            );
        }
        PageCrash {
            resizes_kept,
            pages,
        }
    }
}

/// The pages `[offset, offset + len)` touches.
pub(crate) fn pages_of(offset: u64, len: usize, page: u64) -> std::ops::RangeInclusive<u64> {
    let page = page.max(1);
    if len == 0 {
        #[allow(clippy::reversed_empty_ranges)]
        return 1..=0;
    }
    offset / page..=(offset + len as u64 - 1) / page
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
    /// Under page writeback: (dirty pages, pages written, pages torn).
    pub pages: Option<(usize, usize, usize)>,
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
    /// Whether the crash tore a write (or a page).
    pub fn torn(&self) -> bool {
        self.files
            .iter()
            .any(|f| f.torn.is_some() || f.pages.is_some_and(|(_, _, torn)| torn > 0))
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
            if let Some((dirty, written, torn)) = file.pages {
                write!(
                    f,
                    "; {}: {}/{} dirty pages written, {torn} torn",
                    file.path, written, dirty
                )?;
                continue;
            }
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
    (sector, overwrite): (u64, Overwrite),
    garbage: &mut StdRng,
    path: String,
) -> FileCrashReport {
    let pending = std::mem::take(&mut inode.pending);
    let mut report = FileCrashReport {
        path,
        pending: pending.len(),
        kept: 0,
        torn: None,
        pages: None,
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
                    let new = &data[start..start + len];
                    let bytes = if k < t.sectors_kept {
                        new.to_vec()
                    } else {
                        torn_bytes(&inode.durable, at, new, t.fill, overwrite, garbage)
                    };
                    write_into(&mut inode.durable, at, &bytes);
                }
                report.torn = Some((i, t.sectors_kept, pieces.len(), t.fill));
            }
            _ => op.apply(&mut inode.durable),
        }
    }
    inode.reset_to_durable();
    report
}

/// Applies one file's page-level crash choice: the pending operations are replayed on the
/// cache as it stood before them; each kept length change reaches the disk at its turn, and
/// each written page reaches it, whole (or torn) as the cache held it, right after the write
/// its fate names.
pub(crate) fn crash_file_pages(
    inode: &mut Inode,
    choice: Option<&PageCrash>,
    geometry: (u64, u64, Overwrite),
    garbage: &mut StdRng,
    path: String,
) -> FileCrashReport {
    let (page, sector, tear) = geometry;
    let pending = std::mem::take(&mut inode.pending);
    let none = PageCrash::default();
    let choice = choice.unwrap_or(&none);
    let mut cache = std::mem::take(&mut inode.base);
    let mut disk = inode.durable.clone();
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    let mut resizes = 0;
    let (mut written, mut torn, mut kept) = (0, 0, 0);
    for op in &pending {
        op.apply(&mut cache);
        match op {
            PendingOp::SetLen(len) => {
                if resizes < choice.resizes_kept {
                    disk.resize(to_usize(*len), 0);
                    kept += 1;
                }
                resizes += 1;
            }
            PendingOp::Write { offset, data } => {
                let mut whole = true;
                for p in pages_of(*offset, data.len(), page) {
                    let rank = seen.entry(p).or_insert(0);
                    *rank += 1;
                    let fate = choice.pages.get(&p);
                    whole &= fate.is_some_and(|f| f.writes >= *rank && f.lost_sectors == 0);
                    let Some(fate) = fate.filter(|f| f.writes == *rank) else {
                        continue;
                    };
                    let at = (p * page, page, sector);
                    write_page(&mut disk, &cache, at, tear, fate, garbage);
                    written += 1;
                    torn += usize::from(fate.lost_sectors != 0);
                }
                kept += usize::from(whole);
            }
        }
    }
    inode.durable = disk;
    inode.reset_to_durable();
    FileCrashReport {
        path,
        pending: pending.len(),
        kept,
        torn: None,
        pages: Some((seen.len(), written, torn)),
    }
}

/// Writes the page at `start` as `cache` holds it (clipped to the cache's length) into
/// `disk`, its lost sectors filled as `fate` says (under [`Overwrite::Powersafe`], only those
/// whose bytes change).
fn write_page(
    disk: &mut Vec<u8>,
    cache: &[u8],
    (start, page, sector): (u64, u64, u64),
    tear: Overwrite,
    fate: &PageFate,
    garbage: &mut StdRng,
) {
    let start = to_usize(start);
    let end = start.saturating_add(to_usize(page)).min(cache.len());
    let sector = to_usize(sector.max(1));
    let mut at = start;
    let mut i = 0u32;
    while at < end {
        let next = at.saturating_add(sector).min(end);
        let lost = i < 64 && fate.lost_sectors & (1u64 << i) != 0;
        let bytes = if lost {
            torn_bytes(disk, at as u64, &cache[at..next], fate.fill, tear, garbage)
        } else {
            cache[at..next].to_vec()
        };
        write_into(disk, at as u64, &bytes);
        at = next;
        i += 1;
    }
}

/// What a sector of a torn write holds instead of `new` (to be written at `at` over `disk`):
/// `fill`, except, under [`Overwrite::Powersafe`], where a byte does not change.
fn torn_bytes(
    disk: &[u8],
    at: u64,
    new: &[u8],
    fill: TornFill,
    overwrite: Overwrite,
    garbage: &mut StdRng,
) -> Vec<u8> {
    let at = to_usize(at);
    let old: Vec<u8> = (0..new.len())
        .map(|k| disk.get(at + k).copied().unwrap_or(0))
        .collect();
    let mut bytes = match fill {
        TornFill::Zeros => vec![0; new.len()],
        TornFill::Garbage => {
            let mut junk = vec![0u8; new.len()];
            garbage.fill(&mut junk[..]);
            junk
        }
        TornFill::Old => old.clone(),
    };
    if overwrite == Overwrite::Powersafe {
        for (k, b) in bytes.iter_mut().enumerate() {
            if old[k] == new[k] {
                *b = old[k];
            }
        }
    }
    bytes
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
            let r = crash_file(
                &mut ino,
                Some(&choice),
                (512, Overwrite::Shorn),
                &mut rng(1),
                "f".into(),
            );
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
        crash_file(
            &mut ino,
            Some(&choice),
            (8, Overwrite::Shorn),
            &mut rng(0),
            "hdr".into(),
        );
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
        let r = crash_file(
            &mut ino,
            Some(&choice),
            (512, Overwrite::Shorn),
            &mut rng(0),
            "f".into(),
        );
        assert_eq!(r.kept, 1);
        assert_eq!(&ino.durable[..512], &[0u8; 512][..]);
        assert_eq!(&ino.durable[512..], &[2u8; 512][..]);
    }

    fn page_crash(pages: &[(u64, usize, u64, TornFill)], resizes_kept: usize) -> PageCrash {
        PageCrash {
            resizes_kept,
            pages: pages
                .iter()
                .map(|&(p, writes, lost_sectors, fill)| {
                    (
                        p,
                        PageFate {
                            writes,
                            lost_sectors,
                            fill,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_torn_page_write_can_destroy_bytes_the_write_never_touched() {
        // Two 512-byte slots in one 4 KiB page, both durable; only slot 1 is rewritten.
        let mut ino = Inode::default();
        ino.push(PendingOp::Write {
            offset: 0,
            data: vec![1; 1024],
        });
        ino.sync();
        ino.push(PendingOp::Write {
            offset: 512,
            data: vec![2; 512],
        });
        let plan = page_crash(&[(0, 1, 0b01, TornFill::Zeros)], 0);
        let r = crash_file_pages(
            &mut ino,
            Some(&plan),
            (4096, 512, Overwrite::Shorn),
            &mut rng(0),
            "HEADER".into(),
        );
        assert_eq!(r.pages, Some((1, 1, 1)));
        assert!(ino.durable[..512].iter().all(|&b| b == 0), "slot 0 lost");
        assert!(ino.durable[512..].iter().all(|&b| b == 2), "slot 1 new");
        // Out of order: the second sector lost, the first written.
        let mut ino2 = Inode::default();
        ino2.push(PendingOp::Write {
            offset: 0,
            data: vec![1; 1024],
        });
        ino2.sync();
        ino2.push(PendingOp::Write {
            offset: 0,
            data: vec![3; 1024],
        });
        let plan = page_crash(&[(0, 1, 0b10, TornFill::Old)], 0);
        crash_file_pages(
            &mut ino2,
            Some(&plan),
            (4096, 512, Overwrite::Shorn),
            &mut rng(0),
            "f".into(),
        );
        assert_eq!(ino2.durable, [vec![3u8; 512], vec![1u8; 512]].concat());
    }

    #[test]
    fn a_powersafe_torn_page_keeps_the_bytes_the_write_did_not_change() {
        let mut ino = Inode::default();
        ino.push(PendingOp::Write {
            offset: 0,
            data: vec![1; 1024],
        });
        ino.sync();
        ino.push(PendingOp::Write {
            offset: 512,
            data: vec![2; 512],
        });
        let plan = page_crash(&[(0, 1, 0b11, TornFill::Garbage)], 0);
        let geometry = (4096, 512, Overwrite::Powersafe);
        crash_file_pages(&mut ino, Some(&plan), geometry, &mut rng(0), "f".into());
        assert!(
            ino.durable[..512].iter().all(|&b| b == 1),
            "unchanged sector kept"
        );
        assert!(
            ino.durable[512..].iter().any(|&b| b != 2),
            "changed sector torn"
        );
        // Within one sector, too: bytes the write does not change survive its tear.
        let mut ino = Inode::default();
        ino.push(PendingOp::Write {
            offset: 0,
            data: vec![1; 100],
        });
        ino.sync();
        ino.push(PendingOp::Write {
            offset: 100,
            data: vec![2; 100],
        });
        let plan = page_crash(&[(0, 1, 0b1, TornFill::Garbage)], 0);
        crash_file_pages(&mut ino, Some(&plan), geometry, &mut rng(0), "f".into());
        assert!(
            ino.durable[..100].iter().all(|&b| b == 1),
            "synced bytes kept"
        );
    }

    #[test]
    fn a_page_is_written_as_the_cache_held_it_including_bytes_a_failed_sync_lost() {
        // The cache holds bytes 0..8 that a failed fsync marked clean (never durable); a
        // later write dirties the same page, whose writeback then carries them too.
        let mut ino = Inode {
            live: vec![7; 8],
            ..Inode::default()
        };
        ino.push(PendingOp::Write {
            offset: 8,
            data: vec![9; 8],
        });
        let plan = page_crash(&[(0, 1, 0, TornFill::Zeros)], 0);
        crash_file_pages(
            &mut ino,
            Some(&plan),
            (4096, 512, Overwrite::Shorn),
            &mut rng(0),
            "f".into(),
        );
        assert_eq!(ino.durable, [[7u8; 8], [9u8; 8]].concat());
    }

    #[test]
    fn pages_as_of_an_earlier_write_and_length_changes_as_a_prefix() {
        let mut ino = Inode::default();
        for (i, v) in [(0u64, 1u8), (0, 2), (4096, 3)] {
            ino.push(PendingOp::Write {
                offset: i,
                data: vec![v; 4096],
            });
        }
        ino.push(PendingOp::SetLen(4096));
        // Page 0 as after its first write; page 1 written; the shrink lost.
        let plan = page_crash(&[(0, 1, 0, TornFill::Zeros), (1, 1, 0, TornFill::Zeros)], 0);
        let mut a = ino.clone();
        crash_file_pages(
            &mut a,
            Some(&plan),
            (4096, 512, Overwrite::Shorn),
            &mut rng(0),
            "f".into(),
        );
        assert_eq!(a.durable.len(), 8192);
        assert!(a.durable[..4096].iter().all(|&b| b == 1));
        assert!(a.durable[4096..].iter().all(|&b| b == 3));
        // The shrink kept: it cuts page 1 again.
        let plan = page_crash(&[(1, 1, 0, TornFill::Zeros)], 1);
        crash_file_pages(
            &mut ino,
            Some(&plan),
            (4096, 512, Overwrite::Shorn),
            &mut rng(0),
            "f".into(),
        );
        assert_eq!(ino.durable, vec![0u8; 4096]);
    }

    #[test]
    fn plans_from_masks_and_seeds_are_deterministic() {
        let st = PendingState {
            files: vec![PendingFile {
                ino: 3,
                path: None,
                op_sectors: vec![1, 0, 2],
                dirty_pages: vec![],
                resizes: 1,
            }],
            dir_ops: vec![DirOp::Create {
                path: "/d/x".into(),
                ino: 3,
            }],
            ..PendingState::default()
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
