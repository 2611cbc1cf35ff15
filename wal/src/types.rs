//! Plain data types of the WAL's API.

/// One Raft log entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Position in the log, starting at 1.
    pub index: u64,
    /// The term in which the entry was created.
    pub term: u64,
    /// The command, opaque to the WAL.
    pub data: Vec<u8>,
}

/// Raft's persistent per-server state besides the log (Figure 2: `currentTerm`, `votedFor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    /// The latest term this server has seen.
    pub term: u64,
    /// The candidate this server voted for in `term`, if any.
    pub vote: Option<u64>,
}

/// The log base: the last index and term covered by the latest snapshot (0, 0 when none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct SnapshotMeta {
    /// Last log index the snapshot includes.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
}

/// What recovery does when it finds corruption of synced data (not a torn tail).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Refuse to open and report the file and offset (the default: synced entries are never
    /// dropped without an operator's decision).
    #[default]
    Strict,
    /// Operator's explicit choice: cut the log at the first bad record (or before a segment
    /// whose header is damaged), dropping it and everything after it, and open. A HEADER
    /// that cannot be read, a snapshot that does not verify and a file that is not ours are
    /// still refused. Each cut is logged and reported in
    /// [`RecoveryReport::corruption_truncated`]. Use only when the lost entries can be
    /// recovered from peers (a Raft follower can re-fetch them from the leader).
    TruncateCorrupt,
}

/// Tuning knobs. `Options::default()` suits most deployments; change a knob with its
/// `with_*` method (the struct is `#[non_exhaustive]`, so knobs can be added without
/// breaking callers):
///
/// ```
/// let opts = raftwal::Options::default()
///     .with_segment_size(16 << 20)
///     .with_lazy_open(true);
/// assert_eq!(opts.segment_size, 16 << 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Size at which the active segment is sealed and a new one started (default 64 MiB; at
    /// least 8 KiB: records start after a 4 KiB header page; below 4 GiB: record offsets
    /// within a segment are 32-bit, and open refuses more). A single batch larger than
    /// this gets a segment of its own. Size it at several times the largest batch: a batch
    /// that does not fit starts a new segment, whose header `fdatasync` and directory fsync
    /// run beside the previous sync when [`Options::rotate_ahead`] foresaw it, and before
    /// this batch's own sync when not.
    pub segment_size: u64,
    /// What to do about corruption of synced data found on open.
    pub recovery: RecoveryMode,
    /// Appended bytes buffered before they are written out ahead of a `sync` (default 4 MiB).
    pub write_buffer: usize,
    /// Records are written in pieces of this many bytes (aligned in the file), and each
    /// piece's writeback is started as soon as it is written, so the device writes while
    /// the rest is copied into the page cache (default 256 KiB; 0: one `pwrite` per
    /// write-out). A hint only: nothing counts as durable before the `fdatasync`. On Linux
    /// it is `posix_fadvise(POSIX_FADV_DONTNEED)` on the piece just written, which starts
    /// the writeback of its dirty pages without waiting; it drops from the cache only pages
    /// of the piece that are clean by then (a reader of them goes to the disk). Elsewhere
    /// the pieces are only written. `raftwal bench`, steady state: 2 MiB batches went from
    /// 0.74–0.86 to 0.92–1.06 × the raw overwrite loop with the other changes of that run
    /// (docs/BENCHMARKS.md).
    pub writeback_chunk: u64,
    /// Whether new segments are preallocated, and how their space is prepared (default
    /// [`SegmentPrepare::ZeroFillBackground`]; [`SegmentPrepare::Grow`]: no preallocation).
    pub prepare: SegmentPrepare,
    /// Open without reading the sealed segments between the first and the last (default
    /// false: every record is verified at open). Open then scans the first segment (the
    /// snapshot base's entry) and the last one (or, failing that, the last two), and
    /// accepts the ones between unread when the log ends cleanly and a scanned segment
    /// after them holds a record that starts a sync group: that record was written only
    /// after every earlier record was synced, so nothing between can be a torn write. Each
    /// of those segments is verified in full the first time an entry in it is read (or
    /// truncated); damage found then is [`crate::Error::Corrupt`]
    /// naming file and offset, where a full open would have refused to start. A torn tail,
    /// any other damage, [`RecoveryMode::TruncateCorrupt`] or fewer than three segments
    /// fall back to the full scan. Open time then no longer grows with the retained log
    /// (beyond one `open` and header read per segment). The snapshot's data is verified
    /// when [`crate::Wal::snapshot`] reads it instead of at open. `raftwal verify` always
    /// reads everything.
    pub lazy_open: bool,
    /// How many compacted segment files to keep for reuse (default 2; 0 deletes them, as
    /// [`SegmentPrepare::Grow`] always does). A compaction renames a segment it frees into
    /// this *recycle pool* instead of deleting it, and a rotation takes a file from the pool
    /// before the spare: appends then overwrite blocks that already hold data (no zero
    /// fill, no unwritten extents) and compaction costs a rename, not an unlink. Disk cost:
    /// up to this many `segment_size` files beside the log, or up to 4 × `segment_size`
    /// each when batches outgrow segments (a batch larger than a segment gets one of its
    /// own; the pool keeps such files for such batches). See `docs/FORMAT.md`, "Recycle
    /// pool".
    pub recycle: usize,
    /// Whether [`crate::Wal::sync`] prepares the next segment beside its `fdatasync` when
    /// the batch just synced would not fit in the rest of the active segment and the
    /// recycle pool holds a file (default false). The next batch then goes to a segment
    /// whose header `fdatasync` and directory fsync are done, instead of paying them before
    /// its own sync; the active segment is sealed with less room left than that batch took
    /// (a batch like it would have rotated anyway). Costs a thread spawned per such sync.
    /// Off by default because it measured no gain on this project's disk, which serves
    /// flushes one at a time: rotating batches cost the same +0.3–0.6 ms either way, and
    /// whole runs were 2–7 % slower with it (`profile rotation`, docs/BENCHMARKS.md). Try it
    /// where the device completes concurrent flushes in parallel. The pipelined
    /// [`crate::Wal::begin_sync`] never does it: there a rotation inside `append` already
    /// runs while the sync is in flight. See [`Stats::segments_ahead`].
    pub rotate_ahead: bool,
    /// Whether a `sync` writes the next segment's header ahead, into a file of the recycle
    /// pool, once the active segment is past half full (default true; needs
    /// [`Options::recycle`]). The rotation that takes it then renames it into place and
    /// fsyncs the directory — no header `fdatasync` and no earlier directory fsync in front
    /// of the rotating batch's own sync. The header written ahead names no first index (the
    /// file name gives it, `docs/FORMAT.md`, "Recycle pool"); until the rotation the file is
    /// an ordinary pool file, never read by recovery. Costs one header `fdatasync` (4 KiB,
    /// over written blocks) in one sync per segment. See [`Stats::segments_taken_ahead`].
    pub take_ahead: bool,
}

/// How a new segment's space is prepared.
///
/// Every mode but [`SegmentPrepare::Grow`] preallocates each segment to `segment_size`, so
/// appends neither grow the file nor fail for space mid-segment.
///
/// Appending into blocks that `fallocate` reserved costs a journal commit per `fdatasync` on
/// ext4/xfs (each first write converts an *unwritten extent*); appending over blocks that
/// already hold written zeros does not. The zero-filling modes keep one spare segment file of
/// written zeros ready (one `segment_size` of extra disk space) and turn it into the next
/// segment at rotation. See `docs/FORMAT.md`, "Spare segment".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SegmentPrepare {
    /// `fallocate` each new segment at rotation; no spare file.
    Allocate,
    /// Keep a zero-filled spare, filled on the appending thread right after each rotation
    /// (and at open). Deterministic: for simulated file systems and tests.
    ZeroFill,
    /// Keep a zero-filled spare, filled by a background thread in step with the log (the
    /// default). A rotation that finds the fill unfinished hurries it: the rest of the spare
    /// is `fallocate`d instead of zeroed.
    #[default]
    ZeroFillBackground,
    /// No preallocation: segments grow as records are appended (each `fdatasync` then also
    /// commits the file's new size). For file systems where preallocation is expensive or
    /// unsupported, and for measuring what preallocation buys.
    Grow,
}

impl SegmentPrepare {
    /// Whether new segments are preallocated to `segment_size`.
    pub fn preallocates(self) -> bool {
        self != SegmentPrepare::Grow
    }
}

impl Options {
    /// Sets [`Options::segment_size`].
    pub fn with_segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// Sets [`Options::recovery`].
    pub fn with_recovery(mut self, mode: RecoveryMode) -> Self {
        self.recovery = mode;
        self
    }

    /// Sets [`Options::write_buffer`].
    pub fn with_write_buffer(mut self, bytes: usize) -> Self {
        self.write_buffer = bytes;
        self
    }

    /// Sets [`Options::writeback_chunk`].
    pub fn with_writeback_chunk(mut self, bytes: u64) -> Self {
        self.writeback_chunk = bytes;
        self
    }

    /// Sets [`Options::prepare`].
    pub fn with_prepare(mut self, prepare: SegmentPrepare) -> Self {
        self.prepare = prepare;
        self
    }

    /// Sets [`Options::lazy_open`].
    pub fn with_lazy_open(mut self, lazy: bool) -> Self {
        self.lazy_open = lazy;
        self
    }

    /// Sets [`Options::recycle`].
    pub fn with_recycle(mut self, files: usize) -> Self {
        self.recycle = files;
        self
    }

    /// Sets [`Options::rotate_ahead`].
    pub fn with_rotate_ahead(mut self, ahead: bool) -> Self {
        self.rotate_ahead = ahead;
        self
    }

    /// Sets [`Options::take_ahead`].
    pub fn with_take_ahead(mut self, ahead: bool) -> Self {
        self.take_ahead = ahead;
        self
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_size: 64 << 20,
            recovery: RecoveryMode::Strict,
            write_buffer: 4 << 20,
            writeback_chunk: 256 << 10,
            prepare: SegmentPrepare::default(),
            lazy_open: false,
            recycle: 2,
            rotate_ahead: false,
            take_ahead: true,
        }
    }
}

/// What `open` found and repaired (fields are added as recovery learns to report more).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Segment files scanned.
    pub segments: usize,
    /// Of those, sealed segments accepted without reading their records
    /// ([`Options::lazy_open`]); each is verified when first read.
    pub segments_deferred: usize,
    /// Entries recovered (above the snapshot base).
    pub entries: u64,
    /// Bytes of segment data verified.
    pub bytes_scanned: u64,
    /// Bytes of a torn (never acknowledged) tail that were cut.
    pub torn_bytes_truncated: u64,
    /// Bytes of the last sync group open wrote again and synced, because nothing on disk
    /// proves them durable (after a failed fsync the page cache may hold data that never
    /// reached the disk).
    pub bytes_resecured: u64,
    /// Files removed because they held only state that never became durable or was superseded
    /// (segments past a torn tail, stale snapshots, temporary files).
    pub files_removed: usize,
    /// Cuts made at corruption under [`RecoveryMode::TruncateCorrupt`].
    pub corruption_truncated: Vec<Damage>,
    /// Damaged records found at or below the snapshot base — data no longer needed — that
    /// recovery stepped over.
    pub compacted_damage: Vec<Damage>,
}

/// Damage recovery found in a file, and what it did about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The file.
    pub path: std::path::PathBuf,
    /// Byte offset of the damaged record or header in it.
    pub offset: u64,
    /// What is wrong there, and what recovery did.
    pub reason: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.path.display(),
            self.offset,
            self.reason
        )
    }
}

/// Counters of the work the WAL has done since open (counters are added over time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Entries appended.
    pub entries_appended: u64,
    /// Bytes written to segment files (frames and headers).
    pub bytes_written: u64,
    /// `write` calls issued to segment files.
    pub writes: u64,
    /// `fdatasync`/`fsync` calls on files (segments, header, snapshots).
    pub file_syncs: u64,
    /// `fsync` calls on the directory.
    pub dir_syncs: u64,
    /// Header (term/vote/base) updates.
    pub header_updates: u64,
    /// Segments created.
    pub segments_created: u64,
    /// Of those, segments made from a spare file (see [`SegmentPrepare`]).
    pub segments_from_spare: u64,
    /// Of those, segments made from a recycled file ([`Options::recycle`]).
    pub segments_from_pool: u64,
    /// Of those, segments prepared by a `sync` beside its `fdatasync`
    /// ([`Options::rotate_ahead`]).
    pub segments_ahead: u64,
    /// Of the segments from the pool, those whose header a sync had written ahead
    /// ([`Options::take_ahead`]): their rotation renamed them into place, nothing more.
    pub segments_taken_ahead: u64,
    /// Compacted segments renamed into the recycle pool instead of deleted.
    pub segments_recycled: u64,
    /// Bytes of zeros written into spare files (less than `segment_size` per spare when a
    /// rotation had to take one before it was fully zeroed).
    pub spare_bytes_zeroed: u64,
}
