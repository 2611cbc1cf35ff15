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
