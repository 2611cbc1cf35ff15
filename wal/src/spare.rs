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
//! Zeroing costs a second write of every segment. It pays while the log leaves the disk idle
//! between `fdatasync`s (small batches: latency-bound), not when the log's own writes keep
//! the disk busy (large batches: bandwidth-bound, where the extent conversion is amortized
//! anyway). So the background mode paces itself: it zeroes the next spare only if, at the
//! rate the last zeroing ran, the fill takes at most half as long as the last segment
//! lasted; otherwise the next spare is only `fallocate`d (still off the commit path, so a
//! rotation costs a header write, a rename and two syncs either way). The first spare after
//! open is zeroed.
//!
//! A rotation that finds the background fill still running does not wait for it: the filler
//! stops at the next chunk, `fallocate`s the rest and hands the spare over, so the new
//! segment starts with the part already zeroed and continues into unwritten extents. The
//! filler `fdatasync`s every [`SYNC_EVERY`] bytes, so neither the take's own `fdatasync` nor
//! the log's concurrent ones wait behind a large flush. A fill that fails (EIO, a full disk) is
//! an I/O error like any other: it poisons the log (when the rotation that would take the
//! spare, or the refill after one, sees it). The spare is never part of the log, so its
//! failure loses nothing, but an EIO or a full disk there is the same disk failing under the
//! log, and retrying past an I/O error is what fsyncgate taught not to do. The spare costs
//! one `segment_size` of disk space.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::format::TMP_SUFFIX;
use crate::io::{OpenMode, Vfs, VfsFile};
use crate::types::SegmentPrepare;

/// Name of the spare file in the WAL directory.
pub(crate) const SPARE_FILE: &str = "segment.spare";

/// Zeros are written in chunks of this size (and the stop flags checked between them).
const FILL_CHUNK: usize = 1 << 20;

/// The filler `fdatasync`s after each this many bytes of zeros, bounding what a hurried
/// take, the final sync or a concurrent log sync has to wait for.
const SYNC_EVERY: u64 = 2 << 20;

/// Flags from the log to its filler thread.
#[derive(Default)]
struct Signals {
    /// The log is closing: stop and discard the fill.
    cancel: AtomicBool,
    /// A rotation needs the spare now: stop zeroing, `fallocate` the rest, hand it over.
    hurry: AtomicBool,
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
    /// any other, and starts a fill if `mode` wants one. With `fill_now`, the fill runs to the
    /// end before this returns (a log with no segment yet: its first one comes from the spare).
    pub(crate) fn open(
        vfs: V,
        dir: &Path,
        size: u64,
        mode: SegmentPrepare,
        fill_now: bool,
    ) -> Result<Self> {
        let path = dir.join(SPARE_FILE);
        let existing = match vfs.open(&path, OpenMode::Read) {
            Ok(f) => Some(f.len().map_err(|e| Error::io("stat", &path, e))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        let wanted = mode != SegmentPrepare::Allocate;
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
            signals: Arc::default(),
            zeroed: 0,
            zero_rate: None,
            last_take: None,
            lifetime: None,
        };
        match existing {
            Some(len) if wanted && len == size => spare.state = State::Ready,
            Some(_) => {
                spare
                    .vfs
                    .remove(&path)
                    .map_err(|e| Error::io("remove", &path, e))?;
            }
            None => {}
        }
        if wanted && !matches!(spare.state, State::Ready) {
            if fill_now || spare.mode == SegmentPrepare::ZeroFill {
                spare.fill_inline(true)?;
            } else {
                spare.start_fill(true)?;
            }
        }
        Ok(spare)
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
            self.signals.hurry.store(true, Ordering::Relaxed);
            let done = handle.join().unwrap_or_else(|_| {
                Err(Error::InvalidArgument {
                    reason: "the spare-filling thread panicked".into(),
                })
            });
            self.signals.hurry.store(false, Ordering::Relaxed);
            self.settle(done)?;
        }
        Ok(match std::mem::replace(&mut self.state, State::Absent) {
            State::Ready => Some(self.dir.join(SPARE_FILE)),
            _ => None,
        })
    }

    /// Starts preparing the next spare (after a take), as the mode says.
    pub(crate) fn refill(&mut self) -> Result<()> {
        match self.mode {
            SegmentPrepare::Allocate => Ok(()),
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
                if f.zeroed >= SYNC_EVERY {
                    self.zero_rate = Some(f.zeroed as f64 / f.elapsed.as_secs_f64().max(1e-6));
                }
                State::Ready
            }
            None => State::Absent,
        };
        Ok(())
    }

    fn fill_inline(&mut self, zero: bool) -> Result<()> {
        let done = fill(&self.vfs, &self.dir, self.size, zero, &self.signals);
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
            .spawn(move || fill(&vfs, &dir, size, zero, &signals));
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
        self.signals.cancel.store(true, Ordering::Relaxed);
        if let State::Filling(handle) = std::mem::replace(&mut self.state, State::Absent) {
            let _ = handle.join();
        }
    }
}

/// Prepares `dir/segment.spare` of `size` bytes under a `.tmp` name: written zeros if `zero`
/// (up to where a hurry stops it; the rest `fallocate`d), else only `fallocate`d. Returns
/// `None` if cancelled.
fn fill<V: Vfs>(
    vfs: &V,
    dir: &Path,
    size: u64,
    zero: bool,
    signals: &Signals,
) -> Result<Option<Filled>> {
    let started = Instant::now();
    let tmp = dir.join(format!("{SPARE_FILE}{TMP_SUFFIX}"));
    crate::io::remove_if_present(vfs, &tmp)?;
    let file = vfs
        .open(&tmp, OpenMode::CreateNew)
        .map_err(|e| Error::io("create", &tmp, e))?;
    let zeros = vec![
        0u8;
        if zero {
            FILL_CHUNK.min(size as usize)
        } else {
            0
        }
    ];
    let mut off = 0u64;
    while zero && off < size {
        if signals.cancel.load(Ordering::Relaxed) {
            drop(file);
            let _ = vfs.remove(&tmp);
            return Ok(None);
        }
        if signals.hurry.load(Ordering::Relaxed) {
            break;
        }
        let n = zeros.len().min((size - off) as usize);
        file.write_all_at(&zeros[..n], off)
            .map_err(|e| Error::io("write", &tmp, e))?;
        off += n as u64;
        if off % SYNC_EVERY == 0 || off == size {
            file.sync_data()
                .map_err(|e| Error::io("fdatasync", &tmp, e))?;
        }
    }
    let elapsed = started.elapsed();
    if off < size {
        file.allocate(size)
            .map_err(|e| Error::io("allocate", &tmp, e))?;
        file.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
    }
    vfs.rename(&tmp, &dir.join(SPARE_FILE))
        .map_err(|e| Error::io("rename", &tmp, e))?;
    debug!(zeroed = off, size, "spare segment ready");
    Ok(Some(Filled {
        zeroed: off,
        elapsed,
    }))
}
