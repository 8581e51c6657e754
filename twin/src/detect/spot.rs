//! A tail threshold from extreme-value theory, after SPOT (Siffer et al.,
//! "Anomaly Detection in Streams with Extreme Value Theory", KDD 2017).
//!
//! Scores above a fixed start threshold are peaks; their excesses over it
//! follow a generalized Pareto distribution, fitted here by the method of
//! moments over the last [`PEAKS`] peaks (running sums, so O(1) per point)
//! and shrunk toward the exponential tail of a normal distribution while
//! few peaks are known. The alarm threshold is the score whose tail
//! probability is the configured risk. As in SPOT, alarms teach it nothing.

/// Scores (in spreads) above this are peaks.
const START: f64 = 2.5;
/// Peaks remembered for the fit.
const PEAKS: usize = 64;
/// Pseudo-peaks of the prior: an exponential tail with the scale of a
/// normal distribution's beyond [`START`] (1 / START), reached by 0.62 %
/// of points.
const PRIOR_PEAKS: f64 = 8.0;
const PRIOR_SCALE: f64 = 1.0 / START;
const PRIOR_RATE: f64 = 0.0062;
/// Points after which the peak rate forgets half of what it counted.
const RATE_HALF_LIFE: f64 = 5000.0;

#[derive(Debug, Clone)]
pub(crate) struct Spot {
    peaks: [f64; PEAKS],
    len: usize,
    next: usize,
    sum: f64,
    sum_squares: f64,
    evictions: usize,
    points: f64,
    excesses: f64,
}

/// A fitted tail: rate of peaks, GPD shape and scale.
#[derive(Debug, Clone, Copy)]
struct Tail {
    rate: f64,
    shape: f64,
    scale: f64,
}

impl Tail {
    /// P(score > z) for z above the start threshold.
    fn probability(&self, z: f64) -> f64 {
        let excess = z - START;
        if self.shape.abs() < 1e-9 {
            self.rate * (-excess / self.scale).exp()
        } else {
            let base = 1.0 + self.shape * excess / self.scale;
            if base <= 0.0 {
                return 0.0;
            }
            self.rate * base.powf(-1.0 / self.shape)
        }
    }

    /// The score whose tail probability is `risk`.
    fn quantile(&self, risk: f64) -> f64 {
        let ratio = risk / self.rate;
        if ratio >= 1.0 {
            return START;
        }
        if self.shape.abs() < 1e-9 {
            START - self.scale * ratio.ln()
        } else {
            START + self.scale / self.shape * (ratio.powf(-self.shape) - 1.0)
        }
    }
}

impl Default for Spot {
    fn default() -> Self {
        Self {
            peaks: [0.0; PEAKS],
            len: 0,
            next: 0,
            sum: 0.0,
            sum_squares: 0.0,
            evictions: 0,
            points: 0.0,
            excesses: 0.0,
        }
    }
}

impl Spot {
    fn tail(&self) -> Tail {
        let weight = PRIOR_PEAKS + self.len as f64;
        let mean = (PRIOR_PEAKS * PRIOR_SCALE + self.sum) / weight;
        let second = (PRIOR_PEAKS * 2.0 * PRIOR_SCALE * PRIOR_SCALE + self.sum_squares) / weight;
        let variance = second - mean * mean;
        let (shape, scale) = if variance > 0.0 {
            let ratio = mean * mean / variance;
            // Method of moments; the shape is kept where the variance exists.
            let shape = (0.5 * (1.0 - ratio)).clamp(-0.5, 0.45);
            (shape, mean * (1.0 - shape))
        } else {
            (0.0, mean)
        };
        let rate = (PRIOR_PEAKS + self.excesses) / (PRIOR_PEAKS / PRIOR_RATE + self.points);
        Tail {
            rate: rate.min(1.0),
            shape,
            scale: scale.max(f64::MIN_POSITIVE),
        }
    }

    /// The alarm threshold at tail probability `risk`, in spreads.
    pub(crate) fn threshold(&self, risk: f64) -> f64 {
        self.tail().quantile(risk)
    }

    /// How anomalous score `z` is, in [0, 1]: 1 at and beyond the threshold
    /// for `risk`, the log of the tail probability scaled below it.
    pub(crate) fn score(&self, z: f64, risk: f64) -> f64 {
        if z <= 0.0 {
            return 0.0;
        }
        let tail = self.tail();
        let at_start = (tail.rate.ln() / risk.ln()).clamp(0.0, 1.0);
        if z <= START {
            return at_start * z / START;
        }
        let probability = tail.probability(z);
        if probability <= 0.0 {
            return 1.0;
        }
        (probability.ln() / risk.ln()).clamp(at_start, 1.0)
    }

    /// Learns from a score that did not alarm.
    pub(crate) fn learn(&mut self, z: f64) {
        let keep = 0.5f64.powf(1.0 / RATE_HALF_LIFE);
        self.points = self.points * keep + 1.0;
        self.excesses *= keep;
        if z > START {
            self.excesses += 1.0;
            self.push(z - START);
        }
    }

    fn push(&mut self, excess: f64) {
        if self.len == PEAKS {
            let old = self.peaks[self.next];
            self.sum -= old;
            self.sum_squares -= old * old;
            self.evictions += 1;
        } else {
            self.len += 1;
        }
        self.peaks[self.next] = excess;
        self.next = (self.next + 1) % PEAKS;
        self.sum += excess;
        self.sum_squares += excess * excess;
        if self.evictions >= PEAKS {
            // Re-add from scratch now and then so rounding cannot build up.
            self.evictions = 0;
            self.sum = self.peaks.iter().sum();
            self.sum_squares = self.peaks.iter().map(|p| p * p).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prior_alone_puts_the_threshold_of_risk_1e4_near_a_normal_tail() {
        let spot = Spot::default();
        let threshold = spot.threshold(1e-4);
        // A normal distribution's one-sided 1e-4 quantile is 3.72.
        assert!((3.5..4.5).contains(&threshold), "{threshold}");
    }

    #[test]
    fn heavier_peaks_raise_the_threshold() {
        let mut light = Spot::default();
        let mut heavy = Spot::default();
        for i in 0..10_000 {
            let wiggle = f64::from(i % 7) / 7.0;
            light.learn(if i % 50 == 0 { 2.6 + 0.2 * wiggle } else { 0.5 });
            heavy.learn(if i % 50 == 0 { 3.0 + 4.0 * wiggle } else { 0.5 });
        }
        assert!(heavy.threshold(1e-4) > light.threshold(1e-4) + 1.0);
    }

    #[test]
    fn the_score_rises_with_z_and_reaches_1_at_the_threshold() {
        let spot = Spot::default();
        let threshold = spot.threshold(1e-4);
        let mut last = 0.0;
        for step in 1..100 {
            let z = f64::from(step) * 0.1;
            let score = spot.score(z, 1e-4);
            assert!(score >= last, "score fell at z = {z}");
            last = score;
        }
        assert!(spot.score(threshold - 0.01, 1e-4) < 1.0);
        assert!((spot.score(threshold + 1e-6, 1e-4) - 1.0).abs() < 1e-9);
    }
}
