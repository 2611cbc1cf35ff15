//! The shared storage suite over both stores (and the WAL over a power-loss disk).

use std::path::Path;

use raftwal::Wal;
use raftwal_fault::SimFs;
use raftwal_raft::sim::{sim_wal_options, WAL_DIR};
use raftwal_raft::suite::{self, Harness};
use raftwal_raft::{MemStorage, WalStorage};

struct Mem;

impl Harness for Mem {
    type S = MemStorage;
    fn create(&mut self) -> MemStorage {
        MemStorage::new()
    }
    fn reopen(&mut self, store: MemStorage) -> MemStorage {
        store.clone()
    }
}

/// The WAL on a simulated disk; `crash` reopens after a power cut instead of a clean stop
/// (everything the suite wrote was synced, so it must all survive).
struct WalOnSimFs {
    fs: Option<SimFs>,
    seed: u64,
    crash: bool,
}

impl Harness for WalOnSimFs {
    type S = WalStorage<SimFs>;
    fn create(&mut self) -> Self::S {
        self.seed += 1;
        let fs = SimFs::new(self.seed);
        self.fs = Some(fs.clone());
        WalStorage::new(
            Wal::open_with(fs, Path::new(WAL_DIR), sim_wal_options()).expect("open a fresh WAL"),
        )
    }
    fn reopen(&mut self, store: Self::S) -> Self::S {
        drop(store);
        let fs = self.fs.clone().expect("created first");
        if self.crash {
            fs.crash(self.seed);
        }
        WalStorage::new(
            Wal::open_with(fs, Path::new(WAL_DIR), sim_wal_options()).expect("reopen the WAL"),
        )
    }
}

struct WalOnDisk {
    dirs: Vec<tempfile::TempDir>,
}

impl Harness for WalOnDisk {
    type S = WalStorage<raftwal::io::StdVfs>;
    fn create(&mut self) -> Self::S {
        let d = tempfile::tempdir().expect("tempdir");
        let wal = Wal::open(d.path(), raftwal::Options::default()).expect("open");
        self.dirs.push(d);
        WalStorage::new(wal)
    }
    fn reopen(&mut self, store: Self::S) -> Self::S {
        let dir = store.wal().dir().to_path_buf();
        drop(store);
        WalStorage::new(Wal::open(dir, raftwal::Options::default()).expect("reopen"))
    }
}

#[test]
fn mem_storage_passes_the_suite() {
    suite::run(&mut Mem);
}

#[test]
fn wal_storage_on_simfs_passes_the_suite() {
    suite::run(&mut WalOnSimFs {
        fs: None,
        seed: 0,
        crash: false,
    });
}

#[test]
fn wal_storage_on_simfs_passes_the_suite_across_power_cuts() {
    suite::run(&mut WalOnSimFs {
        fs: None,
        seed: 100,
        crash: true,
    });
}

#[test]
fn wal_storage_on_disk_passes_the_suite() {
    suite::run(&mut WalOnDisk { dirs: Vec::new() });
}
