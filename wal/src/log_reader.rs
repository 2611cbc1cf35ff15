//! [`WalReader`]: a cloneable reader of the log's entries that runs beside the writer and
//! never waits behind its syncs.
//!
//! The [`crate::Wal`] publishes a [`View`] — the log's range and its segments — after every
//! change to them; a reader copies what it needs from the view under a short lock, then
//! reads the segment (see `segment::shared` for the per-segment locking). Neither lock is
//! ever held across an `fdatasync` or `fsync`, so a reader waits at most behind a memory
//! update or a `pwrite` of the writer's.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::io::{StdVfs, Vfs, VfsFile};
use crate::segment::SharedSegment;
use crate::types::{Entry, SnapshotMeta};

/// What readers see of the log: its range and its segments in index order.
pub(crate) struct View<F: VfsFile> {
    pub(crate) base: SnapshotMeta,
    pub(crate) last_index: u64,
    pub(crate) last_term: u64,
    pub(crate) segments: Vec<Arc<SharedSegment<F>>>,
    /// The `Wal` was dropped: its directory may belong to another handle now.
    pub(crate) closed: bool,
}

impl<F: VfsFile> View<F> {
    /// The range, unless the `Wal` was dropped.
    fn range(&self) -> Result<Range> {
        if self.closed {
            return Err(Error::Closed);
        }
        Ok(Range {
            base: self.base,
            last_index: self.last_index,
            last_term: self.last_term,
        })
    }

    pub(crate) fn new() -> Self {
        View {
            base: SnapshotMeta::default(),
            last_index: 0,
            last_term: 0,
            segments: Vec::new(),
            closed: false,
        }
    }
}

/// A reader of the log's entries, made by [`crate::Wal::reader`]: cloneable, `Send` and
/// `Sync`, for threads that read while another thread appends and syncs (a Raft leader's
/// replication tasks).
///
/// It sees every entry appended so far, synced or not — the same as [`crate::Wal::entry`]
/// — and never waits behind an `fdatasync`, an `fsync` or a lock held across one. Every
/// record read is verified as the `Wal` verifies it. A read racing with a truncation or a
/// compaction sees the log before or after it; an entry that left the log is
/// [`Error::Unavailable`] or [`Error::Compacted`]. Once the `Wal` is dropped, every read is
/// [`Error::Closed`].
pub struct WalReader<V: Vfs = StdVfs> {
    view: Arc<RwLock<View<V::File>>>,
}

impl<V: Vfs> Clone for WalReader<V> {
    fn clone(&self) -> Self {
        WalReader {
            view: Arc::clone(&self.view),
        }
    }
}

/// The log's range as a reader saw it.
#[derive(Clone, Copy)]
struct Range {
    base: SnapshotMeta,
    last_index: u64,
    last_term: u64,
}

impl<V: Vfs> WalReader<V> {
    pub(crate) fn new(view: Arc<RwLock<View<V::File>>>) -> Self {
        WalReader { view }
    }

    /// First index in the log (the base index plus one).
    pub fn first_index(&self) -> Result<u64> {
        Ok(self.range()?.base.index + 1)
    }

    /// Last index in the log (the base index when the log is empty).
    pub fn last_index(&self) -> Result<u64> {
        Ok(self.range()?.last_index)
    }

    /// The log base: last index and term covered by the snapshot.
    pub fn snapshot_meta(&self) -> Result<SnapshotMeta> {
        Ok(self.range()?.base)
    }

    /// Term at `index`; the base index answers with the base term.
    pub fn term(&self, index: u64) -> Result<u64> {
        let r = self.range()?;
        if index == r.base.index {
            return Ok(r.base.term);
        }
        if index == r.last_index {
            return Ok(r.last_term);
        }
        let seg = self.segment(index)?;
        seg.term_of(index)?.ok_or_else(|| self.left_the_log(index))
    }

    /// Reads one entry, verifying its checksums.
    pub fn entry(&self, index: u64) -> Result<Entry> {
        let seg = self.segment(index)?;
        seg.read_entry(index)?
            .ok_or_else(|| self.left_the_log(index))
    }

    /// Reads entries `[lo, hi)`, each verified.
    pub fn entries(&self, lo: u64, hi: u64) -> Result<Vec<Entry>> {
        self.entries_bounded(lo, hi, u64::MAX)
    }

    /// Reads entries from `lo` up to `hi` (exclusive), each verified, stopping before the
    /// entry that would take the payload bytes read past `max_bytes` — but always at least
    /// one entry when `lo < hi` (as [`crate::Wal::entries_bounded`]).
    pub fn entries_bounded(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>> {
        if hi <= lo {
            return Ok(Vec::new());
        }
        self.check_range(self.range()?, hi - 1)?;
        let mut out = Vec::new();
        let mut bytes = 0u64;
        let mut seg = self.segment(lo)?;
        for i in lo..hi {
            if !seg.contains(i) {
                seg = self.segment(i)?;
            }
            let e = seg.read_entry(i)?.ok_or_else(|| self.left_the_log(i))?;
            bytes = bytes.saturating_add(e.data.len() as u64);
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push(e);
        }
        Ok(out)
    }

    fn range(&self) -> Result<Range> {
        self.view.read().range()
    }

    fn check_range(&self, r: Range, index: u64) -> Result<()> {
        if index <= r.base.index {
            return Err(Error::Compacted {
                index,
                first_index: r.base.index + 1,
            });
        }
        if index > r.last_index {
            return Err(Error::Unavailable {
                index,
                last_index: r.last_index,
            });
        }
        Ok(())
    }

    /// The segment holding `index`, checked against the range under the same lock.
    fn segment(&self, index: u64) -> Result<Arc<SharedSegment<V::File>>> {
        let v = self.view.read();
        self.check_range(v.range()?, index)?;
        let pos = v.segments.partition_point(|s| s.first_index <= index);
        pos.checked_sub(1)
            .and_then(|i| v.segments.get(i))
            .cloned()
            .ok_or_else(|| Error::Internal {
                reason: format!("index {index} is in the log's range but in no segment"),
            })
    }

    /// The error for an entry that was in the range when the read began but left the log
    /// before it was read (a concurrent truncation or compaction).
    fn left_the_log(&self, index: u64) -> Error {
        match self.range() {
            Err(e) => e,
            Ok(r) if index <= r.base.index => Error::Compacted {
                index,
                first_index: r.base.index + 1,
            },
            Ok(r) if index > r.last_index => Error::Unavailable {
                index,
                last_index: r.last_index,
            },
            // The range shrinks before an entry leaves its segment (`Wal::publish_view`).
            Ok(r) => Error::Internal {
                reason: format!(
                    "entry {index} is in the readers' range {}..={} but in no segment",
                    r.base.index + 1,
                    r.last_index
                ),
            },
        }
    }
}

impl<V: Vfs> std::fmt::Debug for WalReader<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.view.read();
        f.debug_struct("WalReader")
            .field("first_index", &(v.base.index + 1))
            .field("last_index", &v.last_index)
            .field("closed", &v.closed)
            .finish()
    }
}
