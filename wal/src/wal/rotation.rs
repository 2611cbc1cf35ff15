//! Rotation: sealing the active segment and starting the next one in a file from the recycle
//! pool (blocks that hold data), else the spare (written zeros), else one created on the
//! spot. Either way the new segment is durable — header `fdatasync`ed, renamed into place,
//! directory fsynced — before any record is written to it (docs/FORMAT.md, the fsync order).
//! With `Options::take_ahead` the header of the next pool segment is written and synced
//! after an earlier sync ([`Wal::take_ahead_if_due`]), so the rotation itself only renames
//! the file and fsyncs the directory.
//!
//! A rotation happens in one of two places:
//! - **In `append`**, for a batch that does not fit in the rest of the active segment.
//! - **Ahead, in [`Wal::sync`]** (`Options::rotate_ahead`, off by default): when the batch
//!   just synced would not fit in the rest of the active segment and the recycle pool holds
//!   a file, the next segment (first index `last_index + 1`) is prepared on a second thread
//!   while the group's `fdatasync` runs, so that its header sync and directory fsync
//!   overlap the group's own sync instead of adding two syncs in a row to the next batch's
//!   commit. The active segment is sealed there, with less room left than the last batch
//!   took: a batch like it would have rotated anyway. On this project's disk the syncs
//!   serialize at the device and the overlap gained nothing (see `Options::rotate_ahead`).
//!
//! Ahead of time, the new (empty) segment may reach the disk before the group's records do.
//! An append's rotation leaves the same states (it writes the sealed segment's records out,
//! then takes the next file, and the records are synced later), and recovery reads them the
//! same way: the sealed segment ends where its records reach the next segment's first index,
//! and records that did not reach the disk are a torn tail there, cut with the empty segment
//! after it. On a simulated file system (no background I/O) the preparation runs first and
//! then the group's sync, so the explorer's crash states include every order of the two.

use std::path::Path;

use tracing::debug;

use super::{Wal, KEPT_BUFFER};
use crate::error::{Error, Result};
use crate::format::{seg, segment_name};
use crate::io::Vfs;
use crate::pending_sync::PendingSync;
use crate::recycle::Pool;
use crate::segment::Segment;
use crate::spare::Spare;

/// Where a new segment's file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A pool file whose header a sync wrote ahead: renamed into place, nothing else.
    Ahead,
    Pool,
    Spare,
    Created,
}

/// A new segment, durable on disk but not yet part of the log.
struct Prepared<F: crate::io::VfsFile> {
    next: Segment<F>,
    source: Source,
    /// Directory fsyncs the preparation issued.
    dir_syncs: u64,
}

impl<F: crate::io::VfsFile> Prepared<F> {
    /// File syncs the preparation issued: the new header's, unless it was written ahead.
    fn file_syncs(&self) -> u64 {
        u64::from(self.source != Source::Ahead)
    }
}

/// A new segment's identity: (sequence, first index, first sync group).
type Parts = (u64, u64, u64);

impl<V: Vfs> Wal<V> {
    /// Seals the active segment (its buffered records written) and creates a new one whose
    /// first index is `first_index`, for a first batch of `bytes` bytes of records.
    pub(super) fn rotate(&mut self, first_index: u64, bytes: u64) -> Result<()> {
        if !self.in_flight {
            // (With a sync in flight the sealed segment keeps its buffer for the next sync.)
            self.write_active(false)?;
        }
        let parts = self.next_parts(first_index)?;
        let reserve = self.reserve();
        let (vfs, dir) = (&self.vfs, &self.dir);
        let r = prepare(
            vfs,
            dir,
            &mut self.pool,
            &mut self.spare,
            parts,
            bytes,
            reserve,
        );
        let prepared = self.guard(r)?;
        self.install(prepared)
    }

    /// The rest of [`Wal::sync`] after its `begin_sync`: the `fdatasync`s, and the next
    /// segment prepared beside them when a rotation is due (see the module docs).
    pub(super) fn finish_sync(&mut self, pending: PendingSync<V::File>) -> Result<()> {
        let Some(first_index) = self.rotation_due(&pending) else {
            let r = pending.wait();
            return self.end_sync(pending, r);
        };
        let parts = (self.next_seq, first_index, self.group);
        let (bytes, reserve) = (self.last_batch, self.reserve());
        let (vfs, dir, pool, spare) = (&self.vfs, &self.dir, &mut self.pool, &mut self.spare);
        let (synced, prepared) = if vfs.background_io() {
            std::thread::scope(|s| {
                let next = s.spawn(|| prepare(vfs, dir, pool, spare, parts, bytes, reserve));
                let synced = pending.wait();
                let prepared = next.join().unwrap_or_else(|_| {
                    Err(Error::Internal {
                        reason: "the thread preparing the next segment panicked".into(),
                    })
                });
                (synced, prepared)
            })
        } else {
            let prepared = prepare(vfs, dir, pool, spare, parts, bytes, reserve);
            (pending.wait(), prepared)
        };
        self.settle_sync(pending, synced)?;
        let prepared = self.guard(prepared)?;
        self.stats.segments_ahead += 1;
        // Installed before a header is written ahead: both draw sequence numbers.
        self.install(prepared)?;
        self.take_ahead_if_due()?;
        self.publish();
        self.publish_view();
        Ok(())
    }

    /// The first index of the segment to prepare during this sync, if one is due: the
    /// sync writes the active segment, the last batch appended would not fit in what is
    /// left of it, and the recycle pool holds a file. (From an empty pool the rotation
    /// would take the spare, or create a file: in steady state a compaction right after
    /// this sync usually refills the pool before the next append, and the batches that went
    /// to a spare instead measured 11 % slower at 4 MiB batches.)
    fn rotation_due(&self, pending: &PendingSync<V::File>) -> Option<u64> {
        let active = self.segments.last()?;
        let due = self.opts.rotate_ahead
            && (!self.pool.is_empty() || self.pool.has_ahead())
            && pending.files() > 0
            && self.last_batch > 0
            && active.len() > 0
            && active.appendable()
            && active.first_index() + active.len() == self.last_index + 1
            && active.end() + self.last_batch > self.opts.segment_size
            && self.next_seq < u64::MAX;
        due.then_some(self.last_index + 1)
    }

    /// The identity of the next segment, starting at `first_index`.
    fn next_parts(&mut self, first_index: u64) -> Result<Parts> {
        let seq = self.next_seq;
        if seq == u64::MAX {
            let err = Error::corrupt(&self.dir, 0, None, "segment sequence numbers exhausted");
            return self.guard(Err(err));
        }
        Ok((seq, first_index, self.group))
    }

    /// Makes a prepared segment the active one: the sealed segment's empty write buffer
    /// passed on, the counters moved, the next spare started if this one used it.
    fn install(&mut self, prepared: Prepared<V::File>) -> Result<()> {
        let file_syncs = prepared.file_syncs();
        let Prepared {
            mut next,
            source,
            dir_syncs,
        } = prepared;
        self.stats.segments_created += 1;
        self.stats.file_syncs += file_syncs;
        self.stats.dir_syncs += dir_syncs;
        // Every rename into the pool before the rotation is durable now.
        self.pool.dir_synced();
        match source {
            Source::Ahead => {
                self.stats.segments_from_pool += 1;
                self.stats.segments_taken_ahead += 1;
            }
            Source::Pool => self.stats.segments_from_pool += 1,
            Source::Spare => self.stats.segments_from_spare += 1,
            Source::Created => {}
        }
        if source != Source::Ahead {
            // `next_seq` was used; the next one may not exist (rotations then fail,
            // poisoned). A header written ahead took its sequence number then.
            self.next_seq = self.next_seq.saturating_add(1);
        }
        debug!(file = %segment_name(next.first_index()), seq = next.seq(),
            "rotated to a new segment");
        let written = next.written();
        if let Some(sealed) = self.segments.last_mut() {
            sealed.pass_buffer(&mut next, KEPT_BUFFER);
        }
        self.segments.push(next);
        if matches!(source, Source::Pool | Source::Ahead) {
            // The spare, if ready, stays for a rotation the pool cannot serve.
            return Ok(());
        }
        // The next spare: filled now or started in the background (see `spare.rs`).
        let r = self.spare.refill(written);
        self.guard(r)
    }

    /// After a sync: writes the next segment's header ahead into a pool file
    /// ([`Options::take_ahead`](crate::Options::take_ahead)) once the active segment is
    /// past half full, so that the rotation to it costs a rename and a directory fsync
    /// instead of a header `fdatasync` and a directory fsync (or two) before the rotating
    /// batch's own sync.
    pub(super) fn take_ahead_if_due(&mut self) -> Result<()> {
        let Some(active) = self.segments.last() else {
            return Ok(());
        };
        let due = self.opts.take_ahead
            && !self.pool.has_ahead()
            && !self.pool.is_empty()
            && active.appendable()
            && active.end().saturating_mul(2) > self.opts.segment_size
            && self.next_seq < u64::MAX;
        if !due {
            return Ok(());
        }
        let need = seg::DATA_START as u64 + self.last_batch;
        let r = self.pool.write_ahead(self.next_seq, self.group, need);
        let Some(dir_syncs) = self.guard(r)? else {
            return Ok(());
        };
        // The sequence number is used from here on (the header high-water mark covers it).
        self.next_seq += 1;
        self.stats.file_syncs += 1;
        self.stats.dir_syncs += dir_syncs;
        Ok(())
    }

    /// The space a segment reserves ahead (`Options::segment_size`) if the preparation mode
    /// preallocates.
    pub(super) fn reserve(&self) -> Option<u64> {
        self.opts
            .prepare
            .preallocates()
            .then_some(self.opts.segment_size)
    }
}

/// Prepares the next segment durably in a pool file that holds a first batch of `bytes`
/// bytes of records (the smallest such, else the largest), else the spare, else a file
/// created for it. Runs beside a sync: it touches only the pool, the spare and new files.
fn prepare<V: Vfs>(
    vfs: &V,
    dir: &Path,
    pool: &mut Pool<V>,
    spare: &mut Spare<V>,
    parts: Parts,
    bytes: u64,
    reserve: Option<u64>,
) -> Result<Prepared<V::File>> {
    let need = seg::DATA_START as u64 + bytes;
    if let Some(ahead) = pool.take_ahead() {
        let (_, first_index, _) = parts;
        let parts = (ahead.seq, first_index, ahead.group_floor);
        return Ok(Prepared {
            next: Segment::from_ahead(vfs, dir, &ahead.path, parts)?,
            source: Source::Ahead,
            dir_syncs: 1,
        });
    }
    if let Some(path) = pool.take(need) {
        // A crash must not be able to undo the rename that freed the file once its new
        // header is in it: the file would be the compacted segment again, with another
        // segment's header.
        // (`install` clears the flag once the rotation is done.)
        let unsynced = pool.unsynced();
        if unsynced {
            crate::io::sync_dir(vfs, dir)?;
        }
        let next = Segment::from_prepared(vfs, dir, &path, parts, true)?;
        let dir_syncs = 1 + u64::from(unsynced);
        return Ok(Prepared {
            next,
            source: Source::Pool,
            dir_syncs,
        });
    }
    let (next, source) = match spare.take()? {
        Some(path) => (
            Segment::from_prepared(vfs, dir, &path, parts, false)?,
            Source::Spare,
        ),
        None => {
            let (seq, first_index, first_group) = parts;
            let next = Segment::create(vfs, dir, seq, first_index, first_group, reserve)?;
            (next, Source::Created)
        }
    };
    Ok(Prepared {
        next,
        source,
        dir_syncs: 1,
    })
}
