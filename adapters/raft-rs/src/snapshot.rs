//! Snapshots in the WAL's snapshot file ([`raftwal::Wal::save_snapshot`]): the whole
//! raft-rs [`Snapshot`] (metadata with its `ConfState`, and the data), protobuf-encoded;
//! the WAL's snapshot base is its index and term.

use protobuf::Message;
use raft::eraftpb::Snapshot;
use raftwal::io::Vfs;
use raftwal::{SnapshotMeta, Wal};

use crate::meta::Meta;
use crate::{Error, Result};

/// Stores `snap` and moves the log base to it, durably.
pub(crate) fn save<V: Vfs>(wal: &mut Wal<V>, snap: &Snapshot) -> Result<()> {
    let m = snap.get_metadata();
    let bytes = snap
        .write_to_bytes()
        .expect("encoding a Snapshot into memory cannot fail");
    let meta = SnapshotMeta {
        index: m.index,
        term: m.term,
    };
    Ok(wal.save_snapshot(meta, &bytes)?)
}

/// The stored snapshot, if any.
pub(crate) fn load<V: Vfs>(wal: &Wal<V>) -> Result<Option<Snapshot>> {
    let Some((meta, bytes)) = wal.snapshot()? else {
        return Ok(None);
    };
    let snap = Snapshot::parse_from_bytes(&bytes).map_err(|e| Error::Snapshot {
        index: meta.index,
        reason: e.to_string(),
    })?;
    let m = snap.get_metadata();
    if (m.index, m.term) != (meta.index, meta.term) {
        return Err(Error::Snapshot {
            index: meta.index,
            reason: format!("its metadata says index {} term {}", m.index, m.term),
        });
    }
    Ok(Some(snap))
}

/// The metadata a stored snapshot implies, if the header's is older than it: a power cut
/// after the snapshot's installation and before the metadata update that follows it.
/// (An installed snapshot is always past the durable commit index: raft-rs installs only
/// snapshots past its commit index; one the application created sits at or below it.)
pub(crate) fn newer_than_meta<V: Vfs>(wal: &Wal<V>, meta: &Meta) -> Result<Option<Meta>> {
    if wal.snapshot_meta().index <= meta.commit {
        return Ok(None);
    }
    Ok(load(wal)?.map(|s| Meta {
        commit: s.get_metadata().index,
        conf_state: s.get_metadata().get_conf_state().clone(),
    }))
}
