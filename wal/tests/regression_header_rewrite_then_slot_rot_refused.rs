//! Regression: open rewrites the HEADER whole when a slot is unreadable (and for a format-2
//! header), giving the two slots consecutive sequence numbers over the same state. Records
//! appended afterwards carry the newer one, so bit rot in the newer slot made the next open
//! refuse with `HeaderRolledBack` — although the older slot held exactly the same state.
//! Found by reading the code against docs/FORMAT.md; the torture now rots a slot after such
//! a rewrite (`rot_a_slot_of_a_rewritten_header`).

mod common;

use common::sim::{dir, entries, opts};
use raftwal::{HardState, Wal};
use raftwal_fault::{Fault, SimFs};

#[test]
fn rot_in_either_slot_after_a_rewrite_at_open_loses_nothing() {
    for rotten in [0u64, 4096] {
        let fs = SimFs::new(rotten);
        fs.mkdir_durable(dir());
        let mut w = Wal::open_with(fs.clone(), dir(), opts(8192)).unwrap();
        let hs = HardState {
            term: 3,
            vote: Some(2),
        };
        w.set_hard_state(hs).unwrap();
        w.append_sync(&entries(1, 5, 3, 100)).unwrap();
        drop(w);
        // A latent sector error in the older slot (slot 1; the term change wrote slot 0):
        // open reads it as damaged and rewrites the file.
        fs.inject(Fault::ReadEio {
            path: "HEADER".into(),
            offset: 4096,
            len: 512,
        });
        let mut w = Wal::open_with(fs.clone(), dir(), opts(8192)).unwrap();
        fs.clear_faults();
        w.append_sync(&entries(6, 8, 3, 100)).unwrap();
        drop(w);
        fs.crash(1);
        fs.flip_bit(&dir().join("HEADER"), rotten + 40, 3).unwrap();
        let w = Wal::open_with(fs, dir(), opts(8192))
            .unwrap_or_else(|e| panic!("rot in the slot at {rotten}: {e}"));
        assert_eq!(w.hard_state(), hs);
        assert_eq!(w.last_index(), 8);
        assert_eq!(w.entry(8).unwrap(), entries(8, 8, 3, 100)[0]);
    }
}
