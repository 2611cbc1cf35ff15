//! Dropping a directory's file pages from the page cache, for cold-cache measurements,
//! without touching anything else on the machine (no `drop_caches`).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};

use crate::Result;

/// Syncs every regular file directly in `dir` and asks the kernel to drop its cached pages
/// (`posix_fadvise(POSIX_FADV_DONTNEED)`). Returns the bytes of the files so advised.
pub fn drop_dir_cache(dir: &Path) -> Result<u64> {
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let file = File::open(entry.path())?;
        file.sync_all()?;
        bytes += file.metadata()?.len();
        posix_fadvise(
            file.as_raw_fd(),
            0,
            0,
            PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        )?;
    }
    Ok(bytes)
}

/// `syncfs` on the file system holding `path`: commits everything pending there, including
/// the journal transactions of file deletions (and, on a `discard`-mounted file system, the
/// discards of the freed blocks), so that cost lands here, untimed, and not in the next
/// measured slice's first fdatasync.
pub fn settle(path: &Path) -> Result<()> {
    let f = File::open(path)?;
    nix::unistd::syncfs(f.as_raw_fd())?;
    Ok(())
}
