//! An oracle on segment identities. Every segment header written into any file is decoded
//! (`raftwal::inspect::segment_header_seq`); every later write past the header page of
//! that file binds the header's sequence number: records may now exist under it. Across
//! crashes, a header carrying a bound number again — in another file, or different bytes
//! in the same one — is a reused identity, under which old records could verify in a place
//! they were never written to (docs/FORMAT.md, "Recycle pool"). A number no record was
//! written under (a spare, or a pool file given a header that no rotation used) may come
//! back: nothing can verify under it. Rewriting the very same header in place is allowed.

use std::collections::BTreeMap;
use std::path::Path;

use crate::namespace::InodeId;

/// A header as written: its file, bytes and the path it was written under.
#[derive(Debug, Clone)]
struct Written {
    ino: InodeId,
    header: Vec<u8>,
    path: String,
}

/// The segment headers seen so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Identities {
    /// The last header written into each file, with its sequence number.
    current: BTreeMap<InodeId, (u64, Written)>,
    /// Sequence numbers some write past the header page went under, with their header.
    bound: BTreeMap<u64, Written>,
    /// The first reuse seen, described.
    reuse: Option<String>,
}

impl Identities {
    /// Records a write of `buf` at `offset` into inode `ino` (named `path`).
    pub(crate) fn saw_write(&mut self, ino: InodeId, path: &Path, buf: &[u8], offset: u64) {
        let end = offset + buf.len() as u64;
        if end > raftwal::inspect::SEGMENT_DATA_START {
            if let Some((seq, w)) = self.current.get(&ino) {
                self.bound.entry(*seq).or_insert_with(|| w.clone());
            }
        }
        if offset != 0 {
            return;
        }
        let Some(seq) = raftwal::inspect::segment_header_seq(buf) else {
            return;
        };
        let w = Written {
            ino,
            header: buf[..raftwal::inspect::SEGMENT_HEADER_LEN].to_vec(),
            path: path.display().to_string(),
        };
        match self.bound.get(&seq) {
            Some(b) if b.ino == ino && b.header == w.header => {}
            Some(b) if self.reuse.is_none() => {
                self.reuse = Some(format!(
                    "segment sequence number {seq} written again, into {}, after records \
                     were written under it in {}",
                    w.path, b.path
                ));
            }
            _ => {}
        }
        self.current.insert(ino, (seq, w));
    }

    /// The first reused identity, if any.
    pub(crate) fn reuse(&self) -> Option<&str> {
        self.reuse.as_deref()
    }
}
