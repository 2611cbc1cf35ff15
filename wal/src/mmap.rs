//! Read-only memory maps of segment files: the only module of `wal` with `unsafe` code.
//!
//! A map is taken only of bytes the WAL itself wrote and no longer changes (sealed segments,
//! or the already written prefix of a file during recovery), and the WAL holds the directory
//! lock, so no other cooperating process truncates the file under the map. The WAL drops its
//! maps of a segment before it truncates or removes that segment.

use std::fs::File;
use std::io;
use std::ops::Deref;

use memmap2::{Mmap, MmapOptions};

/// A read-only view of a file prefix; empty views need no mapping.
#[derive(Debug)]
pub struct MappedRegion {
    map: Option<Mmap>,
}

impl MappedRegion {
    /// Maps bytes `[0, len)` of `file` read-only.
    pub(crate) fn map(file: &File, len: u64) -> io::Result<Self> {
        if len == 0 {
            return Ok(Self { map: None });
        }
        let file_len = file.metadata()?.len();
        if len > file_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot map {len} bytes of a {file_len}-byte file"),
            ));
        }
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "map length overflows"))?;
        // SAFETY: memmap2 requires that the mapped file is not modified or truncated by anyone
        // while the map lives, or reads may observe changing bytes or fault (SIGBUS). The WAL
        // maps only ranges it has already written and will not rewrite, holds the directory's
        // exclusive lock so no other raftwal process writes the file, and drops every map of a
        // segment before truncating or removing it. The range is within the file's length,
        // checked above.
        let map = unsafe { MmapOptions::new().len(len).map(file)? };
        Ok(Self { map: Some(map) })
    }
}

impl Deref for MappedRegion {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.map {
            Some(m) => m,
            None => &[],
        }
    }
}
