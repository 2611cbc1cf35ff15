//! Workloads: a [`Runner`] that drives a [`Wal`] and keeps the [`Model`] in step, a seeded
//! generator of random operations, and the fixed workload of the exhaustive exploration.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use raftwal::io::Vfs;
use raftwal::{Entry, HardState, Options, SnapshotMeta, Stats, Wal};
use rand::rngs::StdRng;
use rand::Rng;

use crate::model::{Model, Op};

/// Segment recycling counted over several handles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recycled {
    /// Compacted segments freed into the recycle pool.
    pub freed: u64,
    /// Segments made from pool files.
    pub from_pool: u64,
    /// Of those, segments whose header a sync had written ahead (`Options::take_ahead`).
    pub taken_ahead: u64,
}

impl Recycled {
    /// Adds what a handle counted between `before` and `now`.
    fn add(&mut self, now: &Stats, before: &Stats) {
        self.freed += now.segments_recycled - before.segments_recycled;
        self.from_pool += now.segments_from_pool - before.segments_from_pool;
        self.taken_ahead += now.segments_taken_ahead - before.segments_taken_ahead;
    }
}

/// Drives a WAL with [`Op`]s and records what was acknowledged in a [`Model`].
pub struct Runner<V: Vfs> {
    /// The file system.
    pub vfs: V,
    /// The WAL directory.
    pub dir: PathBuf,
    /// Options for every open.
    pub opts: Options,
    /// The open handle, if any.
    pub wal: Option<Wal<V>>,
    /// What was acknowledged.
    pub model: Model,
    /// Segment recycling over every handle this runner opened.
    pub recycled: Recycled,
    /// The open handle's counters when last looked at.
    seen: Stats,
}

impl<V: Vfs> Runner<V> {
    /// A runner with no WAL open yet.
    pub fn new(vfs: V, dir: impl AsRef<Path>, opts: Options) -> Self {
        Runner {
            vfs,
            dir: dir.as_ref().to_path_buf(),
            opts,
            wal: None,
            model: Model::default(),
            recycled: Recycled::default(),
            seen: Stats::default(),
        }
    }

    /// Opens the WAL (dropping any open handle first), without touching the model.
    pub fn open(&mut self) -> raftwal::Result<&mut Wal<V>> {
        self.wal = None;
        let w = Wal::open_with(self.vfs.clone(), &self.dir, self.opts.clone())?;
        self.seen = w.stats();
        Ok(self.wal.insert(w))
    }

    /// Issues `op`; on `Ok` the model acknowledges it, on `Err` it stays in flight.
    pub fn apply(&mut self, op: &Op) -> raftwal::Result<()> {
        self.model.begin(op);
        let result = self.call(op);
        if let Some(w) = &self.wal {
            let st = w.stats();
            self.recycled.add(&st, &self.seen);
            self.seen = st;
        }
        match &result {
            Ok(()) => self.model.complete(op),
            Err(_) => self.model.fail(op),
        }
        result
    }

    /// Issues `op` without touching the model (to probe a poisoned handle).
    pub fn call(&mut self, op: &Op) -> raftwal::Result<()> {
        if let Op::Open = op {
            return self.open().map(|_| ());
        }
        let Some(w) = self.wal.as_mut() else {
            return Err(raftwal::Error::InvalidArgument {
                reason: "the workload issued an operation with no WAL open".into(),
            });
        };
        apply_to(w, op)
    }
}

/// Issues `op` on `w` (`Op::Open` is the caller's: a no-op here). The one dispatch from the
/// model's calls to the WAL's, shared by the torture and the WAL's own model tests.
pub fn apply_to<V: Vfs>(w: &mut Wal<V>, op: &Op) -> raftwal::Result<()> {
    match op {
        Op::Open => Ok(()),
        Op::Append(es) => w.append(es),
        Op::Sync => w.sync(),
        Op::SetHardState(hs) => w.set_hard_state(*hs),
        Op::TruncateSuffix(from) => w.truncate_suffix(*from),
        Op::Compact(i) => w.compact(*i),
        Op::SaveSnapshot(meta, data) => w.save_snapshot(*meta, data),
        Op::SetAppMeta(blob) => w.set_app_meta(blob),
        Op::CompactTo(meta) => w.compact_to(*meta),
        Op::PipelinedSync(batches) => {
            let pending = w.begin_sync()?;
            let appended = batches.iter().try_for_each(|b| w.append(b));
            let synced = pending.wait();
            let ended = w.end_sync(pending, synced);
            appended.and(ended)
        }
    }
}

/// Shape of random workloads.
#[derive(Debug, Clone)]
pub struct WorkloadShape {
    /// Most entries per append.
    pub max_batch: usize,
    /// Most payload bytes per entry.
    pub max_payload: usize,
}

impl Default for WorkloadShape {
    fn default() -> Self {
        WorkloadShape {
            max_batch: 4,
            max_payload: 300,
        }
    }
}

/// Payload bytes for entry `index` of `term`: seeded, and stamped with index and term so a
/// misplaced record is recognisable (`len` 0 gives an empty payload).
pub fn payload(rng: &mut StdRng, index: u64, term: u64, len: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(len.max(16));
    data.extend_from_slice(&index.to_le_bytes());
    data.extend_from_slice(&term.to_le_bytes());
    let extra = len.saturating_sub(16);
    data.extend((0..extra).map(|_| rng.gen::<u8>()));
    data.truncate(len);
    data
}

/// `n` new entries after `model.last`, in the current term.
pub fn next_entries(
    model: &Model,
    rng: &mut StdRng,
    n: usize,
    payload_len: RangeInclusive<usize>,
) -> Vec<Entry> {
    let term = model.current_term();
    (1..=n as u64)
        .map(|k| {
            let index = model.last + k;
            let len = rng.gen_range(payload_len.clone());
            Entry {
                index,
                term,
                data: payload(rng, index, term, len),
            }
        })
        .collect()
}

/// A seeded random operation valid in the model's state.
pub fn random_op(model: &Model, rng: &mut StdRng, shape: &WorkloadShape) -> Op {
    let has_log = model.last > model.base.index;
    let has_acked = model.acked_last > model.base.index;
    loop {
        match rng.gen_range(0..100) {
            0..=39 => {
                let n = rng.gen_range(1..=shape.max_batch.max(1));
                // One batch in ten of empty entries: a zero-length payload is a legal entry.
                let len = if rng.gen_bool(0.1) {
                    0..=0
                } else {
                    1..=shape.max_payload.max(1)
                };
                return Op::Append(next_entries(model, rng, n, len));
            }
            40..=61 => return Op::Sync,
            62..=64 => return pipelined_sync(model, rng, shape),
            65..=71 => return Op::SetHardState(next_hard_state(model.hard, rng)),
            72..=74 => return Op::SetAppMeta(app_blob(rng)),
            75..=78 if has_log => {
                return Op::TruncateSuffix(rng.gen_range(model.base.index + 1..=model.last))
            }
            79..=82 if has_log => return Op::TruncateSuffix(tail_truncation(model, rng)),
            89..=90 => return compact_to(model, rng),
            83..=88 if has_acked => {
                // From the base itself (a repeated purge, which must keep the snapshot).
                return Op::Compact(rng.gen_range(model.base.index..=model.acked_last));
            }
            91..=97 if has_acked => {
                let index = rng.gen_range(model.base.index + 1..=model.acked_last);
                let term = model.term(index).unwrap_or(model.base.term);
                return Op::SaveSnapshot(
                    SnapshotMeta { index, term },
                    snapshot_data(rng, index, term),
                );
            }
            98..=99 => return installed_snapshot(model, rng),
            _ => {}
        }
    }
}

/// A snapshot a leader sends to a follower (Raft's `InstallSnapshot`) that discards the
/// whole log: past its end (the follower lagged) or, within it, at a newer term (its entries
/// there conflict). Either leaves the log empty above the new base.
pub fn installed_snapshot(model: &Model, rng: &mut StdRng) -> Op {
    let term = model.current_term() + rng.gen_range(0..=1);
    let index = if model.last > model.base.index && rng.gen_bool(0.5) {
        rng.gen_range(model.base.index + 1..=model.last)
    } else {
        model.last + rng.gen_range(1..=6)
    };
    let term = if model.term(index) == Some(term) {
        term + 1
    } else {
        term
    };
    Op::SaveSnapshot(
        SnapshotMeta { index, term },
        snapshot_data(rng, index, term),
    )
}

/// A pipelined sync with one to three batches appended while it is in flight (as an
/// adapter's flush thread syncs while the Raft appends on).
fn pipelined_sync(model: &Model, rng: &mut StdRng, shape: &WorkloadShape) -> Op {
    let mut ahead = model.clone();
    let batches = (0..rng.gen_range(1..=3))
        .map(|_| {
            let n = rng.gen_range(1..=shape.max_batch.max(1));
            let b = next_entries(&ahead, rng, n, 1..=shape.max_payload.max(1));
            let op = Op::Append(b.clone());
            ahead.begin(&op);
            ahead.complete(&op);
            b
        })
        .collect();
    Op::PipelinedSync(batches)
}

/// A base move without snapshot data (`compact_to`), as a Raft log store purging after a
/// snapshot it keeps elsewhere: half the time at an acknowledged entry with its term (the
/// suffix is kept), else past the end (the log is discarded).
fn compact_to(model: &Model, rng: &mut StdRng) -> Op {
    if model.acked_last > model.base.index && rng.gen_bool(0.5) {
        let index = rng.gen_range(model.base.index + 1..=model.acked_last);
        let term = model.term(index).unwrap_or(model.base.term);
        return Op::CompactTo(SnapshotMeta { index, term });
    }
    let index = model.last + rng.gen_range(1..=6);
    Op::CompactTo(SnapshotMeta {
        index,
        term: model.current_term(),
    })
}

/// Application metadata: empty, a few bytes, or the largest blob the header holds, with
/// bytes that differ from call to call (a stale blob is seen at once).
fn app_blob(rng: &mut StdRng) -> Vec<u8> {
    let len = match rng.gen_range(0..4) {
        0 => 0,
        1 => raftwal::APP_META_MAX,
        _ => rng.gen_range(1..=80),
    };
    (0..len).map(|_| rng.gen()).collect()
}

fn snapshot_data(rng: &mut StdRng, index: u64, term: u64) -> Vec<u8> {
    let len = rng.gen_range(0..=64);
    payload(rng, index, term, len)
}

/// A truncation point among the last four entries: a follower's conflicting suffix, the
/// usual case in Raft, which cuts records at the end of the active segment.
pub fn tail_truncation(model: &Model, rng: &mut StdRng) -> u64 {
    let lo = (model.base.index + 1).max(model.last.saturating_sub(3));
    rng.gen_range(lo..=model.last.max(lo))
}

/// A legal next hard state: a higher term (voting or not), or a first vote in this term.
pub fn next_hard_state(hs: HardState, rng: &mut StdRng) -> HardState {
    if hs.vote.is_none() && hs.term > 0 && rng.gen_bool(0.5) {
        return HardState {
            term: hs.term,
            vote: Some(rng.gen_range(1..=5)),
        };
    }
    let vote = if rng.gen_bool(0.5) {
        Some(rng.gen_range(1..=5))
    } else {
        None
    };
    HardState {
        term: hs.term + 1,
        vote,
    }
}

/// The fixed workload of the exhaustive exploration, for 8 KiB segments (4 KiB of records
/// each): votes, appends across several segment rotations (the log spans at least four
/// segments, so a lazy open has segments to defer), zero-length entries, a
/// conflicting-suffix truncation, a snapshot and a compaction, a snapshot past the log's
/// end, with a sync after each group of batches.
pub fn exploration_workload(rng: &mut StdRng) -> Vec<Op> {
    let mut s = Script::new();
    s.push(Op::Open);
    s.push(Op::SetHardState(HardState {
        term: 1,
        vote: Some(1),
    }));
    for (n, len) in [(2, 500..=600), (1, 600..=700)] {
        let batch = next_entries(&s.model, rng, n, len);
        s.push(Op::Append(batch));
    }
    s.push(Op::Sync);
    // One batch of three (the truncation below cuts inside it) and one of one.
    for (n, len) in [(3, 800..=900), (1, 800..=900)] {
        let batch = next_entries(&s.model, rng, n, len);
        s.push(Op::Append(batch));
    }
    s.push(Op::Sync);
    s.push(Op::SetHardState(HardState {
        term: 2,
        vote: None,
    }));
    s.push(Op::SetHardState(HardState {
        term: 2,
        vote: Some(2),
    }));
    s.push(Op::TruncateSuffix(6));
    for (n, len) in [(2, 300..=400), (1, 300..=400)] {
        let batch = next_entries(&s.model, rng, n, len);
        s.push(Op::Append(batch));
    }
    s.push(Op::Sync);
    let term = s.model.term(3).unwrap_or(1);
    s.push(Op::SaveSnapshot(
        SnapshotMeta { index: 3, term },
        b"state machine at 3".to_vec(),
    ));
    let batch = next_entries(&s.model, rng, 1, 200..=300);
    s.push(Op::Append(batch));
    s.push(Op::Sync);
    s.push(Op::Compact(5));
    for (n, len) in [(2, 100..=200), (1, 100..=200)] {
        let batch = next_entries(&s.model, rng, n, len);
        s.push(Op::Append(batch));
    }
    s.push(Op::Sync);
    // Zero-length entries, then enough data for two more segments.
    let batch = next_entries(&s.model, rng, 3, 0..=0);
    s.push(Op::Append(batch));
    s.push(Op::Sync);
    for _ in 0..3 {
        let batch = next_entries(&s.model, rng, 2, 300..=1300);
        s.push(Op::Append(batch));
        s.push(Op::Sync);
    }
    // A truncation across a sync-group boundary: the removed records include a group start
    // after the cut.
    let from = s.model.last - 2;
    s.push(Op::TruncateSuffix(from));
    let batch = next_entries(&s.model, rng, 1, 0..=0);
    s.push(Op::Append(batch));
    s.push(Op::Sync);
    // A leader's snapshot past the end of the log (a lagging follower): the log restarts in
    // a fresh segment after it, the old segments go.
    let installed = SnapshotMeta {
        index: s.model.last + 3,
        term: s.model.current_term() + 1,
    };
    s.push(Op::SaveSnapshot(
        installed,
        b"installed by the leader".to_vec(),
    ));
    let batch = next_entries(&s.model, rng, 1, 100..=200);
    s.push(Op::Append(batch));
    s.push(Op::Sync);
    let batch = next_entries(&s.model, rng, 2, 100..=200);
    s.push(Op::Append(batch));
    s.ops
}

/// A fixed workload being written: each call is acknowledged in the model as it is added.
struct Script {
    model: Model,
    ops: Vec<Op>,
}

impl Script {
    fn new() -> Self {
        Script {
            model: Model::default(),
            ops: Vec::new(),
        }
    }

    fn push(&mut self, op: Op) {
        self.model.begin(&op);
        self.model.complete(&op);
        self.ops.push(op);
    }

    /// A batch of `n` entries with payloads of `len` bytes, synced if `sync`.
    fn append(&mut self, rng: &mut StdRng, n: usize, len: RangeInclusive<usize>, sync: bool) {
        let batch = next_entries(&self.model, rng, n, len);
        self.push(Op::Append(batch));
        if sync {
            self.push(Op::Sync);
        }
    }
}

/// The start of the recycling workloads, for 8 KiB segments and a recycle pool of two: a
/// vote, four synced batches of two 1.5-1.8 KiB entries (a segment each), then a compaction
/// that frees the first three (two into the pool, one deleted).
fn grown_and_compacted(rng: &mut StdRng) -> Script {
    let mut s = Script::new();
    s.push(Op::Open);
    s.push(Op::SetHardState(HardState {
        term: 1,
        vote: Some(1),
    }));
    for _ in 0..4 {
        s.append(rng, 2, 1500..=1800, true);
    }
    s.push(Op::Compact(s.model.last - 1));
    s
}

/// The recycling workload of the exhaustive exploration, for 8 KiB segments and a recycle
/// pool of two (`Options::recycle`): a log grown over four segments and compacted (two
/// freed into the pool, one deleted); smaller records written into the recycled files, so
/// their old records follow the new ones; a truncation inside a batch in a recycled
/// segment; a second compaction that frees recycled segments again; more appends, the last
/// batch unsynced.
pub fn recycling_workload(rng: &mut StdRng) -> Vec<Op> {
    let mut s = grown_and_compacted(rng);
    for _ in 0..3 {
        s.append(rng, 3, 300..=600, true);
    }
    s.push(Op::TruncateSuffix(s.model.last - 1));
    s.append(rng, 1, 100..=200, true);
    s.push(Op::Compact(s.model.last - 2));
    s.append(rng, 2, 700..=900, true);
    s.append(rng, 1, 700..=900, false);
    s.ops
}

/// Rotations ahead (`Options::rotate_ahead`), for 8 KiB segments and a recycle pool of two:
/// a log grown over four segments, one batch each, and compacted into the pool; then synced
/// batches that each fill a segment, so that each sync prepares the next segment from the
/// pool beside its fdatasync; a compaction that refills the pool; a truncation into the
/// sealed segment before an empty one (which it removes); the last batch unsynced.
pub fn rotation_ahead_workload(rng: &mut StdRng) -> Vec<Op> {
    let mut s = grown_and_compacted(rng);
    for _ in 0..2 {
        s.append(rng, 2, 1500..=1800, true);
    }
    s.push(Op::Compact(s.model.last - 1));
    s.append(rng, 2, 1500..=1800, true);
    s.push(Op::TruncateSuffix(s.model.last));
    s.append(rng, 1, 100..=200, true);
    s.append(rng, 2, 1500..=1800, true);
    s.append(rng, 2, 1500..=1800, false);
    s.ops
}

/// Headers written ahead (`Options::take_ahead`), for 8 KiB segments (4 KiB of records)
/// and a recycle pool of two: a log grown over four segments and compacted into the pool;
/// then synced batches of about 1.7 KiB, so that the first sync in each new segment writes
/// the next header into a pool file and a later rotation only renames that file. Around a
/// header waiting in the pool: a reopen (its sequence number must never be given again), a
/// compaction that frees a segment into the pool, a truncation that removes the segment
/// taken ahead before; a rotation into a header written ahead by the last, unsynced batch.
pub fn take_ahead_workload(rng: &mut StdRng) -> Vec<Op> {
    let mut s = grown_and_compacted(rng);
    s.append(rng, 2, 800..=900, true);
    s.push(Op::Open);
    s.append(rng, 2, 800..=900, true);
    s.push(Op::Compact(s.model.last - 4));
    s.append(rng, 2, 800..=900, true);
    s.push(Op::TruncateSuffix(s.model.last - 3));
    s.append(rng, 2, 800..=900, true);
    s.push(Op::Compact(s.model.last - 2));
    s.append(rng, 2, 800..=900, true);
    s.append(rng, 2, 800..=900, false);
    s.ops
}

/// Recycling with batches larger than a segment (8 KiB segments): two 10-11 KiB batches,
/// each in a segment of its own, compacted into the pool; then an oversized batch into the
/// larger pool file over its old records, a small batch into the other, and an unsynced
/// oversized batch last.
pub fn oversized_recycling_workload(rng: &mut StdRng) -> Vec<Op> {
    let mut s = Script::new();
    s.push(Op::Open);
    for _ in 0..2 {
        s.append(rng, 6, 1700..=1800, true);
    }
    s.append(rng, 1, 100..=200, true);
    s.push(Op::Compact(s.model.last));
    s.append(rng, 6, 1500..=1600, true);
    s.append(rng, 2, 100..=200, true);
    s.append(rng, 6, 1500..=1600, false);
    s.ops
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn random_ops_are_valid_in_the_model_and_deterministic() {
        let gen = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut m = Model::default();
            let mut ops = Vec::new();
            for _ in 0..300 {
                let op = random_op(&m, &mut rng, &WorkloadShape::default());
                if let Op::Append(es) = &op {
                    assert_eq!(es[0].index, m.last + 1);
                    assert!(es[0].term >= m.current_term().min(es[0].term));
                }
                if let Op::Compact(i) = &op {
                    assert!(*i >= m.base.index && *i <= m.acked_last);
                }
                m.begin(&op);
                m.complete(&op);
                ops.push(op);
            }
            ops
        };
        assert_eq!(gen(7), gen(7));
        assert_ne!(gen(7), gen(8));
    }

    #[test]
    fn exploration_workload_rotates_truncates_and_compacts() {
        let ops = exploration_workload(&mut StdRng::seed_from_u64(1));
        let bytes: usize = ops
            .iter()
            .filter_map(|o| match o {
                Op::Append(es) => Some(es.iter().map(|e| e.data.len()).sum::<usize>()),
                _ => None,
            })
            .sum();
        assert!(
            bytes > 3 * 4096,
            "spans four 8 KiB segments of 4 KiB of records: {bytes}"
        );
        let empty = ops
            .iter()
            .filter_map(|o| match o {
                Op::Append(es) => Some(es.iter().filter(|e| e.data.is_empty()).count()),
                _ => None,
            })
            .sum::<usize>();
        assert!(empty >= 4, "zero-length entries: {empty}");
        assert!(ops.iter().any(|o| matches!(o, Op::TruncateSuffix(6))));
        assert!(ops.iter().any(|o| matches!(o, Op::Compact(5))));
        // A snapshot past the end of the log, which discards it.
        let mut model = Model::default();
        let past_the_end = ops.iter().any(|o| {
            let conflicts = matches!(o, Op::SaveSnapshot(m, _) if m.index > model.last);
            model.begin(o);
            model.complete(o);
            conflicts
        });
        assert!(past_the_end);
    }
}
