//! [`Wal`]: the log handle and its Raft operations.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;

use tracing::{info, info_span, warn};

use crate::error::{Error, Result};
use crate::format::{rec, record_len, RecordHeader};
use crate::header::{AppMeta, Fence, HeaderFile, HeaderState};
use crate::io::{OpenMode, StdVfs, Vfs};
use crate::log_reader::{View, WalReader};
use crate::pending_sync::PendingSync;
use crate::recovery;
use crate::recycle::Pool;
use crate::segment::Segment;
use crate::spare::Spare;
use crate::types::{
    Entry, HardState, Options, RecoveryReport, SegmentPrepare, SnapshotMeta, Stats,
};

mod rotation;

/// A write-ahead log for one Raft server's persistent state, in one directory.
///
/// - **Durability**: [`Wal::append`] only buffers; [`Wal::sync`] writes every buffered batch
///   (one `pwrite` per segment touched) and `fdatasync`s (one per file written) before it
///   returns. [`Wal::begin_sync`] / [`PendingSync::wait`] / [`Wal::end_sync`] split it so
///   that the `fdatasync`s run without borrowing the handle (appends go on meanwhile).
///   [`Wal::set_hard_state`], [`Wal::truncate_suffix`], [`Wal::save_snapshot`] and
///   [`Wal::compact`] are durable when they return.
/// - **Poisoning**: after any failed write or sync, every later mutating call returns
///   [`Error::Poisoned`] (the page cache's state is unknown — fsyncgate); reads keep working.
///   Reopen to recover the durable state.
/// - **Locking**: the directory is locked for the handle's lifetime.
/// - **Readers**: [`Wal::reader`] hands out a cloneable [`WalReader`] for other threads; it
///   sees what [`Wal::entry`] sees and no sync ever delays it (docs/FORMAT.md, "Readers
///   beside the writer").
/// - **Dropping** the handle does not sync: unsynced appends are lost, exactly as in a crash.
pub struct Wal<V: Vfs = StdVfs> {
    /// Declared before the lock: dropping it stops and joins a background fill while the
    /// directory is still locked.
    spare: Spare<V>,
    /// Compacted segment files kept to become future segments (`Options::recycle`).
    pool: Pool<V>,
    vfs: V,
    dir: PathBuf,
    opts: Options,
    _lock: V::Lock,
    header: HeaderFile<V::File>,
    snapshot_path: Option<PathBuf>,
    /// Segments in index order; the last one is the active segment appends go to (it
    /// buffers them until they are written).
    segments: Vec<Segment<V::File>>,
    /// Current sync group, and whether any record of it was appended yet.
    group: u64,
    group_started: bool,
    next_seq: u64,
    /// Frame bytes of the last batch appended (what a rotation ahead expects the next to
    /// take).
    last_batch: u64,
    last_index: u64,
    last_term: u64,
    /// A sync begun by `begin_sync` has not ended: nothing may be written.
    in_flight: bool,
    /// The failure that poisoned the handle, and its I/O error kind.
    poisoned: Option<(String, Option<std::io::ErrorKind>)>,
    stats: Stats,
    /// What `stats` held when last published as metrics (feature `metrics`).
    published: Stats,
    report: RecoveryReport,
    /// What readers ([`Wal::reader`]) see: published after every change to the log's range
    /// or segments.
    view: Arc<RwLock<View<V::File>>>,
}

impl Wal<StdVfs> {
    /// Opens (creating if needed) the WAL in `dir` on the real file system, running recovery.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Self> {
        Self::open_with(StdVfs, dir, opts)
    }
}

impl<V: Vfs> Wal<V> {
    /// Opens (creating if needed) the WAL in `dir` on `vfs`, running recovery: a torn tail is
    /// cut, stale files are removed, corruption of synced data is an error (see
    /// [`crate::RecoveryMode`]).
    pub fn open_with(vfs: V, dir: impl AsRef<Path>, opts: Options) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let span = info_span!("wal_open", dir = %dir.display());
        let _g = span.enter();
        let started = Instant::now();
        check_options(&opts)?;
        let created =
            crate::io::create_dirs(&vfs, &dir).map_err(|e| Error::io("create dir", &dir, e))?;
        let lock = vfs.lock(&dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                Error::Locked { dir: dir.clone() }
            } else {
                Error::io("lock", &dir, e)
            }
        })?;
        let mut scan = recovery::scan(
            &vfs,
            &dir,
            OpenMode::ReadWrite,
            opts.recovery,
            opts.lazy_open,
        )?;
        let prealloc = opts.prepare.preallocates().then_some(opts.segment_size);
        let header = match scan.header.take() {
            Some(h) => Self::secure_and_repair(&vfs, &dir, &mut scan, h, prealloc)?,
            None => {
                let h = HeaderFile::create(&vfs, &dir)?;
                // The directory's own entry (whoever created it) and those of the
                // directories created above it are durable only once their parents are
                // synced.
                crate::io::sync_parents(&vfs, &dir, &created)?;
                recovery::repair(&vfs, &dir, &mut scan, prealloc)?;
                info!("created a new WAL");
                h
            }
        };
        let base = header.state().base;
        let next_seq = scan.max_seq.checked_add(1).ok_or_else(|| {
            Error::corrupt(header.path(), 0, None, "segment sequence numbers exhausted")
        })?;
        let segments = std::mem::take(&mut scan.segments);
        // The last segment may hold no record yet (created by a rotation whose records
        // never became durable, or whose torn first batch was cut): the log ends in the
        // last segment that holds one.
        let (last_index, last_term) = match segments.iter().rev().find(|s| s.len() > 0) {
            Some(s) if s.last_index() > base.index => (
                s.last_index(),
                s.term_of(s.last_index())?.unwrap_or(base.term),
            ),
            _ => (base.index, base.term),
        };
        let mut report = scan.report.clone();
        report.segments = segments.len();
        // A spare for the next rotation; a log without a segment needs it for its first
        // append, so that fill completes now (outside the first append's latency).
        let spare = Spare::open(
            vfs.clone(),
            &dir,
            opts.segment_size,
            opts.prepare,
            segments.last().map(|s| s.written()),
        )?;
        info!(
            segments = segments.len(),
            first_index = base.index + 1,
            last_index,
            entries = report.entries,
            bytes = report.bytes_scanned,
            torn_bytes = report.torn_bytes_truncated,
            removed = report.files_removed,
            elapsed_us = started.elapsed().as_micros() as u64,
            "recovered"
        );
        let capacity = match opts.prepare {
            SegmentPrepare::Grow => 0,
            _ => opts.recycle,
        };
        let free = std::mem::take(&mut scan.free);
        let pool = Pool::open(vfs.clone(), &dir, capacity, opts.segment_size, free)?;
        let wal = Wal {
            spare,
            pool,
            vfs,
            dir,
            opts,
            _lock: lock,
            header,
            snapshot_path: scan.snapshot.take(),
            segments,
            group: scan.fence.group,
            group_started: false,
            next_seq,
            last_batch: 0,
            last_index,
            last_term,
            in_flight: false,
            poisoned: None,
            stats: Stats::default(),
            published: Stats::default(),
            report,
            view: Arc::new(RwLock::new(View::new())),
        };
        wal.publish_view();
        Ok(wal)
    }

    /// Recovery's writing half, for a directory that has a header: refuse a header rollback
    /// the log disproves; make what the scan accepted durable (the fsyncgate defence: the
    /// page cache may hold data a failed fsync never wrote); record the state open keeps in
    /// the header (the fence past its end, the segment sequence high-water mark), in the
    /// current layout; then cut the torn tail and remove stale files.
    fn secure_and_repair(
        vfs: &V,
        dir: &Path,
        scan: &mut recovery::Scan<V::File>,
        mut header: HeaderFile<V::File>,
        prealloc: Option<u64>,
    ) -> Result<HeaderFile<V::File>> {
        if let Some((slot, reason, evidence)) = scan.rollback.take() {
            return Err(Error::HeaderRolledBack {
                path: header.path().to_owned(),
                slot,
                reason,
                evidence,
            });
        }
        scan.report.bytes_resecured = recovery::secure(scan)?;
        let st = HeaderState {
            fence: scan.fence,
            seq_hwm: scan.max_seq,
            ..header.state()
        };
        if header.needs_rewrite() {
            header.rewrite(vfs, dir, st)?;
            info!("header rewritten in the current layout");
        } else {
            header.update_both(st)?;
        }
        recovery::repair(vfs, dir, scan, prealloc)?;
        Ok(header)
    }

    /// A reader of the log's entries for other threads: cloneable, and it never waits behind
    /// this handle's syncs (see [`WalReader`]).
    pub fn reader(&self) -> WalReader<V> {
        WalReader::new(Arc::clone(&self.view))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What recovery found and repaired when this handle was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// Counters since open.
    pub fn stats(&self) -> Stats {
        Stats {
            spare_bytes_zeroed: self.spare.zeroed(),
            ..self.stats
        }
    }

    /// Bytes of record frames the segments hold for the entries at index `from` and above,
    /// written or still buffered: `record_bytes(0)` is all the log keeps on disk, compacted
    /// entries still in the oldest segment included (a segment is deleted only once it is
    /// wholly at or below the base), and `record_bytes(self.first_index())` the live log.
    /// Segment header pages, the header file and snapshot files are not counted. A sealed
    /// segment that a lazy open has not indexed counts to its file's length, and is indexed
    /// when `from` falls inside it.
    pub fn record_bytes(&self, from: u64) -> Result<u64> {
        let mut total = 0;
        for seg in &self.segments {
            let start = if from <= seg.first_index() {
                crate::format::seg::DATA_START as u64
            } else {
                match seg.offset_of(from)? {
                    Some(off) if off != u64::from(u32::MAX) => off,
                    _ => continue,
                }
            };
            total += seg.end().saturating_sub(start);
        }
        Ok(total)
    }

    /// True after a failed write or sync: every later write fails until reopen.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Current term and vote.
    pub fn hard_state(&self) -> HardState {
        self.header.state().hard
    }

    /// Durably records term and vote: one write and one fdatasync of the header file (none if
    /// nothing changed). The term never decreases, and once a vote is cast in a term it
    /// cannot change within that term.
    pub fn set_hard_state(&mut self, hs: HardState) -> Result<()> {
        self.check_writable()?;
        self.check_idle()?;
        let cur = self.header.state();
        if hs == cur.hard {
            return Ok(());
        }
        if hs.term < cur.hard.term {
            return Err(Error::InvalidHardState {
                reason: format!("term would decrease from {} to {}", cur.hard.term, hs.term),
            });
        }
        if hs.term == cur.hard.term && cur.hard.vote.is_some() && hs.vote != cur.hard.vote {
            return Err(Error::InvalidHardState {
                reason: format!(
                    "vote in term {} would change from {:?} to {:?}",
                    hs.term, cur.hard.vote, hs.vote
                ),
            });
        }
        self.update_header(HeaderState { hard: hs, ..cur })
    }

    /// The log base: last index and term covered by the snapshot (0, 0 if none).
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.header.state().base
    }

    /// Reads back the latest snapshot saved with [`Wal::save_snapshot`], fully verified;
    /// `None` if there is none (or the base was moved by [`Wal::compact`] since).
    pub fn snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>> {
        match &self.snapshot_path {
            Some(p) => crate::snapshot::read(&self.vfs, p).map(Some),
            None => Ok(None),
        }
    }

    /// Durably saves a snapshot of the state machine through `meta.index` and moves the log
    /// base to it (Raft's `Snapshot` and `InstallSnapshot`). If the log holds an entry at
    /// `meta.index` with `meta.term`, the entries after it are kept; otherwise the whole log
    /// is discarded and the next append starts at `meta.index + 1`. Whole segments at or below
    /// the base are deleted.
    ///
    /// Order: snapshot file written, synced, renamed, directory synced; a conflicting suffix
    /// truncated durably; then the header (the commit point); then old files removed.
    pub fn save_snapshot(&mut self, meta: SnapshotMeta, data: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.check_idle()?;
        self.check_new_base(meta)?;
        let path = crate::snapshot::write(&self.vfs, &self.dir, meta, data);
        let path = self.guard(path)?;
        self.move_base(meta, Some(path))
    }

    /// Moves the log base to `index` (which must be in the log) without storing snapshot
    /// data, for callers that keep snapshots elsewhere: entries up to `index` are forgotten
    /// and whole segments deleted. A snapshot saved earlier is removed, unless `index` is
    /// already the base (then nothing changes).
    pub fn compact(&mut self, index: u64) -> Result<()> {
        self.check_writable()?;
        self.check_idle()?;
        let term = self.term(index)?;
        let meta = SnapshotMeta { index, term };
        self.check_new_base(meta)?;
        if meta == self.snapshot_meta() {
            // Already the base: nothing to compact, and the snapshot stored there (if any)
            // stays — a repeated purge must not discard it.
            return Ok(());
        }
        self.move_base(meta, None)
    }

    /// Moves the log base to `meta` without storing snapshot data, durably: like
    /// [`Wal::compact`], but `meta` may lie past the last entry (a Raft log store purging
    /// beyond its log after installing a snapshot it keeps elsewhere). If the log holds
    /// `meta.index` with `meta.term`, the entries after it are kept; otherwise the whole log
    /// is discarded and the next append starts at `meta.index + 1`. A snapshot saved
    /// earlier is removed, unless `meta` is already the base (then nothing changes).
    pub fn compact_to(&mut self, meta: SnapshotMeta) -> Result<()> {
        self.check_writable()?;
        self.check_idle()?;
        self.check_new_base(meta)?;
        if meta == self.snapshot_meta() {
            return Ok(());
        }
        self.move_base(meta, None)
    }

    /// First index in the log (`snapshot_meta().index + 1`).
    pub fn first_index(&self) -> u64 {
        self.snapshot_meta().index + 1
    }

    /// Last index in the log (the base index when the log is empty).
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// Term of the last entry (the base term when the log is empty).
    pub fn last_term(&self) -> u64 {
        self.last_term
    }

    /// Term at `index`; the base index answers with the base term.
    pub fn term(&self, index: u64) -> Result<u64> {
        let base = self.snapshot_meta();
        if index == base.index {
            return Ok(base.term);
        }
        self.check_range(index)?;
        let seg = self.segment_of(index)?;
        seg.term_of(index)?.ok_or_else(|| self.missing(index))
    }

    /// Appends a batch of contiguous entries starting at `last_index() + 1`, with terms that
    /// never decrease. Only buffered: durable after the next [`Wal::sync`]. Appending several
    /// batches and syncing once costs one fdatasync (group commit).
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        self.check_writable()?;
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let mut expect = self.last_index + 1;
        let mut term = self.last_term;
        let mut bytes = 0u64;
        for e in entries {
            if e.index == u64::MAX {
                return Err(Error::InvalidAppend {
                    reason: format!("entry index {} is past the largest log index", e.index),
                });
            }
            if e.index != expect {
                return Err(Error::InvalidAppend {
                    reason: format!("entry index {} where {expect} was expected", e.index),
                });
            }
            if e.term < term {
                return Err(Error::InvalidAppend {
                    reason: format!(
                        "entry {} has term {} below the previous term {term}",
                        e.index, e.term
                    ),
                });
            }
            if e.data.len() > rec::MAX_PAYLOAD {
                return Err(Error::InvalidAppend {
                    reason: format!(
                        "entry {} is {} bytes, the limit is {}",
                        e.index,
                        e.data.len(),
                        rec::MAX_PAYLOAD
                    ),
                });
            }
            bytes += record_len(e.data.len()) as u64;
            expect += 1;
            term = e.term;
        }
        let rotate = match self.segments.last() {
            None => true,
            Some(s) => {
                (s.len() > 0 && s.end() + bytes > self.opts.segment_size)
                    || s.first_index() + s.len() != first.index
                    || !s.appendable()
            }
        };
        if rotate {
            self.rotate(first.index, bytes)?;
        }
        let active_end = self.segments.last().map_or(0, |s| s.end());
        if active_end + bytes > u64::from(u32::MAX) {
            return Err(Error::InvalidAppend {
                reason: format!("a batch of {bytes} bytes does not fit a segment (4 GiB limit)"),
            });
        }
        let group = self.group;
        let header_seq = self.header.seq() as u32;
        let last = entries.len() - 1;
        let seg = self.segments.last_mut().ok_or_else(|| Error::Internal {
            reason: "no active segment after a rotation".into(),
        })?;
        let group_started = self.group_started;
        seg.buffer(
            bytes as usize,
            entries.iter().enumerate().map(|(i, e)| {
                let header = RecordHeader {
                    len: e.data.len() as u32,
                    index: e.index,
                    term: e.term,
                    group,
                    batch_end: i == last,
                    group_start: i == 0 && !group_started,
                    header_seq,
                };
                (header, &e.data[..])
            }),
        );
        self.group_started = true;
        self.last_batch = bytes;
        let early = seg.buffered() > self.opts.write_buffer;
        self.last_index = expect - 1;
        self.last_term = term;
        self.publish_view();
        self.stats.entries_appended += entries.len() as u64;
        if early && !self.in_flight {
            // Write ahead of the sync, keeping the newest record buffered.
            self.write_active(true)?;
        }
        Ok(())
    }

    /// Makes every appended batch durable: the buffered records are written (one `pwrite`)
    /// and each file written since the last sync is `fdatasync`ed once. Returns once the
    /// data is on stable storage. The same as [`Wal::begin_sync`], [`PendingSync::wait`],
    /// [`Wal::end_sync`] in a row, except that with [`Options::rotate_ahead`], when the last
    /// batch would not fit in the rest of the active segment, the next segment is prepared
    /// beside the `fdatasync`s; an error preparing it fails the sync and poisons the handle,
    /// as any write error does.
    pub fn sync(&mut self) -> Result<()> {
        let pending = self.begin_sync()?;
        self.finish_sync(pending)
    }

    /// Starts a sync whose `fdatasync`s run without borrowing the `Wal`, so that appends and
    /// reads go on meanwhile (pipelined durability): writes every buffered record out, and
    /// returns the files written since their last sync. Call [`PendingSync::wait`] on any
    /// thread, then [`Wal::end_sync`] with its result; every batch appended before this
    /// call is durable once `wait` returned `Ok`.
    ///
    /// While the sync is in flight, appends are buffered and never written, not even ahead
    /// of the sync or at a rotation: a record of the next sync group must not reach the
    /// disk before the `fdatasync` of this one returned (recovery's proof that earlier
    /// groups are durable rests on it; docs/FORMAT.md). The next sync writes them. Every
    /// other write (`sync`, `set_hard_state`, `set_app_meta`, truncation, compaction,
    /// snapshot) is refused with [`Error::InvalidArgument`] until `end_sync`.
    pub fn begin_sync(&mut self) -> Result<PendingSync<V::File>> {
        self.check_writable()?;
        self.check_idle()?;
        let timer = crate::metrics::Timer::start();
        // Only segments sealed since the last sync can hold unsynced or buffered records,
        // and they are the ones just before the active segment.
        let n = self.segments.len();
        let first = self.segments[..n.saturating_sub(1)]
            .iter()
            .rposition(|s| !s.is_dirty() && s.buffered() == 0)
            .map_or(0, |i| i + 1);
        let mut files = Vec::new();
        for i in first..n {
            self.write_out(i, false)?;
            files.extend(self.segments[i].take_dirty());
        }
        if self.group_started {
            self.group += 1;
            self.group_started = false;
        }
        self.in_flight = true;
        Ok(PendingSync { files, timer })
    }

    /// Ends the sync `pending` begun by [`Wal::begin_sync`], with the result of its
    /// [`PendingSync::wait`]: an error poisons the handle (the page cache's state is
    /// unknown, fsyncgate) and is returned.
    pub fn end_sync(&mut self, pending: PendingSync<V::File>, result: Result<()>) -> Result<()> {
        self.settle_sync(pending, result)?;
        self.take_ahead_if_due()?;
        self.publish();
        Ok(())
    }

    /// [`Wal::end_sync`] without what follows a sync: records the result of `pending`.
    fn settle_sync(&mut self, pending: PendingSync<V::File>, result: Result<()>) -> Result<()> {
        self.in_flight = false;
        self.stats.file_syncs += pending.files.len() as u64;
        self.guard(result)?;
        crate::metrics::sync(pending.timer);
        Ok(())
    }

    /// Whether a sync begun by [`Wal::begin_sync`] has not ended yet.
    pub fn sync_in_flight(&self) -> bool {
        self.in_flight
    }

    /// Appends a batch and syncs it: durable when this returns.
    pub fn append_sync(&mut self, entries: &[Entry]) -> Result<()> {
        self.append(entries)?;
        self.sync()
    }

    /// Reads one entry, verifying its checksums.
    pub fn entry(&self, index: u64) -> Result<Entry> {
        self.check_range(index)?;
        let si = self.segment_pos(index).ok_or_else(|| self.missing(index))?;
        self.segments[si].read_entry(index)
    }

    /// Reads entries `[lo, hi)`, each verified.
    pub fn entries(&self, lo: u64, hi: u64) -> Result<Vec<Entry>> {
        self.entries_bounded(lo, hi, u64::MAX)
    }

    /// Reads entries from `lo` up to `hi` (exclusive), each verified, stopping before the
    /// entry that would take the payload bytes read past `max_bytes` — but always at least
    /// one entry when `lo < hi`, so a caller with a small budget still makes progress (a
    /// replication batch of bounded size). Each payload is read once, straight into the
    /// returned entry.
    pub fn entries_bounded(&self, lo: u64, hi: u64, max_bytes: u64) -> Result<Vec<Entry>> {
        if hi <= lo {
            return Ok(Vec::new());
        }
        self.check_range(lo)?;
        self.check_range(hi - 1)?;
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for i in lo..hi {
            let e = self.entry(i)?;
            bytes = bytes.saturating_add(e.data.len() as u64);
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push(e);
        }
        Ok(out)
    }

    /// The application metadata last stored with [`Wal::set_app_meta`] (empty if none): an
    /// opaque blob of at most [`crate::APP_META_MAX`] bytes that an adapter keeps beside
    /// term and vote — openraft's whole vote with its leader id and committed flag, the
    /// committed log id, the purged log id's leader.
    pub fn app_meta(&self) -> &[u8] {
        self.header.app_meta()
    }

    /// Durably replaces the application metadata: one header slot written, one
    /// `fdatasync`, with the same crash guarantee as [`Wal::set_hard_state`] (after a crash
    /// open finds the old blob or the new one). Later truncations, compactions and
    /// snapshots carry it into both slots. Appends buffered before are not synced by this
    /// call: an adapter whose metadata must not become durable ahead of them syncs first.
    pub fn set_app_meta(&mut self, meta: &[u8]) -> Result<()> {
        self.check_writable()?;
        self.check_idle()?;
        let app = AppMeta::new(meta).ok_or_else(|| Error::InvalidArgument {
            reason: format!(
                "application metadata of {} bytes; the header holds at most {}",
                meta.len(),
                crate::APP_META_MAX
            ),
        })?;
        let cur = self.header.state();
        if cur.app == app {
            return Ok(());
        }
        self.update_header(HeaderState { app, ..cur })
    }

    /// Durably removes entries `from..` (a follower's conflicting suffix). `from` must be
    /// above the base; a `from` past the end is a no-op. Buffered appends are synced first.
    ///
    /// Order: the header records `from - 1` as the truncation point (so a batch cut short
    /// still reads as complete); later segments are removed one by one from the last, each
    /// removal made durable by a directory fsync; then the segment holding `from` is cut at
    /// its record and synced. Every
    /// intermediate state recovers to a log that ends somewhere between `from - 1` and the
    /// old last index.
    pub fn truncate_suffix(&mut self, from: u64) -> Result<()> {
        let r = self.cut_suffix(from);
        self.publish_view();
        r
    }

    fn cut_suffix(&mut self, from: u64) -> Result<()> {
        self.check_writable()?;
        self.check_idle()?;
        let base = self.snapshot_meta();
        if from <= base.index {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "cannot truncate from {from}: the log base is {}",
                    base.index
                ),
            });
        }
        if from > self.last_index {
            return Ok(());
        }
        self.sync()?;
        let span = info_span!("truncate_suffix", from, last = self.last_index);
        let _g = span.enter();
        // The segment that will be last after the cut (holding `from`, or `from - 1` if
        // `from` starts a segment) needs its index, and its end, before anything changes:
        // a lazy open may not have read it yet, and that read can find corruption.
        if let Some(pos) = self.segment_pos(from - 1) {
            self.segments[pos].make_writable()?;
        }
        // Readers stop at `from - 1` before any entry leaves a segment (if the truncation
        // fails the handle is poisoned, and what it holds is for open to decide).
        let new_last = (from - 1, self.term(from - 1)?);
        (self.last_index, self.last_term) = new_last;
        self.publish_view();
        // Record the new end first: if the cut lands inside a batch, recovery must take the
        // kept part of that batch as complete, not as a torn write.
        let cur = self.header.state();
        self.reshape_header(HeaderState {
            // Entries up to `from - 1` are durable (synced above); every record past it
            // was written in a group below the current one, every record written from now
            // on will carry the current one or later.
            fence: Fence {
                index: from - 1,
                group: self.group,
            },
            ..cur
        })?;
        while let Some(seg) = self.segments.last() {
            if seg.first_index() < from || self.segments.len() == 1 {
                break;
            }
            let seg = self.segments.pop().ok_or_else(|| self.missing(from))?;
            seg.leave_log();
            let path = seg.path().to_path_buf();
            drop(seg);
            self.remove_durably(&path)?;
        }
        let reserve = self.reserve();
        let Some(seg) = self.segments.last_mut() else {
            return Ok(());
        };
        let cut = seg.cut_offset(from)?;
        seg.forget_from(from)?;
        let starts_past = seg.first_index() > from;
        let r = seg.cut_file(cut, reserve);
        self.stats.file_syncs += 1;
        self.guard(r)?;
        if starts_past {
            // A segment that starts past `from` cannot take the next append; drop it.
            if let Some(seg) = self.segments.pop() {
                seg.leave_log();
                let path = seg.path().to_path_buf();
                drop(seg);
                self.remove_durably(&path)?;
            }
        }
        info!(new_last = self.last_index, "truncated suffix");
        Ok(())
    }

    fn check_new_base(&self, meta: SnapshotMeta) -> Result<()> {
        let base = self.snapshot_meta();
        if meta.index == u64::MAX {
            // The next index would not exist (and `first_index` would overflow).
            return Err(Error::InvalidArgument {
                reason: format!("snapshot index {} leaves no room for a log", meta.index),
            });
        }
        if meta.index < base.index || (meta.index == base.index && meta.term != base.term) {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "snapshot at index {} term {} does not follow the base at index {} term {}",
                    meta.index, meta.term, base.index, base.term
                ),
            });
        }
        Ok(())
    }

    /// Moves the base to `meta` (header update = commit point), then removes what it covers.
    fn move_base(&mut self, meta: SnapshotMeta, snapshot: Option<PathBuf>) -> Result<()> {
        let r = self.rebase(meta, snapshot);
        self.publish_view();
        r
    }

    fn rebase(&mut self, meta: SnapshotMeta, snapshot: Option<PathBuf>) -> Result<()> {
        let span = info_span!("compact", index = meta.index, term = meta.term);
        let _g = span.enter();
        // Only "not in the log" means the log conflicts with the snapshot: an entry that
        // cannot be read (a lazily deferred segment found damaged) must surface, never be
        // taken for a conflict that truncates a healthy log.
        let keeps_suffix = self.last_index >= meta.index
            && match self.term(meta.index) {
                Ok(t) => t == meta.term,
                Err(Error::Compacted { .. } | Error::Unavailable { .. }) => false,
                Err(e) => return Err(e),
            };
        if !keeps_suffix && self.last_index > meta.index.max(self.snapshot_meta().index) {
            // The log conflicts with the snapshot: drop it durably first.
            let from = meta.index.max(self.snapshot_meta().index + 1);
            self.truncate_suffix(from)?;
        }
        self.sync()?;
        let cur = self.header.state();
        self.reshape_header(HeaderState {
            base: meta,
            has_snapshot: snapshot.is_some(),
            ..cur
        })?;
        let old_snapshot = std::mem::replace(&mut self.snapshot_path, snapshot);
        if !keeps_suffix {
            self.last_index = meta.index;
            self.last_term = meta.term;
        }
        // Readers see the new base before any segment leaves the log.
        self.publish_view();
        // Remove segments wholly at or below the base. The last one stays while the log
        // continues from it (even if all its entries are compacted): a directory without
        // segments would keep no trace of this compaction besides the header, and should a
        // slot still hold the older state (a crash between the two slot writes, then bit
        // rot in the first), open would fall back to the older base with the entries above
        // it gone. What remains lets open recover the older state, or refuse.
        let mut doomed = Vec::new();
        while !self.segments.is_empty() {
            let wholly_below = match self.segments.get(1) {
                Some(next) => next.first_index() <= meta.index + 1,
                None => !keeps_suffix,
            };
            if !wholly_below {
                break;
            }
            let seg = self.segments.remove(0);
            seg.leave_log();
            let len = seg.file().len();
            doomed.push((
                seg.path().to_path_buf(),
                Some((seg.seq(), self.guard(len)?)),
            ));
        }
        if self.segments.is_empty() {
            // The log restarts past a snapshot it does not hold: its next segment is created
            // (durably) before the old ones go, so that a segment starting past the older
            // slot's base proves this snapshot was installed. (No entry can follow a base
            // of `u64::MAX - 1`: no segment then.)
            if meta.index < u64::MAX - 1 {
                self.rotate(meta.index + 1, 0)?;
            }
            // The new segment replaced (renamed over) any old one of that name.
            let fresh = self.segments.last().map(|s| s.path().to_path_buf());
            doomed.retain(|(p, _)| Some(p) != fresh.as_ref());
        }
        if let Some(old) = old_snapshot.filter(|p| Some(p) != self.snapshot_path.as_ref()) {
            doomed.push((old, None));
        }
        // No directory fsync: the header update was the commit point. A removal or a
        // rename into the pool that a crash undoes leaves a compacted segment (or the old
        // snapshot) that the next open removes as stale; a take from the pool fsyncs the
        // directory before it writes into a file freed since the last one.
        for (path, segment) in &doomed {
            self.free_or_remove(path, *segment)?;
        }
        info!(removed = doomed.len(), "compacted");
        Ok(())
    }

    /// Puts a file the log no longer needs — a compacted segment (with its sequence number
    /// and length) or an old snapshot — into the recycle pool if it takes it, else deletes
    /// it. Not durable until the caller syncs the directory.
    fn free_or_remove(&mut self, path: &Path, segment: Option<(u64, u64)>) -> Result<()> {
        if let Some((seq, len)) = segment {
            let freed = self.pool.free(path, seq, len);
            if self.guard(freed)? {
                self.stats.segments_recycled += 1;
                return Ok(());
            }
        }
        let r = crate::io::remove_if_present(&self.vfs, path);
        self.guard(r).map(drop)
    }

    /// A term/vote change: one slot, one fdatasync.
    fn update_header(&mut self, st: HeaderState) -> Result<()> {
        let st = self.with_seq_hwm(st);
        let r = self.header.update(st);
        self.stats.header_updates += 1;
        self.stats.file_syncs += 1;
        self.publish();
        self.guard(r)
    }

    /// A truncation's fence or a new base: both slots (see `HeaderFile::update_both`), two
    /// fdatasyncs.
    fn reshape_header(&mut self, st: HeaderState) -> Result<()> {
        let st = self.with_seq_hwm(st);
        let r = self.header.update_both(st);
        self.stats.header_updates += 1;
        self.stats.file_syncs += 2;
        self.publish();
        self.guard(r)
    }

    /// Every header update carries the highest segment sequence used so far, so that no
    /// later segment reuses the identity of one removed after it.
    fn with_seq_hwm(&self, st: HeaderState) -> HeaderState {
        HeaderState {
            seq_hwm: st.seq_hwm.max(self.next_seq.saturating_sub(1)),
            ..st
        }
    }

    /// Writes the active segment's buffered records (no sync): all of them, or all but the
    /// newest with `keep_last`.
    fn write_active(&mut self, keep_last: bool) -> Result<()> {
        match self.segments.len() {
            0 => Ok(()),
            n => self.write_out(n - 1, keep_last),
        }
    }

    /// Writes segment `i`'s buffered records (no sync).
    fn write_out(&mut self, i: usize, keep_last: bool) -> Result<()> {
        let active = i + 1 == self.segments.len();
        let seg = &mut self.segments[i];
        if seg.buffered() == 0 {
            return Ok(());
        }
        let r = seg.write_out(keep_last, self.opts.writeback_chunk);
        let written = seg.written();
        // A failed write-out counts as the one call that failed.
        self.stats.writes += r.as_ref().map_or(1, |&(_, writes)| writes);
        let (n, _) = self.guard(r)?;
        self.stats.bytes_written += n as u64;
        if active {
            self.spare.progress(written);
        } else {
            self.segments[i].release_buffer();
        }
        Ok(())
    }

    fn remove_durably(&mut self, path: &Path) -> Result<()> {
        let r = crate::io::remove_durably(&self.vfs, &self.dir, path);
        self.stats.dir_syncs += 1;
        self.guard(r)?;
        // The directory fsync made every earlier rename into the pool durable too.
        self.pool.dir_synced();
        Ok(())
    }

    /// Publishes the log's range and segments to readers: the segments' list is copied only
    /// when it changed (segments are only ever added at the end and removed from either
    /// end, so its length and its two ends tell).
    fn publish_view(&self) {
        let mut v = self.view.write();
        v.base = self.snapshot_meta();
        v.last_index = self.last_index;
        v.last_term = self.last_term;
        let same_end = |a: Option<&Arc<_>>, b: Option<&Segment<V::File>>| match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b.shared()),
            (None, None) => true,
            _ => false,
        };
        let unchanged = v.segments.len() == self.segments.len()
            && same_end(v.segments.first(), self.segments.first())
            && same_end(v.segments.last(), self.segments.last());
        if !unchanged {
            v.segments = self
                .segments
                .iter()
                .map(|s| Arc::clone(s.shared()))
                .collect();
        }
        debug_assert!(v
            .segments
            .iter()
            .zip(&self.segments)
            .all(|(a, b)| Arc::ptr_eq(a, b.shared())));
    }

    /// Publishes the counters' growth as metrics (a no-op without the `metrics` feature).
    fn publish(&mut self) {
        crate::metrics::publish(&self.stats(), &mut self.published);
    }

    /// The one poison-on-error guard: every write-side result passes through here, and an
    /// error poisons the handle (the page cache's state is unknown from then on).
    fn guard<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(err) = &r {
            if self.poisoned.is_none() {
                warn!(error = %err, "WAL poisoned: later writes are refused until reopen");
                crate::metrics::poisoned();
                self.poisoned = Some((err.to_string(), err.io_kind()));
            }
        }
        r
    }

    /// Refuses a write while a sync begun by `begin_sync` is in flight.
    fn check_idle(&self) -> Result<()> {
        if self.in_flight {
            return Err(Error::InvalidArgument {
                reason: "a sync begun with begin_sync is in flight: end it with end_sync \
                         first"
                    .into(),
            });
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        match &self.poisoned {
            Some((cause, kind)) => Err(Error::Poisoned {
                cause: cause.clone(),
                kind: *kind,
            }),
            None => Ok(()),
        }
    }

    fn check_range(&self, index: u64) -> Result<()> {
        let first = self.first_index();
        if index < first {
            return Err(Error::Compacted {
                index,
                first_index: first,
            });
        }
        if index > self.last_index {
            return Err(Error::Unavailable {
                index,
                last_index: self.last_index,
            });
        }
        Ok(())
    }

    fn segment_pos(&self, index: u64) -> Option<usize> {
        let pos = self.segments.partition_point(|s| s.first_index() <= index);
        let si = pos.checked_sub(1)?;
        self.segments[si].contains(index).then_some(si)
    }

    fn segment_of(&self, index: u64) -> Result<&Segment<V::File>> {
        self.segment_pos(index)
            .map(|i| &self.segments[i])
            .ok_or_else(|| self.missing(index))
    }

    fn missing(&self, index: u64) -> Error {
        Error::corrupt(
            &self.dir,
            0,
            Some(index),
            "index within the log's range has no record (internal index inconsistency)",
        )
    }
}

/// Largest write buffer allocation a rotation passes on to the next segment (bigger ones,
/// left by an outsized batch, are freed).
const KEPT_BUFFER: usize = 64 << 20;

/// Refuses options the log cannot keep to.
fn check_options(opts: &Options) -> Result<()> {
    let min_segment = crate::format::seg::DATA_START as u64 + 4096;
    if opts.segment_size < min_segment {
        return Err(Error::InvalidArgument {
            reason: format!(
                "segment_size {} is below {min_segment} bytes (a 4 KiB header page and 4 KiB \
                 of records)",
                opts.segment_size
            ),
        });
    }
    let max_segment = u64::from(u32::MAX);
    if opts.segment_size > max_segment {
        return Err(Error::InvalidArgument {
            reason: format!(
                "segment_size {} is above {max_segment} bytes: record offsets within a \
                 segment are 32-bit",
                opts.segment_size
            ),
        });
    }
    Ok(())
}

impl<V: Vfs> Drop for Wal<V> {
    /// Readers that outlive the handle read nothing more: the directory is unlocked.
    fn drop(&mut self) {
        self.view.write().closed = true;
    }
}

impl<V: Vfs> std::fmt::Debug for Wal<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("first_index", &self.first_index())
            .field("last_index", &self.last_index)
            .field("segments", &self.segments.len())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}
