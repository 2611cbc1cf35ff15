//! A small driver to run one raftwal code path under a profiler (valgrind's callgrind, or
//! `perf record`), without criterion's machinery around it:
//!
//! ```text
//! cargo build --release -p raftwal-benches --example profile
//! valgrind --tool=callgrind target/release/examples/profile append 64 64 2000
//! valgrind --tool=callgrind target/release/examples/profile recovery 1024 128
//! ```
//!
//! - `append SIZE BATCH BATCHES [background|zero|allocate]`: append BATCHES batches of
//!   BATCH entries of SIZE bytes, `sync` after each (the CLI's workload), with that
//!   `Options::prepare`. Prints the appends that rotated (their latency) and, with
//!   `PER_SEGMENT=1` in the environment, the mean sync latency in each segment (this
//!   machine's disk showed the change from ~1 ms to ~6 ms per 2 MiB sync once ~600 MiB had
//!   been written in a burst).
//! - `buffer SIZE BATCH BATCHES`: the same, syncing only every 64 batches (the CPU cost of
//!   `append`).
//! - `rotation SIZE BATCH ROUNDS`: a steady log (16 MiB segments, compacted back to two
//!   segments of entries, so rotations take recycled files), with `Options::rotate_ahead` on
//!   and off in alternating rounds of 200 synced batches on the same directory; per mode,
//!   the mean latency of a batch (append + sync) that created a segment and of one that did
//!   not, and the compactions' latency.
//! - `recovery SIZE MIB`: build a MIB-MiB log of SIZE-byte entries, then time `Wal::open`
//!   (the part worth profiling; run with `--toggle-collect` on `open_raftwal` to skip the
//!   build).

use std::time::Instant;

use raftwal::{Options, Wal};
use raftwal_benches::fixtures::tempdir;
use raftwal_benches::recovery::{build_raftwal, open_raftwal};
use raftwal_benches::workload::{renumber, wal_batch, Cell};

fn arg(args: &[String], i: usize, default: u64) -> u64 {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map(String::as_str).unwrap_or("append");
    let dir = tempdir();
    match what {
        "append" | "buffer" => {
            let (size, batch, batches) = (
                arg(&args, 2, 64) as usize,
                arg(&args, 3, 64) as usize,
                arg(&args, 4, 2000),
            );
            let prepare = match args.get(5).map(String::as_str) {
                None | Some("background") => raftwal::SegmentPrepare::ZeroFillBackground,
                Some("zero") => raftwal::SegmentPrepare::ZeroFill,
                Some("allocate") => raftwal::SegmentPrepare::Allocate,
                Some(other) => return Err(format!("unknown prepare mode {other}").into()),
            };
            let opts = Options::default().with_prepare(prepare);
            let mut wal = Wal::open(dir.path(), opts)?;
            let mut entries = wal_batch(&Cell::single(size, batch), 1);
            let t = Instant::now();
            let mut in_append = std::time::Duration::ZERO;
            let mut in_sync = std::time::Duration::ZERO;
            let mut rotating = Vec::new();
            let mut per_segment: Vec<(u64, std::time::Duration)> = Vec::new();
            for i in 0..batches {
                renumber(&mut entries, wal.last_index() + 1);
                let a = Instant::now();
                let segments = wal.stats().segments_created;
                wal.append(&entries)?;
                let took = a.elapsed();
                in_append += took;
                if wal.stats().segments_created != segments {
                    rotating.push(took);
                }
                if what == "append" || i % 64 == 63 {
                    let a = Instant::now();
                    wal.sync()?;
                    in_sync += a.elapsed();
                    if std::env::var_os("PER_SEGMENT").is_some() {
                        per_segment.push((wal.stats().segments_created, a.elapsed()));
                    }
                }
            }
            wal.sync()?;
            let s = wal.stats();
            println!(
                "{what}: {batches} batches of {batch} x {size} B in {:?} ({:?} per append call, {:?} per sync call); \
                 {} writes, {} file syncs; {} segments ({} from the spare), {} MiB of spare zeroed",
                t.elapsed(),
                in_append / batches.max(1) as u32,
                in_sync / batches.max(1) as u32,
                s.writes,
                s.file_syncs,
                s.segments_created,
                s.segments_from_spare,
                s.spare_bytes_zeroed >> 20
            );
            for seg in 1..=per_segment.last().map_or(0, |p| p.0) {
                let d: Vec<_> = per_segment
                    .iter()
                    .filter(|p| p.0 == seg)
                    .map(|p| p.1)
                    .collect();
                if !d.is_empty() {
                    println!(
                        "segment {seg}: {} syncs, mean {:?}",
                        d.len(),
                        d.iter().sum::<std::time::Duration>() / d.len() as u32
                    );
                }
            }
            if !rotating.is_empty() {
                rotating.sort();
                println!(
                    "appends that rotated: {}, median {:?}, max {:?}",
                    rotating.len(),
                    rotating[rotating.len() / 2],
                    rotating[rotating.len() - 1]
                );
            }
        }
        "emulate" | "emulate-once" => {
            // raftwal's write path without raftwal: encode frames into one reused buffer,
            // then pwrite + fdatasync into a preallocated 64 MiB file (new file when full).
            use std::os::unix::fs::FileExt;
            let (size, batch, batches) = (
                arg(&args, 2, 4096) as usize,
                arg(&args, 3, 512) as usize,
                arg(&args, 4, 300),
            );
            let entries = wal_batch(&Cell::single(size, batch), 1);
            let mut pending: Vec<u8> = Vec::new();
            let (mut file, mut off, mut n) = (None::<std::fs::File>, 0u64, 0);
            let (mut in_encode, mut in_write, mut in_sync) = Default::default();
            let t = Instant::now();
            for b in 0..batches {
                let a = Instant::now();
                if what == "emulate" || b == 0 {
                    pending.clear();
                    for (i, e) in entries.iter().enumerate() {
                        let start = pending.len();
                        pending.extend_from_slice(&[0u8; 32]);
                        pending[8..16]
                            .copy_from_slice(&(b * batch as u64 + i as u64).to_le_bytes());
                        pending.extend_from_slice(&e.data);
                        let crc = crc32fast::hash(&pending[start + 4..]);
                        pending[start..start + 4].copy_from_slice(&crc.to_le_bytes());
                        pending.resize(start + ((32 + e.data.len() + 7) & !7), 0);
                    }
                }
                in_encode += a.elapsed();
                if file.is_none() || off + pending.len() as u64 > 64 << 20 {
                    let f = std::fs::File::options()
                        .read(true)
                        .write(true)
                        .create_new(true)
                        .open(dir.path().join(format!("e{n}")))?;
                    n += 1;
                    fs2::FileExt::allocate(&f, 64 << 20)?;
                    f.sync_all()?;
                    file = Some(f);
                    off = arg(&args, 5, 64);
                }
                let f = file.as_ref().ok_or("no file")?;
                let a = Instant::now();
                f.write_all_at(&pending, off)?;
                in_write += a.elapsed();
                let a = Instant::now();
                f.sync_data()?;
                in_sync += a.elapsed();
                off += pending.len() as u64;
            }
            let per = |d: std::time::Duration| d / batches.max(1) as u32;
            println!(
                "emulate: {batches} batches of {batch} x {size} B in {:?}: encode {:?}, pwrite {:?}, fdatasync {:?} per batch",
                t.elapsed(),
                per(in_encode),
                per(in_write),
                per(in_sync)
            );
        }
        "rotation" => rotation(
            arg(&args, 2, 4096) as usize,
            arg(&args, 3, 512) as usize,
            arg(&args, 4, 10),
            dir.path(),
        )?,
        "recovery" => {
            let (size, mib) = (arg(&args, 2, 1024) as usize, arg(&args, 3, 128));
            let opts = Options::default();
            build_raftwal(dir.path(), &opts, mib << 20, size)?;
            let (took, report) = open_raftwal(dir.path(), &opts)?;
            println!(
                "recovery of {mib} MiB ({} entries, {} bytes scanned) in {took:?}",
                report.entries, report.bytes_scanned
            );
        }
        other => return Err(format!("unknown workload {other:?}").into()),
    }
    Ok(())
}

/// The `rotation` workload (see the module docs).
fn rotation(
    size: usize,
    batch: usize,
    rounds: u64,
    dir: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use std::time::Duration;
    const SEGMENT: u64 = 16 << 20;
    let keep = 2 * SEGMENT / (size as u64 + 40);
    // [rotate ahead?][created a segment?]: (total latency, batches)
    let mut acc = [[(Duration::ZERO, 0u32); 2]; 2];
    // [rotate ahead?]: segments from the pool, from the spare
    let mut sources = [(0u64, 0u64); 2];
    // [rotate ahead?]: compaction latencies
    let mut compactions: [Vec<Duration>; 2] = Default::default();
    for round in 0..rounds * 2 {
        let ahead = round % 2 == 0;
        let opts = Options::default()
            .with_segment_size(SEGMENT)
            .with_rotate_ahead(ahead);
        // One directory for both modes: the same files, recycled in turn.
        let mut wal = Wal::open(dir, opts)?;
        let mut entries = wal_batch(&Cell::single(size, batch), 1);
        for _ in 0..200 {
            renumber(&mut entries, wal.last_index() + 1);
            let created = wal.stats().segments_created;
            let t = Instant::now();
            wal.append(&entries)?;
            wal.sync()?;
            let took = t.elapsed();
            let slot = &mut acc[ahead as usize][(wal.stats().segments_created != created) as usize];
            slot.0 += took;
            slot.1 += 1;
            if wal.last_index() - wal.first_index() > keep + keep / 2 {
                let t = Instant::now();
                wal.compact(wal.last_index() - keep)?;
                compactions[ahead as usize].push(t.elapsed());
            }
        }
        let st = wal.stats();
        sources[ahead as usize].0 += st.segments_from_pool;
        sources[ahead as usize].1 += st.segments_from_spare;
    }
    let mean = |(d, n): (Duration, u32)| d / n.max(1);
    for (ahead, name) in [(1, "rotate ahead"), (0, "rotate in append")] {
        let [plain, creating] = acc[ahead];
        let all = (plain.0 + creating.0, plain.1 + creating.1);
        println!(
            "{name}: {} batches of {batch} x {size} B, mean {:?}; {} created a segment, mean {:?}; \
             the others mean {:?}; segments from the pool {}, from the spare {}; {} \
             compactions, mean {:?}, max {:?}",
            all.1,
            mean(all),
            creating.1,
            mean(creating),
            mean(plain),
            sources[ahead].0,
            sources[ahead].1,
            compactions[ahead].len(),
            compactions[ahead].iter().sum::<Duration>() / compactions[ahead].len().max(1) as u32,
            compactions[ahead].iter().max().copied().unwrap_or_default()
        );
    }
    Ok(())
}
