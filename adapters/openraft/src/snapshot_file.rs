//! The state machine's snapshot file, beside the WAL: `<dir>/snapshot`.
//!
//! ```text
//! off  size  field (little-endian)
//!   0     8  magic "RWOSNAP1"
//!   8     8  length n of the body (u64)
//!  16     4  crc32 of the body
//!  20     n  body: JSON of the snapshot's meta and the state machine's data
//! ```
//!
//! Written whole under `snapshot.tmp`, `fsync`ed, renamed over `snapshot`, the directory
//! `fsync`ed: after a crash the file is the old snapshot or the new one, never a mix. A body
//! that does not match its checksum is an error naming the file, never a silently empty
//! state machine.

use std::path::{Path, PathBuf};

use raftwal::io::{OpenMode, Vfs, VfsFile};

const MAGIC: &[u8; 8] = b"RWOSNAP1";
const HEADER_LEN: usize = 20;
/// Largest body read back (a bound on memory for a damaged length field).
const MAX_BODY: u64 = 1 << 32;

/// The snapshot file of the state machine in `dir`.
pub(crate) struct SnapshotFile<V: Vfs> {
    vfs: V,
    dir: PathBuf,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Creates `dir` and its missing parents, fsyncing the parent of each one created.
fn create_dirs<V: Vfs>(vfs: &V, dir: &Path) -> std::io::Result<()> {
    match vfs.create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => {
                create_dirs(vfs, parent)?;
                match vfs.create_dir(dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
                    Err(e) => return Err(io_err("create dir", dir, e)),
                }
            }
            _ => return Err(io_err("create dir", dir, e)),
        },
        Err(e) => return Err(io_err("create dir", dir, e)),
    }
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => vfs
            .sync_dir(parent)
            .map_err(|e| io_err("fsync dir", parent, e)),
        _ => Ok(()),
    }
}

impl<V: Vfs> SnapshotFile<V> {
    /// The snapshot file in `dir` (created, with missing parents, if needed; each new
    /// directory's entry made durable by an fsync of its parent).
    pub(crate) fn new(vfs: V, dir: &Path) -> std::io::Result<Self> {
        create_dirs(&vfs, dir)?;
        Ok(SnapshotFile {
            vfs,
            dir: dir.to_path_buf(),
        })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("snapshot")
    }

    /// Durably replaces the snapshot with `body`.
    pub(crate) fn write(&self, body: &[u8]) -> std::io::Result<()> {
        let path = self.path();
        let tmp = self.dir.join("snapshot.tmp");
        match self.vfs.remove(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &tmp, e)),
        }
        let mut bytes = Vec::with_capacity(HEADER_LEN + body.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        bytes.extend_from_slice(body);
        let file = self
            .vfs
            .open(&tmp, OpenMode::CreateNew)
            .map_err(|e| io_err("create", &tmp, e))?;
        file.write_all_at(&bytes, 0)
            .map_err(|e| io_err("write", &tmp, e))?;
        file.sync_all().map_err(|e| io_err("fsync", &tmp, e))?;
        drop(file);
        self.vfs
            .rename(&tmp, &path)
            .map_err(|e| io_err("rename", &tmp, e))?;
        self.vfs
            .sync_dir(&self.dir)
            .map_err(|e| io_err("fsync dir", &self.dir, e))
    }

    /// The snapshot's body, `None` if there is none; damage is an `InvalidData` error naming
    /// the file.
    pub(crate) fn read(&self) -> std::io::Result<Option<Vec<u8>>> {
        let path = self.path();
        let file = match self.vfs.open(&path, OpenMode::Read) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open", &path, e)),
        };
        let bad = |reason: String| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("snapshot {}: {reason}", path.display()),
            )
        };
        let len = file.len().map_err(|e| io_err("stat", &path, e))?;
        let mut head = [0u8; HEADER_LEN];
        if len < HEADER_LEN as u64 {
            return Err(bad(format!("{len} bytes, shorter than its header")));
        }
        file.read_exact_at(&mut head, 0)
            .map_err(|e| io_err("read", &path, e))?;
        if &head[..8] != MAGIC {
            return Err(bad("wrong magic".into()));
        }
        let body_len = u64::from_le_bytes(head[8..16].try_into().unwrap_or_default());
        if body_len > MAX_BODY || Some(len) != body_len.checked_add(HEADER_LEN as u64) {
            return Err(bad(format!(
                "header says {body_len} bytes of body, the file is {len} bytes"
            )));
        }
        let mut body = vec![0u8; body_len as usize];
        file.read_exact_at(&mut body, HEADER_LEN as u64)
            .map_err(|e| io_err("read", &path, e))?;
        let crc = u32::from_le_bytes(head[16..20].try_into().unwrap_or_default());
        if crc32fast::hash(&body) != crc {
            return Err(bad("checksum mismatch".into()));
        }
        Ok(Some(body))
    }
}
