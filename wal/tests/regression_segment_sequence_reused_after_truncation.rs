//! WAL bug (defect 10 of the durability review): after `truncate_suffix` removed the newest
//! segments and the WAL was reopened, the next segment got a sequence number a removed one
//! had had (open derived the next one from the segments left), and often the same first
//! index too: the same identity, under which the removed segment's records verify. The
//! format promises identities unique per segment ever created; every header update now
//! carries the highest sequence used.
//!
//! Found by the torture once it checks, after every call, that no sequence number is ever
//! carried by two segment files (reverting the fix: 188 of seeds 0..200).

use raftwal::{Entry, Options, Wal};

fn opts() -> Options {
    Options::default().with_segment_size(8192)
}

fn entries(lo: u64, hi: u64, term: u64) -> Vec<Entry> {
    (lo..=hi)
        .map(|index| Entry {
            index,
            term,
            data: vec![index as u8; 900],
        })
        .collect()
}

fn seqs(dir: &std::path::Path) -> Vec<(u64, u64)> {
    let i = raftwal::inspect::inspect(&raftwal::io::StdVfs, dir).unwrap();
    i.segments.iter().map(|s| (s.first_index, s.seq)).collect()
}

#[test]
fn a_segment_created_after_a_truncation_and_a_reopen_gets_a_new_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Wal::open(dir.path(), opts()).unwrap();
    for i in 1..=20 {
        w.append_sync(&entries(i, i, 1)).unwrap();
    }
    let before = seqs(dir.path());
    assert!(before.len() >= 4, "{before:?}");
    let highest = before.iter().map(|&(_, s)| s).max().unwrap();
    // Truncate into the second segment: the later ones are removed.
    let from = before[1].0 + 1;
    w.truncate_suffix(from).unwrap();
    drop(w);
    let mut w = Wal::open(dir.path(), opts()).unwrap();
    for i in from..from + 10 {
        w.append_sync(&entries(i, i, 2)).unwrap();
    }
    drop(w);
    let after = seqs(dir.path());
    let new: Vec<_> = after.iter().filter(|(f, _)| *f > before[1].0).collect();
    assert!(!new.is_empty(), "{after:?}");
    for (first, seq) in new {
        assert!(
            *seq > highest,
            "segment {first} has sequence {seq}, not above the highest ever used ({highest}): \
             {before:?} then {after:?}"
        );
    }
}
