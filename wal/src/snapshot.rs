//! Snapshot files: `<index>.snap`, the state machine's data as of the log base.
//!
//! ```text
//! off  size  field
//!   0     8  magic "RWALSNP1"
//!   8     4  format version (u32)
//!  12     4  reserved, zero
//!  16     8  last included index (u64)
//!  24     8  last included term (u64)
//!  32     8  data length (u64)
//!  40     4  crc32 of (index ‖ term ‖ data)
//!  44    16  reserved, zero
//!  60     4  crc32 of bytes [0, 60)
//!  64     n  data
//! ```
//!
//! Written whole under `<index>.snap.tmp`, synced, renamed into place, directory synced; only
//! then does the header point the log base at it.

use std::path::{Path, PathBuf};

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::error::{Error, Result};
use crate::file::WalFile;
use crate::format::{snapshot_name, FORMAT_VERSION, PREVIOUS_VERSION};
use crate::io::{OpenMode, Vfs};
use crate::types::SnapshotMeta;

const MAGIC: [u8; 8] = *b"RWALSNP1";
pub(crate) const HEADER_LEN: usize = 64;
const OFF_VERSION: usize = 8;
const OFF_INDEX: usize = 16;
const OFF_TERM: usize = 24;
const OFF_LEN: usize = 32;
const OFF_DATA_CRC: usize = 40;
const OFF_CRC: usize = 60;

fn data_crc(meta: SnapshotMeta, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&meta.index.to_le_bytes());
    h.update(&meta.term.to_le_bytes());
    h.update(data);
    h.finalize()
}

/// Writes the snapshot durably (file synced, renamed, directory synced). Returns its path.
pub(crate) fn write<V: Vfs>(
    vfs: &V,
    dir: &Path,
    meta: SnapshotMeta,
    data: &[u8],
) -> Result<PathBuf> {
    let path = dir.join(snapshot_name(meta.index));
    let mut bytes = Vec::with_capacity(HEADER_LEN + data.len());
    bytes.resize(HEADER_LEN, 0);
    bytes[..8].copy_from_slice(&MAGIC);
    LE::write_u32(&mut bytes[OFF_VERSION..], FORMAT_VERSION);
    LE::write_u64(&mut bytes[OFF_INDEX..], meta.index);
    LE::write_u64(&mut bytes[OFF_TERM..], meta.term);
    LE::write_u64(&mut bytes[OFF_LEN..], data.len() as u64);
    LE::write_u32(&mut bytes[OFF_DATA_CRC..], data_crc(meta, data));
    let crc = crc32fast::hash(&bytes[..OFF_CRC]);
    LE::write_u32(&mut bytes[OFF_CRC..], crc);
    bytes.extend_from_slice(data);
    crate::io::create_durably(vfs, dir, &path, |file| file.write_all_at(&bytes, 0))?;
    Ok(path)
}

/// Reads the header of a snapshot file: its meta and data length.
pub(crate) fn read_header<V: Vfs>(vfs: &V, path: &Path) -> Result<(SnapshotMeta, u64)> {
    let file = WalFile::open(vfs, path, OpenMode::Read)?;
    let mut h = [0u8; HEADER_LEN];
    let len = file.len()?;
    if len < HEADER_LEN as u64 {
        return Err(Error::corrupt(
            path,
            0,
            None,
            format!("snapshot file is {len} bytes, shorter than its header"),
        ));
    }
    file.read_exact_at(&mut h, 0)?;
    let (meta, data_len, _) = decode_header(path, &h)?;
    if (HEADER_LEN as u64).checked_add(data_len) != Some(len) {
        return Err(Error::corrupt(
            path,
            len,
            Some(meta.index),
            format!(
                "snapshot file is {len} bytes, its header says {data_len} bytes of data after \
                 {HEADER_LEN}"
            ),
        ));
    }
    Ok((meta, data_len))
}

/// Verifies a snapshot file's data checksum, reading it in windows (memory bounded whatever
/// its size).
pub(crate) fn verify<V: Vfs>(vfs: &V, path: &Path) -> Result<()> {
    let (meta, data_len) = read_header(vfs, path)?;
    let file = WalFile::open(vfs, path, OpenMode::Read)?;
    let mut h = [0u8; HEADER_LEN];
    file.read_exact_at(&mut h, 0)?;
    let (_, _, stored) = decode_header(path, &h)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&meta.index.to_le_bytes());
    crc.update(&meta.term.to_le_bytes());
    let mut buf = vec![0u8; (crate::reader::WINDOW as u64).min(data_len) as usize];
    let mut at = 0u64;
    while at < data_len {
        let n = (data_len - at).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], HEADER_LEN as u64 + at)?;
        crc.update(&buf[..n]);
        at += n as u64;
    }
    check_data(path, meta, stored, crc.finalize())
}

/// The data checksum must match the one its header stores.
fn check_data(path: &Path, meta: SnapshotMeta, stored: u32, computed: u32) -> Result<()> {
    if computed != stored {
        return Err(Error::corrupt(
            path,
            HEADER_LEN as u64,
            Some(meta.index),
            format!(
                "snapshot data checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
        ));
    }
    Ok(())
}

fn decode_header(path: &Path, h: &[u8]) -> Result<(SnapshotMeta, u64, u32)> {
    if h[..8] != MAGIC {
        return Err(Error::NotAWalFile {
            path: path.to_owned(),
            reason: format!("wrong snapshot magic {:02x?} at offset 0", &h[..8]),
        });
    }
    let stored = LE::read_u32(&h[OFF_CRC..]);
    let computed = crc32fast::hash(&h[..OFF_CRC]);
    if stored != computed {
        return Err(Error::corrupt(
            path,
            0,
            None,
            format!(
                "snapshot header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
        ));
    }
    let version = LE::read_u32(&h[OFF_VERSION..]);
    if version != FORMAT_VERSION && version != PREVIOUS_VERSION {
        return Err(Error::NotAWalFile {
            path: path.to_owned(),
            reason: format!(
                "snapshot format version {version} at offset {OFF_VERSION}, this build reads \
                 {PREVIOUS_VERSION} and {FORMAT_VERSION}"
            ),
        });
    }
    let meta = SnapshotMeta {
        index: LE::read_u64(&h[OFF_INDEX..]),
        term: LE::read_u64(&h[OFF_TERM..]),
    };
    Ok((
        meta,
        LE::read_u64(&h[OFF_LEN..]),
        LE::read_u32(&h[OFF_DATA_CRC..]),
    ))
}

/// Reads and fully verifies a snapshot file.
pub(crate) fn read<V: Vfs>(vfs: &V, path: &Path) -> Result<(SnapshotMeta, Vec<u8>)> {
    let file = WalFile::open(vfs, path, OpenMode::Read)?;
    let len = file.len()?;
    if len < HEADER_LEN as u64 {
        return Err(Error::corrupt(
            path,
            0,
            None,
            "snapshot file shorter than its header",
        ));
    }
    let len = usize::try_from(len).map_err(|_| {
        Error::corrupt(
            path,
            0,
            None,
            format!("a snapshot of {len} bytes cannot be read into memory"),
        )
    })?;
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, 0)?;
    let (meta, data_len, crc) = decode_header(path, &bytes[..HEADER_LEN])?;
    let data = bytes.get(HEADER_LEN..).unwrap_or(&[]);
    if data.len() as u64 != data_len {
        return Err(Error::corrupt(
            path,
            HEADER_LEN as u64,
            Some(meta.index),
            format!(
                "snapshot holds {} bytes of data, header says {data_len}",
                data.len()
            ),
        ));
    }
    check_data(path, meta, crc, data_crc(meta, data))?;
    Ok((meta, data.to_vec()))
}
