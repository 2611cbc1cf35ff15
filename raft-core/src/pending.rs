//! [`Pending`]: the changes of persistent state made since the last `persist()`, in order.

use raftwal::{Entry, SnapshotMeta};

/// One change to the log, replayed on storage in the order it was made in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogOp {
    /// Entries appended at the end.
    Append(Vec<Entry>),
    /// Entries `from..` removed (a real conflict).
    Truncate(u64),
    /// The base moved to a snapshot.
    Snapshot(SnapshotMeta, Vec<u8>),
}

/// What `persist()` still has to write. Appends are coalesced, and a truncation absorbs the
/// not-yet-written appends it cuts, so storage only sees what survives.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub(crate) hard_state: bool,
    pub(crate) ops: Vec<LogOp>,
}

impl Pending {
    pub(crate) fn is_empty(&self) -> bool {
        !self.hard_state && self.ops.is_empty()
    }

    pub(crate) fn append(&mut self, entry: Entry) {
        if let Some(LogOp::Append(v)) = self.ops.last_mut() {
            v.push(entry);
        } else {
            self.ops.push(LogOp::Append(vec![entry]));
        }
    }

    pub(crate) fn truncate(&mut self, from: u64) {
        while let Some(LogOp::Append(v)) = self.ops.last_mut() {
            let first = v.first().map_or(u64::MAX, |e| e.index);
            if first >= from {
                self.ops.pop();
                continue;
            }
            // The append starts below `from`: cut it; storage never held anything past it.
            v.truncate((from - first) as usize);
            return;
        }
        self.ops.push(LogOp::Truncate(from));
    }

    pub(crate) fn snapshot(&mut self, meta: SnapshotMeta, data: Vec<u8>) {
        self.ops.push(LogOp::Snapshot(meta, data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64) -> Entry {
        Entry {
            index,
            term: 1,
            data: vec![],
        }
    }

    #[test]
    fn truncation_absorbs_unwritten_appends() {
        let mut p = Pending::default();
        p.append(e(5));
        p.append(e(6));
        p.append(e(7));
        p.truncate(6);
        assert_eq!(p.ops, vec![LogOp::Append(vec![e(5)])]);
        p.truncate(5);
        assert_eq!(p.ops, vec![LogOp::Truncate(5)]);
        p.append(e(5));
        assert_eq!(p.ops, vec![LogOp::Truncate(5), LogOp::Append(vec![e(5)])]);
    }
}
