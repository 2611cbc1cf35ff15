//! The spare segment: a file of written, synced zeros kept ready for the next rotation.
//!
//! On ext4 and xfs, `fallocate` reserves *unwritten extents*: the first write into each block
//! converts it, a metadata change, so every `fdatasync` that follows such a write also
//! commits the file system's journal. Overwriting blocks that already hold written zeros
//! leaves `fdatasync` only data to flush (the raw loops of `raftwal bench` measure the
//! difference at 1.2–2.8× on this project's ext4 machine). PostgreSQL zero-fills its WAL
//! segments for the same reason.
//!
//! So, with [`SegmentPrepare::ZeroFill`] or [`SegmentPrepare::ZeroFillBackground`], the WAL
//! keeps one spare file, `segment.spare`, of `segment_size` written zeros:
//!
//! 1. **Fill**: `segment.spare.tmp` is created, zeros are written over its whole length and
//!    `fdatasync`ed, then it is renamed to `segment.spare`. A crash part-way leaves a `.tmp`
//!    file, which the next open removes. No directory fsync: losing the spare is harmless.
//! 2. **Take** (at rotation): the new segment's header is written at offset 0 of the spare
//!    and `fdatasync`ed, the spare is renamed to `<first-index>.wal` and the directory
//!    fsynced. Only then is any record written to it. So a `<first-index>.wal` always has a
//!    durable, valid header (as a segment created from scratch does), and a file still
//!    named `segment.spare` never holds a record: at most a header, which the next take
//!    overwrites. Nothing stale in a spare can ever verify as a record.
//! 3. The next spare is filled right after a take: on a background thread
//!    ([`SegmentPrepare::ZeroFillBackground`]) or inline on the appending thread
//!    ([`SegmentPrepare::ZeroFill`], deterministic, for simulated file systems).
//!
//! **Spreading the fill.** The background filler does not write its zeros as fast as it can:
//! a burst of zero writes and their `fdatasync`s queues on the device ahead of the log's own
//! small `fdatasync`s (measured: p99.9 of one-entry syncs went from 0.2 ms to 0.9 ms while a
//! 64 MiB spare was zeroed at full speed). It keeps the zeroed fraction of the spare just
//! ahead of *twice* the used fraction of the active segment — one [`FILL_CHUNK`] ahead — and
//! parks in between; the log reports its progress after each write and wakes the filler when
//! it has moved far enough. So the spare is complete when the active segment is half full,
//! and the zeros go out in small pieces spread over that half of the segment's life, in
//! step with the log's own pace whatever it is. (The inline mode cannot wait for the log and
//! fills at once.)
//!
//! Zeroing costs a second write of every segment. It pays while the log leaves the disk idle
//! between `fdatasync`s (small batches: latency-bound), not when the log's own writes keep
//! the disk busy (large batches: bandwidth-bound, where the extent conversion is amortized
//! anyway). So the background mode paces itself: it zeroes the next spare only if, at the
//! rate the last zeroing ran (time spent writing and syncing, not parked), the fill takes
//! at most half as long as the last segment lasted; otherwise the next spare is only
//! `fallocate`d (still off the commit path, so a rotation costs a header write, a rename and
//! two syncs either way). The first spare after open is zeroed, and a fill that measures,
//! as it goes, a log writing faster than half its zeroing rate stops zeroing there.
//!
//! A rotation that finds the background fill still running does not wait for it: the filler
//! stops at the next chunk, `fallocate`s the rest and hands the spare over, so the new
//! segment starts with the part already zeroed and continues into unwritten extents. The
//! filler `fdatasync`s every [`FILL_CHUNK`], so neither the take's own `fdatasync` nor
//! the log's concurrent ones wait behind a large flush. A fill that fails (EIO, a full disk) is
//! an I/O error like any other: it poisons the log (when the rotation that would take the
//! spare, or the refill after one, sees it). The spare is never part of the log, so its
//! failure loses nothing, but an EIO or a full disk there is the same disk failing under the
//! log, and retrying past an I/O error is what fsyncgate taught not to do. The spare costs
//! one `segment_size` of disk space.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::file::WalFile;
use crate::format::{seg, TMP_SUFFIX};
use crate::io::{OpenMode, Vfs};
use crate::types::SegmentPrepare;

/// Name of the spare file in the WAL directory.
pub(crate) const SPARE_FILE: &str = "segment.spare";

/// Zeros are written in chunks of this size, each `fdatasync`ed before the next (bounding
/// what a hurried take, the final sync or a concurrent log sync has to wait for), and the
/// stop flags and the pace are checked between them.
const FILL_CHUNK: usize = 1 << 20;

/// How long a parked filler sleeps at most before it looks at the flags again (a backstop:
/// the log wakes it when it has moved on, or to hurry or cancel it).
const PARK_LIMIT: Duration = Duration::from_millis(200);

/// Flags from the log to its filler thread.
#[derive(Default)]
struct Signals {
    /// The log is closing: stop and discard the fill.
    cancel: AtomicBool,
    /// A rotation needs the spare now: stop zeroing, `fallocate` the rest, hand it over.
    hurry: AtomicBool,
    /// End offset of what the log has written into its active segment.
    progress: AtomicU64,
    /// The progress at which a parked filler wants to be woken (`u64::MAX`: not parked).
    wake_at: AtomicU64,
}

/// What a finished fill did.
#[derive(Debug, Clone, Copy)]
struct Filled {
    /// Bytes of written zeros at the start of the spare (the rest is `fallocate`d).
    zeroed: u64,
    /// Time spent writing and syncing them.
    elapsed: Duration,
}

/// The spare file's state, owned by the [`crate::Wal`].
pub(crate) struct Spare<V: Vfs> {
    vfs: V,
    dir: PathBuf,
    size: u64,
    mode: SegmentPrepare,
    state: State,
    signals: Arc<Signals>,
    /// Bytes of zeros written into spares since open.
    zeroed: u64,
    /// Zeroing rate of the last fill that zeroed (bytes per second).
    zero_rate: Option<f64>,
    /// When the last spare was taken, and how long the segment before it lasted.
    last_take: Option<Instant>,
    lifetime: Option<Duration>,
}

enum State {
    /// No spare (none wanted, or the last fill failed and none is being filled).
    Absent,
    /// `segment.spare` exists, ready to take.
    Ready,
    /// A background fill is running.
    Filling(JoinHandle<Result<Option<Filled>>>),
}

impl<V: Vfs> Spare<V> {
    /// Takes stock of the spare in `dir` at open: keeps a complete one (right size), removes
    /// any other, and starts a fill if `mode` wants one, paced by the active segment written
    /// up to `written`. Without an active segment (`None`: a log with no segment yet, whose
    /// first one comes from the spare), the fill runs to the end before this returns.
    pub(crate) fn open(
        vfs: V,
        dir: &Path,
        size: u64,
        mode: SegmentPrepare,
        written: Option<u64>,
    ) -> Result<Self> {
        let fill_now = written.is_none();
        let path = dir.join(SPARE_FILE);
        let existing = match vfs.open(&path, OpenMode::Read) {
            Ok(f) => Some(WalFile::new(f, path.clone()).len()?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let wanted = !matches!(mode, SegmentPrepare::Allocate | SegmentPrepare::Grow);
        let mode = match mode {
            SegmentPrepare::ZeroFillBackground if !vfs.background_io() => SegmentPrepare::ZeroFill,
            m => m,
        };
        let mut spare = Spare {
            vfs,
            dir: dir.to_path_buf(),
            size,
            mode,
            state: State::Absent,
            signals: Arc::new(Signals {
                progress: AtomicU64::new(written.unwrap_or(0)),
                wake_at: AtomicU64::new(u64::MAX),
                ..Signals::default()
            }),
            zeroed: 0,
            zero_rate: None,
            last_take: None,
            lifetime: None,
        };
        match existing {
            Some(len) if wanted && len == size => spare.state = State::Ready,
            Some(_) => {
                crate::io::remove_if_present(&spare.vfs, &path)?;
            }
            None => {}
        }
        if wanted && !matches!(spare.state, State::Ready) {
            let started = if fill_now || spare.mode == SegmentPrepare::ZeroFill {
                spare.fill_inline(true)
            } else {
                spare.start_fill(true)
            };
            // A spare is not part of the log: a WAL that cannot prepare one (a full disk)
            // still opens, serves reads and compacts; the next rotation creates its
            // segment from scratch, and fails for space only if there still is none.
            if let Err(e) = started {
                warn!(error = %e, "no spare segment prepared; the next rotation allocates one");
                spare.discard_tmp();
                spare.state = State::Absent;
            }
        }
        Ok(spare)
    }

    /// Removes a partly prepared spare left by a failed fill (best effort).
    fn discard_tmp(&self) {
        let tmp = self.dir.join(format!("{SPARE_FILE}{TMP_SUFFIX}"));
        let _ = self.vfs.remove(&tmp);
    }

    /// The ready spare's path — a running fill is hurried (see the module docs) — or `None`
    /// if there is none (the caller then creates a segment from scratch).
    pub(crate) fn take(&mut self) -> Result<Option<PathBuf>> {
        let now = Instant::now();
        self.lifetime = self.last_take.map(|t| now - t);
        self.last_take = Some(now);
        if matches!(self.state, State::Filling(_)) {
            let State::Filling(handle) = std::mem::replace(&mut self.state, State::Absent) else {
                unreachable!("matched just above");
            };
            self.signals.hurry.store(true, Ordering::SeqCst);
            handle.thread().unpark();
            let done = handle.join().unwrap_or_else(|_| {
                Err(Error::InvalidArgument {
                    reason: "the spare-filling thread panicked".into(),
                })
            });
            self.signals.hurry.store(false, Ordering::SeqCst);
            self.settle(done)?;
        }
        Ok(match std::mem::replace(&mut self.state, State::Absent) {
            State::Ready => Some(self.dir.join(SPARE_FILE)),
            _ => None,
        })
    }

    /// The log has written its active segment up to `written` (a file offset): a filler
    /// parked until then is woken.
    pub(crate) fn progress(&self, written: u64) {
        self.signals.progress.store(written, Ordering::SeqCst);
        if written >= self.signals.wake_at.load(Ordering::SeqCst) {
            if let State::Filling(handle) = &self.state {
                handle.thread().unpark();
            }
        }
    }

    /// Starts preparing the next spare (after a take, with the new active segment written
    /// up to `written`), as the mode says.
    pub(crate) fn refill(&mut self, written: u64) -> Result<()> {
        self.signals.progress.store(written, Ordering::SeqCst);
        match self.mode {
            SegmentPrepare::Allocate | SegmentPrepare::Grow => Ok(()),
            SegmentPrepare::ZeroFill => self.fill_inline(true),
            SegmentPrepare::ZeroFillBackground => {
                let zero = match (self.zero_rate, self.lifetime) {
                    (Some(rate), Some(lifetime)) => {
                        self.size as f64 / rate <= lifetime.as_secs_f64() / 2.0
                    }
                    _ => true,
                };
                self.start_fill(zero)
            }
        }
    }

    /// Bytes of zeros written into spares since open.
    pub(crate) fn zeroed(&self) -> u64 {
        self.zeroed
    }

    fn settle(&mut self, done: Result<Option<Filled>>) -> Result<()> {
        self.state = match done? {
            Some(f) => {
                self.zeroed += f.zeroed;
                // A hurried fill's rate counts only if it ran long enough to be a measure.
                if f.zeroed >= 2 * FILL_CHUNK as u64 {
                    self.zero_rate = Some(f.zeroed as f64 / f.elapsed.as_secs_f64().max(1e-6));
                }
                State::Ready
            }
            None => State::Absent,
        };
        Ok(())
    }

    fn fill_inline(&mut self, zero: bool) -> Result<()> {
        let done = fill(&self.vfs, &self.dir, self.size, zero, None);
        self.settle(done)
    }

    fn start_fill(&mut self, zero: bool) -> Result<()> {
        let (vfs, dir, size, signals) = (
            self.vfs.clone(),
            self.dir.clone(),
            self.size,
            self.signals.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("raftwal-spare".into())
            .spawn(move || fill(&vfs, &dir, size, zero, Some(&signals)));
        match spawned {
            Ok(handle) => {
                self.state = State::Filling(handle);
                Ok(())
            }
            Err(e) => {
                warn!(error = %e, "cannot start the spare-filling thread; filling inline");
                self.fill_inline(zero)
            }
        }
    }
}

impl<V: Vfs> Drop for Spare<V> {
    /// Stops a running fill and waits for its thread, so no thread touches the directory
    /// after the log (and its lock) is gone.
    fn drop(&mut self) {
        self.signals.cancel.store(true, Ordering::SeqCst);
        if let State::Filling(handle) = std::mem::replace(&mut self.state, State::Absent) {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
}

/// Prepares `dir/segment.spare` of `size` bytes under a `.tmp` name: written zeros if `zero`
/// (up to where a hurry stops it; the rest `fallocate`d), else only `fallocate`d. A
/// background fill (with `signals`) keeps pace with the log as the module docs say; an
/// inline one (`None`) writes at once. Returns `None` if cancelled.
fn fill<V: Vfs>(
    vfs: &V,
    dir: &Path,
    size: u64,
    zero: bool,
    signals: Option<&Signals>,
) -> Result<Option<Filled>> {
    let tmp = dir.join(format!("{SPARE_FILE}{TMP_SUFFIX}"));
    crate::io::remove_if_present(vfs, &tmp)?;
    let file = WalFile::open(vfs, &tmp, OpenMode::CreateNew)?;
    let zeros = vec![
        0u8;
        if zero {
            FILL_CHUNK.min(size as usize)
        } else {
            0
        }
    ];
    let mut off = 0u64;
    let mut busy = Duration::ZERO;
    let begun = Instant::now();
    let progress_at_start = signals.map_or(0, |s| s.progress.load(Ordering::SeqCst));
    while zero && off < size {
        if let Some(signals) = signals {
            match wait_for_pace(signals, off, size) {
                Pace::Go => {}
                Pace::Hurry => break,
                Pace::Cancel => {
                    drop(file);
                    let _ = vfs.remove(&tmp);
                    return Ok(None);
                }
            }
            let logged = signals
                .progress
                .load(Ordering::SeqCst)
                .saturating_sub(progress_at_start);
            if too_busy_to_zero(logged, begun.elapsed(), off, busy, size) {
                debug!(
                    zeroed = off,
                    size, "the log keeps the disk busy: spare fallocated"
                );
                break;
            }
        }
        let started = Instant::now();
        let n = zeros.len().min((size - off) as usize);
        file.write_all_at(&zeros[..n], off)?;
        off += n as u64;
        file.sync_data()?;
        busy += started.elapsed();
    }
    if off < size {
        file.allocate(size)?;
        file.sync_all()?;
    }
    vfs.rename(&tmp, &dir.join(SPARE_FILE))
        .map_err(|e| Error::io("rename", &tmp, e))?;
    debug!(zeroed = off, size, "spare segment ready");
    Ok(Some(Filled {
        zeroed: off,
        elapsed: busy,
    }))
}

/// Whether a background fill should stop zeroing (and `fallocate` the rest): once the log has
/// written a sixteenth of a segment since the fill began (`logged` bytes in `elapsed`), if it
/// writes faster than half the rate the filler zeroes at (`zeroed` bytes in `busy` time of
/// writing and syncing). Zeroing doubles the bytes that reach the disk; it pays only while
/// the log leaves the disk idle time, which this measures as the fill goes, rather than
/// waiting for the next rotation to tell (the pacing decision in [`Spare::refill`] uses the
/// same ratio over a whole segment's life).
fn too_busy_to_zero(
    logged: u64,
    elapsed: Duration,
    zeroed: u64,
    busy: Duration,
    size: u64,
) -> bool {
    if logged < size / 16 || zeroed < 2 * FILL_CHUNK as u64 || busy.is_zero() {
        return false;
    }
    let log_rate = logged as f64 / elapsed.as_secs_f64().max(1e-9);
    let zero_rate = zeroed as f64 / busy.as_secs_f64();
    log_rate > zero_rate / 2.0
}

/// What a background filler does next.
#[derive(Debug, PartialEq, Eq)]
enum Pace {
    /// Write the next chunk.
    Go,
    /// Stop zeroing: a rotation is waiting for the spare.
    Hurry,
    /// Stop and discard: the log is closing.
    Cancel,
}

/// How far a spare of `size` bytes may be zeroed while the log has written its active
/// segment (of the same size) up to file offset `progress`: twice the used fraction of the
/// segment's record space, plus one chunk.
fn zero_allowance(progress: u64, size: u64) -> u64 {
    let start = seg::DATA_START as u64;
    let space = size.saturating_sub(start).max(1);
    let used = progress.saturating_sub(start).min(space);
    let allowed = (2 * u128::from(used) * u128::from(size) / u128::from(space)) as u64;
    allowed.saturating_add(FILL_CHUNK as u64).min(size)
}

/// The smallest progress at which [`zero_allowance`] exceeds `zeroed`.
fn progress_needed(zeroed: u64, size: u64) -> u64 {
    let start = seg::DATA_START as u64;
    let space = size.saturating_sub(start).max(1);
    let Some(want) = (zeroed + 1).checked_sub(FILL_CHUNK as u64) else {
        return 0; // the first chunk is always allowed
    };
    let used = (u128::from(want) * u128::from(space)).div_ceil(2 * u128::from(size.max(1)));
    start.saturating_add(used as u64)
}

/// Parks the filler (`zeroed` bytes into a spare of `size`) until the log's progress allows
/// the next chunk, or it is hurried or cancelled.
fn wait_for_pace(signals: &Signals, zeroed: u64, size: u64) -> Pace {
    loop {
        if signals.cancel.load(Ordering::SeqCst) {
            return Pace::Cancel;
        }
        if signals.hurry.load(Ordering::SeqCst) {
            return Pace::Hurry;
        }
        if zeroed < zero_allowance(signals.progress.load(Ordering::SeqCst), size) {
            signals.wake_at.store(u64::MAX, Ordering::SeqCst);
            return Pace::Go;
        }
        // Announce the wake-up point, then look again before parking: the log stores its
        // progress before it reads `wake_at`, so one of the two sides sees the other.
        signals
            .wake_at
            .store(progress_needed(zeroed, size), Ordering::SeqCst);
        if zeroed < zero_allowance(signals.progress.load(Ordering::SeqCst), size)
            || signals.cancel.load(Ordering::SeqCst)
            || signals.hurry.load(Ordering::SeqCst)
        {
            continue;
        }
        std::thread::park_timeout(PARK_LIMIT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn allowance_runs_twice_as_fast_as_the_log_plus_one_chunk() {
        let size = 64 * MIB;
        let start = seg::DATA_START as u64;
        assert_eq!(zero_allowance(0, size), MIB);
        assert_eq!(zero_allowance(start, size), MIB);
        let space = size - start;
        // A quarter of the record space used: half the spare may be zeroed, plus a chunk.
        assert_eq!(zero_allowance(start + space / 4, size), size / 2 + MIB);
        // Half full or more: all of it.
        assert_eq!(zero_allowance(start + space / 2, size), size);
        assert_eq!(zero_allowance(size, size), size);
        assert_eq!(zero_allowance(u64::MAX, size), size);
    }

    #[test]
    fn zeroing_stops_only_for_a_log_faster_than_half_the_zero_rate() {
        let ms = Duration::from_millis;
        let size = 64 * MIB;
        // Too early to tell: less than a sixteenth of a segment logged, or under two chunks
        // zeroed.
        assert!(!too_busy_to_zero(size / 32, ms(1), 8 * MIB, ms(8), size));
        assert!(!too_busy_to_zero(size, ms(1), MIB, ms(8), size));
        // The log wrote 8 MiB in 10 ms (800 MiB/s); the filler zeroed 8 MiB in 8 ms busy
        // (1000 MiB/s): more than half, stop.
        assert!(too_busy_to_zero(8 * MIB, ms(10), 8 * MIB, ms(8), size));
        // The log wrote 8 MiB in 100 ms (80 MiB/s): the disk has room, go on.
        assert!(!too_busy_to_zero(8 * MIB, ms(100), 8 * MIB, ms(8), size));
    }

    #[test]
    fn progress_needed_is_the_exact_threshold() {
        for size in [8192, 64 * 1024, 3 * MIB + 12_345, 64 * MIB] {
            for zeroed in (0..size).step_by((size / 97).max(1) as usize) {
                let p = progress_needed(zeroed, size);
                assert!(
                    zero_allowance(p, size) > zeroed,
                    "size {size} zeroed {zeroed}: progress {p} does not allow the next chunk"
                );
                if p > seg::DATA_START as u64 {
                    assert!(
                        zero_allowance(p - 1, size) <= zeroed,
                        "size {size} zeroed {zeroed}: progress {} already allowed it",
                        p - 1
                    );
                }
            }
        }
    }
}
