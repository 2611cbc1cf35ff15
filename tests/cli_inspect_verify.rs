//! `raftwal inspect` / `raftwal verify` on logs written by the library: clean, torn tail,
//! corruption of synced data, and input that is not a WAL.

use std::path::Path;
use std::process::{Command, Output};

use raftwal::{Entry, HardState, Options, SnapshotMeta, Wal};

fn raftwal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raftwal"))
        .args(args)
        .output()
        .expect("run raftwal")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// 400 entries in batches of 8, each batch synced, across several 8 KiB segments.
fn write_log(dir: &Path) {
    let opts = Options::default().with_segment_size(8192);
    let mut w = Wal::open(dir, opts).unwrap();
    w.set_hard_state(HardState {
        term: 3,
        vote: Some(2),
    })
    .unwrap();
    for chunk in (1..=400u64).collect::<Vec<_>>().chunks(8) {
        let batch: Vec<Entry> = chunk
            .iter()
            .map(|&i| Entry {
                index: i,
                term: 3,
                data: format!("command number {i}").into_bytes(),
            })
            .collect();
        w.append_sync(&batch).unwrap();
    }
    w.save_snapshot(
        SnapshotMeta {
            index: 100,
            term: 3,
        },
        b"image",
    )
    .unwrap();
}

fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

#[test]
fn clean_log_inspects_and_verifies() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path());
    let dir = d.path().to_str().unwrap();
    let o = raftwal(&["inspect", dir, "--entries", "101..104"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("term 3, vote 2"), "{t}");
    assert!(t.contains("log [101, 400]"), "{t}");
    assert!(t.contains("command number 102"), "{t}");
    assert!(t.contains("every record verifies"), "{t}");
    let o = raftwal(&["verify", dir]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).starts_with("ok:"), "{}", text(&o));
}

#[test]
fn corruption_of_synced_data_is_named_with_file_and_offset() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path());
    let segs = segments(d.path());
    // A byte in the middle of the second-to-last segment: synced, with later syncs after it.
    let victim = &segs[segs.len() - 2];
    let mut bytes = std::fs::read(victim).unwrap();
    bytes[4096 + 200] ^= 0x5a;
    std::fs::write(victim, &bytes).unwrap();
    let o = raftwal(&["verify", d.path().to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    let name = victim.file_name().unwrap().to_str().unwrap();
    assert!(t.contains("CORRUPT") && t.contains(name), "{t}");
    // The library refuses to open it too, and inspect changed nothing.
    assert_eq!(std::fs::read(victim).unwrap(), bytes);
    let err = Wal::open(d.path(), Options::default()).unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn a_torn_tail_is_reported_but_is_not_corruption() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path());
    let last = segments(d.path()).pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    // Garbage over the end of the last record and past it: an unsynced write torn by a crash.
    let end = bytes.iter().rposition(|&b| b != 0).unwrap();
    for b in &mut bytes[end - 20..end + 300] {
        *b = 0xa5;
    }
    std::fs::write(&last, &bytes).unwrap();
    let o = raftwal(&["verify", d.path().to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("torn tail"), "{t}");
    // Open cuts it and keeps everything before the torn batch.
    let w = Wal::open(d.path(), Options::default()).unwrap();
    assert_eq!(w.last_index(), 392);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let o = raftwal(&["verify", "/nonexistent/raftwal-dir"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not a directory"), "{}", text(&o));

    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("HEADER"), b"this is not a raftwal header").unwrap();
    let o = raftwal(&["inspect", d.path().to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    let t = text(&o);
    assert!(t.contains("HEADER"), "{t}");
    assert!(!t.contains("panicked"), "{t}");

    let d = tempfile::tempdir().unwrap();
    write_log(d.path());
    // The first live segment emptied (a file that cannot even hold a segment header).
    std::fs::write(&segments(d.path())[0], b"").unwrap();
    let o = raftwal(&["verify", d.path().to_str().unwrap()]);
    let t = text(&o);
    assert_ne!(o.status.code(), Some(0), "{t}");
    assert!(!t.contains("panicked"), "{t}");
}

#[test]
fn a_directory_without_a_wal_is_said_to_hold_none() {
    let empty = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("notes.txt"), b"not a log").unwrap();
    for d in [empty.path(), other.path()] {
        for cmd in ["verify", "inspect"] {
            let o = raftwal(&[cmd, d.to_str().unwrap()]);
            let t = text(&o);
            assert_eq!(o.status.code(), Some(2), "{cmd}: {t}");
            assert!(t.contains("holds no raftwal WAL"), "{cmd}: {t}");
            assert!(!t.contains("ok:"), "{cmd}: {t}");
        }
    }
    // Segments without a HEADER are a damaged WAL, not "no WAL".
    let d = tempfile::tempdir().unwrap();
    write_log(d.path());
    std::fs::remove_file(d.path().join("HEADER")).unwrap();
    let o = raftwal(&["verify", d.path().to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("HEADER is missing"), "{t}");
}
