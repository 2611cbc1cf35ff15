//! Writes a small WAL to inspect: `cargo run --example write_log -p raftwal -- DIR [ENTRIES]`.
//!
//! Then `cargo run --release -- inspect DIR` and `cargo run --release -- verify DIR`.

use raftwal::{Entry, HardState, Options, SnapshotMeta, Wal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: write_log DIR [ENTRIES]")?;
    let n: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let opts = Options::default().with_segment_size(1 << 20);
    let mut log = Wal::open(&dir, opts)?;
    let start = log.last_index() + 1;
    let term = log.hard_state().term.max(1);
    log.set_hard_state(HardState {
        term,
        vote: Some(1),
    })?;
    for chunk in (start..start + n).collect::<Vec<_>>().chunks(64) {
        let batch: Vec<Entry> = chunk
            .iter()
            .map(|&i| Entry {
                index: i,
                term,
                data: format!("set key{i} = value{i}").into_bytes(),
            })
            .collect();
        log.append(&batch)?;
        log.sync()?;
    }
    let snap = start + n / 2;
    log.save_snapshot(SnapshotMeta { index: snap, term }, b"state machine image")?;
    println!(
        "wrote entries {start}..={} to {dir}; snapshot at {snap}",
        log.last_index()
    );
    Ok(())
}
