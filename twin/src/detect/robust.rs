//! A robust level and spread that follow a series in O(1) per point.
//!
//! It starts from the median and the median absolute deviation of the
//! warm-up points, then moves by an exponentially weighted Huber step: a
//! point further than [`CLIP`] spreads from the level counts as if it were
//! exactly [`CLIP`] spreads away, so one outlier moves the baseline by a
//! bounded amount, while a lasting shift is still learned.

/// Residuals are clipped at this many spreads.
pub(crate) const CLIP: f64 = 3.0;
/// MAD × this estimates the standard deviation of normal data.
const MAD_TO_SIGMA: f64 = 1.4826;
/// Mean absolute deviation × this estimates it too (used when the MAD is 0).
const MEAN_ABS_TO_SIGMA: f64 = 1.2533;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RobustLevel {
    pub(crate) level: f64,
    /// In the series' unit; comparable to a standard deviation.
    pub(crate) spread: f64,
}

impl RobustLevel {
    /// The median and the scaled MAD of `points` (which must not be empty).
    pub(crate) fn from_points(points: &mut [f64]) -> Self {
        let level = median(points);
        let mut deviations: Vec<f64> = points.iter().map(|x| (x - level).abs()).collect();
        let mad = median(&mut deviations);
        let spread = if mad > 0.0 {
            MAD_TO_SIGMA * mad
        } else {
            MEAN_ABS_TO_SIGMA * deviations.iter().sum::<f64>() / deviations.len() as f64
        };
        Self { level, spread }
    }

    /// Moves the level and spread toward `residual` (a point minus the
    /// level) with weight `weight`.
    pub(crate) fn learn(&mut self, residual: f64, weight: f64) {
        let limit = CLIP * self.spread;
        let clipped = residual.clamp(-limit, limit);
        self.level += weight * clipped;
        let variance = (1.0 - weight) * self.spread * self.spread + weight * clipped * clipped;
        self.spread = variance.sqrt();
        if residual != 0.0 && self.spread == 0.0 {
            // A flat series that moved: start the spread at the move.
            self.spread = weight.sqrt() * residual.abs();
            self.level += weight * residual;
        }
    }
}

/// The median, reordering `points`.
pub(crate) fn median(points: &mut [f64]) -> f64 {
    points.sort_unstable_by(f64::total_cmp);
    let n = points.len();
    if n % 2 == 1 {
        points[n / 2]
    } else {
        (points[n / 2 - 1] + points[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_mad_ignore_one_outlier() {
        let mut points = vec![10.0, 11.0, 9.0, 10.0, 1000.0];
        let robust = RobustLevel::from_points(&mut points);
        assert_eq!(robust.level, 10.0);
        assert!((robust.spread - MAD_TO_SIGMA).abs() < 1e-12);
    }

    #[test]
    fn one_outlier_moves_the_level_by_at_most_the_clipped_step() {
        let mut robust = RobustLevel {
            level: 10.0,
            spread: 1.0,
        };
        robust.learn(1e9, 0.01);
        assert!((robust.level - 10.03).abs() < 1e-12);
    }

    #[test]
    fn a_flat_series_that_moves_gets_a_spread() {
        let mut robust = RobustLevel {
            level: 5.0,
            spread: 0.0,
        };
        robust.learn(0.0, 0.1);
        assert_eq!(robust.spread, 0.0);
        robust.learn(2.0, 0.1);
        assert!(robust.spread > 0.0);
    }
}
