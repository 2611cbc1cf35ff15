//! `raftwal dump`: the header slots and the entries of a WAL directory, as text or as JSON
//! lines, for operators. Read-only: no lock, no recovery writes, nothing repaired.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use raftwal::inspect::{for_each_entry, inspect, SlotReport};
use raftwal::io::StdVfs;
use raftwal::Entry;

use super::CmdResult;

/// Arguments of `raftwal dump`.
#[derive(clap::Args, Debug)]
#[command(after_help = "JSON lines (--json): first one object per header slot,
  {\"slot\":0,\"status\":\"valid, sequence 7\",\"sequence\":7,\"term\":3,\"vote\":2,\"base_index\":0,\"base_term\":0,\"snapshot\":false}
(sequence..snapshot present only for a valid slot; vote null when none), then one object per entry,
  {\"index\":5,\"term\":3,\"size\":64,\"text\":\"...\"} or {\"index\":5,\"term\":3,\"size\":64,\"hex\":\"0a1b...\"}
with the first 32 payload bytes: as text when they are printable ASCII, else as hex.")]
pub struct Args {
    /// The WAL directory.
    pub dir: PathBuf,
    /// First index to print (default: the log's first).
    #[arg(long)]
    pub from: Option<u64>,
    /// Last index to print, inclusive (default: the log's last).
    #[arg(long)]
    pub to: Option<u64>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Payload bytes shown per entry.
const PREVIEW: usize = 32;

/// Runs `raftwal dump`.
pub fn run(args: Args) -> CmdResult {
    super::inspect::require_wal(&args.dir)?;
    let ins = match inspect(&StdVfs, &args.dir) {
        Ok(i) => i,
        Err(e) if e.is_corruption() => {
            eprintln!("CORRUPT: {e}");
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    for slot in &ins.slots {
        writeln!(out, "{}", slot_line(slot, args.json))?;
    }
    if args.from.is_some_and(|f| f < ins.first_index) {
        eprintln!(
            "entries below {} are compacted (snapshot base {})",
            ins.first_index, ins.base.index
        );
    }
    let lo = args.from.unwrap_or(ins.first_index).max(ins.first_index);
    let hi = args.to.unwrap_or(ins.last_index).min(ins.last_index);
    let mut write_err = None;
    let read = for_each_entry(&StdVfs, &args.dir, lo, hi.saturating_add(1), |e| {
        if let Err(err) = writeln!(out, "{}", entry_line(&e, args.json)) {
            write_err = Some(err);
            return Err(raftwal::Error::Internal {
                reason: "output closed".into(),
            });
        }
        Ok(())
    });
    if let Some(e) = write_err {
        // The reader went away (`| head`): not an error of the WAL.
        return if e.kind() == std::io::ErrorKind::BrokenPipe {
            Ok(ExitCode::SUCCESS)
        } else {
            Err(e.into())
        };
    }
    out.flush()?;
    match read {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.is_corruption() => {
            eprintln!("CORRUPT: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

fn slot_line(s: &SlotReport, json: bool) -> String {
    match (&s.fields, json) {
        (Some((seq, hard, base, snap)), false) => format!(
            "slot {}: sequence {seq}, term {}, vote {}, base ({}, {}), snapshot {}",
            s.slot,
            hard.term,
            hard.vote.map_or("none".into(), |v| v.to_string()),
            base.index,
            base.term,
            if *snap { "yes" } else { "no" }
        ),
        (None, false) => format!("slot {}: {}", s.slot, s.status),
        (Some((seq, hard, base, snap)), true) => format!(
            "{{\"slot\":{},\"status\":{},\"sequence\":{seq},\"term\":{},\"vote\":{},\"base_index\":{},\"base_term\":{},\"snapshot\":{snap}}}",
            s.slot,
            json_string(&s.status),
            hard.term,
            hard.vote.map_or("null".into(), |v| v.to_string()),
            base.index,
            base.term
        ),
        (None, true) => format!(
            "{{\"slot\":{},\"status\":{}}}",
            s.slot,
            json_string(&s.status)
        ),
    }
}

fn entry_line(e: &Entry, json: bool) -> String {
    let head = &e.data[..e.data.len().min(PREVIEW)];
    let printable = head.iter().all(|&b| (0x20..0x7f).contains(&b));
    let preview = if printable {
        String::from_utf8_lossy(head).into_owned()
    } else {
        head.iter().map(|b| format!("{b:02x}")).collect()
    };
    if json {
        let field = if printable { "text" } else { "hex" };
        return format!(
            "{{\"index\":{},\"term\":{},\"size\":{},\"{field}\":{}}}",
            e.index,
            e.term,
            e.data.len(),
            json_string(&preview)
        );
    }
    let more = if e.data.len() > PREVIEW { "…" } else { "" };
    let shown = if printable {
        format!("{preview:?}{more}")
    } else {
        format!("hex {preview}{more}")
    };
    format!(
        "entry {:>10}  term {:>6}  {:>8} B  {shown}",
        e.index,
        e.term,
        e.data.len()
    )
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
