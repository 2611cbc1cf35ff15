//! One storage suite, run over [`RaftWalStorage`] and over raft-rs's own `MemStorage`.
//!
//! raft-rs ships no storage suite; its `MemStorage` unit tests check term lookups, entry
//! reads with and without a size limit, first and last index, compaction, snapshot
//! creation and installation, and appends over a conflicting suffix. Each case below
//! checks the same things through [`Store`] — `raft::Storage` for every read, and the
//! write operations both stores have — with one set of expected values for both stores;
//! the one place they differ on purpose is spelled out in its case
//! (`snapshot_newer_than_the_stored_one`). Each case then runs its reads again after
//! reopening the adapter from disk (`Store::reopen`; `MemStorage` has no disk).
//!
//! raft-rs's cases build `MemStorage` by assigning its entry vector directly (a log that
//! starts at index 3 with no snapshot behind it); here both stores are built through their
//! public API: a snapshot at (2, 2), then entries 3.. with term = index.

use raft::eraftpb::{ConfState, Entry, Snapshot};
use raft::storage::MemStorage;
use raft::{GetEntriesContext, RaftState, Storage, StorageError, NO_LIMIT};
use raftwal_raft_rs::{RaftWalStorage, StorageOptions};

/// What the suite does to a store besides reading it through `raft::Storage`.
trait Store: Storage + Sized {
    const NAME: &'static str;
    fn new() -> Self;
    fn append(&mut self, ents: &[Entry]) -> Result<(), String>;
    fn compact(&mut self, index: u64) -> Result<(), String>;
    fn apply_snapshot(&mut self, snap: Snapshot) -> Result<(), String>;
    fn set_conf_state(&mut self, cs: ConfState);
    /// Makes the snapshot `Storage::snapshot` serves: the state at `commit`.
    fn snapshot_at(&mut self, commit: u64);
    /// The same store after a restart.
    fn reopen(self) -> Self;
}

impl Store for MemStorage {
    const NAME: &'static str = "MemStorage";
    fn new() -> Self {
        MemStorage::new()
    }
    // MemStorage panics (documented) where the adapter returns an error; the panic would
    // poison its lock, so its preconditions are checked here and reported as a refusal.
    fn append(&mut self, ents: &[Entry]) -> Result<(), String> {
        if let Some(first) = ents.first() {
            let (lo, hi) = (self.first_index().unwrap(), self.last_index().unwrap());
            if first.index < lo || first.index > hi + 1 {
                return Err(format!(
                    "MemStorage panics: append at {} to {lo}..={hi}",
                    first.index
                ));
            }
        }
        self.wl().append(ents).map_err(|e| e.to_string())
    }
    fn compact(&mut self, index: u64) -> Result<(), String> {
        if index > self.last_index().unwrap() + 1 {
            return Err(format!("MemStorage panics: compact({index})"));
        }
        self.wl().compact(index).map_err(|e| e.to_string())
    }
    fn apply_snapshot(&mut self, snap: Snapshot) -> Result<(), String> {
        self.wl().apply_snapshot(snap).map_err(|e| e.to_string())
    }
    fn set_conf_state(&mut self, cs: ConfState) {
        self.wl().set_conf_state(cs);
    }
    fn snapshot_at(&mut self, commit: u64) {
        self.wl().commit_to(commit).unwrap();
    }
    fn reopen(self) -> Self {
        self
    }
}

/// The adapter on a temporary directory.
struct Wal {
    store: RaftWalStorage,
    dir: tempfile::TempDir,
}

fn open(dir: &std::path::Path) -> RaftWalStorage {
    // Small segments: a default one preallocates and zero-fills 64 MiB per store.
    let wal = raftwal::Options::default().with_segment_size(1 << 20);
    RaftWalStorage::open(dir, StorageOptions::default().with_wal(wal)).unwrap()
}

impl Store for Wal {
    const NAME: &'static str = "RaftWalStorage";
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Wal {
            store: open(dir.path()),
            dir,
        }
    }
    fn append(&mut self, ents: &[Entry]) -> Result<(), String> {
        self.store.append(ents).map_err(|e| e.to_string())?;
        self.store.sync().map_err(|e| e.to_string())
    }
    fn compact(&mut self, index: u64) -> Result<(), String> {
        self.store.compact(index).map_err(|e| e.to_string())
    }
    fn apply_snapshot(&mut self, snap: Snapshot) -> Result<(), String> {
        self.store.apply_snapshot(&snap).map_err(|e| e.to_string())
    }
    fn set_conf_state(&mut self, cs: ConfState) {
        self.store.set_conf_state(cs).unwrap();
    }
    fn snapshot_at(&mut self, commit: u64) {
        let mut hs = self.store.hard_state().clone();
        hs.commit = commit;
        self.store.set_hard_state(&hs).unwrap();
        self.store.create_snapshot(commit, Vec::new()).unwrap();
    }
    fn reopen(self) -> Self {
        let Wal { store, dir } = self;
        drop(store);
        Wal {
            store: open(dir.path()),
            dir,
        }
    }
}

impl Storage for Wal {
    fn initial_state(&self) -> raft::Result<RaftState> {
        self.store.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        self.store.entries(low, high, max_size, context)
    }
    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.store.term(idx)
    }
    fn first_index(&self) -> raft::Result<u64> {
        self.store.first_index()
    }
    fn last_index(&self) -> raft::Result<u64> {
        self.store.last_index()
    }
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        self.store.snapshot(request_index, to)
    }
}

// ----- fixtures ---------------------------------------------------------------------------

/// Entry `index` of term `term`, with a payload whose size varies with the index (so the
/// size limits cut between entries of different sizes).
fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        data: vec![index as u8; (index as usize * 37) % 90].into(),
        ..Entry::default()
    }
}

fn size(e: &Entry) -> u64 {
    u64::from(protobuf::Message::compute_size(e))
}

fn snap(index: u64, term: u64, voters: &[u64]) -> Snapshot {
    let mut s = Snapshot::default();
    let m = s.mut_metadata();
    m.index = index;
    m.term = term;
    m.set_conf_state(ConfState::from((voters.to_vec(), Vec::new())));
    s
}

/// A store holding a snapshot at (2, 2) and then entries `3..=last`, term = index.
fn store<S: Store>(last: u64) -> S {
    let mut s = S::new();
    s.apply_snapshot(snap(2, 2, &[1, 2, 3])).unwrap();
    let ents: Vec<Entry> = (3..=last).map(|i| entry(i, i)).collect();
    s.append(&ents).unwrap();
    s
}

fn compacted<T: std::fmt::Debug>(r: raft::Result<T>) -> bool {
    matches!(r, Err(raft::Error::Store(StorageError::Compacted)))
}

fn unavailable<T: std::fmt::Debug>(r: raft::Result<T>) -> bool {
    matches!(r, Err(raft::Error::Store(StorageError::Unavailable)))
}

fn all<S: Store>(s: &S) -> Vec<Entry> {
    let (first, last) = (s.first_index().unwrap(), s.last_index().unwrap());
    s.entries(first, last + 1, NO_LIMIT, GetEntriesContext::empty(false))
        .unwrap()
}

/// Runs `check` on the store, then again after a reopen.
fn twice<S: Store>(s: S, check: impl Fn(&S)) -> S {
    check(&s);
    let s = s.reopen();
    check(&s);
    s
}

// ----- the cases --------------------------------------------------------------------------

fn term<S: Store>() {
    twice(store::<S>(5), |s| {
        assert!(compacted(s.term(1)), "{}", S::NAME);
        assert_eq!(s.term(2).unwrap(), 2, "{}: the snapshot's term", S::NAME);
        for i in 3..=5 {
            assert_eq!(s.term(i).unwrap(), i, "{}", S::NAME);
        }
        assert!(unavailable(s.term(6)), "{}", S::NAME);
    });
}

fn entries_with_size_limits<S: Store>() {
    twice(store::<S>(6), |s| {
        let ctx = || GetEntriesContext::empty(false);
        let e: Vec<Entry> = (3..=6).map(|i| entry(i, i)).collect();
        let (s4, s5, s6) = (size(&e[1]), size(&e[2]), size(&e[3]));
        assert!(compacted(s.entries(2, 6, NO_LIMIT, ctx())), "{}", S::NAME);
        let cases: Vec<(u64, u64, u64, &[Entry])> = vec![
            (3, 4, NO_LIMIT, &e[0..1]),
            (4, 5, NO_LIMIT, &e[1..2]),
            (4, 6, NO_LIMIT, &e[1..3]),
            (4, 7, NO_LIMIT, &e[1..4]),
            // Even with no room, the first entry.
            (4, 7, 0, &e[1..2]),
            (4, 7, s4 + s5, &e[1..3]),
            (4, 7, s4 + s5 + s6 / 2, &e[1..3]),
            (4, 7, s4 + s5 + s6 - 1, &e[1..3]),
            (4, 7, s4 + s5 + s6, &e[1..4]),
            (5, 5, NO_LIMIT, &[]),
        ];
        for (lo, hi, max, want) in cases {
            let got = s.entries(lo, hi, max, ctx()).unwrap();
            assert_eq!(got, want, "{}: entries({lo}, {hi}, {max})", S::NAME);
        }
        // `None` is no limit too.
        assert_eq!(s.entries(3, 7, None, ctx()).unwrap(), e, "{}", S::NAME);
    });
}

fn last_index<S: Store>() {
    let mut s = twice(store::<S>(5), |s| {
        assert_eq!(s.last_index().unwrap(), 5, "{}", S::NAME);
    });
    s.append(&[entry(6, 5)]).unwrap();
    twice(s, |s| assert_eq!(s.last_index().unwrap(), 6, "{}", S::NAME));
}

fn first_index<S: Store>() {
    let mut s = twice(store::<S>(5), |s| {
        assert_eq!(s.first_index().unwrap(), 3, "{}", S::NAME);
    });
    s.compact(4).unwrap();
    twice(s, |s| {
        assert_eq!(s.first_index().unwrap(), 4, "{}", S::NAME)
    });
}

fn compaction<S: Store>() {
    // (compact index, first index after, its term, entries left)
    for (idx, first, term, len) in [(2, 3, 3, 3), (3, 3, 3, 3), (4, 4, 4, 2), (5, 5, 5, 1)] {
        let mut s = store::<S>(5);
        s.compact(idx).unwrap();
        twice(s, |s| {
            let what = format!("{}: compact({idx})", S::NAME);
            assert_eq!(s.first_index().unwrap(), first, "{what}");
            assert_eq!(s.term(first).unwrap(), term, "{what}");
            assert_eq!(all(s).len(), len, "{what}");
            assert!(compacted(s.term(1)), "{what}");
        });
    }
    // Past the last index + 1: refused (MemStorage panics).
    let mut s = store::<S>(5);
    assert!(s.compact(7).is_err(), "{}", S::NAME);
    // (Compacting every entry is left out: `MemStorage` then reports its first index as
    // its last snapshot's + 1 again. The adapter's case is in `tests/ready.rs`.)
    let _ = s;
}

fn snapshot_creation<S: Store>() {
    let voters = [1, 2, 3];
    for (commit, request) in [(4, 0), (5, 5), (4, 3)] {
        let mut s = store::<S>(5);
        s.set_conf_state(ConfState::from((voters.to_vec(), Vec::new())));
        s.snapshot_at(commit);
        twice(s, |s| {
            let got = s.snapshot(request, 0).unwrap();
            assert_eq!(
                got,
                snap(commit, commit, &voters),
                "{}: at {commit}",
                S::NAME
            );
        });
    }
}

/// The one divergence: asked for a snapshot newer than the one it can make, `MemStorage`
/// returns its snapshot with the index raised to the one asked for (a test double's
/// shortcut: that index's term and data are not what it holds); the adapter answers
/// `SnapshotTemporarilyUnavailable`, as raft-rs's contract has a storage that is still
/// preparing one do ("A snapshot's index must not less than the request_index").
fn snapshot_newer_than_the_stored_one<S: Store>(mem: bool) {
    let mut s = store::<S>(5);
    s.set_conf_state(ConfState::from((vec![1, 2, 3], Vec::new())));
    s.snapshot_at(5);
    twice(s, |s| {
        let got = s.snapshot(6, 0);
        if mem {
            assert_eq!(got.unwrap().get_metadata().index, 6, "{}", S::NAME);
        } else {
            assert!(
                matches!(
                    got,
                    Err(raft::Error::Store(
                        StorageError::SnapshotTemporarilyUnavailable
                    ))
                ),
                "{}: {got:?}",
                S::NAME
            );
        }
    });
}

fn append_with_conflicts<S: Store>() {
    let e = entry;
    let cases: Vec<(Vec<Entry>, Option<Vec<Entry>>)> = vec![
        (
            vec![e(3, 3), e(4, 4), e(5, 5)],
            Some(vec![e(3, 3), e(4, 4), e(5, 5)]),
        ),
        (
            vec![e(3, 3), e(4, 6), e(5, 6)],
            Some(vec![e(3, 3), e(4, 6), e(5, 6)]),
        ),
        (
            vec![e(3, 3), e(4, 4), e(5, 5), e(6, 5)],
            Some(vec![e(3, 3), e(4, 4), e(5, 5), e(6, 5)]),
        ),
        // Overwriting compacted entries is refused.
        (vec![e(2, 3), e(3, 3), e(4, 5)], None),
        // A conflicting suffix truncated, then the append.
        (vec![e(4, 5)], Some(vec![e(3, 3), e(4, 5)])),
        // A plain append.
        (
            vec![e(6, 6)],
            Some(vec![e(3, 3), e(4, 4), e(5, 5), e(6, 6)]),
        ),
        // A gap is refused.
        (vec![e(7, 6)], None),
    ];
    for (i, (ents, want)) in cases.into_iter().enumerate() {
        let mut s = store::<S>(5);
        let r = s.append(&ents);
        match want {
            Some(want) => {
                r.unwrap();
                twice(s, |s| assert_eq!(all(s), want, "{} #{i}", S::NAME));
            }
            None => {
                assert!(r.is_err(), "{} #{i}", S::NAME);
                twice(s, |s| assert_eq!(all(s).len(), 3, "{} #{i}", S::NAME));
            }
        }
    }
}

fn snapshot_application<S: Store>() {
    let mut s = S::new();
    s.apply_snapshot(snap(4, 4, &[1, 2, 3])).unwrap();
    let mut s = twice(s, |s| {
        let st = s.initial_state().unwrap();
        assert_eq!(st.hard_state.commit, 4, "{}", S::NAME);
        assert_eq!(st.hard_state.term, 4, "{}", S::NAME);
        assert_eq!(st.conf_state.voters, vec![1, 2, 3], "{}", S::NAME);
        assert_eq!(s.first_index().unwrap(), 5, "{}", S::NAME);
        assert_eq!(s.last_index().unwrap(), 4, "{}", S::NAME);
        assert_eq!(s.term(4).unwrap(), 4, "{}", S::NAME);
    });
    // Older than the log: refused (`SnapshotOutOfDate`).
    assert!(
        s.apply_snapshot(snap(3, 3, &[1, 2, 3])).is_err(),
        "{}",
        S::NAME
    );
    // One inside the log with a matching term keeps the entries after it... in the
    // adapter; MemStorage clears its entries at every snapshot: compare the shared part.
    s.append(&[entry(5, 4), entry(6, 4)]).unwrap();
    s.apply_snapshot(snap(6, 4, &[1, 2])).unwrap();
    twice(s, |s| {
        let st = s.initial_state().unwrap();
        assert_eq!(st.hard_state.commit, 6, "{}", S::NAME);
        assert_eq!(st.conf_state.voters, vec![1, 2], "{}", S::NAME);
        assert_eq!(s.first_index().unwrap(), 7, "{}", S::NAME);
        assert_eq!(s.last_index().unwrap(), 6, "{}", S::NAME);
    });
}

fn initial_state<S: Store>() {
    twice(S::new(), |s| {
        let st = s.initial_state().unwrap();
        assert!(!st.initialized(), "{}", S::NAME);
        assert_eq!(st.hard_state, Default::default(), "{}", S::NAME);
        assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (1, 0));
    });
    let mut s = S::new();
    s.set_conf_state(ConfState::from((vec![1, 2, 3], vec![4])));
    twice(s, |s| {
        let st = s.initial_state().unwrap();
        assert!(st.initialized(), "{}", S::NAME);
        assert_eq!(st.conf_state.learners, vec![4], "{}", S::NAME);
    });
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                super::$case::<MemStorage>();
                super::$case::<Wal>();
            }
        )*
    };
}

mod both {
    use super::{MemStorage, Wal};
    suite!(
        term,
        entries_with_size_limits,
        last_index,
        first_index,
        compaction,
        snapshot_creation,
        append_with_conflicts,
        snapshot_application,
        initial_state,
    );

    #[test]
    fn snapshot_newer_than_the_stored_one() {
        super::snapshot_newer_than_the_stored_one::<MemStorage>(true);
        super::snapshot_newer_than_the_stored_one::<Wal>(false);
    }
}
