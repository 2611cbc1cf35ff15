//! The real-disk torture: a child process runs the workload on a real directory, journaling
//! every call (see [`crate::journal`]); the parent kills it with SIGKILL at a random moment,
//! reopens the WAL and checks it against the journal's model.
//!
//! Layout: `wal/` (the WAL) under the torture directory, and the child's journal (deleted by
//! the parent after each verified cycle), by default `journal.log` beside it. On a file
//! system that simulates power loss (a FUSE file system that drops unsynced data on command,
//! a dm-flakey device), the journal belongs on an ordinary one: it must survive the
//! simulated cut that the WAL is tested against.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use raftwal::io::StdVfs;
use raftwal::{Options, Wal};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::check::{check, promote, Recovered};
use crate::journal::{intent_line, replay, DONE_LINE};
use crate::model::Model;
use crate::workload::{random_op, Runner, WorkloadShape};

/// Paths of a real-disk torture directory.
#[derive(Debug, Clone)]
pub struct RealLayout {
    /// The WAL directory.
    pub wal_dir: PathBuf,
    /// The child's journal.
    pub journal: PathBuf,
}

impl RealLayout {
    /// The layout under `root`, with the journal at `journal` (default `root/journal.log`).
    pub fn new(root: &Path, journal: Option<&Path>) -> Self {
        RealLayout {
            wal_dir: root.join("wal"),
            journal: journal.map_or_else(|| root.join("journal.log"), Path::to_path_buf),
        }
    }
}

/// The child's side: opens the WAL, then issues up to `max_ops` random calls (seeded),
/// journaling each before and after, until killed. `snapshot_data` need not be known: the
/// parent keeps its own model.
pub fn run_child(
    layout: &RealLayout,
    seed: u64,
    opts: Options,
    max_ops: u64,
) -> Result<(), String> {
    let mut journal = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&layout.journal)
        .map_err(|e| format!("open {}: {e}", layout.journal.display()))?;
    let mut runner = Runner::new(StdVfs, &layout.wal_dir, opts);
    runner
        .open()
        .map_err(|e| format!("open {}: {e}", layout.wal_dir.display()))?;
    let rec = match runner.wal.as_ref() {
        Some(w) => Recovered::read(w).map_err(|e| format!("read back: {e}"))?,
        None => return Err("no WAL open".into()),
    };
    promote(&mut runner.model, &rec);
    let mut rng = StdRng::seed_from_u64(seed);
    let shape = WorkloadShape::default();
    for _ in 0..max_ops {
        let op = random_op(&runner.model, &mut rng, &shape);
        journal_line(&mut journal, &intent_line(&op))?;
        runner
            .apply(&op)
            .map_err(|e| format!("`{op}` failed: {e}"))?;
        journal_line(&mut journal, DONE_LINE)?;
    }
    Ok(())
}

fn journal_line(journal: &mut File, line: &str) -> Result<(), String> {
    journal
        .write_all(format!("{line}\n").as_bytes())
        .and_then(|()| journal.sync_data())
        .map_err(|e| format!("journal: {e}"))
}

/// What one verified kill cycle found.
#[derive(Debug, Clone, Default)]
pub struct RealCycle {
    /// Calls the journal shows as acknowledged in this cycle.
    pub acked_calls: u64,
    /// Entries verified after reopening.
    pub entries_verified: u64,
    /// The recovered state.
    pub summary: String,
}

/// The parent's side after a kill: replays the journal onto `model`, reopens the WAL, checks
/// it, promotes the recovered state and deletes the journal.
pub fn verify_after_kill(
    layout: &RealLayout,
    opts: &Options,
    model: &mut Model,
) -> Result<RealCycle, String> {
    let journal = match std::fs::read(&layout.journal) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("read {}: {e}", layout.journal.display())),
    };
    let acked_calls = replay(model, &journal)
        .map_err(|e| format!("journal {}: {e}", layout.journal.display()))?;
    let wal = Wal::open(&layout.wal_dir, opts.clone())
        .map_err(|e| format!("reopen after SIGKILL failed: {e}; {}", model.summary()))?;
    let rec = Recovered::read(&wal).map_err(|e| format!("reading back after SIGKILL: {e}"))?;
    drop(wal);
    let entries_verified = check(model, &rec)
        .map_err(|e| format!("after SIGKILL: {e}; {}; {}", rec.summary(), model.summary()))?;
    promote(model, &rec);
    std::fs::remove_file(&layout.journal)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| format!("remove {}: {e}", layout.journal.display()))?;
    Ok(RealCycle {
        acked_calls,
        entries_verified,
        summary: rec.summary(),
    })
}
