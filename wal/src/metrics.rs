//! Optional metrics (feature `metrics`): the WAL's [`Stats`] counters, `fdatasync` and sync
//! latencies and group-commit sizes, published through the [`metrics`](https://docs.rs/metrics)
//! facade to whatever recorder the application installs (Prometheus, statsd, a test's
//! debugging recorder). No exporter is a dependency. Without the feature every function
//! here is empty and costs nothing.
//!
//! | name | kind | what |
//! |---|---|---|
//! | `raftwal_entries_appended_total` | counter | entries appended |
//! | `raftwal_bytes_written_total` | counter | record bytes written to segments |
//! | `raftwal_writes_total` | counter | `pwrite` calls to segments |
//! | `raftwal_file_syncs_total` | counter | `fdatasync`/`fsync` calls on files |
//! | `raftwal_dir_syncs_total` | counter | directory fsyncs |
//! | `raftwal_header_updates_total` | counter | HEADER updates |
//! | `raftwal_segments_created_total` | counter | segments created |
//! | `raftwal_segments_from_pool_total` | counter | of those, made from a recycled file |
//! | `raftwal_segments_ahead_total` | counter | of those, prepared beside a sync's `fdatasync` |
//! | `raftwal_segments_taken_ahead_total` | counter | of those from the pool, with their header written ahead |
//! | `raftwal_segments_recycled_total` | counter | compacted segments kept for reuse |
//! | `raftwal_fdatasync_seconds` | histogram | one segment `fdatasync` |
//! | `raftwal_sync_seconds` | histogram | one [`crate::Wal::sync`] (write-out and syncs) |
//! | `raftwal_group_commit_size` | histogram | commits one [`crate::GroupCommit`] sync covered |
//! | `raftwal_poisoned` | gauge | 1 once a handle is poisoned |

use std::time::Instant;

use crate::types::Stats;

/// A start time, taken only when metrics are compiled in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timer(#[allow(dead_code)] Option<Instant>);

impl Timer {
    /// Starts timing.
    pub(crate) fn start() -> Self {
        Timer(cfg!(feature = "metrics").then(Instant::now))
    }
}

/// Publishes the growth of `now` since `published` as counter increments, and remembers
/// `now` as published.
pub(crate) fn publish(now: &Stats, published: &mut Stats) {
    #[cfg(feature = "metrics")]
    {
        let deltas = [
            (
                "raftwal_entries_appended_total",
                now.entries_appended - published.entries_appended,
            ),
            (
                "raftwal_bytes_written_total",
                now.bytes_written - published.bytes_written,
            ),
            ("raftwal_writes_total", now.writes - published.writes),
            (
                "raftwal_file_syncs_total",
                now.file_syncs - published.file_syncs,
            ),
            (
                "raftwal_dir_syncs_total",
                now.dir_syncs - published.dir_syncs,
            ),
            (
                "raftwal_header_updates_total",
                now.header_updates - published.header_updates,
            ),
            (
                "raftwal_segments_created_total",
                now.segments_created - published.segments_created,
            ),
            (
                "raftwal_segments_from_pool_total",
                now.segments_from_pool - published.segments_from_pool,
            ),
            (
                "raftwal_segments_ahead_total",
                now.segments_ahead - published.segments_ahead,
            ),
            (
                "raftwal_segments_taken_ahead_total",
                now.segments_taken_ahead - published.segments_taken_ahead,
            ),
            (
                "raftwal_segments_recycled_total",
                now.segments_recycled - published.segments_recycled,
            ),
        ];
        for (name, delta) in deltas {
            if delta > 0 {
                metrics::counter!(name).increment(delta);
            }
        }
    }
    *published = *now;
}

/// Records the latency of one segment `fdatasync` started at `t`.
pub(crate) fn fdatasync(t: Timer) {
    #[cfg(feature = "metrics")]
    if let Some(t) = t.0 {
        metrics::histogram!("raftwal_fdatasync_seconds").record(t.elapsed().as_secs_f64());
    }
    let _ = t;
}

/// Records the latency of one `Wal::sync` started at `t`.
pub(crate) fn sync(t: Timer) {
    #[cfg(feature = "metrics")]
    if let Some(t) = t.0 {
        metrics::histogram!("raftwal_sync_seconds").record(t.elapsed().as_secs_f64());
    }
    let _ = t;
}

/// Records that one group-commit sync covered `commits` commits.
pub(crate) fn group_commit(commits: u64) {
    #[cfg(feature = "metrics")]
    metrics::histogram!("raftwal_group_commit_size").record(commits as f64);
    let _ = commits;
}

/// Records that a handle was poisoned.
pub(crate) fn poisoned() {
    #[cfg(feature = "metrics")]
    metrics::gauge!("raftwal_poisoned").set(1.0);
}
