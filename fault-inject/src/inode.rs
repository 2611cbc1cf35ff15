//! [`Inode`]: one simulated file's bytes, as the disk holds them and as the page cache does.
//!
//! The durable image is what survives a power cut for certain; the pending operations are the
//! dirty pages, kept in issue order so a crash can decide, one by one, which of them reached
//! the disk (and tear one). The live image is what reads see: the durable image with every
//! pending operation applied.

/// A file-changing operation not yet made durable by `sync_data`/`sync_all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingOp {
    /// `write_all_at(data, offset)`.
    Write {
        /// Byte offset of the write.
        offset: u64,
        /// The bytes written.
        data: Vec<u8>,
    },
    /// `set_len(len)` or `allocate(len)`: the file's length changed to `len`.
    SetLen(u64),
}

impl PendingOp {
    /// Applies the operation to `image`.
    pub(crate) fn apply(&self, image: &mut Vec<u8>) {
        match self {
            PendingOp::Write { offset, data } => write_into(image, *offset, data),
            PendingOp::SetLen(len) => image.resize(to_usize(*len), 0),
        }
    }

    /// For a write, how many tear units (sectors of `sector` bytes, aligned on absolute file
    /// offsets) it covers; 0 for a length change, which cannot tear.
    pub fn sectors(&self, sector: u64) -> usize {
        match self {
            PendingOp::Write { offset, data } => sector_pieces(*offset, data.len(), sector).len(),
            PendingOp::SetLen(_) => 0,
        }
    }
}

/// The pieces `(start offset within data, length)` a write of `len` bytes at `offset` splits
/// into at sector boundaries.
pub(crate) fn sector_pieces(offset: u64, len: usize, sector: u64) -> Vec<(usize, usize)> {
    let sector = sector.max(1);
    let mut pieces = Vec::new();
    let mut done = 0usize;
    while done < len {
        let pos = offset + done as u64;
        let to_boundary = sector - pos % sector;
        let n = usize::try_from(to_boundary)
            .unwrap_or(usize::MAX)
            .min(len - done);
        pieces.push((done, n));
        done += n;
    }
    pieces
}

/// Converts a file offset or length to `usize`, saturating (the simulation holds files in
/// memory, so anything that does not fit could never have been allocated anyway).
pub(crate) fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// Writes `data` at `offset` into `image`, growing it with zeros if needed.
pub(crate) fn write_into(image: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = to_usize(offset);
    let end = start.saturating_add(data.len());
    if image.len() < end {
        image.resize(end, 0);
    }
    image[start..end].copy_from_slice(data);
}

/// One file's content: durable image, dirty operations, and the cached view.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inode {
    /// What the disk holds for certain.
    pub(crate) durable: Vec<u8>,
    /// Unsynced operations, in issue order.
    pub(crate) pending: Vec<PendingOp>,
    /// What reads see: `durable` with `pending` applied (maintained incrementally).
    pub(crate) live: Vec<u8>,
    /// What the cache held when the first of `pending` was issued: where a page-level crash
    /// replays the pending operations from. It differs from `durable` after an fsyncgate
    /// failure marked pages clean that never reached the disk (a later writeback of such a
    /// page writes them after all, as a real page cache does).
    pub(crate) base: Vec<u8>,
}

impl Inode {
    /// Records an operation: visible to reads at once, durable only after [`Inode::sync`].
    pub(crate) fn push(&mut self, op: PendingOp) {
        if self.pending.is_empty() {
            self.base.clone_from(&self.live);
        }
        op.apply(&mut self.live);
        self.pending.push(op);
    }

    /// `fdatasync`: everything pending becomes durable. (Not a copy of the live view: after
    /// an fsyncgate failure the cache may hold pages marked clean that never reach the disk.)
    pub(crate) fn sync(&mut self) {
        for op in self.pending.drain(..) {
            op.apply(&mut self.durable);
        }
    }

    /// Forgets the cache (after a crash): the live view becomes the durable image.
    pub(crate) fn reset_to_durable(&mut self) {
        self.pending.clear();
        self.live.clone_from(&self.durable);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_at_absolute_sector_boundaries() {
        assert_eq!(sector_pieces(0, 1024, 512), vec![(0, 512), (512, 512)]);
        assert_eq!(
            sector_pieces(500, 600, 512),
            vec![(0, 12), (12, 512), (524, 76)]
        );
        assert_eq!(sector_pieces(10, 0, 512), Vec::<(usize, usize)>::new());
    }

    #[test]
    fn live_view_tracks_pending_and_sync_makes_it_durable() {
        let mut ino = Inode::default();
        ino.push(PendingOp::Write {
            offset: 4,
            data: b"ab".to_vec(),
        });
        assert_eq!(ino.live, b"\0\0\0\0ab");
        assert!(ino.durable.is_empty());
        ino.push(PendingOp::SetLen(2));
        assert_eq!(ino.live, b"\0\0");
        ino.sync();
        assert_eq!(ino.durable, b"\0\0");
        assert!(ino.pending.is_empty());
        ino.push(PendingOp::SetLen(8));
        ino.reset_to_durable();
        assert_eq!(ino.live, b"\0\0");
    }
}
