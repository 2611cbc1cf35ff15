//! `Options::writeback_chunk`: a large write-out goes in pieces that end on multiples of the
//! chunk in the file, each piece's writeback started as soon as it is written; the last
//! piece's writeback is left to the `fdatasync`. Nothing about durability changes: these
//! tests check the I/O pattern on SimFs, that the log reads back whole at the default
//! 64 MiB segments on the real file system, and that a power cut between two pieces
//! recovers like any torn write (the explorer covers every crash point:
//! `fault-inject/tests/explore_exhaustive.rs`).

mod common;

use common::sim::{dir, entries, opts};
use raftwal::{Options, Wal};
use raftwal_fault::{CrashMode, SimFs};

/// A WAL on a fresh SimFs (1 MiB segments, write-outs in `chunk`-byte pieces) holding one
/// synced entry, so its segment exists before anything is counted.
fn one_entry_log(seed: u64, chunk: u64) -> (SimFs, Wal<SimFs>) {
    let fs = SimFs::new(seed);
    fs.mkdir_durable(dir());
    let o = opts(1 << 20).with_writeback_chunk(chunk);
    let mut w = Wal::open_with(fs.clone(), dir(), o).unwrap();
    w.append(&entries(1, 1, 1, 10)).unwrap();
    w.sync().unwrap();
    (fs, w)
}

#[test]
fn a_large_write_out_goes_in_aligned_pieces_with_their_writeback_started() {
    let (fs, mut w) = one_entry_log(3, 1024);
    let seg = dir().join("00000000000000000001.wal");
    let before = fs.counters();
    let stats_before = w.stats();
    let start = w.record_bytes(1).unwrap() + 4096;
    // 20 records of 300 B payload: well over 1 KiB, not a multiple of it.
    w.append(&entries(2, 21, 1, 300)).unwrap();
    w.sync().unwrap();
    let after = fs.counters();
    let end = 4096 + w.record_bytes(1).unwrap();
    let pieces = end.div_ceil(1024) - start / 1024;
    let file = |c: &raftwal_fault::Counters| c.per_path.get(&seg).copied().unwrap_or_default();
    assert_eq!(
        file(&after).writes - file(&before).writes,
        pieces,
        "one write per piece"
    );
    assert_eq!(
        after.writebacks - before.writebacks,
        pieces - 1,
        "all but the last piece"
    );
    assert_eq!(
        after.file_syncs - before.file_syncs,
        1,
        "still one fdatasync per sync"
    );
    assert_eq!(
        w.stats().writes - stats_before.writes,
        pieces,
        "Stats::writes counts pieces"
    );
    drop(w);
    let w = Wal::open_with(fs, dir(), opts(1 << 20)).unwrap();
    assert_eq!(w.entries(2, 22).unwrap(), entries(2, 21, 1, 300));
}

#[test]
fn chunk_zero_writes_each_write_out_at_once() {
    let (fs, mut w) = one_entry_log(4, 0);
    let before = fs.counters();
    w.append(&entries(2, 41, 1, 300)).unwrap();
    w.sync().unwrap();
    let after = fs.counters();
    assert_eq!(after.writes - before.writes, 1);
    assert_eq!(after.writebacks, before.writebacks);
}

#[test]
fn a_power_cut_between_pieces_keeps_every_synced_batch() {
    // A power cut after each I/O call of a 12-piece batch, 8 ways each: the synced batch
    // before it survives, the open one is cut whole, and once its fdatasync returned it is
    // all there.
    let o = opts(1 << 20).with_writeback_chunk(512);
    let fs = SimFs::new(5);
    fs.mkdir_durable(dir());
    let mut w = Wal::open_with(fs.clone(), dir(), o.clone()).unwrap();
    w.append(&entries(1, 10, 1, 300)).unwrap();
    w.sync().unwrap();
    fs.start_recording();
    w.append(&entries(11, 30, 1, 300)).unwrap();
    w.sync().unwrap();
    let points = fs.take_recording();
    assert!(
        points
            .iter()
            .filter(|p| p.what.starts_with("writeback"))
            .count()
            >= 10
    );
    let mut synced = false;
    for (i, point) in points.iter().enumerate() {
        synced |= point.what.starts_with("fdatasync /wal/0");
        for seed in 0..8 {
            let crashed = point.to_fs();
            let mode = match seed % 3 {
                0 => CrashMode::LoseAll,
                1 => CrashMode::KeepAll,
                _ => CrashMode::Random { fill: None },
            };
            crashed.crash_with(mode, seed);
            let w = Wal::open_with(crashed, dir(), o.clone()).unwrap_or_else(|e| {
                panic!("crash after call {i} ({}), seed {seed}: {e}", point.what)
            });
            let last = w.last_index();
            let want: &[u64] = if synced { &[30] } else { &[10, 30] };
            assert!(want.contains(&last), "after {}: last {last}", point.what);
            assert_eq!(w.entries(1, 11).unwrap(), entries(1, 10, 1, 300));
        }
    }
    assert!(synced);
}

#[test]
fn default_64_mib_segments_with_megabyte_batches_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options::default();
    assert_eq!(o.writeback_chunk, 256 << 10);
    let mut w = Wal::open(dir.path(), o.clone()).unwrap();
    let mut next = 1;
    // 3 MiB batches of 48 KiB entries: 12 pieces each, across one rotation.
    for _ in 0..24 {
        let batch = entries(next, next + 63, 1, 48 << 10);
        w.append(&batch).unwrap();
        w.sync().unwrap();
        next += 64;
    }
    assert!(w.stats().segments_created >= 2, "{:?}", w.stats());
    drop(w);
    let w = Wal::open(dir.path(), o).unwrap();
    assert_eq!(w.last_index(), next - 1);
    for lo in (1..next).step_by(64) {
        assert_eq!(
            w.entries(lo, lo + 64).unwrap(),
            entries(lo, lo + 63, 1, 48 << 10)
        );
    }
}
