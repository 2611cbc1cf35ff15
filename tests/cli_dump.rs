//! `raftwal dump`: header slots and entries as text and JSON lines, read-only.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use raftwal::{Entry, HardState, Options, Wal};

fn raftwal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raftwal"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// 60 entries over several 8 KiB segments: text commands, and every tenth a binary one.
fn write_log(dir: &Path) {
    let opts = Options::default().with_segment_size(8192);
    let mut w = Wal::open(dir, opts).unwrap();
    w.set_hard_state(HardState {
        term: 4,
        vote: Some(1),
    })
    .unwrap();
    let entries: Vec<Entry> = (1..=60u64)
        .map(|i| Entry {
            index: i,
            term: 4,
            data: if i % 10 == 0 {
                vec![0, 1, 2, 0xff, i as u8]
            } else {
                format!("put k{i} {}", "v".repeat(200)).into_bytes()
            },
        })
        .collect();
    for batch in entries.chunks(7) {
        w.append_sync(batch).unwrap();
    }
}

/// Every file's bytes, by name.
fn snapshot_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

#[test]
fn text_dump_shows_the_slots_and_the_chosen_entries() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path());
    let o = raftwal(&[
        "dump",
        d.path().to_str().unwrap(),
        "--from",
        "9",
        "--to",
        "11",
    ]);
    assert!(o.status.success(), "{o:?}");
    let t = stdout(&o);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 2 + 3, "{t}");
    assert!(
        lines[0].starts_with("slot 0:") && lines[1].starts_with("slot 1:"),
        "{t}"
    );
    assert!(t.contains("term 4, vote 1"), "{t}");
    assert!(
        lines[2].contains("entry          9") && lines[2].contains("\"put k9 vvv"),
        "{t}"
    );
    assert!(lines[3].contains("hex 000102ff0a"), "{t}");
    assert!(lines[4].contains("entry         11"), "{t}");
}

#[test]
fn json_dump_is_one_object_per_line() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path());
    let o = raftwal(&["dump", d.path().to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{o:?}");
    let t = stdout(&o);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 2 + 60, "{t}");
    assert!(lines[0].starts_with("{\"slot\":0,"), "{}", lines[0]);
    assert!(lines.iter().all(|l| l.starts_with('{') && l.ends_with('}')));
    assert!(
        lines[2].starts_with("{\"index\":1,\"term\":4,\"size\":207,\"text\":\"put k1 vvv"),
        "{}",
        lines[2]
    );
    assert_eq!(
        lines[11],
        "{\"index\":10,\"term\":4,\"size\":5,\"hex\":\"000102ff0a\"}"
    );
}

#[test]
fn dump_changes_nothing_in_the_directory() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path());
    // Damage in the last sync group, which open would cut as a torn tail: dump must leave it.
    let seg = snapshot_of(d.path())
        .into_keys()
        .rfind(|n| n.ends_with(".wal"))
        .unwrap();
    let path = d.path().join(&seg);
    let mut bytes = std::fs::read(&path).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    bytes[end - 16..end].fill(0xab);
    std::fs::write(&path, &bytes).unwrap();
    let before = snapshot_of(d.path());
    let o = raftwal(&["dump", d.path().to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(snapshot_of(d.path()), before, "dump wrote to the directory");
}

#[test]
fn garbage_and_empty_directories_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let o = raftwal(&["dump", d.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no raftwal WAL"));
    std::fs::write(d.path().join("HEADER"), vec![0x5a; 8192]).unwrap();
    std::fs::write(d.path().join("00000000000000000001.wal"), vec![0xff; 20000]).unwrap();
    let o = raftwal(&["dump", d.path().to_str().unwrap(), "--json"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    assert!(e.contains("HEADER"), "{e}");
}
