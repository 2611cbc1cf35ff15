//! What a node hands to its service: committed commands and snapshots, in order.

/// One item of the apply stream. Indices only go up: a [`Apply::Snapshot`] always covers more
/// than everything delivered before it, and every [`Apply::Command`] is the successor of the
/// item before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Apply {
    /// A committed command.
    Command {
        /// Its log index.
        index: u64,
        /// The term it was proposed in.
        term: u64,
        /// The command.
        data: Vec<u8>,
    },
    /// A snapshot the service must install, replacing its state (received from the leader,
    /// or found on disk at restart).
    Snapshot {
        /// The last index it covers.
        index: u64,
        /// The term of that entry.
        term: u64,
        /// The service's state.
        data: Vec<u8>,
    },
}

impl Apply {
    /// The index the service has applied once it processed this item.
    pub fn index(&self) -> u64 {
        match self {
            Apply::Command { index, .. } | Apply::Snapshot { index, .. } => *index,
        }
    }
}
