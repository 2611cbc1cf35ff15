//! Percentiles of latency samples (nanoseconds), computed exactly from the sorted samples.

use std::time::Duration;

/// Latency samples in nanoseconds.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    samples: Vec<u64>,
    sorted: bool,
}

impl Latencies {
    /// An empty set with room for `cap` samples.
    pub fn with_capacity(cap: usize) -> Self {
        Latencies {
            samples: Vec::with_capacity(cap),
            sorted: true,
        }
    }

    /// Records one sample.
    #[inline]
    pub fn record(&mut self, d: Duration) {
        self.samples
            .push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    /// Adds all samples of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        self.samples.extend_from_slice(&other.samples);
        self.sorted = false;
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The `q`-quantile (0.0..=1.0), nearest-rank; zero when empty.
    pub fn quantile(&mut self, q: f64) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        if !self.sorted {
            self.samples.sort_unstable();
            self.sorted = true;
        }
        let n = self.samples.len();
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
        Duration::from_nanos(self.samples[rank - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let mut l = Latencies::default();
        for i in (1..=1000).rev() {
            l.record(Duration::from_nanos(i));
        }
        assert_eq!(l.quantile(0.5), Duration::from_nanos(500));
        assert_eq!(l.quantile(0.99), Duration::from_nanos(990));
        assert_eq!(l.quantile(0.999), Duration::from_nanos(999));
        assert_eq!(l.quantile(1.0), Duration::from_nanos(1000));
        assert_eq!(Latencies::default().quantile(0.5), Duration::ZERO);
    }
}
