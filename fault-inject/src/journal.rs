//! The operation journal of the real-disk torture: how a child process tells its parent what
//! the WAL acknowledged, in a way that survives SIGKILL.
//!
//! Before each WAL call the child appends `> <op>` and fsyncs; after the call returns `Ok`
//! it appends `< ok` and fsyncs. Replaying the journal on the [`Model`] gives exactly what
//! was acknowledged (completed calls) and the call in flight (an intent without completion).
//! A line cut by the kill has no newline and is ignored: its call never started, or (for a
//! completion) stays in flight, which only widens what the checker allows for that call.
//!
//! Line grammar (payloads in lowercase hex):
//! ```text
//! > append <index>:<term>:<hex>[,<index>:<term>:<hex>...]
//! > sync | > hard <term> <vote|-> | > trunc <from> | > compact <index>
//! > snap <index> <term> <hex>
//! < ok
//! ```

use std::fmt::Write as _;

use raftwal::{Entry, HardState, SnapshotMeta};

use crate::model::{Model, Op};

/// The journal line announcing `op` (without the newline).
pub fn intent_line(op: &Op) -> String {
    let mut s = String::from("> ");
    match op {
        Op::Open => s.push_str("open"),
        Op::Append(es) => {
            s.push_str("append ");
            push_entries(&mut s, es);
        }
        Op::Sync => s.push_str("sync"),
        Op::SetHardState(hs) => {
            let _ = write!(s, "hard {} ", hs.term);
            match hs.vote {
                Some(v) => {
                    let _ = write!(s, "{v}");
                }
                None => s.push('-'),
            }
        }
        Op::TruncateSuffix(from) => {
            let _ = write!(s, "trunc {from}");
        }
        Op::Compact(i) => {
            let _ = write!(s, "compact {i}");
        }
        Op::SaveSnapshot(m, d) => {
            let _ = write!(s, "snap {} {} {}", m.index, m.term, hex(d));
        }
        Op::SetAppMeta(b) => {
            let _ = write!(s, "app {}", hex(b));
        }
        Op::CompactTo(m) => {
            let _ = write!(s, "compact_to {} {}", m.index, m.term);
        }
        Op::PipelinedSync(bs) => {
            s.push_str("psync");
            for b in bs {
                s.push(' ');
                push_entries(&mut s, b);
            }
        }
    }
    s
}

/// Entries as `index:term:hex` items separated by commas.
fn push_entries(s: &mut String, es: &[Entry]) {
    for (k, e) in es.iter().enumerate() {
        if k > 0 {
            s.push(',');
        }
        let _ = write!(s, "{}:{}:{}", e.index, e.term, hex(&e.data));
    }
}

/// Parses `index:term:hex` items separated by commas.
fn parse_entries(list: &str) -> Option<Vec<Entry>> {
    let num = |w: Option<&str>| w.and_then(|w| w.parse::<u64>().ok());
    let mut es = Vec::new();
    for item in list.split(',') {
        let mut parts = item.split(':');
        let index = num(parts.next())?;
        let term = num(parts.next())?;
        let data = unhex(parts.next()?)?;
        es.push(Entry { index, term, data });
    }
    Some(es)
}

/// The journal line recording that the call announced last returned `Ok`.
pub const DONE_LINE: &str = "< ok";

/// Parses an intent line (without the leading `"> "` check failing loudly: `None` if it is not
/// one).
pub fn parse_intent(line: &str) -> Option<Op> {
    let rest = line.strip_prefix("> ")?;
    let mut words = rest.split(' ');
    let kind = words.next()?;
    let num = |w: Option<&str>| w.and_then(|w| w.parse::<u64>().ok());
    Some(match kind {
        "open" => Op::Open,
        "append" => Op::Append(parse_entries(words.next()?)?),
        "psync" => Op::PipelinedSync(words.map(parse_entries).collect::<Option<_>>()?),
        "sync" => Op::Sync,
        "hard" => {
            let term = num(words.next())?;
            let vote = match words.next()? {
                "-" => None,
                v => Some(v.parse().ok()?),
            };
            Op::SetHardState(HardState { term, vote })
        }
        "trunc" => Op::TruncateSuffix(num(words.next())?),
        "compact" => Op::Compact(num(words.next())?),
        "app" => Op::SetAppMeta(unhex(words.next().unwrap_or(""))?),
        "compact_to" => {
            let index = num(words.next())?;
            let term = num(words.next())?;
            Op::CompactTo(SnapshotMeta { index, term })
        }
        "snap" => {
            let index = num(words.next())?;
            let term = num(words.next())?;
            let data = unhex(words.next().unwrap_or(""))?;
            Op::SaveSnapshot(SnapshotMeta { index, term }, data)
        }
        _ => return None,
    })
}

/// Replays a journal onto `model`: completed calls are acknowledged, an announced call with
/// no completion stays in flight. Only complete (newline-terminated) lines count. Returns the
/// number of calls acknowledged, or the first line that does not parse.
pub fn replay(model: &mut Model, journal: &str) -> Result<u64, String> {
    let complete = match journal.rfind('\n') {
        Some(end) => &journal[..end],
        None => "",
    };
    let mut acked = 0;
    let mut pending: Option<Op> = None;
    for (n, line) in complete.lines().enumerate() {
        if line == DONE_LINE {
            let Some(op) = pending.take() else {
                return Err(format!("line {}: completion without an intent", n + 1));
            };
            model.complete(&op);
            acked += 1;
        } else {
            let op = parse_intent(line)
                .ok_or_else(|| format!("line {}: cannot parse {line:?}", n + 1))?;
            model.begin(&op);
            pending = Some(op);
        }
    }
    Ok(acked)
}

fn hex(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_round_trips() {
        let ops = [
            Op::Append(vec![
                Entry {
                    index: 4,
                    term: 2,
                    data: vec![0, 255, 16],
                },
                Entry {
                    index: 5,
                    term: 2,
                    data: vec![],
                },
            ]),
            Op::Sync,
            Op::SetHardState(HardState {
                term: 3,
                vote: None,
            }),
            Op::SetHardState(HardState {
                term: 3,
                vote: Some(2),
            }),
            Op::TruncateSuffix(7),
            Op::Compact(2),
            Op::SaveSnapshot(SnapshotMeta { index: 2, term: 1 }, b"s".to_vec()),
            Op::SaveSnapshot(SnapshotMeta { index: 2, term: 1 }, vec![]),
            Op::SetAppMeta(b"vote 3/2".to_vec()),
            Op::SetAppMeta(vec![]),
            Op::CompactTo(SnapshotMeta { index: 9, term: 4 }),
            Op::PipelinedSync(vec![
                vec![Entry {
                    index: 3,
                    term: 2,
                    data: b"a".to_vec(),
                }],
                vec![Entry {
                    index: 4,
                    term: 2,
                    data: vec![],
                }],
            ]),
        ];
        for op in ops {
            assert_eq!(parse_intent(&intent_line(&op)), Some(op));
        }
    }

    #[test]
    fn replay_acknowledges_completed_calls_and_keeps_the_last_in_flight() {
        let append = Op::Append(vec![Entry {
            index: 1,
            term: 1,
            data: b"a".to_vec(),
        }]);
        let journal = format!(
            "{}\n{DONE_LINE}\n{}\n{DONE_LINE}\n{}\n< o",
            intent_line(&append),
            intent_line(&Op::Sync),
            intent_line(&Op::TruncateSuffix(1))
        );
        let mut m = Model::default();
        assert_eq!(replay(&mut m, &journal), Ok(2));
        assert_eq!(m.acked_last, 1);
        assert_eq!(m.in_flight, Some(Op::TruncateSuffix(1)));
        assert!(replay(&mut Model::default(), "garbage\n").is_err());
    }
}
