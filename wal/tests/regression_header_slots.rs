//! WAL bugs in the HEADER (defects 4 and 5 of the durability review, and the slot choice):
//!
//! - One unreadable HEADER sector failed open although the other slot was valid: both slots
//!   were read with one `read_at`. Found by the torture's latent-sector-error probe once it
//!   also aims at the HEADER (reverting the fix: the probe fails in most seeds).
//! - Both slots shared one 4 KiB page: a device that writes a page back whole and tears it
//!   (no powersafe overwrite) destroyed both slots in crashes during `set_hard_state`, and
//!   open refused. Found by the explorer's shorn page writeback of term/vote updates
//!   (`header_updates_survive_shorn_page_writes`).
//! - The slot to overwrite was chosen by sequence parity; it must be the one that is not
//!   current.

mod common;

use common::sim::dir;
use raftwal::{Entry, Error, HardState, Options, Wal};
use raftwal_fault::{CrashMode, Fault, Overwrite, SimFs, Writeback};

fn opts() -> Options {
    common::sim::opts(16 << 10)
}

fn hs(term: u64, vote: Option<u64>) -> HardState {
    HardState { term, vote }
}

/// A WAL whose last `set_hard_state` went to `slot`, with entries before it.
fn wal_with_last_update_in(slot: u64) -> (SimFs, HardState) {
    let fs = SimFs::new(3);
    fs.mkdir_durable(dir());
    let mut w = Wal::open_with(fs.clone(), dir(), opts()).unwrap();
    w.append_sync(&[Entry {
        index: 1,
        term: 1,
        data: b"one".to_vec(),
    }])
    .unwrap();
    let mut last = hs(1, None);
    for t in 2..12 {
        last = hs(t, Some(t % 3));
        w.set_hard_state(last).unwrap();
        let current = slot_of_newest(&fs);
        if current == slot {
            break;
        }
    }
    drop(w);
    fs.crash_with(CrashMode::LoseAll, 0);
    (fs, last)
}

/// Which slot (0 or 1) holds the highest sequence, read from the durable bytes.
fn slot_of_newest(fs: &SimFs) -> u64 {
    let b = fs.contents(&dir().join("HEADER")).unwrap();
    let seq = |at: usize| u64::from_le_bytes(b[at + 16..at + 24].try_into().unwrap());
    if seq(0) > seq(4096) {
        0
    } else {
        1
    }
}

fn unreadable_slot(fs: &SimFs, slot: u64) {
    fs.inject(Fault::ReadEio {
        path: "HEADER".into(),
        offset: slot * 4096,
        len: 512,
    });
}

#[test]
fn an_unreadable_older_slot_is_a_damaged_slot_and_the_header_moves_to_new_blocks() {
    for newest in [0, 1] {
        let (fs, last) = wal_with_last_update_in(newest);
        // The open itself updates the header: the older slot of the file on disk.
        unreadable_slot(&fs, 1 - newest);
        let mut w = Wal::open_with(fs.clone(), dir(), opts())
            .unwrap_or_else(|e| panic!("open with slot {} unreadable: {e}", 1 - newest));
        assert_eq!(w.hard_state(), last);
        // The header was rewritten into a new file: its blocks read fine, every update
        // lands, and the state survives a power cut.
        w.set_hard_state(hs(50, Some(1))).unwrap();
        drop(w);
        fs.crash_with(CrashMode::LoseAll, 0);
        let w = Wal::open_with(fs.clone(), dir(), opts()).unwrap();
        assert_eq!(w.hard_state(), hs(50, Some(1)));
    }
}

#[test]
fn an_unreadable_newest_slot_with_a_later_record_is_refused_not_rolled_back() {
    let (fs, _) = wal_with_last_update_in(1);
    // Open writes its state into both slots; a vote then updates one. A record appended
    // after that update carries its sequence.
    let mut w = Wal::open_with(fs.clone(), dir(), opts()).unwrap();
    w.set_hard_state(hs(40, Some(2))).unwrap();
    w.append_sync(&[Entry {
        index: 2,
        term: 5,
        data: b"two".to_vec(),
    }])
    .unwrap();
    drop(w);
    fs.crash_with(CrashMode::LoseAll, 0);
    let newest = slot_of_newest(&fs);
    unreadable_slot(&fs, newest);
    match Wal::open_with(fs.clone(), dir(), opts()) {
        Err(Error::HeaderRolledBack { slot, .. }) => assert_eq!(u64::from(slot), newest),
        other => panic!("expected a refused rollback, got {other:?}"),
    }
}

#[test]
fn term_and_vote_updates_never_lose_both_slots_to_a_shorn_page_write() {
    let fs = SimFs::new(9);
    fs.mkdir_durable(dir());
    fs.set_writeback(Writeback::Pages { page: 4096 });
    fs.set_overwrite(Overwrite::Shorn);
    let mut acked = hs(0, None);
    for round in 0..200u64 {
        let mut w = Wal::open_with(fs.clone(), dir(), opts())
            .unwrap_or_else(|e| panic!("round {round}: open after a shorn header write: {e}"));
        assert!(
            w.hard_state() == acked || w.hard_state().term == acked.term + 1,
            "round {round}: {:?} after {acked:?}",
            w.hard_state()
        );
        acked = w.hard_state();
        // An update cut by a power failure between its slot write and its fdatasync: the
        // slot's page is written back torn (recorded, then cut at the write).
        fs.start_recording();
        let next = hs(acked.term + 1, Some(round % 3));
        w.set_hard_state(next).unwrap();
        let cps = fs.take_recording();
        drop(w);
        let at_write = cps
            .iter()
            .rev()
            .find(|c| c.what.starts_with("write") && c.what.contains("HEADER"))
            .expect("a header write");
        let crashed = at_write.to_fs();
        crashed.crash(round);
        let w = Wal::open_with(crashed, dir(), opts())
            .unwrap_or_else(|e| panic!("round {round}: both header slots lost: {e}"));
        assert!(w.hard_state() == acked || w.hard_state() == next);
        drop(w);
        // The machine that did not crash goes on with the update acknowledged.
        acked = next;
    }
}
