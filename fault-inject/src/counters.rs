//! [`Counters`]: how many I/O calls of each kind the simulated file system served, so tests
//! can assert costs ("exactly one fdatasync per batch").

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Calls on one file path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileCounters {
    /// `write_all_at` calls.
    pub writes: u64,
    /// Bytes passed to `write_all_at`.
    pub bytes_written: u64,
    /// `sync_data` + `sync_all` calls.
    pub syncs: u64,
    /// `read_at` calls.
    pub reads: u64,
}

/// Calls served since creation or the last [`crate::SimFs::reset_counters`]. Failed calls
/// count too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// `write_all_at` calls.
    pub writes: u64,
    /// Bytes passed to `write_all_at`.
    pub bytes_written: u64,
    /// `sync_data` + `sync_all` calls.
    pub file_syncs: u64,
    /// `sync_dir` calls.
    pub dir_syncs: u64,
    /// `set_len` calls.
    pub set_lens: u64,
    /// `allocate` calls.
    pub allocates: u64,
    /// `start_writeback` calls (a hint: the crash model already lets any unsynced write
    /// reach the disk at any time).
    pub writebacks: u64,
    /// `read_at` calls.
    pub reads: u64,
    /// Bytes returned by `read_at`.
    pub bytes_read: u64,
    /// Files created.
    pub creates: u64,
    /// Renames.
    pub renames: u64,
    /// Removes.
    pub removes: u64,
    /// Per file path (the path the file was opened with).
    pub per_path: BTreeMap<PathBuf, FileCounters>,
}

impl Counters {
    pub(crate) fn file(&mut self, path: &std::path::Path) -> &mut FileCounters {
        self.per_path.entry(path.to_path_buf()).or_default()
    }
}
