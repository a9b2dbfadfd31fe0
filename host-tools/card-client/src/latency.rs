//! Round-trip latency of APDUs over any [`CardChannel`], for the benchmark.

use std::time::{Duration, Instant};

use crate::channel::{CardChannel, ChannelError};

/// Summary of `count` round trips.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyStats {
    /// Number of round trips measured.
    pub count: usize,
    /// Fastest.
    pub min: Duration,
    /// Median (50th percentile).
    pub median: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
    /// Arithmetic mean.
    pub mean: Duration,
}

impl LatencyStats {
    /// Summarises samples (nearest-rank percentiles); `None` for no samples.
    pub fn from_samples(mut samples: Vec<Duration>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let count = samples.len();
        // Nearest rank: the smallest sample with at least p% of the samples at or below it.
        let rank = |percent: usize| samples[(count * percent).div_ceil(100).saturating_sub(1)];
        let total: Duration = samples.iter().sum();
        Some(Self {
            count,
            min: samples[0],
            median: rank(50),
            p99: rank(99),
            max: samples[count - 1],
            mean: total / count as u32,
        })
    }
}

/// Sends `apdu` `count` times and times each round trip; every response must end with 9000.
pub fn round_trip_stats(
    channel: &mut dyn CardChannel,
    apdu: &[u8],
    count: usize,
) -> Result<Option<LatencyStats>, ChannelError> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        let response = channel.transmit(apdu)?;
        samples.push(start.elapsed());
        if !response.ends_with(&[0x90, 0x00]) {
            return Err(ChannelError::Transport(format!(
                "benchmark APDU answered {}, not 90 00",
                crate::hex::spaced(&response)
            )));
        }
    }
    Ok(LatencyStats::from_samples(samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples: Vec<Duration> = (1..=200).rev().map(Duration::from_micros).collect();
        let stats = LatencyStats::from_samples(samples).unwrap();
        assert_eq!(stats.count, 200);
        assert_eq!(stats.min, Duration::from_micros(1));
        assert_eq!(stats.median, Duration::from_micros(100));
        assert_eq!(stats.p99, Duration::from_micros(198));
        assert_eq!(stats.max, Duration::from_micros(200));
        assert_eq!(stats.mean, Duration::from_nanos(100_500));
        assert_eq!(LatencyStats::from_samples(vec![]), None);
        let one = LatencyStats::from_samples(vec![Duration::from_millis(3)]).unwrap();
        assert_eq!(
            (one.median, one.p99),
            (Duration::from_millis(3), Duration::from_millis(3))
        );
    }

    // Measuring the in-process card: `emulator/tests/in_process.rs` (this crate does not link the card).
}
