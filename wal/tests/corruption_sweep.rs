//! Corruption sweep: build a small WAL (several 8 KiB segments, several sync groups, a
//! header with a vote, a snapshot), then for every byte of every file flip it (xor 0xff, and
//! separately one bit) in a copy of the directory and reopen; and truncate every file at
//! every length. Acceptable outcomes of a flip:
//!
//! Every byte of every file is flipped with xor 0xff (a single-bit flip is added for every
//! third byte that holds data), and every file is truncated at every length from 0.
//!
//! (a) open fails with an error for which `is_corruption()` holds, naming the file and the
//!     offset;
//! (b) open succeeds with exactly the original durable state (the byte was padding, zeros
//!     past the data, an unused or older header slot, a compacted record...);
//! (c) open succeeds with a strict prefix of the log, only if the byte lies in the final
//!     sync group's records (the limit documented in `recovery.rs`); for the header file,
//!     the state before the last header update (its newest slot damaged looks exactly like a
//!     torn write of that slot — the same limit for the header).
//!
//! A truncated segment must recover a prefix of complete batches or fail with a corruption
//! error; a truncated header must fail with a corruption error or fall back to the other
//! slot. No case may panic (each open runs under `catch_unwind`). Every (a) case is then
//! reopened with `RecoveryMode::TruncateCorrupt`, which must open a prefix and report the
//! cut when the damage is in a record.

mod common;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use common::ent;
use raftwal::{Entry, Error, HardState, Options, RecoveryMode, SnapshotMeta, Wal};

/// Everything observable about an opened WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    base: SnapshotMeta,
    entries: Vec<Entry>,
    hard: HardState,
    /// The snapshot, or the corruption error reading it reported.
    snapshot: Result<Option<(SnapshotMeta, Vec<u8>)>, String>,
}

fn observe(w: &Wal) -> Result<State, String> {
    let entries = w
        .entries(w.first_index(), w.last_index() + 1)
        .map_err(|e| format!("reading entries after a successful open: {e}"))?;
    if w.last_index() > w.snapshot_meta().index
        && entries.last().map(|e| e.term) != Some(w.last_term())
    {
        return Err("last_term disagrees with the last entry".into());
    }
    let snapshot = match w.snapshot() {
        Ok(s) => Ok(s),
        Err(e) if e.is_corruption() && e.to_string().contains("offset") => Err(e.to_string()),
        Err(e) => return Err(format!("reading the snapshot after a successful open: {e}")),
    };
    Ok(State {
        base: w.snapshot_meta(),
        entries,
        hard: w.hard_state(),
        snapshot,
    })
}

fn opts(recovery: RecoveryMode) -> Options {
    Options::default()
        .with_segment_size(8192)
        .with_recovery(recovery)
}

/// The WAL under test and what is known about it.
struct Fixture {
    files: BTreeMap<String, Vec<u8>>,
    state: State,
    /// Hard state before the last header update.
    prev_hard: HardState,
    /// Last index of the second-to-last sync group: only entries above it are in the final
    /// sync group.
    before_final_group: u64,
    /// Indices that end an append batch (a recovered prefix must end at one), and the base.
    batch_ends: Vec<u64>,
    /// Per segment file: byte range of the final sync group's records.
    final_group_bytes: BTreeMap<String, (usize, usize)>,
}

fn build() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), opts(RecoveryMode::Strict)).unwrap();
    w.set_hard_state(HardState {
        term: 1,
        vote: Some(1),
    })
    .unwrap();
    let mut batch_ends = Vec::new();
    let mut next = 1u64;
    let mut last_synced = 0;
    let mut before_final_group = 0;
    let mut append = |w: &mut Wal, n: u64, term: u64, len: usize, sync: bool| {
        let b: Vec<_> = (next..next + n)
            .map(|i| ent(i, term, len + (i as usize * 13) % 40))
            .collect();
        next += n;
        w.append(&b).unwrap();
        batch_ends.push(next - 1);
        if sync {
            w.sync().unwrap();
            before_final_group = last_synced;
            last_synced = next - 1;
        }
    };
    // Several sync groups of several batches over ~4 segments.
    append(&mut w, 5, 1, 100, false);
    append(&mut w, 3, 1, 60, true);
    append(&mut w, 8, 1, 150, true);
    append(&mut w, 2, 2, 10, false);
    append(&mut w, 6, 2, 200, false);
    append(&mut w, 4, 2, 0, true);
    append(&mut w, 10, 2, 120, true);
    w.set_hard_state(HardState {
        term: 2,
        vote: Some(3),
    })
    .unwrap();
    // A snapshot whose term matches: the suffix is kept, whole segments below go.
    w.save_snapshot(SnapshotMeta { index: 12, term: 1 }, b"state machine at 12")
        .unwrap();
    append(&mut w, 7, 3, 180, true);
    append(&mut w, 3, 3, 40, false);
    append(&mut w, 9, 3, 90, true);
    append(&mut w, 12, 3, 70, true);
    let prev_hard = w.hard_state();
    w.set_hard_state(HardState {
        term: 4,
        vote: Some(2),
    })
    .unwrap();
    append(&mut w, 4, 4, 50, true); // the final sync group
    drop(w);
    // The images are taken before any reopen: opening rewrites the header it trusts into
    // the other slot, which would hide the fallback from a damaged newest slot.
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name != "LOCK" {
            files.insert(name, std::fs::read(e.path()).unwrap());
        }
    }
    let w = Wal::open(dir.path(), opts(RecoveryMode::Strict)).unwrap();
    let state = observe(&w).unwrap();
    drop(w);
    let segs = files.keys().filter(|n| n.ends_with(".wal")).count();
    assert!(segs >= 3, "want several segments, got {:?}", files.keys());
    assert!(files.keys().any(|n| n.ends_with(".snap")));
    let mut final_group_bytes = BTreeMap::new();
    for (name, bytes) in files.iter().filter(|(n, _)| n.ends_with(".wal")) {
        for (index, start, end) in records(bytes) {
            if index > last_synced - 4 {
                let r = final_group_bytes
                    .entry(name.clone())
                    .or_insert((start, end));
                r.0 = r.0.min(start);
                r.1 = r.1.max(end);
            }
        }
    }
    assert_eq!(before_final_group, last_synced - 4);
    batch_ends.push(state.base.index);
    Fixture {
        files,
        state,
        prev_hard,
        before_final_group,
        batch_ends,
        final_group_bytes,
    }
}

/// (index, start, end) of every record of a segment image (format: 64-byte header padded to
/// 4096, records of a 32-byte header — length at 4..8, index at 8..16 — and payload, padded to 8).
fn records(bytes: &[u8]) -> Vec<(u64, usize, usize)> {
    let mut out = Vec::new();
    let mut off = 4096;
    while off + 32 <= bytes.len() && bytes[off..off + 32].iter().any(|&b| b != 0) {
        let len = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap()) as usize;
        let index = u64::from_le_bytes(bytes[off + 8..off + 16].try_into().unwrap());
        let end = off + (32 + len).div_ceil(8) * 8;
        out.push((index, off, end));
        off = end;
    }
    out
}

/// End of the bytes of a file that hold data: for a segment, its last record (plus a
/// record header's worth), past which only preallocated zeros follow.
fn data_end(name: &str, bytes: &[u8]) -> usize {
    if name.ends_with(".wal") {
        (records(bytes).last().map_or(4096, |r| r.2) + 64).min(bytes.len())
    } else {
        bytes.len()
    }
}

fn write_dir(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for e in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// What opening one damaged directory gave.
#[derive(Debug)]
enum Outcome {
    Same,
    /// A strict prefix of the log, the rest identical.
    Prefix(u64),
    /// The state before the last header update.
    PreviousHeader,
    /// Open succeeded, everything matches, and reading the snapshot reports its corruption.
    SnapshotUnreadable,
    Error(Error),
    Other(String),
}

fn classify(fx: &Fixture, r: raftwal::Result<Wal>) -> Outcome {
    let w = match r {
        Ok(w) => w,
        Err(e) => return Outcome::Error(e),
    };
    let st = match observe(&w) {
        Ok(st) => st,
        Err(e) => return Outcome::Other(e),
    };
    if st == fx.state {
        return Outcome::Same;
    }
    if st.snapshot.is_err()
        && (State {
            snapshot: fx.state.snapshot.clone(),
            ..st.clone()
        }) == fx.state
    {
        return Outcome::SnapshotUnreadable;
    }
    if st.hard == fx.prev_hard
        && (State {
            hard: fx.state.hard,
            ..st.clone()
        }) == fx.state
    {
        return Outcome::PreviousHeader;
    }
    let n = st.entries.len();
    if st.base == fx.state.base
        && st.hard == fx.state.hard
        && st.snapshot == fx.state.snapshot
        && n < fx.state.entries.len()
        && st.entries[..] == fx.state.entries[..n]
    {
        return Outcome::Prefix(st.base.index + n as u64);
    }
    Outcome::Other(format!(
        "unexpected state: base {:?} last {} hard {:?} snapshot {:?}",
        st.base,
        st.base.index + n as u64,
        st.hard,
        st.snapshot.as_ref().map(|s| s.as_ref().map(|s| s.0))
    ))
}

/// Opens `dir` under `catch_unwind` (observing the state too); `Err` carries a panic message.
/// After a successful open, a second (strict) open must find the same state: the repair is
/// durable and idempotent.
fn open(fx: &Fixture, dir: &Path, mode: RecoveryMode) -> Result<(Outcome, Vec<String>), String> {
    catch_unwind(AssertUnwindSafe(|| {
        let r = Wal::open(dir, opts(mode));
        let mut cut: Vec<String> = match &r {
            Ok(w) => w
                .recovery_report()
                .corruption_truncated
                .iter()
                .map(ToString::to_string)
                .collect(),
            Err(_) => Vec::new(),
        };
        let first = r.as_ref().ok().map(observe);
        let outcome = classify(fx, r);
        if let Some(Ok(st)) = first {
            match Wal::open(dir, opts(RecoveryMode::Strict)) {
                Ok(w) if observe(&w).as_ref() == Ok(&st) => {}
                Ok(w) => {
                    let again = observe(&w).map(|s| (s.base, s.entries.len(), s.hard));
                    return (
                        Outcome::Other(format!("a second open differs: {again:?}")),
                        cut,
                    );
                }
                Err(e) => {
                    cut.clear();
                    return (
                        Outcome::Other(format!("a second open after the repair fails: {e}")),
                        cut,
                    );
                }
            }
        }
        (outcome, cut)
    }))
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
    })
}

#[derive(Default, Debug)]
struct Tally {
    cases: usize,
    same: usize,
    prefix: usize,
    previous_header: usize,
    snapshot_unreadable: usize,
    errors: usize,
    truncate_corrupt_opened: usize,
    truncate_corrupt_refused: usize,
    failures: Vec<String>,
}

impl Tally {
    fn fail(&mut self, case: &str, why: String) {
        if self.failures.len() < 40 {
            self.failures.push(format!("{case}: {why}"));
        } else if self.failures.len() == 40 {
            self.failures.push("...".into());
        }
    }
}

/// Checks that a corruption error names the file and an offset.
fn error_ok(e: &Error, file: &str) -> Result<(), String> {
    if !e.is_corruption() {
        return Err(format!("not a corruption error: {e}"));
    }
    let msg = e.to_string();
    // The damaged file, or (for a gap) the file where the stream broke, must be named.
    if !msg.contains(".wal") && !msg.contains("HEADER") && !msg.contains(".snap") {
        return Err(format!("error does not name a file: {msg}"));
    }
    if !msg.contains(file) && !msg.contains(".wal") {
        return Err(format!("error does not name {file}: {msg}"));
    }
    if !msg.contains("offset") {
        return Err(format!("error does not name an offset: {msg}"));
    }
    Ok(())
}

/// Runs one damaged image through both recovery modes and tallies the outcome.
/// `prefix_ok(last)` says whether a recovered strict prefix ending at `last` is acceptable.
#[allow(clippy::too_many_arguments)] // one flat call per case reads better than a builder
fn run_case(
    fx: &Fixture,
    dir: &Path,
    t: &mut Tally,
    case: &str,
    file: &str,
    image: &BTreeMap<String, Vec<u8>>,
    prefix_ok: &dyn Fn(u64) -> bool,
    previous_header_ok: bool,
) {
    t.cases += 1;
    write_dir(dir, image);
    match open(fx, dir, RecoveryMode::Strict) {
        Err(p) => t.fail(case, format!("PANIC: {p}")),
        Ok((Outcome::Same, _)) => t.same += 1,
        Ok((Outcome::Prefix(last), _)) if prefix_ok(last) => t.prefix += 1,
        Ok((Outcome::Prefix(last), _)) => t.fail(
            case,
            format!("silently recovered a prefix ending at {last}"),
        ),
        Ok((Outcome::PreviousHeader, _)) if previous_header_ok => t.previous_header += 1,
        Ok((Outcome::PreviousHeader, _)) => {
            t.fail(case, "silently fell back to the previous header".into())
        }
        Ok((Outcome::SnapshotUnreadable, _)) if file.ends_with(".snap") => {
            t.snapshot_unreadable += 1
        }
        Ok((Outcome::SnapshotUnreadable, _)) => t.fail(case, "snapshot unreadable".into()),
        Ok((Outcome::Other(why), _)) => t.fail(case, why),
        Ok((Outcome::Error(e), _)) => {
            t.errors += 1;
            if let Err(why) = error_ok(&e, file) {
                t.fail(case, why);
            }
            // Damage in a segment (a record or the segment header) is cut by TruncateCorrupt;
            // a damaged HEADER or snapshot, or a file that is not ours, is still refused.
            let in_segment = matches!(&e, Error::Corrupt { path, .. }
                if path.extension().is_some_and(|x| x == "wal"));
            write_dir(dir, image);
            match open(fx, dir, RecoveryMode::TruncateCorrupt) {
                Err(p) => t.fail(case, format!("PANIC under TruncateCorrupt: {p}")),
                Ok((Outcome::Prefix(last), cut)) if !cut.is_empty() => {
                    if let Error::Corrupt { index: Some(i), .. } = &e {
                        // (Damage among compacted entries leaves at most the base.)
                        if last >= *i && last > fx.state.base.index {
                            t.fail(case, format!("TruncateCorrupt kept {last}, damage at {i}"));
                        }
                    }
                    if !fx.batch_ends.contains(&last) {
                        t.fail(
                            case,
                            format!("TruncateCorrupt cut inside a batch at {last}"),
                        );
                    }
                    t.truncate_corrupt_opened += 1;
                }
                Ok((Outcome::Same, cut)) if !cut.is_empty() => t.truncate_corrupt_opened += 1,
                Ok((Outcome::Error(e2), _)) if !in_segment && e2.is_corruption() => {
                    t.truncate_corrupt_refused += 1
                }
                Ok((Outcome::Error(e2), _)) => t.fail(
                    case,
                    format!("TruncateCorrupt still refuses a segment's corruption ({e}): {e2}"),
                ),
                Ok((Outcome::Prefix(last), _)) => t.fail(
                    case,
                    format!("TruncateCorrupt cut at {last} without reporting it ({e})"),
                ),
                Ok((o, c)) => t.fail(
                    case,
                    format!("TruncateCorrupt: unexpected outcome {o:?} cut {c:?} ({e})"),
                ),
            }
        }
    }
}

fn report(what: &str, t: &Tally) {
    eprintln!(
        "{what}: {} cases: {} same state, {} final-group prefix, {} previous header slot, \
         {} snapshot data reported corrupt on read, {} corruption errors (TruncateCorrupt: \
         {} opened a reported prefix, {} refused: HEADER, snapshot or not ours), {} failures",
        t.cases,
        t.same,
        t.prefix,
        t.previous_header,
        t.snapshot_unreadable,
        t.errors,
        t.truncate_corrupt_opened,
        t.truncate_corrupt_refused,
        t.failures.len()
    );
    for f in &t.failures {
        eprintln!("  FAIL {f}");
    }
}

fn quiet_panics() {
    // Panics are caught and reported per case; keep the default hook from flooding stderr.
    std::panic::set_hook(Box::new(|_| {}));
}

#[test]
fn flip_every_byte_of_every_file() {
    let fx = build();
    let dir = common::fast_tempdir();
    let mut t = Tally::default();
    quiet_panics();
    let mut bytes_flipped = 0;
    for (name, bytes) in &fx.files {
        let dense = data_end(name, bytes);
        for off in 0..bytes.len() {
            bytes_flipped += 1;
            // Every byte xor 0xff; every third byte holding data also a single bit.
            let kinds: &[(&str, u8)] = if off % 3 == 0 && off < dense {
                &[("xor 0xff", 0xff), ("bit", 1 << (off / 3 % 8))]
            } else {
                &[("xor 0xff", 0xff)]
            };
            for &(kind, mask) in kinds {
                let mut image = fx.files.clone();
                image.get_mut(name).unwrap()[off] ^= mask;
                let in_final = fx
                    .final_group_bytes
                    .get(name)
                    .is_some_and(|&(a, b)| (a..b).contains(&off));
                let min = fx.before_final_group;
                let is_header = name == "HEADER";
                run_case(
                    &fx,
                    dir.path(),
                    &mut t,
                    &format!("{name} byte {off} {kind}"),
                    name,
                    &image,
                    &|last| in_final && last >= min,
                    is_header,
                );
            }
        }
    }
    let _ = std::panic::take_hook();
    eprintln!(
        "flip sweep: {bytes_flipped} byte positions over {} files",
        fx.files.len()
    );
    report("flip sweep", &t);
    assert!(t.failures.is_empty(), "{} failing cases", t.failures.len());
}

#[test]
fn truncate_every_file_at_every_length() {
    let fx = build();
    let dir = common::fast_tempdir();
    let mut t = Tally::default();
    quiet_panics();
    let mut lengths = 0;
    for (name, bytes) in &fx.files {
        for len in 0..=bytes.len() {
            lengths += 1;
            let mut image = fx.files.clone();
            image.get_mut(name).unwrap().truncate(len);
            let is_seg = name.ends_with(".wal");
            let ends = fx.batch_ends.clone();
            run_case(
                &fx,
                dir.path(),
                &mut t,
                &format!("{name} truncated to {len}"),
                name,
                &image,
                &move |last| is_seg && ends.contains(&last),
                name == "HEADER",
            );
        }
    }
    let _ = std::panic::take_hook();
    eprintln!(
        "truncation sweep: {lengths} lengths over {} files",
        fx.files.len()
    );
    report("truncation sweep", &t);
    assert!(t.failures.is_empty(), "{} failing cases", t.failures.len());
}
