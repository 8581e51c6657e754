//! The series the twin watches on every node and edge, and each one's
//! detector settings: which direction matters and the smallest change
//! worth waking somebody for.

use meshtwin_model::anomaly::Signal;

use super::config::{DetectorConfig, Direction};

/// The twin's settings for `signal` at `sensitivity` (1 to 10).
pub fn signal_config(signal: Signal, sensitivity: f64) -> DetectorConfig {
    let base = DetectorConfig {
        sensitivity,
        ..DetectorConfig::default()
    };
    match signal {
        // Latency: only slower matters; +25 % and +0.5 ms at least.
        Signal::LatencyP50 | Signal::LatencyP99 => DetectorConfig {
            direction: Direction::Up,
            min_relative_change: 0.25,
            min_absolute_change: 0.5,
            ..base
        },
        // Errors: only more matters; 2 percentage points at least.
        Signal::ErrorRate => DetectorConfig {
            direction: Direction::Up,
            min_absolute_change: 0.02,
            ..base
        },
        // Throughput: a drop or a surge of a third, and 1 request/s at least.
        Signal::Throughput => DetectorConfig {
            direction: Direction::Both,
            min_relative_change: 0.33,
            min_absolute_change: 1.0,
            ..base
        },
    }
}
