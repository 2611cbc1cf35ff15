//! [`Disk`]: the simulated machine's state — inodes, namespace, locks, faults, counters —
//! and the operations on it that `SimFs` and `SimFile` share (fault firing among them).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::Rng;

use crate::counters::Counters;
use crate::crash::{pages_of, Overwrite, PendingFile, PendingState, Writeback};
use crate::fault::{enospc, path_matches, ActiveFault, Fault, FaultCounts, SyncFailure};
use crate::identity::Identities;
use crate::inode::{to_usize, Inode, PendingOp};
use crate::namespace::{DirOp, InodeId, Namespace};

/// The whole simulated machine state (disk, page cache, faults, counters). Cloning it is a
/// deep copy, which is how crash-state exploration forks the machine at every I/O call.
#[derive(Debug, Clone)]
pub(crate) struct Disk {
    pub(crate) inodes: BTreeMap<InodeId, Inode>,
    pub(crate) next_ino: InodeId,
    pub(crate) ns: Namespace,
    /// Bumped by every crash; handles from an older epoch are invalid.
    pub(crate) epoch: u64,
    pub(crate) locks: BTreeSet<PathBuf>,
    pub(crate) faults: Vec<ActiveFault>,
    pub(crate) space_budget: Option<u64>,
    pub(crate) sector: u64,
    /// How unsynced data reaches the disk in a power cut.
    pub(crate) writeback: Writeback,
    /// What a torn write can damage.
    pub(crate) overwrite: Overwrite,
    /// Whether `allocate` reserves space (`fallocate`); off, it writes zeros, like a file
    /// system without `fallocate` (some FUSE file systems), and those writes tear like any.
    pub(crate) fallocate: bool,
    /// Seeded choices of fault behaviour (short writes, sync failure modes).
    pub(crate) rng: StdRng,
    pub(crate) counters: Counters,
    pub(crate) fault_counts: FaultCounts,
    pub(crate) crashes: u64,
    /// Every segment header written, to catch a reused identity.
    pub(crate) identities: Identities,
    /// Mutating I/O calls served (the crash points of an exploration).
    pub(crate) io_calls: u64,
}

impl Disk {
    pub(crate) fn live_bytes(&self) -> u64 {
        let inos: BTreeSet<InodeId> = self.ns.live.entries.values().copied().collect();
        inos.iter()
            .filter_map(|i| self.inodes.get(i))
            .map(|i| i.live.len() as u64)
            .sum()
    }

    /// The current live name of inode `ino` (after renames), if it has one.
    pub(crate) fn path_of(&self, ino: InodeId) -> Option<PathBuf> {
        self.ns
            .live
            .entries
            .iter()
            .find(|(_, i)| **i == ino)
            .map(|(p, _)| p.clone())
    }

    pub(crate) fn lookup(&self, path: &Path) -> io::Result<InodeId> {
        self.ns.live.entries.get(path).copied().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such file", path.display()),
            )
        })
    }

    pub(crate) fn inode_mut(&mut self, ino: InodeId) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&ino)
            .ok_or_else(|| io::Error::other(format!("inode {ino} vanished")))
    }

    pub(crate) fn pending(&self) -> PendingState {
        let names: BTreeMap<InodeId, PathBuf> = self
            .ns
            .live
            .entries
            .iter()
            .map(|(p, i)| (*i, p.clone()))
            .collect();
        let sector = self.sector;
        let page = match self.writeback {
            Writeback::Pages { page } => Some(page),
            Writeback::Writes => None,
        };
        PendingState {
            files: self
                .inodes
                .iter()
                .filter(|(_, i)| !i.pending.is_empty())
                .map(|(ino, i)| PendingFile {
                    ino: *ino,
                    path: names.get(ino).cloned(),
                    op_sectors: i.pending.iter().map(|op| op.sectors(sector)).collect(),
                    dirty_pages: page.map_or_else(Vec::new, |page| dirty_pages(&i.pending, page)),
                    resizes: i
                        .pending
                        .iter()
                        .filter(|op| matches!(op, PendingOp::SetLen(_)))
                        .count(),
                })
                .collect(),
            dir_ops: self.ns.pending.clone(),
            writeback: self.writeback,
            sector,
        }
    }

    /// Checks the faults of one kind against a call on `path`; returns the fault that fires,
    /// removing it unless it fires every time (`EverySyncEio`).
    pub(crate) fn fire(&mut self, path: &Path, kind: FaultKind) -> Option<Fault> {
        let p = path.to_string_lossy();
        let idx = self.faults.iter_mut().position(|af| {
            let matches = match (&af.fault, kind) {
                (Fault::WriteEio { path, .. }, FaultKind::Write) => {
                    path_matches(path.as_deref(), &p)
                }
                (
                    Fault::SyncEio { path, .. } | Fault::EverySyncEio { path, .. },
                    FaultKind::Sync,
                ) => path_matches(path.as_deref(), &p),
                (Fault::SyncPanic { .. }, FaultKind::Sync) => true,
                (Fault::DirSyncEio { .. }, FaultKind::DirSync) => true,
                _ => false,
            };
            if !matches {
                return false;
            }
            let after = match &af.fault {
                Fault::WriteEio { after, .. }
                | Fault::SyncEio { after, .. }
                | Fault::SyncPanic { after }
                | Fault::DirSyncEio { after } => *after,
                Fault::EverySyncEio { .. } => 0,
                _ => u64::MAX,
            };
            if af.seen >= after {
                true
            } else {
                af.seen += 1;
                false
            }
        })?;
        match &self.faults[idx].fault {
            Fault::EverySyncEio { .. } => Some(self.faults[idx].fault.clone()),
            _ => Some(self.faults.remove(idx).fault),
        }
    }

    /// Whether a read of `[offset, offset + len)` of `path` hits a latent sector error.
    pub(crate) fn read_fails(&mut self, path: &Path, ino: InodeId, offset: u64, len: u64) -> bool {
        let p = path.to_string_lossy();
        let hit = self.faults.iter().any(|af| match &af.fault {
            Fault::ReadEio {
                path,
                offset: o,
                len: l,
            } => {
                let file = af
                    .ino
                    .map_or_else(|| p.contains(path.as_str()), |i| i == ino);
                file && offset < o + l && *o < offset + len
            }
            _ => false,
        });
        if hit {
            self.fault_counts.read_eio += 1;
        }
        hit
    }

    /// Growing the live data by `growth` bytes: `Ok` or how many bytes still fit.
    pub(crate) fn space_for(&self, growth: u64) -> Result<(), u64> {
        match self.space_budget {
            Some(budget) if growth > 0 => {
                let used = self.live_bytes();
                if used + growth > budget {
                    Err(budget.saturating_sub(used))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// A failed sync of inode `ino`: what becomes of its dirty pages.
    pub(crate) fn fail_sync(&mut self, ino: InodeId, failure: SyncFailure) {
        let failure = match failure {
            SyncFailure::Random => match self.rng.gen_range(0..4) {
                0 => SyncFailure::KeepPending,
                1 => SyncFailure::MarkClean,
                2 => SyncFailure::PersistSome,
                _ => SyncFailure::Invalidate,
            },
            f => f,
        };
        let keep: Vec<bool> = self
            .inodes
            .get(&ino)
            .map(|i| i.pending.iter().map(|_| self.rng.gen_bool(0.5)).collect())
            .unwrap_or_default();
        let Some(inode) = self.inodes.get_mut(&ino) else {
            return;
        };
        match failure {
            SyncFailure::KeepPending | SyncFailure::Random => {}
            SyncFailure::MarkClean => inode.pending.clear(),
            SyncFailure::PersistSome => {
                for (op, k) in inode.pending.iter().zip(keep) {
                    if k {
                        op.apply(&mut inode.durable);
                    }
                }
                inode.pending.clear();
            }
            SyncFailure::Invalidate => inode.reset_to_durable(),
        }
        self.fault_counts.sync_eio += 1;
    }

    /// A failed write: a seeded prefix of it may have reached the cache.
    pub(crate) fn fail_write(&mut self, ino: InodeId, buf: &[u8], offset: u64) {
        let n = if buf.is_empty() || self.rng.gen_bool(0.5) {
            0
        } else {
            self.rng.gen_range(0..buf.len())
        };
        if n > 0 {
            if let Some(inode) = self.inodes.get_mut(&ino) {
                inode.push(PendingOp::Write {
                    offset,
                    data: buf[..n].to_vec(),
                });
            }
        }
        self.fault_counts.write_eio += 1;
    }

    /// A write that does not fit: a seeded prefix (what fits, or nothing) reaches the cache.
    pub(crate) fn short_write(&mut self, ino: InodeId, buf: &[u8], offset: u64, fits: u64) {
        let old_len = self.inodes.get(&ino).map_or(0, |i| i.live.len() as u64);
        let room_end = old_len.saturating_add(fits);
        let n = to_usize(room_end.saturating_sub(offset)).min(buf.len());
        if n > 0 && self.rng.gen_bool(0.5) {
            if let Some(inode) = self.inodes.get_mut(&ino) {
                inode.push(PendingOp::Write {
                    offset,
                    data: buf[..n].to_vec(),
                });
            }
        }
        self.fault_counts.enospc += 1;
    }

    pub(crate) fn create(&mut self, path: &Path) -> io::Result<InodeId> {
        let parent = path.parent().unwrap_or(Path::new(""));
        if !self.ns.dir_exists(parent) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such directory", parent.display()),
            ));
        }
        if self.ns.live.entries.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists", path.display()),
            ));
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(ino, Inode::default());
        self.ns.record(DirOp::Create {
            path: path.to_path_buf(),
            ino,
        });
        self.counters.creates += 1;
        Ok(ino)
    }
}

/// Which one-shot faults a call may fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    Write,
    Sync,
    DirSync,
}

/// The dirty pages of `pending` and how many writes dirtied each.
fn dirty_pages(pending: &[PendingOp], page: u64) -> Vec<(u64, usize)> {
    let mut pages: BTreeMap<u64, usize> = BTreeMap::new();
    for op in pending {
        if let PendingOp::Write { offset, data } = op {
            for p in pages_of(*offset, data.len(), page) {
                *pages.entry(p).or_insert(0) += 1;
            }
        }
    }
    pages.into_iter().collect()
}

/// Used by [`SimFile`] for ENOSPC and write-error handling.
pub(crate) fn no_space(what: &Path) -> io::Error {
    enospc(&format!("write {}", what.display()))
}
