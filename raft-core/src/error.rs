//! The crate's error type.

/// What a [`Storage`](crate::Storage) implementation reports when an operation fails: any
/// error with its cause chain (a `raftwal::Error`, a poisoned lock, ...).
pub type StorageError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a Raft node. A storage failure is fatal: the node stops
/// (every later input returns [`Error::Stopped`]) because its durable state is unknown, and
/// continuing could acknowledge something that is not on disk.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A persistence call failed; the node has stopped.
    #[error("node {node}: storage failed during {op}: {source}")]
    Storage {
        /// The node.
        node: u64,
        /// What the node was persisting (`"read_persist"`, `"append"`, `"sync"`, ...).
        op: &'static str,
        /// The storage's error.
        #[source]
        source: StorageError,
    },
    /// The node stopped after an earlier fatal error and refuses every input.
    #[error("node {node} is stopped after a fatal error: {cause}")]
    Stopped {
        /// The node.
        node: u64,
        /// The error that stopped it.
        cause: String,
    },
    /// The state read back from storage breaks an invariant (a gap in the log, terms going
    /// backwards, a vote for an unknown node).
    #[error("node {node}: persisted state is inconsistent: {reason}")]
    Inconsistent {
        /// The node.
        node: u64,
        /// What is wrong.
        reason: String,
    },
    /// A message from or to a node outside the cluster.
    #[error("node {node}: message names unknown peer {peer} (cluster of {cluster_size})")]
    UnknownPeer {
        /// The node.
        node: u64,
        /// The unknown id.
        peer: u64,
        /// Number of nodes in the cluster.
        cluster_size: usize,
    },
    /// The service asked for a snapshot of entries it has not applied yet.
    #[error("node {node}: snapshot at index {index} is ahead of the last applied index {applied}")]
    SnapshotAhead {
        /// The node.
        node: u64,
        /// The index requested.
        index: u64,
        /// The last index applied.
        applied: u64,
    },
    /// An invalid configuration.
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
