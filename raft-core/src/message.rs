//! The messages Raft nodes exchange (Figure 2's RPCs as one-way messages).
//!
//! Every reply echoes the term of the request it answers (`req_term`), so a node can drop a
//! reply to a request it sent in an earlier term even when the network reorders messages.

use raftwal::{Entry, SnapshotMeta};

/// A message with its sender and receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The sending node.
    pub from: u64,
    /// The receiving node.
    pub to: u64,
    /// The message.
    pub msg: Message,
}

/// One Raft message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A candidate asks for a vote.
    RequestVote(RequestVote),
    /// The answer to [`Message::RequestVote`].
    RequestVoteReply(RequestVoteReply),
    /// A leader replicates entries (or just heartbeats).
    AppendEntries(AppendEntries),
    /// The answer to [`Message::AppendEntries`].
    AppendEntriesReply(AppendEntriesReply),
    /// A leader sends its snapshot to a follower whose next entry it has compacted.
    InstallSnapshot(InstallSnapshot),
    /// The answer to [`Message::InstallSnapshot`].
    InstallSnapshotReply(InstallSnapshotReply),
}

/// RequestVote arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestVote {
    /// Candidate's term.
    pub term: u64,
    /// Index of the candidate's last log entry.
    pub last_log_index: u64,
    /// Term of the candidate's last log entry.
    pub last_log_term: u64,
}

/// RequestVote results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestVoteReply {
    /// The voter's current term.
    pub term: u64,
    /// The term of the request this answers.
    pub req_term: u64,
    /// True when the vote was granted.
    pub granted: bool,
}

/// AppendEntries arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendEntries {
    /// Leader's term.
    pub term: u64,
    /// Index of the entry immediately preceding the new ones.
    pub prev_log_index: u64,
    /// Term of that entry.
    pub prev_log_term: u64,
    /// Entries to store (empty for a heartbeat).
    pub entries: Vec<Entry>,
    /// Leader's commit index.
    pub leader_commit: u64,
}

/// Where a follower's log disagrees with an AppendEntries (the lab's fast backup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Conflict {
    /// Term of the follower's entry at `prev_log_index`, if it has one (XTerm).
    pub x_term: Option<u64>,
    /// First index the follower holds with term `x_term` (XIndex).
    pub x_index: u64,
    /// The follower's last index plus one (XLen).
    pub x_len: u64,
}

/// AppendEntries results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendEntriesReply {
    /// The follower's current term.
    pub term: u64,
    /// The term of the request this answers.
    pub req_term: u64,
    /// True when the follower's log matched at `prev_log_index` and now holds the entries.
    pub success: bool,
    /// On success, the index through which the follower's log matches the leader's.
    pub match_index: u64,
    /// On failure, the fast-backup hint.
    pub conflict: Conflict,
}

/// InstallSnapshot arguments (the whole snapshot in one message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSnapshot {
    /// Leader's term.
    pub term: u64,
    /// The last index and term the snapshot covers.
    pub meta: SnapshotMeta,
    /// The service's snapshot.
    pub data: Vec<u8>,
}

/// InstallSnapshot results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSnapshotReply {
    /// The follower's current term.
    pub term: u64,
    /// The term of the request this answers.
    pub req_term: u64,
    /// The snapshot's last included index (echoed).
    pub last_included_index: u64,
}

/// Bytes of fixed fields charged per message in [`Message::wire_size`].
const HEADER_BYTES: usize = 40;
/// Bytes charged per log entry besides its data (index, term, length).
const ENTRY_OVERHEAD: usize = 20;

impl Message {
    /// True for requests (RequestVote, AppendEntries, InstallSnapshot), the messages the
    /// lab's tester counts as RPCs.
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            Message::RequestVote(_) | Message::AppendEntries(_) | Message::InstallSnapshot(_)
        )
    }

    /// The sender's term carried by the message.
    pub fn term(&self) -> u64 {
        match self {
            Message::RequestVote(m) => m.term,
            Message::RequestVoteReply(m) => m.term,
            Message::AppendEntries(m) => m.term,
            Message::AppendEntriesReply(m) => m.term,
            Message::InstallSnapshot(m) => m.term,
            Message::InstallSnapshotReply(m) => m.term,
        }
    }

    /// The size the message would have in a compact binary encoding: a fixed header plus
    /// every entry's and snapshot's payload. Used for the RPCBytes check.
    pub fn wire_size(&self) -> usize {
        match self {
            Message::AppendEntries(m) => {
                HEADER_BYTES
                    + m.entries
                        .iter()
                        .map(|e| ENTRY_OVERHEAD + e.data.len())
                        .sum::<usize>()
            }
            Message::InstallSnapshot(m) => HEADER_BYTES + m.data.len(),
            _ => HEADER_BYTES,
        }
    }
}
