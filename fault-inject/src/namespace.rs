//! [`Namespace`]: directory entries, live and durable, and the directory operations between.
//!
//! A create, rename or remove changes the live namespace at once; it reaches the durable
//! namespace only when a `sync_dir` commits it. A crash applies any subset of the uncommitted
//! operations, in order, skipping those that no longer make sense (a rename whose source was
//! never durably created, a remove of an entry that is not there).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Identity of a simulated file (what a directory entry points to).
pub type InodeId = u64;

/// A directory operation not yet made durable by `sync_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirOp {
    /// A new file `path` (inode `ino`).
    Create {
        /// The new entry.
        path: PathBuf,
        /// The file it names.
        ino: InodeId,
    },
    /// `rename(from, to)` of inode `ino`, replacing whatever `to` named.
    Rename {
        /// The old entry.
        from: PathBuf,
        /// The new entry.
        to: PathBuf,
        /// The file moved.
        ino: InodeId,
    },
    /// `remove(path)` of inode `ino`.
    Remove {
        /// The entry removed.
        path: PathBuf,
        /// The file it named.
        ino: InodeId,
    },
}

impl DirOp {
    /// Whether the operation changes an entry of directory `dir`.
    pub(crate) fn touches(&self, dir: &Path) -> bool {
        let parent_is = |p: &Path| p.parent() == Some(dir);
        match self {
            DirOp::Create { path, .. } | DirOp::Remove { path, .. } => parent_is(path),
            DirOp::Rename { from, to, .. } => parent_is(from) || parent_is(to),
        }
    }

    /// Applies the operation to a namespace if it still makes sense there; returns whether it
    /// did.
    pub(crate) fn apply(&self, ns: &mut BTreeMap<PathBuf, InodeId>) -> bool {
        match self {
            DirOp::Create { path, ino } => {
                if ns.contains_key(path) {
                    return false;
                }
                ns.insert(path.clone(), *ino);
                true
            }
            DirOp::Rename { from, to, ino } => {
                if ns.get(from) != Some(ino) {
                    return false;
                }
                ns.remove(from);
                ns.insert(to.clone(), *ino);
                true
            }
            DirOp::Remove { path, ino } => {
                if ns.get(path) != Some(ino) {
                    return false;
                }
                ns.remove(path);
                true
            }
        }
    }
}

impl std::fmt::Display for DirOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirOp::Create { path, .. } => write!(f, "create {}", path.display()),
            DirOp::Rename { from, to, .. } => {
                write!(f, "rename {} -> {}", from.display(), to.display())
            }
            DirOp::Remove { path, .. } => write!(f, "remove {}", path.display()),
        }
    }
}

/// Directory entries: the live view, the durable view, and the operations in between.
/// Directories themselves are created durably (`create_dir_all` is not part of the WAL's
/// crash protocol: the WAL directory exists before the WAL is first opened).
#[derive(Debug, Clone, Default)]
pub(crate) struct Namespace {
    pub(crate) dirs: BTreeSet<PathBuf>,
    pub(crate) live: BTreeMap<PathBuf, InodeId>,
    pub(crate) durable: BTreeMap<PathBuf, InodeId>,
    pub(crate) pending: Vec<DirOp>,
}

impl Namespace {
    /// Whether `dir` exists (the root always does).
    pub(crate) fn dir_exists(&self, dir: &Path) -> bool {
        dir.parent().is_none() || dir.as_os_str().is_empty() || self.dirs.contains(dir)
    }

    /// Applies `op` to the live view and queues it for durability.
    pub(crate) fn record(&mut self, op: DirOp) {
        op.apply(&mut self.live);
        self.pending.push(op);
    }

    /// `sync_dir(dir)`: commits every pending operation up to the last one touching `dir`
    /// (a directory fsync commits the file system journal in order). Returns how many
    /// operations were committed.
    pub(crate) fn sync_dir(&mut self, dir: &Path) -> usize {
        let Some(last) = self.pending.iter().rposition(|op| op.touches(dir)) else {
            return 0;
        };
        let committed: Vec<DirOp> = self.pending.drain(..=last).collect();
        for op in &committed {
            op.apply(&mut self.durable);
        }
        committed.len()
    }

    /// A power cut: keeps the pending operations whose `keep` flag is set (missing flags mean
    /// undone), in order where they still make sense; the live view becomes the result.
    /// Returns the operations that were undone or skipped.
    pub(crate) fn crash(&mut self, keep: &[bool]) -> Vec<DirOp> {
        let mut lost = Vec::new();
        for (i, op) in self.pending.drain(..).enumerate() {
            let kept = keep.get(i).copied().unwrap_or(false) && op.apply(&mut self.durable);
            if !kept {
                lost.push(op);
            }
        }
        self.live.clone_from(&self.durable);
        lost
    }

    /// The names of live entries directly in `dir`, sorted.
    pub(crate) fn list(&self, dir: &Path) -> Vec<String> {
        self.live
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn sync_dir_commits_in_order_up_to_the_last_touching_op() {
        let mut ns = Namespace::default();
        ns.record(DirOp::Create {
            path: p("/a/x"),
            ino: 1,
        });
        ns.record(DirOp::Rename {
            from: p("/a/x"),
            to: p("/b/x"),
            ino: 1,
        });
        ns.record(DirOp::Create {
            path: p("/a/y"),
            ino: 2,
        });
        assert_eq!(ns.sync_dir(Path::new("/b")), 2);
        assert_eq!(ns.durable.get(&p("/b/x")), Some(&1));
        assert_eq!(ns.pending.len(), 1);
        assert_eq!(ns.list(Path::new("/a")), vec!["y".to_owned()]);
    }

    #[test]
    fn crash_keeps_a_subset_and_skips_ops_that_no_longer_make_sense() {
        let mut ns = Namespace::default();
        ns.record(DirOp::Create {
            path: p("/d/t"),
            ino: 1,
        });
        ns.record(DirOp::Rename {
            from: p("/d/t"),
            to: p("/d/f"),
            ino: 1,
        });
        // The create is undone, so the rename has nothing to move.
        let lost = ns.crash(&[false, true]);
        assert_eq!(lost.len(), 2);
        assert!(ns.live.is_empty());
    }

    #[test]
    fn undone_remove_brings_the_file_back() {
        let mut ns = Namespace::default();
        ns.record(DirOp::Create {
            path: p("/d/1.wal"),
            ino: 7,
        });
        ns.sync_dir(Path::new("/d"));
        ns.record(DirOp::Remove {
            path: p("/d/1.wal"),
            ino: 7,
        });
        assert!(ns.list(Path::new("/d")).is_empty());
        ns.crash(&[]);
        assert_eq!(ns.list(Path::new("/d")), vec!["1.wal".to_owned()]);
    }
}
