//! Setup helpers for the criterion benches: fresh WAL directories on a real disk, and logs
//! filled with entries.

use std::path::PathBuf;

use raftwal::{Options, Wal};
use tempfile::TempDir;

use crate::workload::{renumber, wal_batch, Cell};
use crate::Result;

/// Where benches put their data: `$RAFTWAL_BENCH_DIR`, else /var/tmp (on disk on most
/// systems, unlike a tmpfs /tmp).
pub fn bench_root() -> PathBuf {
    std::env::var_os("RAFTWAL_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp"))
}

/// A fresh, empty temporary directory under [`bench_root`].
pub fn tempdir() -> TempDir {
    let root = bench_root();
    let _ = std::fs::create_dir_all(&root);
    tempfile::Builder::new()
        .prefix("raftwal-criterion-")
        .tempdir_in(root)
        .expect("create a bench directory")
}

/// A WAL on a fresh directory.
pub fn fresh_wal(opts: &Options) -> (TempDir, Wal) {
    let dir = tempdir();
    let wal = Wal::open(dir.path(), opts.clone()).expect("open a fresh WAL");
    (dir, wal)
}

/// Appends `count` entries of `entry_size` bytes in batches of `batch`, syncing each batch.
pub fn fill(wal: &mut Wal, count: u64, entry_size: usize, batch: usize) -> Result<()> {
    let mut entries = wal_batch(&Cell::single(entry_size, batch), 0xF111);
    let mut left = count;
    while left > 0 {
        let n = left.min(batch as u64) as usize;
        renumber(&mut entries[..n], wal.last_index() + 1);
        wal.append(&entries[..n])?;
        wal.sync()?;
        left -= n as u64;
    }
    Ok(())
}
