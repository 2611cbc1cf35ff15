//! Recovery's second phase: open every segment and check its header.

use tracing::warn;

use crate::error::{Error, Result};
use crate::file::WalFile;
use crate::format::{decode_segment_header, seg, SegmentHeader, SegmentHeaderError};
use crate::io::{OpenMode, Vfs, VfsFile};
use crate::segment::Segment;
use crate::types::{Damage, RecoveryMode, RecoveryReport};

use super::listing::Listing;

/// The segments of the stream, opened.
pub(crate) struct Opened<F: VfsFile> {
    pub segments: Vec<Segment<F>>,
    /// Each segment's file length.
    pub lens: Vec<u64>,
    /// Highest sequence number among their headers.
    pub max_seq: u64,
    /// Highest first sync group among their headers (a segment may hold no record yet).
    pub max_first_group: u64,
}

/// Opens the listed segments in order. A damaged header is corruption (`Strict`), or — the
/// operator's choice, `TruncateCorrupt` — the end of the log: that segment and every later
/// one join the removals.
pub(crate) fn open_all<V: Vfs>(
    vfs: &V,
    l: &mut Listing,
    mode: OpenMode,
    recovery: RecoveryMode,
    report: &mut RecoveryReport,
) -> Result<Opened<V::File>> {
    let mut out = Opened {
        segments: Vec::new(),
        lens: Vec::new(),
        max_seq: 0,
        max_first_group: 0,
    };
    let mut names = std::mem::take(&mut l.segments).into_iter();
    while let Some((first, path)) = names.next() {
        let file = WalFile::open(vfs, &path, mode)?;
        let len = file.len()?;
        let h = match check(&file, first, len)? {
            Ok(h) => h,
            Err((offset, reason)) if recovery == RecoveryMode::Strict => {
                return Err(Error::corrupt(&path, offset, None, reason));
            }
            Err((offset, reason)) => {
                warn!(file = %path.display(), offset, reason = %reason,
                    "damaged segment header: cutting the log before this segment");
                report.corruption_truncated.push(Damage {
                    path: path.clone(),
                    offset,
                    reason: format!("{reason}; this segment and every later one removed"),
                });
                l.remove.push(path);
                l.remove.extend(names.by_ref().map(|(_, p)| p));
                break;
            }
        };
        out.max_seq = out.max_seq.max(h.seq);
        out.max_first_group = out.max_first_group.max(h.first_group);
        out.segments
            .push(Segment::from_parts(file, h, seg::DATA_START as u64));
        out.lens.push(len);
    }
    Ok(out)
}

/// Reads and checks a segment header: `Err` for a file that is not ours (never removed),
/// `Ok(Err((offset, reason)))` for a damaged one.
fn check<F: VfsFile>(
    file: &WalFile<F>,
    first: u64,
    len: u64,
) -> Result<std::result::Result<SegmentHeader, (u64, String)>> {
    let mut b = [0u8; seg::HEADER_LEN];
    let n = (len as usize).min(seg::HEADER_LEN);
    file.read_exact_at(&mut b[..n], 0)?;
    let path = file.path();
    // A header written ahead names no first index (0): the file name gives it.
    let decoded = match decode_segment_header(&b[..n]) {
        Ok(h) if h.ahead && h.first_index == 0 => Ok(SegmentHeader {
            first_index: first,
            ..h
        }),
        Ok(h) if h.ahead => {
            let reason = format!(
                "segment header written ahead says first index {}, where it must say 0",
                h.first_index
            );
            return Ok(Err((seg::OFF_FIRST_INDEX as u64, reason)));
        }
        other => other,
    };
    Ok(match decoded {
        Err(SegmentHeaderError::Foreign(reason)) => {
            // Not ours (or a version we cannot read): never removed, whatever the mode.
            return Err(Error::NotAWalFile {
                path: path.to_owned(),
                reason,
            });
        }
        Err(SegmentHeaderError::Damaged(reason)) => Err((0, reason)),
        // Log indices start at 1, and no entry can hold the largest index.
        Ok(h) if h.first_index == 0 || h.first_index == u64::MAX => Err((
            seg::OFF_FIRST_INDEX as u64,
            format!(
                "segment header says first index {}: out of range",
                h.first_index
            ),
        )),
        Ok(h) if h.first_index != first => Err((
            seg::OFF_FIRST_INDEX as u64,
            format!(
                "segment header says first index {}, the file name {first}",
                h.first_index
            ),
        )),
        Ok(h) if h.seq == u64::MAX => Err((
            seg::OFF_SEQ as u64,
            "segment header's sequence number is out of range".to_string(),
        )),
        Ok(h) if h.first_group > crate::format::rec::GROUP_MASK => Err((
            seg::OFF_FIRST_GROUP as u64,
            format!(
                "segment header's first group {} is out of range",
                h.first_group
            ),
        )),
        Ok(_) if len > u64::from(u32::MAX) => Err((
            u64::from(u32::MAX),
            format!("segment file is {len} bytes, longer than a segment can be (4 GiB)"),
        )),
        Ok(h) => Ok(h),
    })
}
