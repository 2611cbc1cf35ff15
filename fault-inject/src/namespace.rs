//! [`Namespace`]: directory entries and directories, live and durable, and the directory
//! operations between.
//!
//! A create, rename, remove or `mkdir` changes the live namespace at once; it reaches the
//! durable namespace only when a `sync_dir` of the directory it changes commits it. The
//! model is the POSIX minimum, not one file system's journal: a directory fsync commits the
//! pending operations that change *that* directory's entries, in order, and nothing else —
//! so a directory created by `mkdir` is durable only after an fsync of its parent, however
//! often the directory itself was synced (ext4's journal happens to commit more; xfs,
//! btrfs and others need not). A crash applies any subset of the uncommitted operations,
//! in order, skipping those that no longer make sense (a rename whose source was never
//! durably created, a remove of an entry that is not there); then every entry or directory
//! whose parent directory is not durable is unreachable and gone.

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
    /// `mkdir(path)`: an entry of the parent directory.
    Mkdir {
        /// The new directory.
        path: PathBuf,
    },
}

/// One view of the namespace (live or durable): file entries and directories.
#[derive(Debug, Clone, Default)]
pub(crate) struct View {
    pub(crate) entries: BTreeMap<PathBuf, InodeId>,
    pub(crate) dirs: BTreeSet<PathBuf>,
}

impl View {
    /// Whether `dir` exists in this view (a root, or an empty path, always does).
    pub(crate) fn has_dir(&self, dir: &Path) -> bool {
        dir.parent().is_none() || dir.as_os_str().is_empty() || self.dirs.contains(dir)
    }

    /// Drops every entry and directory whose parent directory does not exist: after a
    /// crash, what an undone `mkdir` held is unreachable.
    fn prune_unreachable(&mut self) {
        loop {
            let orphan_dirs: Vec<PathBuf> = self
                .dirs
                .iter()
                .filter(|d| !self.has_dir(d.parent().unwrap_or(Path::new(""))))
                .cloned()
                .collect();
            if orphan_dirs.is_empty() {
                break;
            }
            for d in orphan_dirs {
                self.dirs.remove(&d);
            }
        }
        let dirs = &self.dirs;
        self.entries.retain(|p, _| {
            let parent = p.parent().unwrap_or(Path::new(""));
            parent.parent().is_none() || parent.as_os_str().is_empty() || dirs.contains(parent)
        });
    }
}

impl DirOp {
    /// Whether the operation changes an entry of directory `dir`.
    pub(crate) fn touches(&self, dir: &Path) -> bool {
        let parent_is = |p: &Path| p.parent() == Some(dir);
        match self {
            DirOp::Create { path, .. } | DirOp::Remove { path, .. } | DirOp::Mkdir { path } => {
                parent_is(path)
            }
            DirOp::Rename { from, to, .. } => parent_is(from) || parent_is(to),
        }
    }

    /// Applies the operation to a view if it still makes sense there; returns whether it
    /// did.
    pub(crate) fn apply(&self, view: &mut View) -> bool {
        let ns = &mut view.entries;
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
            DirOp::Mkdir { path } => view.dirs.insert(path.clone()),
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
            DirOp::Mkdir { path } => write!(f, "mkdir {}", path.display()),
        }
    }
}

/// Directory entries: the live view, the durable view, and the operations in between.
#[derive(Debug, Clone, Default)]
pub(crate) struct Namespace {
    pub(crate) live: View,
    pub(crate) durable: View,
    pub(crate) pending: Vec<DirOp>,
}

impl Namespace {
    /// Whether `dir` exists (the root always does).
    pub(crate) fn dir_exists(&self, dir: &Path) -> bool {
        self.live.has_dir(dir)
    }

    /// A directory that was there before the simulation started: durable at once, with its
    /// missing parents (test setup, not a call of the WAL's).
    pub(crate) fn add_durable_dir(&mut self, dir: &Path) {
        for d in dir.ancestors() {
            if d.parent().is_some() && !d.as_os_str().is_empty() {
                self.live.dirs.insert(d.to_path_buf());
                self.durable.dirs.insert(d.to_path_buf());
            }
        }
    }

    /// Applies `op` to the live view and queues it for durability.
    pub(crate) fn record(&mut self, op: DirOp) {
        op.apply(&mut self.live);
        self.pending.push(op);
    }

    /// `sync_dir(dir)`: commits, in order, every pending operation that changes an entry of
    /// `dir`; the others stay pending. Returns how many operations were committed.
    pub(crate) fn sync_dir(&mut self, dir: &Path) -> usize {
        let (committed, rest): (Vec<DirOp>, Vec<DirOp>) =
            self.pending.drain(..).partition(|op| op.touches(dir));
        self.pending = rest;
        for op in &committed {
            op.apply(&mut self.durable);
        }
        committed.len()
    }

    /// A power cut: keeps the pending operations whose `keep` flag is set (missing flags mean
    /// undone), in order where they still make sense; then drops what an undone directory
    /// held. The live view becomes the result. Returns the operations that were undone or
    /// skipped.
    pub(crate) fn crash(&mut self, keep: &[bool]) -> Vec<DirOp> {
        let mut lost = Vec::new();
        for (i, op) in self.pending.drain(..).enumerate() {
            let kept = keep.get(i).copied().unwrap_or(false) && op.apply(&mut self.durable);
            if !kept {
                lost.push(op);
            }
        }
        self.durable.prune_unreachable();
        self.live.clone_from(&self.durable);
        lost
    }

    /// The names of live entries directly in `dir`, sorted.
    pub(crate) fn list(&self, dir: &Path) -> Vec<String> {
        self.live
            .entries
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

    fn ns_with_dirs(dirs: &[&str]) -> Namespace {
        let mut ns = Namespace::default();
        for d in dirs {
            ns.add_durable_dir(Path::new(d));
        }
        ns
    }

    #[test]
    fn sync_dir_commits_only_the_operations_on_that_directory() {
        let mut ns = ns_with_dirs(&["/a", "/b"]);
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
        ns.record(DirOp::Create {
            path: p("/b/z"),
            ino: 3,
        });
        assert_eq!(ns.sync_dir(Path::new("/b")), 2);
        assert_eq!(ns.durable.entries.get(&p("/b/z")), Some(&3));
        assert_eq!(ns.pending.len(), 2, "the creates in /a are still pending");
        assert_eq!(ns.list(Path::new("/a")), vec!["y".to_owned()]);
    }

    #[test]
    fn crash_keeps_a_subset_and_skips_ops_that_no_longer_make_sense() {
        let mut ns = ns_with_dirs(&["/d"]);
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
        assert!(ns.live.entries.is_empty());
    }

    #[test]
    fn undone_remove_brings_the_file_back() {
        let mut ns = ns_with_dirs(&["/d"]);
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

    #[test]
    fn a_new_directory_needs_its_parents_fsync_or_it_vanishes_with_its_files() {
        let mut ns = ns_with_dirs(&["/data"]);
        ns.record(DirOp::Mkdir { path: p("/data/w") });
        ns.record(DirOp::Create {
            path: p("/data/w/HEADER"),
            ino: 1,
        });
        // Syncing the new directory itself commits its entries, not its own existence.
        ns.sync_dir(Path::new("/data/w"));
        let mut lost_dir = ns.clone();
        lost_dir.crash(&[]);
        assert!(!lost_dir.dir_exists(Path::new("/data/w")));
        assert!(lost_dir.list(Path::new("/data/w")).is_empty());
        // With the parent synced too, both survive.
        ns.sync_dir(Path::new("/data"));
        ns.crash(&[]);
        assert!(ns.dir_exists(Path::new("/data/w")));
        assert_eq!(ns.list(Path::new("/data/w")), vec!["HEADER".to_owned()]);
    }
}
