//! Power cuts at production sizes: the default options (64 MiB segments, a 4 MiB write
//! buffer), megabyte batches, and a cut while megabytes of an unsynced write are in the page
//! cache — so the torn tail recovery decides about is megabytes long, not a few records as in
//! the torture's 8 KiB segments. Every seed: synced batches acknowledged, then an unsynced
//! 6 MiB batch whose first 4 MiB the buffer wrote out, then a cut (random subsets, torn
//! sectors, write by write or page by page). Open must succeed with every acknowledged entry
//! and at most a prefix of whole batches after them; a second cut after the open loses
//! nothing it showed.

mod common;

use common::sim::dir;
use raftwal::{Entry, Options, Wal};
use raftwal_fault::{SimFs, Writeback};

const ENTRY: usize = 64 << 10;

fn batch(lo: u64, n: u64) -> Vec<Entry> {
    common::sim::entries(lo, lo + n - 1, 1, ENTRY)
}

/// Appends `n`-entry batches totalling `mib` MiB, each synced; returns the last index.
fn synced(w: &mut Wal<SimFs>, from: u64, mib: u64) -> u64 {
    let per_batch = 32; // 2 MiB
    let mut next = from;
    for _ in 0..mib / 2 {
        w.append_sync(&batch(next, per_batch)).unwrap();
        next += per_batch;
    }
    next - 1
}

fn check(w: &Wal<SimFs>, acked: u64, ctx: &str) {
    let last = w.last_index();
    assert!(
        last >= acked,
        "{ctx}: acknowledged entries lost: last {last} < {acked}"
    );
    // The unsynced batch (acked+1 ..= acked+96) is kept whole or not at all.
    assert!(
        last == acked || last == acked + 96,
        "{ctx}: kept part of a batch: {last}"
    );
    for i in (1..=last).step_by(7) {
        let e = w
            .entry(i)
            .unwrap_or_else(|e| panic!("{ctx}: entry {i}: {e}"));
        assert_eq!(e.data, vec![i as u8; ENTRY], "{ctx}: entry {i}");
    }
}

fn cut_mid_write(seed: u64, writeback: Writeback) {
    let fs = SimFs::new(seed);
    fs.mkdir_durable(dir());
    let mut w = Wal::open_with(fs.clone(), dir(), Options::default()).unwrap();
    let acked = synced(&mut w, 1, 24);
    // 6 MiB unsynced: the 4 MiB write buffer writes most of it out, none of it synced.
    w.append(&batch(acked + 1, 96)).unwrap();
    drop(w);
    fs.set_writeback(writeback);
    let report = fs.crash(seed);
    let ctx = format!("seed {seed}, {writeback:?}: {report}");
    let w = Wal::open_with(fs.clone(), dir(), Options::default())
        .unwrap_or_else(|e| panic!("{ctx}: open failed: {e}"));
    check(&w, acked, &ctx);
    let shown = w.last_index();
    let torn = w.recovery_report().torn_bytes_truncated;
    drop(w);
    // What open returned is durable.
    fs.crash(seed + 1);
    let w = Wal::open_with(fs.clone(), dir(), Options::default()).unwrap();
    assert_eq!(w.last_index(), shown, "{ctx}: second cut");
    println!(
        "{ctx}: kept {} of 96 unsynced entries; torn bytes cut {torn}",
        shown - acked
    );
}

#[test]
fn megabyte_torn_tails_in_default_segments_recover_write_by_write() {
    for seed in 0..6 {
        cut_mid_write(seed, Writeback::Writes);
    }
}

#[test]
fn megabyte_torn_tails_in_default_segments_recover_page_by_page() {
    for seed in 0..6 {
        cut_mid_write(seed, Writeback::Pages { page: 4096 });
    }
}
