//! The blocking write side of raft-rs's `Ready` loop, and the storage operations it is
//! made of.
//!
//! [`RaftWalStorage::persist_ready`] follows the `Ready` contract, in this order:
//!
//! 1. a changed term or vote: [`raftwal::Wal::set_hard_state`], durable on return (one
//!    HEADER `fdatasync`; only at elections). First, so that no entry of a term is ever
//!    durable while the term (and this node's vote in it) is not: a node restarted from
//!    such a log could vote a second time in that term.
//! 2. a snapshot: stored and made the log base ([`RaftWalStorage::apply_snapshot`]).
//! 3. the entries: a conflicting suffix truncated durably
//!    ([`raftwal::Wal::truncate_suffix`]), then the entries appended (buffered).
//! 4. when `must_sync`: one [`raftwal::Wal::sync`], the one `fdatasync` of the steady
//!    state (more only at a segment rotation).
//! 5. the commit index, into the HEADER metadata when it has run
//!    [`crate::StorageOptions::commit_lag`] entries ahead of the durable one, never above
//!    the last durable entry.
//!
//! Only after `persist_ready` returned may the Ready's `persisted_messages` be sent.

use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{LightReady, Ready};
use raftwal::io::Vfs;

use crate::meta::Meta;
use crate::storage::{too_large, RaftWalStorage};
use crate::{codec, snapshot, Error, Result};

impl<V: Vfs> RaftWalStorage<V> {
    /// Persists a `Ready` (see the module docs for the order): its snapshot, term and vote
    /// are durable when it returns `Ok`, and its entries too if `rd.must_sync()` (always,
    /// when it has entries); its commit index under the
    /// [`crate::StorageOptions::commit_lag`] rule. Only then may the Ready's
    /// `persisted_messages` be sent.
    pub fn persist_ready(&mut self, rd: &Ready) -> Result<()> {
        if let Some(hs) = rd.hs() {
            self.set_hard_state(hs)?;
        }
        if !rd.snapshot().is_empty() {
            self.apply_snapshot(rd.snapshot())?;
        }
        self.append(rd.entries())?;
        if rd.must_sync() {
            self.sync()?;
        }
        self.maybe_persist_commit()
    }

    /// Takes a `LightReady`'s commit index (raft-rs does not require it durable: it is
    /// written under the [`crate::StorageOptions::commit_lag`] rule).
    pub fn persist_light_ready(&mut self, light: &LightReady) -> Result<()> {
        if let Some(commit) = light.commit_index() {
            self.hard_state.commit = self.hard_state.commit.max(commit);
        }
        self.maybe_persist_commit()
    }

    /// Records `hs`: term and vote durably if they changed (one HEADER `fdatasync`), the
    /// commit index in memory (see [`crate::StorageOptions::commit_lag`]).
    pub fn set_hard_state(&mut self, hs: &HardState) -> Result<()> {
        let hard = raftwal::HardState {
            term: hs.term,
            vote: (hs.vote != 0).then_some(hs.vote),
        };
        if hard != self.wal.hard_state() {
            self.wait_idle()?;
            self.wal.set_hard_state(hard)?;
        }
        self.hard_state.term = hs.term;
        self.hard_state.vote = hs.vote;
        self.hard_state.commit = self.hard_state.commit.max(hs.commit);
        Ok(())
    }

    /// Appends `ents` (buffered: durable after [`RaftWalStorage::sync`]), first removing
    /// durably every entry from `ents[0].index` on (a conflicting suffix). Entries that
    /// would leave a gap or overwrite compacted ones are refused.
    pub fn append(&mut self, ents: &[Entry]) -> Result<()> {
        let Some(first) = ents.first().map(|e| e.index) else {
            return Ok(());
        };
        if first < self.wal.first_index() {
            return Err(Error::invalid(
                "append",
                format!(
                    "entry {first} is compacted (the log starts at {})",
                    self.wal.first_index()
                ),
            ));
        }
        if first > self.wal.last_index() + 1 {
            return Err(Error::invalid(
                "append",
                format!(
                    "entry {first} leaves a gap after the last index {}",
                    self.wal.last_index()
                ),
            ));
        }
        if first <= self.wal.last_index() {
            self.truncate_from(first)?;
        }
        let batch: Vec<raftwal::Entry> = ents.iter().map(codec::encode).collect();
        Ok(self.wal.append(&batch)?)
    }

    /// Makes every appended entry durable: one `fdatasync` (none if nothing is unsynced).
    pub fn sync(&mut self) -> Result<()> {
        self.wait_idle()?;
        self.wal.sync()?;
        self.durable_last = self.wal.last_index();
        Ok(())
    }

    /// Durably records a new `ConfState` (after `RawNode::apply_conf_change`), with the
    /// commit index: one HEADER `fdatasync`. Refused with [`Error::ConfStateTooLarge`] if
    /// it does not fit in the header (nothing is written then).
    pub fn set_conf_state(&mut self, cs: ConfState) -> Result<()> {
        self.wait_idle()?;
        let commit = self.commit_target();
        self.write_meta(Meta {
            commit,
            conf_state: cs,
        })
    }

    /// Installs a snapshot (from the leader, via `Ready::snapshot`): stores it, discards
    /// the log it covers (the entries after it are kept if the log holds its index and
    /// term), moves the commit index to it, takes its `ConfState`. Refused if it is older
    /// than the first index (raft-rs's `SnapshotOutOfDate`).
    pub fn apply_snapshot(&mut self, snap: &Snapshot) -> Result<()> {
        let m = snap.get_metadata();
        if m.index < self.wal.first_index() {
            return Err(Error::invalid(
                "apply_snapshot",
                format!(
                    "snapshot at {} is out of date (the log starts at {})",
                    m.index,
                    self.wal.first_index()
                ),
            ));
        }
        self.wait_idle()?;
        let next = Meta {
            commit: m.index.max(self.durable.commit),
            conf_state: m.get_conf_state().clone(),
        };
        next.encode().map_err(too_large)?;
        if m.term > self.hard_state.term {
            let mut hs = self.hard_state.clone();
            hs.term = m.term;
            hs.vote = 0;
            self.set_hard_state(&hs)?;
        }
        snapshot::save(&mut self.wal, snap)?;
        self.durable_last = self.durable_last.max(m.index).min(self.wal.last_index());
        self.hard_state.commit = self.hard_state.commit.max(m.index);
        self.write_meta(next)
    }

    /// Creates a snapshot of the application's state at `index` (applied, so at most the
    /// commit index) with the current `ConfState`, stores it, and moves the log base to it:
    /// entries up to `index` are discarded (the WAL compacts at every snapshot). Served to
    /// followers that need it by `Storage::snapshot`.
    pub fn create_snapshot(&mut self, index: u64, data: Vec<u8>) -> Result<()> {
        if index > self.hard_state.commit {
            return Err(Error::invalid(
                "create_snapshot",
                format!(
                    "index {index} is past the commit index {}",
                    self.hard_state.commit
                ),
            ));
        }
        self.wait_idle()?;
        let term = self.wal.term(index)?;
        let mut snap = Snapshot {
            data: data.into(),
            ..Snapshot::default()
        };
        let m = snap.mut_metadata();
        m.index = index;
        m.term = term;
        m.set_conf_state(self.conf_state.clone());
        snapshot::save(&mut self.wal, &snap)?;
        let commit = self.commit_target().max(index);
        self.write_meta(Meta {
            commit,
            conf_state: self.conf_state.clone(),
        })
    }

    /// Discards the entries before `compact_index` (`MemStorage::compact`'s meaning: the
    /// first index becomes `compact_index`), durably, without storing a snapshot; a stored
    /// snapshot older than the new base is removed. At or below the first index nothing
    /// happens; past the last index + 1 is refused. The application compacts only what it
    /// has applied.
    pub fn compact(&mut self, compact_index: u64) -> Result<()> {
        if compact_index <= self.wal.first_index() {
            return Ok(());
        }
        if compact_index > self.wal.last_index() + 1 {
            return Err(Error::invalid(
                "compact",
                format!(
                    "index {compact_index} is past the last index {} + 1",
                    self.wal.last_index()
                ),
            ));
        }
        self.wait_idle()?;
        Ok(self.wal.compact(compact_index - 1)?)
    }

    /// Writes the commit index now if it is ahead of the durable one (one HEADER
    /// `fdatasync`): before a clean shutdown, so a restart starts from it.
    pub fn persist_commit(&mut self) -> Result<()> {
        self.wait_idle()?;
        self.sync()?;
        let commit = self.commit_target();
        if commit <= self.durable.commit {
            return Ok(());
        }
        let conf_state = self.durable.conf_state.clone();
        self.write_meta(Meta { commit, conf_state })
    }

    /// The commit index as high as it may be durable: never above the last durable entry.
    fn commit_target(&self) -> u64 {
        self.hard_state.commit.min(self.durable_last)
    }

    pub(crate) fn maybe_persist_commit(&mut self) -> Result<()> {
        if self.wal.sync_in_flight() {
            return Ok(()); // retried when the sync ends
        }
        let commit = self.commit_target();
        if commit <= self.durable.commit || commit - self.durable.commit <= self.commit_lag {
            return Ok(());
        }
        let conf_state = self.durable.conf_state.clone();
        self.write_meta(Meta { commit, conf_state })
    }

    fn write_meta(&mut self, meta: Meta) -> Result<()> {
        let blob = meta.encode().map_err(too_large)?;
        self.wal.set_app_meta(&blob)?;
        self.conf_state = meta.conf_state.clone();
        self.durable = meta;
        Ok(())
    }

    /// Durably removes the entries from `from` on (buffered appends are synced first).
    fn truncate_from(&mut self, from: u64) -> Result<()> {
        self.wait_idle()?;
        self.wal.truncate_suffix(from)?;
        self.durable_last = from - 1;
        Ok(())
    }
}
