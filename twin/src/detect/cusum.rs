//! A two-sided CUSUM change-point test (Page, 1954) on standardized
//! residuals: it adds up deviations beyond a drift allowance, so a lasting
//! level shift too small for the tail threshold still crosses its limit.

/// Deviations up to this many spreads count as noise (the test is tuned
/// for shifts of about twice this).
const DRIFT: f64 = 1.0;
/// One point adds at most this much, so a single spike is the tail
/// threshold's business, not this test's.
const STEP_LIMIT: f64 = 4.0;
/// The sums stop this far above the limit, so a shift that ended stops
/// alarming within a few points.
const HEADROOM: f64 = 2.0;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cusum {
    up: f64,
    down: f64,
}

impl Cusum {
    pub(crate) fn learn(&mut self, z: f64, limit: f64) {
        let z = z.clamp(-STEP_LIMIT, STEP_LIMIT);
        self.up = (self.up + z - DRIFT).clamp(0.0, limit + HEADROOM);
        self.down = (self.down - z - DRIFT).clamp(0.0, limit + HEADROOM);
    }

    /// How far up and down the sums are toward `limit`, each in [0, 1].
    pub(crate) fn scores(&self, limit: f64) -> (f64, f64) {
        ((self.up / limit).min(1.0), (self.down / limit).min(1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lasting_shift_of_two_spreads_crosses_the_limit_and_noise_does_not() {
        let mut shifted = Cusum::default();
        let mut noise = Cusum::default();
        for i in 0..100 {
            shifted.learn(2.0, 6.0);
            noise.learn(if i % 2 == 0 { 0.9 } else { -0.9 }, 6.0);
        }
        assert_eq!(shifted.scores(6.0).0, 1.0);
        assert_eq!(noise.scores(6.0), (0.0, 0.0));
    }

    #[test]
    fn one_spike_does_not_cross_the_limit() {
        let mut cusum = Cusum::default();
        cusum.learn(1e6, 6.0);
        assert!(cusum.scores(6.0).0 < 1.0);
    }
}
