//! The series the twin watches on every node and edge, and each one's
//! detector settings: which direction matters and the smallest change
//! worth waking somebody for.

use serde::{Deserialize, Serialize};

use super::config::{DetectorConfig, Direction};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Median latency, in milliseconds.
    LatencyP50,
    /// 99th percentile latency, in milliseconds.
    LatencyP99,
    /// Failed requests over requests, in [0, 1].
    ErrorRate,
    /// Requests per second: drops and surges.
    Throughput,
}

impl Signal {
    pub const ALL: [Self; 4] = [
        Self::LatencyP50,
        Self::LatencyP99,
        Self::ErrorRate,
        Self::Throughput,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::LatencyP50 => "latency_p50",
            Self::LatencyP99 => "latency_p99",
            Self::ErrorRate => "error_rate",
            Self::Throughput => "throughput",
        }
    }

    /// The twin's settings for this signal at `sensitivity` (1 to 10).
    pub fn config(self, sensitivity: f64) -> DetectorConfig {
        let base = DetectorConfig {
            sensitivity,
            ..DetectorConfig::default()
        };
        match self {
            // Latency: only slower matters; +25 % and +0.5 ms at least.
            Self::LatencyP50 | Self::LatencyP99 => DetectorConfig {
                direction: Direction::Up,
                min_relative_change: 0.25,
                min_absolute_change: 0.5,
                ..base
            },
            // Errors: only more matters; 2 percentage points at least.
            Self::ErrorRate => DetectorConfig {
                direction: Direction::Up,
                min_absolute_change: 0.02,
                ..base
            },
            // Throughput: a drop of a third or a surge of a third.
            Self::Throughput => DetectorConfig {
                direction: Direction::Both,
                min_relative_change: 0.33,
                ..base
            },
        }
    }
}
