//! A lock-free histogram of decision latencies (feed publication to the end
//! of the bot's decision), shared by every runner of a manager. Recording is
//! one atomic add; percentiles are read without stopping anyone.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bucket width in microseconds.
const BUCKET_US: u64 = 25;
/// Buckets: 25 µs each up to 250 ms; slower decisions land in the last one.
const BUCKETS: usize = 10_000;

pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl LatencyHistogram {
    pub fn record(&self, micros: u64) {
        let index = ((micros / BUCKET_US) as usize).min(BUCKETS - 1);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count_since(&[])
    }

    /// Decisions recorded since `mark` (from [`Self::counts`]).
    pub fn count_since(&self, mark: &[u64]) -> u64 {
        self.counts_since(mark).sum()
    }

    /// The latency (upper edge of its bucket, µs) below which a share `p`
    /// (0..=1) of the recorded decisions fall; `None` before any record.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        self.percentile_since(&[], p)
    }

    /// Every bucket's count now: a mark to measure from with
    /// [`Self::percentile_since`] (e.g. past a warm-up).
    pub fn counts(&self) -> Vec<u64> {
        self.counts_since(&[]).collect()
    }

    /// Each bucket's count less its count in `mark` (missing entries: 0).
    fn counts_since<'a>(&'a self, mark: &'a [u64]) -> impl Iterator<Item = u64> + 'a {
        self.buckets.iter().enumerate().map(|(index, bucket)| {
            let before = mark.get(index).copied().unwrap_or(0);
            bucket.load(Ordering::Relaxed).saturating_sub(before)
        })
    }

    /// As [`Self::percentile`], over the decisions recorded since `mark`
    /// (from [`Self::counts`]; empty for all of them).
    pub fn percentile_since(&self, mark: &[u64], p: f64) -> Option<u64> {
        let total = self.count_since(mark);
        if total == 0 {
            return None;
        }
        let rank = ((total as f64 * p).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts_since(mark).enumerate() {
            seen += count;
            if seen >= rank {
                return Some((index as u64 + 1) * BUCKET_US);
            }
        }
        Some(BUCKETS as u64 * BUCKET_US)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_bucket_upper_edges() {
        let histogram = LatencyHistogram::default();
        assert_eq!(histogram.percentile(0.5), None);
        for micros in 1..=100 {
            histogram.record(micros * 10); // 10 µs .. 1000 µs
        }
        assert_eq!(histogram.count(), 100);
        // The 50th value, 500 µs, is in the bucket [500, 525).
        assert_eq!(histogram.percentile(0.5), Some(525));
        assert_eq!(histogram.percentile(0.99), Some(1000));
        histogram.record(10_000_000);
        assert_eq!(histogram.percentile(1.0), Some(250_000));
    }

    #[test]
    fn percentiles_since_a_mark_leave_earlier_records_out() {
        let histogram = LatencyHistogram::default();
        for _ in 0..10 {
            histogram.record(50_000); // a slow start
        }
        let mark = histogram.counts();
        assert_eq!(histogram.percentile_since(&mark, 0.99), None);
        for _ in 0..90 {
            histogram.record(100);
        }
        assert_eq!(histogram.percentile_since(&mark, 0.99), Some(125));
        assert_eq!(histogram.percentile(0.99), Some(50_025));
    }
}
