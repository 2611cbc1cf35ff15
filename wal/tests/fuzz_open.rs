//! A seeded fuzz of `Wal::open` over garbage and half-valid directories (defect 8 of the
//! durability review: checksummed but absurd fields overflowed — a header slot with sequence
//! `u64::MAX`, a segment named `u64::MAX` holding a record at that index, a snapshot length
//! near `u64::MAX`).
//!
//! Each case builds a directory on `SimFs` from pieces that are valid, half-valid (correct
//! checksums over absurd values: the extremes of every field) or garbage, written here from
//! docs/FORMAT.md (not with the WAL's own encoders), then opens it in every mode and, if it
//! opens, reads everything and writes a little. Required: no panic (the WAL is built with
//! overflow checks), a clear error or a working log, bytes read bounded by a small multiple
//! of the directory's size, and memory bounded by the same (a counting allocator).
//!
//! `FUZZ_OPEN_CASES` sets the number of cases (default 1500); every failure prints its seed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use raftwal::io::{Vfs, VfsFile};
use raftwal::{Entry, Options, RecoveryMode, SnapshotMeta, Wal};
use raftwal_fault::SimFs;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY (test-only allocator): forwards to the system allocator unchanged, only counting.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract; passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const DIR: &str = "/wal";

/// Field values that break arithmetic: extremes and their neighbours.
fn absurd(rng: &mut StdRng) -> u64 {
    const V: [u64; 12] = [
        0,
        1,
        2,
        u32::MAX as u64,
        u32::MAX as u64 + 1,
        1 << 62,
        (1 << 62) - 1,
        1 << 63,
        u64::MAX - 2,
        u64::MAX - 1,
        u64::MAX,
        4096,
    ];
    if rng.gen_bool(0.7) {
        V[rng.gen_range(0..V.len())]
    } else {
        rng.gen()
    }
}

/// A small plausible value, or an absurd one.
fn value(rng: &mut StdRng, plausible: u64) -> u64 {
    if rng.gen_bool(0.6) {
        plausible
    } else {
        absurd(rng)
    }
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// A HEADER slot (docs/FORMAT.md), checksummed.
fn slot(rng: &mut StdRng, slot_no: u32, seq: u64) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[0..8].copy_from_slice(b"RWALHDR1");
    let version = if rng.gen_bool(0.9) {
        3
    } else {
        rng.gen_range(0..5)
    };
    put32(&mut b, 8, version);
    let flags = rng.gen_range(0..4);
    put32(&mut b, 12, flags);
    put64(&mut b, 16, value(rng, seq));
    put64(&mut b, 24, {
        let p = rng.gen_range(0..5);
        value(rng, p)
    });
    put64(&mut b, 32, {
        let p = rng.gen_range(0..4);
        value(rng, p)
    });
    put64(&mut b, 40, {
        let p = rng.gen_range(0..20);
        value(rng, p)
    });
    put64(&mut b, 48, {
        let p = rng.gen_range(0..5);
        value(rng, p)
    });
    put64(&mut b, 56, {
        let p = rng.gen_range(0..30);
        value(rng, p)
    });
    put64(&mut b, 64, {
        let p = rng.gen_range(0..30);
        value(rng, p)
    });
    put64(&mut b, 72, {
        let p = rng.gen_range(0..10);
        value(rng, p)
    });
    let mut h = crc32fast::Hasher::new();
    h.update(&slot_no.to_le_bytes());
    h.update(&b[..508]);
    put32(&mut b, 508, h.finalize());
    b
}

fn header_file(rng: &mut StdRng) -> Vec<u8> {
    match rng.gen_range(0..10) {
        0 => (0..rng.gen_range(0..9000)).map(|_| rng.gen()).collect(),
        1 => vec![0; [0, 100, 1024, 8192][rng.gen_range(0..4)]],
        2 => {
            // Format 2: both slots in the first kilobyte.
            let mut f = vec![0u8; 1024];
            for s in 0..2u32 {
                let mut b = slot(rng, s, u64::from(s) + 1);
                put32(&mut b, 8, 2);
                let mut h = crc32fast::Hasher::new();
                h.update(&s.to_le_bytes());
                h.update(&b[..508]);
                put32(&mut b, 508, h.finalize());
                f[s as usize * 512..s as usize * 512 + 512].copy_from_slice(&b);
            }
            f
        }
        _ => {
            let mut f = vec![0u8; 8192];
            for s in 0..2u32 {
                if rng.gen_bool(0.85) {
                    let b = slot(rng, s, u64::from(s) + 1);
                    f[s as usize * 4096..s as usize * 4096 + 512].copy_from_slice(&b);
                }
            }
            if rng.gen_bool(0.1) {
                f.truncate(rng.gen_range(0..8192));
            }
            f
        }
    }
}

fn identity(seq: u64, first: u64) -> crc32fast::Hasher {
    let mut h = crc32fast::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(&first.to_le_bytes());
    h
}

/// A format-3 record (40-byte header with its own checksum, payload checksum), with fields
/// plausible for position `k` or absurd, and a claimed length that may not match.
fn record(rng: &mut StdRng, id: &crc32fast::Hasher, index: u64, group: u64) -> Vec<u8> {
    let payload: Vec<u8> = (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect();
    let claimed = if rng.gen_bool(0.9) {
        payload.len() as u32
    } else {
        absurd(rng) as u32
    };
    let mut b = vec![0u8; 40];
    put32(&mut b, 4, claimed);
    put64(&mut b, 8, value(rng, index));
    put64(&mut b, 16, value(rng, 1));
    let flags = rng.gen_range(0..4u64) << 62;
    put64(&mut b, 24, (value(rng, group) & ((1 << 62) - 1)) | flags);
    put32(&mut b, 32, crc32fast::hash(&payload));
    let hs = rng.gen();
    put32(&mut b, 36, hs);
    let mut h = id.clone();
    h.update(&b[4..40]);
    put32(&mut b, 0, h.finalize());
    b.extend_from_slice(&payload);
    b.resize(b.len().div_ceil(8) * 8, 0);
    b
}

fn segment(rng: &mut StdRng, first: u64, seq: u64) -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    b[0..8].copy_from_slice(b"RWALSEG1");
    let version = if rng.gen_bool(0.9) {
        3
    } else {
        rng.gen_range(0..5)
    };
    put32(&mut b, 8, version);
    put64(&mut b, 16, value(rng, seq));
    put64(&mut b, 24, value(rng, first));
    put64(&mut b, 32, value(rng, 1));
    let crc = crc32fast::hash(&b[..60]);
    put32(&mut b, 60, crc);
    if rng.gen_bool(0.05) {
        b[rng.gen_range(0..64)] ^= 1;
    }
    let id = identity(seq, first);
    let mut index = first;
    for _ in 0..rng.gen_range(0..12) {
        match rng.gen_range(0..10) {
            0 => b.extend((0..rng.gen_range(1..300)).map(|_| rng.gen::<u8>())),
            1 => b.extend(std::iter::repeat_n(0u8, rng.gen_range(8..200))),
            _ => {
                b.extend(record(rng, &id, index, 1 + index / 3));
                index = index.wrapping_add(1);
            }
        }
    }
    let len = match rng.gen_range(0..4) {
        0 => b.len(),
        1 => rng.gen_range(0..=b.len()),
        _ => b.len().max(8192).div_ceil(4096) * 4096,
    };
    b.resize(len, 0);
    b
}

fn snapshot(rng: &mut StdRng, index: u64) -> Vec<u8> {
    let data: Vec<u8> = (0..rng.gen_range(0..100)).map(|_| rng.gen()).collect();
    let mut b = vec![0u8; 64];
    b[0..8].copy_from_slice(b"RWALSNP1");
    put32(&mut b, 8, 3);
    put64(&mut b, 16, value(rng, index));
    put64(&mut b, 24, value(rng, 1));
    let len = if rng.gen_bool(0.7) {
        data.len() as u64
    } else {
        absurd(rng)
    };
    put64(&mut b, 32, len);
    let mut h = crc32fast::Hasher::new();
    h.update(&index.to_le_bytes());
    h.update(&1u64.to_le_bytes());
    h.update(&data);
    put32(&mut b, 40, h.finalize());
    let crc = crc32fast::hash(&b[..60]);
    put32(&mut b, 60, crc);
    b.extend_from_slice(&data);
    b
}

/// Writes a case's files; returns their total size.
fn build(fs: &SimFs, rng: &mut StdRng) -> u64 {
    let dir = Path::new(DIR);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    if rng.gen_bool(0.9) {
        files.push(("HEADER".into(), header_file(rng)));
    }
    let mut first = value(rng, 1).max(1);
    for seq in 1..=rng.gen_range(0..5u64) {
        if rng.gen_bool(0.2) {
            first = absurd(rng);
        }
        files.push((format!("{first:020}.wal"), segment(rng, first, seq)));
        first = first.wrapping_add(rng.gen_range(1..12));
    }
    if rng.gen_bool(0.3) {
        let index = {
            let p = rng.gen_range(0..15);
            value(rng, p)
        };
        files.push((format!("{index:020}.snap"), snapshot(rng, index)));
    }
    if rng.gen_bool(0.1) {
        files.push(("segment.spare".into(), vec![0; 8192]));
    }
    let mut total = 0;
    for (name, bytes) in files {
        let path = dir.join(name);
        let f = match fs.open(&path, raftwal::io::OpenMode::CreateNew) {
            Ok(f) => f,
            Err(_) => continue, // the same name twice
        };
        f.write_all_at(&bytes, 0).unwrap();
        f.sync_all().unwrap();
        total += bytes.len() as u64;
    }
    fs.sync_dir(dir).unwrap();
    total
}

/// Opens `fs` with `opts`; if it opens, reads everything and writes a little.
fn exercise(fs: SimFs, opts: Options) -> Result<(), String> {
    let mut w = match Wal::open_with(fs, Path::new(DIR), opts) {
        Ok(w) => w,
        Err(e) => return Err(format!("refused: {e}")),
    };
    let (first, last) = (w.first_index(), w.last_index());
    let _ = w.entries(
        first,
        last.saturating_add(1).min(first.saturating_add(10_000)),
    );
    let _ = w.term(w.snapshot_meta().index);
    let _ = w.snapshot();
    let next = last.saturating_add(1);
    if next < u64::MAX {
        let e = Entry {
            index: next,
            term: w.last_term().max(w.hard_state().term),
            data: b"after".to_vec(),
        };
        if w.append_sync(&[e]).is_ok() {
            let _ = w.compact(next);
            let _ = w.save_snapshot(
                SnapshotMeta {
                    index: next,
                    term: w.last_term(),
                },
                b"s",
            );
        }
    }
    Ok(())
}

#[test]
fn open_never_panics_and_stays_bounded_on_garbage_and_half_valid_directories() {
    let cases: u64 = std::env::var("FUZZ_OPEN_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let mut opened = 0;
    let mut failures: Vec<String> = Vec::new();
    for seed in 0..cases {
        let mut rng = StdRng::seed_from_u64(seed);
        let template = SimFs::new(seed);
        template.mkdir_durable(Path::new(DIR));
        let size = build(&template, &mut rng);
        for (mode, lazy) in [
            (RecoveryMode::Strict, false),
            (RecoveryMode::Strict, true),
            (RecoveryMode::TruncateCorrupt, false),
        ] {
            let opts = Options::default()
                .with_segment_size(8192)
                .with_recovery(mode)
                .with_lazy_open(lazy);
            let fs = template.fork();
            fs.reset_counters();
            let base = LIVE.load(Ordering::Relaxed);
            PEAK.store(base, Ordering::Relaxed);
            let run = catch_unwind(AssertUnwindSafe(|| exercise(fs.clone(), opts)));
            let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
            let read = fs.counters().bytes_read;
            let what = format!("seed {seed} ({mode:?}, lazy {lazy}, {size} bytes on disk)");
            match run {
                Err(p) => {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
                        .unwrap_or_default();
                    failures.push(format!("{what}: panic: {msg}"));
                }
                Ok(r) => opened += u64::from(r.is_ok()),
            }
            // Reads: every byte a few times at most (scan, search, verification reads,
            // the writes' own checks), plus the small files the writes create.
            let read_bound = 6 * size + (256 << 10);
            if read > read_bound {
                failures.push(format!("{what}: read {read} bytes (bound {read_bound})"));
            }
            // Memory: the simulated disk's own copies of the files, a read window (1 MiB),
            // the index, the buffers of the writes.
            let mem_bound = 8 * size + (8 << 20);
            if peak as u64 > mem_bound {
                failures.push(format!(
                    "{what}: peak heap {peak} bytes (bound {mem_bound})"
                ));
            }
        }
    }
    println!(
        "fuzz of open: {cases} directories x 3 modes, {opened} opened, {} failures",
        failures.len()
    );
    for f in failures.iter().take(20) {
        println!("FAILED {f}");
    }
    assert!(failures.is_empty(), "{}", failures[0]);
}
