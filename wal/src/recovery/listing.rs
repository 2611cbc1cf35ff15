//! Recovery's first phase: what the directory holds, the header, the snapshot.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::{parse_numbered, snapshot_name, FREE_SUFFIX, TMP_SUFFIX};
use crate::header::{HeaderFile, HeaderState, HEADER_FILE};
use crate::io::{OpenMode, Vfs};

/// The files of a WAL directory, by kind.
pub(crate) struct Listing {
    /// Files to remove: `*.tmp` (always an incomplete creation), and later stale snapshots
    /// and segments.
    pub remove: Vec<PathBuf>,
    pub has_header: bool,
    /// Segments by first index, in order.
    pub segments: Vec<(u64, PathBuf)>,
    /// Snapshots by index.
    pub snapshots: Vec<(u64, PathBuf)>,
    /// Files of the recycle pool (`crate::recycle`): never part of the log.
    pub free: Vec<PathBuf>,
}

/// Lists `dir`.
pub(crate) fn list<V: Vfs>(vfs: &V, dir: &Path) -> Result<Listing> {
    let names = vfs.list(dir).map_err(|e| Error::io("list", dir, e))?;
    let mut l = Listing {
        remove: Vec::new(),
        has_header: false,
        segments: Vec::new(),
        snapshots: Vec::new(),
        free: Vec::new(),
    };
    for name in &names {
        if name.ends_with(TMP_SUFFIX) {
            l.remove.push(dir.join(name));
        } else if name == HEADER_FILE {
            l.has_header = true;
        } else if let Some(first) = parse_numbered(name, ".wal") {
            l.segments.push((first, dir.join(name)));
        } else if let Some(index) = parse_numbered(name, ".snap") {
            l.snapshots.push((index, dir.join(name)));
        } else if parse_numbered(name, FREE_SUFFIX).is_some() {
            l.free.push(dir.join(name));
        }
    }
    l.segments.sort();
    Ok(l)
}

/// Opens the header, if the directory has one; a directory with log files but no header is
/// corrupt (the header is created before anything else and never removed).
pub(crate) fn open_header<V: Vfs>(
    vfs: &V,
    dir: &Path,
    l: &Listing,
    mode: OpenMode,
) -> Result<Option<HeaderFile<V::File>>> {
    if l.has_header {
        return HeaderFile::open(vfs, dir, mode).map(Some);
    }
    match l.segments.first().or(l.snapshots.first()) {
        Some((_, p)) => Err(Error::corrupt(
            p,
            0,
            None,
            format!("{HEADER_FILE} is missing while log files exist"),
        )),
        None => Ok(None),
    }
}

/// The snapshot the header points at (which must exist and match; its data is verified too
/// if `verify`); the others are stale and join the removals.
pub(crate) fn choose_snapshot<V: Vfs>(
    vfs: &V,
    l: &mut Listing,
    hstate: &HeaderState,
    verify: bool,
) -> Result<Option<PathBuf>> {
    let base = hstate.base;
    let mut snapshot = None;
    for (index, path) in std::mem::take(&mut l.snapshots) {
        if !(hstate.has_snapshot && index == base.index) {
            l.remove.push(path);
            continue;
        }
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
        if verify {
            crate::snapshot::verify(vfs, &path)?;
        }
        snapshot = Some(path);
    }
    if hstate.has_snapshot && snapshot.is_none() {
        let dir = l
            .segments
            .first()
            .and_then(|(_, p)| p.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        return Err(Error::corrupt(
            dir.join(snapshot_name(base.index)),
            0,
            Some(base.index),
            "the header's snapshot file is missing",
        ));
    }
    Ok(snapshot)
}

/// Segments wholly at or below the base are stale (a compaction's removals not yet durable):
/// keep from the last segment whose first index is at most `base + 1`.
pub(crate) fn drop_segments_below_base(l: &mut Listing, base: u64) {
    let keep_from = l
        .segments
        .iter()
        .rposition(|(first, _)| *first <= base.saturating_add(1))
        .unwrap_or(0);
    let stale: Vec<PathBuf> = l.segments.drain(..keep_from).map(|(_, p)| p).collect();
    l.remove.extend(stale);
}
