//! A detector's settings: how sensitive, which direction, how long it
//! learns before it may alarm, and the smallest change worth an alarm.

use serde::{Deserialize, Serialize};

/// Which deviations alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Only values above the baseline (latency, errors, surges).
    Up,
    /// Only values below the baseline (throughput drops).
    Down,
    Both,
}

impl Direction {
    pub fn watches_up(self) -> bool {
        matches!(self, Self::Up | Self::Both)
    }

    pub fn watches_down(self) -> bool {
        matches!(self, Self::Down | Self::Both)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// 1 (only the most extreme) to 10 (the most alarms). Sets the tail
    /// risk of the SPOT threshold and the CUSUM decision interval.
    pub sensitivity: f64,
    pub direction: Direction,
    /// Points learned from before any alarm: the baseline starts as their
    /// median and median absolute deviation.
    pub warmup_points: u32,
    /// After this many points a deviation's weight in the baseline has
    /// halved.
    pub half_life_points: f64,
    /// Learn an hour-of-day profile across days (for series with a daily
    /// rhythm; timestamps must be real times).
    pub daily_seasonality: bool,
    /// A deviation smaller than this share of the expected value never
    /// alarms (0.2 = 20 %).
    pub min_relative_change: f64,
    /// A deviation smaller than this, in the series' own unit, never alarms.
    pub min_absolute_change: f64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            sensitivity: 5.0,
            direction: Direction::Both,
            warmup_points: 30,
            half_life_points: 60.0,
            daily_seasonality: false,
            min_relative_change: 0.0,
            min_absolute_change: 0.0,
        }
    }
}

impl DetectorConfig {
    /// Every problem with these settings, prefixed with `prefix`.
    pub fn problems(&self, prefix: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let mut require = |ok: bool, key: &str, rule: &str| {
            if !ok {
                problems.push(format!("{prefix}{key}: {rule}"));
            }
        };
        require(
            (1.0..=10.0).contains(&self.sensitivity),
            "sensitivity",
            "must be between 1 and 10",
        );
        require(
            (10..=100_000).contains(&self.warmup_points),
            "warmup_points",
            "must be between 10 and 100000",
        );
        require(
            (2.0..=1e6).contains(&self.half_life_points),
            "half_life_points",
            "must be between 2 and 1000000",
        );
        require(
            (0.0..=100.0).contains(&self.min_relative_change),
            "min_relative_change",
            "must be between 0 and 100",
        );
        require(
            self.min_absolute_change >= 0.0 && self.min_absolute_change.is_finite(),
            "min_absolute_change",
            "must be a finite number, 0 or more",
        );
        problems
    }

    /// The tail probability beyond the SPOT threshold: 10⁻⁶ at sensitivity
    /// 1, 10⁻⁴ at 5, 10⁻¹·⁵ at 10.
    pub(crate) fn tail_risk(&self) -> f64 {
        10f64.powf(-(1.5 + 0.5 * (10.0 - self.sensitivity)))
    }

    /// The CUSUM decision interval, in standard deviations: 9.2 at
    /// sensitivity 1, 6 at 5, 2 at 10.
    pub(crate) fn cusum_limit(&self) -> f64 {
        2.0 + 0.8 * (10.0 - self.sensitivity)
    }

    /// The weight of one new point in the baseline.
    pub(crate) fn weight(&self) -> f64 {
        1.0 - 0.5f64.powf(1.0 / self.half_life_points)
    }
}
