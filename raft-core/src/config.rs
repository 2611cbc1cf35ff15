//! Node configuration.

use crate::error::{Error, Result};

/// How a node is set up. Time is counted in ticks: the caller calls
/// [`Raft::tick`](crate::Raft::tick) at a fixed interval ([`Config::TICK_MS`] in the simulator
/// and the demo).
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's id, in `0..cluster_size`.
    pub id: u64,
    /// Number of nodes; ids are `0..cluster_size`.
    pub cluster_size: usize,
    /// Election timeout range in ticks, `[min, max)`, drawn anew at every reset.
    pub election_ticks: (u32, u32),
    /// Ticks between heartbeats (10 ticks of 10 ms = at most 10 heartbeats a second).
    pub heartbeat_ticks: u32,
    /// Most entries in one AppendEntries.
    pub max_entries_per_message: usize,
    /// Seed of the node's randomness (election timeouts).
    pub seed: u64,
    /// A new leader appends an entry with empty data in its term (§8 of the Raft paper), so
    /// it commits what earlier terms left uncommitted without waiting for a proposal:
    /// Figure 8's rule lets a leader commit only an entry of its own term. Off by default,
    /// as in the lab, whose tests expect the first command at index 1; a service that stops
    /// proposing and waits for every node to apply everything needs it on, or after a leader
    /// change the tail of the log stays unapplied. The entry reaches the service as an
    /// [`Apply::Command`](crate::Apply::Command) with empty data.
    pub leader_noop: bool,
    /// Bugs planted on purpose, all off by default: only the safety checker's own tests
    /// turn them on, to show that the simulator's checker catches them.
    pub bugs: Bugs,
}

/// Deliberate bugs, each behind its own switch (all off in [`Bugs::default`]). They exist so
/// the tests of the simulator's safety checker can show the checker is not vacuous; nothing
/// else sets them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// The vote is never written to storage (the term still is): after a restart in the
    /// same term the node may vote again, for someone else.
    pub unpersisted_vote: bool,
    /// The leader commits the highest index a majority holds whatever its term (Figure 8's
    /// rule removed: an earlier term's entry is committed by counting replicas).
    pub figure8_commit: bool,
    /// `persist()` never calls `sync` after appending: entries are acknowledged before they
    /// are durable, and a power cut loses them.
    pub no_sync_after_append: bool,
}

impl Bugs {
    /// True when any bug is on.
    pub fn any(&self) -> bool {
        self.unpersisted_vote || self.figure8_commit || self.no_sync_after_append
    }
}

impl Config {
    /// Milliseconds per tick assumed by the defaults.
    pub const TICK_MS: u64 = 10;

    /// The defaults for node `id` of a `cluster_size`-node cluster: election timeout
    /// 300–550 ms, heartbeats every 100 ms.
    pub fn new(id: u64, cluster_size: usize, seed: u64) -> Self {
        Config {
            id,
            cluster_size,
            election_ticks: (30, 55),
            heartbeat_ticks: 10,
            max_entries_per_message: 512,
            seed,
            leader_noop: false,
            bugs: Bugs::default(),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::Config { reason });
        if self.cluster_size == 0 {
            return bad("cluster_size is 0".into());
        }
        if self.id >= self.cluster_size as u64 {
            return bad(format!("id {} outside 0..{}", self.id, self.cluster_size));
        }
        if self.election_ticks.0 == 0 || self.election_ticks.0 >= self.election_ticks.1 {
            return bad(format!("empty election range {:?}", self.election_ticks));
        }
        if self.heartbeat_ticks == 0 || self.heartbeat_ticks >= self.election_ticks.0 {
            return bad(format!(
                "heartbeat_ticks {} must be in 1..{}",
                self.heartbeat_ticks, self.election_ticks.0
            ));
        }
        if self.max_entries_per_message == 0 {
            return bad("max_entries_per_message is 0".into());
        }
        Ok(())
    }
}
