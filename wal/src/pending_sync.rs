//! [`PendingSync`]: the `fdatasync`s of a sync begun by [`crate::Wal::begin_sync`], run
//! without borrowing the `Wal` (pipelined durability).

use std::sync::Arc;

use crate::error::Result;
use crate::file::WalFile;
use crate::io::VfsFile;
use crate::metrics::Timer;

/// The files a sync must `fdatasync`. Run [`PendingSync::wait`] (on any thread, with no lock
/// on the `Wal` held), then hand its result to [`crate::Wal::end_sync`]. Dropping it without
/// `end_sync` leaves the `Wal` refusing every write but appends.
#[must_use = "a sync in flight must be waited on and ended with Wal::end_sync"]
pub struct PendingSync<F: VfsFile> {
    pub(crate) files: Vec<Arc<WalFile<F>>>,
    pub(crate) timer: Timer,
}

impl<F: VfsFile> PendingSync<F> {
    /// `fdatasync`s each file written since its last sync, in order (sealed segments
    /// first); the first failure stops it and is returned.
    pub fn wait(&self) -> Result<()> {
        for f in &self.files {
            let t = Timer::start();
            f.sync_data()?;
            crate::metrics::fdatasync(t);
        }
        Ok(())
    }

    /// Number of files this sync `fdatasync`s.
    pub fn files(&self) -> usize {
        self.files.len()
    }
}

impl<F: VfsFile> std::fmt::Debug for PendingSync<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSync")
            .field("files", &self.files.len())
            .finish()
    }
}
