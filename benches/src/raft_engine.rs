//! The workload through tikv's raft-engine: a [`LogBatch`] per batch with `add_entries`, then
//! `Engine::write(&mut batch, true)` (one write and one fdatasync per write group). Several
//! writers each own a region (raft-engine's unit, one Raft group each) and share the engine,
//! whose write barrier groups concurrent writers under one fdatasync.

use std::any::Any;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::Instant;

use protobuf::reflect::MessageDescriptor;
use protobuf::wire_format::WireType;
use protobuf::{
    CachedSize, Clear, CodedInputStream, CodedOutputStream, Message, ProtobufResult, UnknownFields,
};
use raft_engine::{Config, Engine, LogBatch, MessageExt, ReadableSize};

use crate::latency::Latencies;
use crate::steady::{Compactions, Steady};
use crate::workload::{payload, Budget, Cell, Sample, Session};
use crate::Result;

/// A Raft log entry encoded like raft-rs's `eraftpb::Entry` (field 2 term, 3 index, 4 data):
/// raft-engine stores protobuf 2 messages, and this is what TiKV hands it, minus the unused
/// fields. Hand-written so the bench needs no protobuf code generation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PbEntry {
    /// The entry's term.
    pub term: u64,
    /// The entry's index.
    pub index: u64,
    /// The payload.
    pub data: Vec<u8>,
    unknown_fields: UnknownFields,
    cached_size: CachedSize,
}

impl Clear for PbEntry {
    fn clear(&mut self) {
        self.term = 0;
        self.index = 0;
        self.data.clear();
        self.unknown_fields.clear();
    }
}

impl Message for PbEntry {
    fn descriptor(&self) -> &'static MessageDescriptor {
        Self::descriptor_static()
    }

    fn is_initialized(&self) -> bool {
        true
    }

    fn merge_from(&mut self, is: &mut CodedInputStream) -> ProtobufResult<()> {
        while !is.eof()? {
            let (field, wire_type) = is.read_tag_unpack()?;
            match (field, wire_type) {
                (2, WireType::WireTypeVarint) => self.term = is.read_uint64()?,
                (3, WireType::WireTypeVarint) => self.index = is.read_uint64()?,
                (4, WireType::WireTypeLengthDelimited) => self.data = is.read_bytes()?,
                (2..=4, wt) => return Err(protobuf::rt::unexpected_wire_type(wt)),
                _ => protobuf::rt::read_unknown_or_skip_group(
                    field,
                    wire_type,
                    is,
                    &mut self.unknown_fields,
                )?,
            }
        }
        Ok(())
    }

    fn compute_size(&self) -> u32 {
        let mut size = 0;
        if self.term != 0 {
            size += protobuf::rt::value_size(2, self.term, WireType::WireTypeVarint);
        }
        if self.index != 0 {
            size += protobuf::rt::value_size(3, self.index, WireType::WireTypeVarint);
        }
        if !self.data.is_empty() {
            size += protobuf::rt::bytes_size(4, &self.data);
        }
        size += protobuf::rt::unknown_fields_size(&self.unknown_fields);
        self.cached_size.set(size);
        size
    }

    fn write_to_with_cached_sizes(&self, os: &mut CodedOutputStream) -> ProtobufResult<()> {
        if self.term != 0 {
            os.write_uint64(2, self.term)?;
        }
        if self.index != 0 {
            os.write_uint64(3, self.index)?;
        }
        if !self.data.is_empty() {
            os.write_bytes(4, &self.data)?;
        }
        os.write_unknown_fields(&self.unknown_fields)
    }

    fn get_cached_size(&self) -> u32 {
        self.cached_size.get()
    }

    fn get_unknown_fields(&self) -> &UnknownFields {
        &self.unknown_fields
    }

    fn mut_unknown_fields(&mut self) -> &mut UnknownFields {
        &mut self.unknown_fields
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn new() -> Self {
        Self::default()
    }

    fn default_instance() -> &'static Self {
        static INSTANCE: OnceLock<PbEntry> = OnceLock::new();
        INSTANCE.get_or_init(PbEntry::default)
    }
}

/// raft-engine's entry type binding.
pub struct PbEntryExt;

impl MessageExt for PbEntryExt {
    type Entry = PbEntry;

    fn index(e: &PbEntry) -> u64 {
        e.index
    }
}

/// How the engine is configured; everything else is raft-engine's default.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// `batch_compression_threshold` in bytes (raft-engine's default 8 KiB: batches larger
    /// than this are LZ4-compressed; 0 disables compression).
    pub compression_threshold: u64,
    /// A steady state: each region compacted behind a moving snapshot point
    /// (`Engine::compact_to`, then `purge_expired_files`), with log recycling active (it is
    /// on by default, but recycles only files purged past `purge_threshold`: that is set to
    /// twice the retained size), and `target_file_size` set to the given file size.
    pub steady: Option<(Steady, u64)>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            compression_threshold: Config::default().batch_compression_threshold.0,
            steady: None,
        }
    }
}

/// Opens (creating) an engine in `dir`.
pub fn open(dir: &Path, opts: &EngineOptions) -> Result<Engine> {
    let mut cfg = Config {
        dir: dir.to_str().ok_or("non-UTF-8 directory")?.to_owned(),
        batch_compression_threshold: ReadableSize(opts.compression_threshold),
        ..Config::default()
    };
    if let Some((steady, file_size)) = opts.steady {
        cfg.enable_log_recycle = true;
        cfg.format_version = raft_engine::Version::V2;
        cfg.purge_threshold = ReadableSize(2 * steady.retain_bytes);
        cfg.target_file_size = ReadableSize(file_size);
    }
    Ok(Engine::open(cfg)?)
}

/// One batch of `cell.batch` entries with payloads, indices to be filled in.
pub fn pb_batch(cell: &Cell, seed: u64) -> Vec<PbEntry> {
    (0..cell.batch)
        .map(|i| PbEntry {
            term: 1,
            data: payload(cell.entry_size, seed ^ (i as u64) << 20),
            ..PbEntry::default()
        })
        .collect()
}

fn renumber(batch: &mut [PbEntry], first: u64) {
    for (i, e) in batch.iter_mut().enumerate() {
        e.index = first + i as u64;
    }
}

/// raft-engine on one cell, slice after slice: one region per writer, each region's log
/// growing on through the slices.
pub struct EngineSession {
    cell: Cell,
    engine: Arc<Engine>,
    /// The next index of each writer's region.
    next: Vec<u64>,
    steady: Option<Steady>,
}

impl EngineSession {
    /// Opens a fresh engine in `dir`, before any timing; in a steady state (one writer
    /// only) warmed up untimed until compaction recurs.
    pub fn open(cell: &Cell, dir: &Path, opts: &EngineOptions, budget: &Budget) -> Result<Self> {
        if opts.steady.is_some() && cell.writers > 1 {
            return Err("the steady state runs one writer per log".into());
        }
        let mut session = EngineSession {
            cell: *cell,
            engine: Arc::new(open(dir, opts)?),
            next: vec![1; cell.writers],
            steady: opts.steady.map(|(s, _)| s),
        };
        if let Some((steady, file_size)) = opts.steady {
            let warm = Budget {
                time: std::time::Duration::ZERO,
                min_batches: 1,
                max_bytes: steady.warm_bytes(file_size),
                ..*budget
            };
            let s = session.slice(&warm)?;
            budget.cool_down(s.payload_bytes);
        }
        Ok(session)
    }
}

/// In a steady state, compacts `region` of `engine` if its log (ending at `last`) has grown
/// past the retained size, and purges the files that frees (recycling them).
fn compact(
    engine: &Engine,
    region: u64,
    last: u64,
    steady: Option<(Steady, Cell)>,
    compactions: &mut Compactions,
) -> Result<()> {
    let Some((steady, cell)) = steady else {
        return Ok(());
    };
    let first = engine.first_index(region).unwrap_or(1);
    if let Some(to) = steady.compact_point(&cell, first, last) {
        compactions.time(|| {
            // `compact_to` keeps `to + 1..`: the snapshot covers `..=to`.
            engine.compact_to(region, to + 1);
            engine.purge_expired_files()
        })?;
    }
    Ok(())
}

impl Session for EngineSession {
    fn slice(&mut self, budget: &Budget) -> Result<Sample> {
        let cell = self.cell;
        let bytes = Arc::new(AtomicU64::new(0));
        let start_line = Arc::new(Barrier::new(cell.writers + 1));
        let per_batch = cell.batch_bytes() as u64;
        let threads: Vec<_> = (0..cell.writers)
            .map(|w| {
                let (engine, bytes, start_line) =
                    (self.engine.clone(), bytes.clone(), start_line.clone());
                let (budget, mut next) = (*budget, self.next[w]);
                let steady = self.steady.map(|s| (s, cell));
                std::thread::spawn(move || -> Result<(Latencies, u64, u64, Compactions)> {
                    let region = w as u64 + 1;
                    let mut batch = pb_batch(&cell, 0x5EED ^ (w as u64) << 40);
                    let mut log_batch = LogBatch::with_capacity(cell.batch);
                    let mut lat = Latencies::with_capacity(1024);
                    let mut compactions = Compactions::default();
                    let mut batches = 0u64;
                    start_line.wait();
                    let start = Instant::now();
                    loop {
                        renumber(&mut batch, next);
                        let t = Instant::now();
                        log_batch.add_entries::<PbEntryExt>(region, &batch)?;
                        engine.write(&mut log_batch, true)?;
                        lat.record(t.elapsed());
                        next += cell.batch as u64;
                        compact(&engine, region, next - 1, steady, &mut compactions)?;
                        batches += 1;
                        let total = bytes.fetch_add(per_batch, Ordering::Relaxed) + per_batch;
                        if budget.done(start.elapsed(), batches, total) {
                            return Ok((lat, batches, next, compactions));
                        }
                    }
                })
            })
            .collect();
        start_line.wait();
        let start = Instant::now();
        let mut sample = Sample::default();
        for (w, t) in threads.into_iter().enumerate() {
            let (lat, batches, next, compactions) =
                t.join().map_err(|_| "writer thread panicked")??;
            sample.latencies.merge(&lat);
            sample.compactions.merge(&compactions);
            sample.batches += batches;
            self.next[w] = next;
        }
        sample.elapsed = start.elapsed();
        sample.entries = sample.batches * cell.batch as u64;
        sample.payload_bytes = sample.batches * per_batch;
        Ok(sample)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pb_entry_round_trips() {
        let e = PbEntry {
            term: 3,
            index: 77,
            data: b"hello".to_vec(),
            ..PbEntry::default()
        };
        let bytes = e.write_to_bytes().unwrap();
        let back = PbEntry::parse_from_bytes(&bytes).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn engine_writes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let budget = Budget {
            time: std::time::Duration::ZERO,
            min_batches: 3,
            max_bytes: u64::MAX,
            cooldown_mib_per_sec: 0.0,
        };
        let cell = Cell::single(100, 4);
        let mut session =
            EngineSession::open(&cell, dir.path(), &EngineOptions::default(), &budget).unwrap();
        for _ in 0..2 {
            let s = session.slice(&budget).unwrap();
            assert_eq!((s.batches, s.entries), (3, 12));
        }
        drop(session);
        let engine = open(dir.path(), &EngineOptions::default()).unwrap();
        assert_eq!(engine.first_index(1), Some(1));
        assert_eq!(engine.last_index(1), Some(24));
        let e = engine.get_entry::<PbEntryExt>(1, 5).unwrap().unwrap();
        assert_eq!(e.index, 5);
        assert_eq!(e.data.len(), 100);
    }
}
