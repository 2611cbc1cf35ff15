//! `raftwal inspect` and `raftwal verify`: look into a WAL directory without changing it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use raftwal::inspect::{inspect, Finding, Inspection};
use raftwal::io::StdVfs;

use super::CmdResult;

/// Arguments of `raftwal inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The WAL directory.
    pub dir: PathBuf,
    /// Also print the entries in this range, `LO..HI` (HI exclusive), e.g. `1..10`.
    #[arg(long, value_name = "LO..HI")]
    pub entries: Option<String>,
}

/// Arguments of `raftwal verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The WAL directory.
    pub dir: PathBuf,
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn print_finding(f: &Finding) {
    match f {
        Finding::Clean => println!("log:      every record verifies; every segment ends cleanly"),
        Finding::TornTail {
            path,
            offset,
            bytes,
            reason,
        } => println!(
            "log:      torn tail (an unsynced write) at {}:{offset} ({reason}); open would cut {}",
            path.display(),
            human(*bytes)
        ),
        Finding::Corrupt {
            path,
            offset,
            index,
            reason,
        } => println!(
            "log:      CORRUPT at {}:{offset}{}: {reason}",
            path.display(),
            index.map(|i| format!(" (index {i})")).unwrap_or_default()
        ),
    }
}

fn print_compacted_damage(ins: &Inspection) {
    for d in &ins.compacted_damage {
        println!(
            "note:     damaged record among compacted entries at {}:{} ({}); not needed, stepped over",
            d.path.display(),
            d.offset,
            d.reason
        );
    }
}

fn print_inspection(ins: &Inspection) {
    println!("directory {}", ins.dir.display());
    for s in &ins.slots {
        match &s.fields {
            Some((seq, hs, base, snap)) => println!(
                "header slot {}: sequence {seq}, term {}, vote {}, base index {} term {}{}",
                s.slot,
                hs.term,
                hs.vote.map_or("none".to_string(), |v| v.to_string()),
                base.index,
                base.term,
                if *snap { ", snapshot stored" } else { "" }
            ),
            None => println!("header slot {}: {}", s.slot, s.status),
        }
    }
    println!(
        "state:    term {}, vote {}, log [{}, {}] ({} entries)",
        ins.hard_state.term,
        ins.hard_state
            .vote
            .map_or("none".to_string(), |v| v.to_string()),
        ins.first_index,
        ins.last_index,
        ins.last_index + 1 - ins.first_index
    );
    match &ins.snapshot {
        Some((p, len, ok)) => println!(
            "snapshot: {} (index {}, term {}, {} of data, checksum {})",
            p.display(),
            ins.base.index,
            ins.base.term,
            human(*len),
            if *ok { "ok" } else { "BAD" }
        ),
        None => println!("snapshot: none"),
    }
    println!(
        "{:<28} {:>6} {:>12} {:>12} {:>9} {:>11} {:>11}",
        "segment", "seq", "first", "last", "entries", "used", "file"
    );
    for s in &ins.segments {
        let name = s
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "{:<28} {:>6} {:>12} {:>12} {:>9} {:>11} {:>11}",
            name,
            s.seq,
            s.first_index,
            s.last_index.map_or("-".to_string(), |l| l.to_string()),
            s.entries,
            human(s.used_bytes),
            human(s.file_bytes)
        );
    }
    let used: u64 = ins.segments.iter().map(|s| s.used_bytes).sum();
    let file: u64 = ins.segments.iter().map(|s| s.file_bytes).sum();
    println!(
        "total:    {} segments, {} of records in {} of files",
        ins.segments.len(),
        human(used),
        human(file)
    );
    for p in &ins.stale_files {
        println!("stale:    {} (open would remove it)", p.display());
    }
    print_compacted_damage(ins);
    print_finding(&ins.finding);
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (lo, hi) = s
        .split_once("..")
        .ok_or_else(|| format!("range {s:?} is not of the form LO..HI"))?;
    let lo = lo
        .trim()
        .parse()
        .map_err(|e| format!("bad LO in {s:?}: {e}"))?;
    let hi = hi
        .trim()
        .parse()
        .map_err(|e| format!("bad HI in {s:?}: {e}"))?;
    Ok((lo, hi))
}

/// `dir` must be a directory that holds a WAL: a `HEADER`, or at least files a WAL writes
/// (segments, snapshots — then a missing `HEADER` is damage, which inspection reports).
/// Anything else (`/etc`, an empty directory) is not a WAL, and saying "ok" would mislead.
pub(super) fn require_wal(dir: &Path) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if dir.join(raftwal::inspect::HEADER_FILE).exists() {
        return Ok(());
    }
    let names = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned());
    let wal_files = names
        .filter(|n| n.ends_with(".wal") || n.ends_with(".snap"))
        .count();
    if wal_files == 0 {
        return Err(format!(
            "{} holds no raftwal WAL (no HEADER file, no segments)",
            dir.display()
        ));
    }
    Ok(())
}

/// Runs `raftwal inspect`.
pub fn run_inspect(args: InspectArgs) -> CmdResult {
    require_wal(&args.dir)?;
    let ins = inspect(&StdVfs, &args.dir)?;
    print_inspection(&ins);
    if let Some(r) = &args.entries {
        let (lo, hi) = parse_range(r)?;
        let lo = lo.max(ins.first_index);
        let hi = hi.min(ins.last_index + 1);
        for e in raftwal::inspect::read_entries(&StdVfs, &args.dir, lo, hi)? {
            let preview: String = String::from_utf8_lossy(&e.data[..e.data.len().min(48)])
                .chars()
                .map(|c| if c.is_control() { '.' } else { c })
                .collect();
            println!(
                "entry {:>10}  term {:>6}  {:>8} B  {preview}",
                e.index,
                e.term,
                e.data.len()
            );
        }
    }
    Ok(if ins.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs `raftwal verify`: exit 0 if nothing is corrupt, 1 naming file and offset otherwise.
pub fn run_verify(args: VerifyArgs) -> CmdResult {
    require_wal(&args.dir)?;
    let ins = match inspect(&StdVfs, &args.dir) {
        Ok(i) => i,
        Err(e) if e.is_corruption() => {
            println!("CORRUPT: {e}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    let entries: u64 = ins.segments.iter().map(|s| s.entries).sum();
    let bytes: u64 = ins.segments.iter().map(|s| s.used_bytes).sum();
    if let Some((p, _, false)) = &ins.snapshot {
        println!("CORRUPT: snapshot {} fails its checksum", p.display());
        return Ok(ExitCode::from(1));
    }
    match &ins.finding {
        Finding::Corrupt { .. } => {
            print_finding(&ins.finding);
            Ok(ExitCode::from(1))
        }
        other => {
            println!(
                "ok: {} segments, {entries} records ({}) verified; header term {}; log [{}, {}]",
                ins.segments.len(),
                human(bytes),
                ins.hard_state.term,
                ins.first_index,
                ins.last_index
            );
            print_compacted_damage(&ins);
            if let Finding::TornTail { .. } = other {
                print_finding(other);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
