//! One series' detector: a robust baseline (and optional daily profile)
//! says what is expected; the standardized residual goes to a SPOT tail
//! threshold per watched direction (spikes) and to a CUSUM test (level
//! shifts). O(1) time per point and a fixed size after warm-up.

use meshtwin_model::anomaly::{AlarmKind, Deviation};
use serde::{Deserialize, Serialize};

use super::config::DetectorConfig;
use super::cusum::Cusum;
use super::robust::{CLIP, RobustLevel};
use super::seasonal::DailyProfile;
use super::spot::Spot;

/// Residuals are measured in spreads up to this (an infinitely surprising
/// point, on a flat series, scores this).
const MAX_Z: f64 = 1e6;
/// While alarming, the baseline learns this much slower, so a fault is not
/// taken for the new normal within minutes, yet a lasting change is in time.
/// (Slowing it for high scores short of an alarm too would bias the spread
/// low, and noise would alarm more.)
const ALARM_SLOWDOWN: f64 = 8.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    pub kind: AlarmKind,
    pub deviation: Deviation,
}

/// What the detector made of one point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// What the baseline expected; `None` during warm-up.
    pub expected: Option<f64>,
    /// Values outside `(lower, upper)` were beyond the tail thresholds
    /// (whether or not the change was large enough to alarm); `None`
    /// during warm-up.
    pub band: Option<(f64, f64)>,
    /// How anomalous, in [0, 1]; an alarm scores 1.
    pub score: f64,
    pub alarm: Option<Alarm>,
}

/// The value given was NaN or infinite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("value is not a finite number")]
pub struct NotFinite;

#[derive(Debug, Clone)]
pub struct Detector {
    config: DetectorConfig,
    risk: f64,
    cusum_limit: f64,
    weight: f64,
    warmup: Vec<f64>,
    /// Points taken so far (saturating).
    seen: u32,
    baseline: Option<RobustLevel>,
    profile: Option<Box<DailyProfile>>,
    above: Spot,
    below: Spot,
    cusum: Cusum,
}

impl Detector {
    /// A detector with `config`, which should have no
    /// [`problems`](DetectorConfig::problems).
    pub fn new(config: DetectorConfig) -> Self {
        Self {
            risk: config.tail_risk(),
            cusum_limit: config.cusum_limit(),
            weight: config.weight(),
            warmup: Vec::with_capacity(config.warmup_points as usize),
            seen: 0,
            baseline: None,
            profile: config.daily_seasonality.then(Box::default),
            above: Spot::default(),
            below: Spot::default(),
            cusum: Cusum::default(),
            config,
        }
    }

    /// Takes the next point, at `at` (Unix seconds; only the daily profile
    /// reads it). Points must come in time order.
    pub fn update(&mut self, at: i64, value: f64) -> Result<Verdict, NotFinite> {
        if !value.is_finite() {
            return Err(NotFinite);
        }
        self.seen = self.seen.saturating_add(1);
        let Some(baseline) = self.baseline else {
            self.warm_up(value);
            return Ok(Verdict {
                expected: None,
                band: None,
                score: 0.0,
                alarm: None,
            });
        };
        let offset = self.profile.as_ref().map_or(0.0, |p| p.offset(at));
        let expected = baseline.level + offset;
        let residual = value - expected;
        let spread = baseline.spread * self.youth();
        let z = standardize(residual, spread, expected);
        let (mut verdict, spiked) = self.judge(z, residual, expected);
        verdict.band = Some((
            expected - self.below.threshold(self.risk) * spread,
            expected + self.above.threshold(self.risk) * spread,
        ));
        self.learn(at, value, residual, z, verdict.alarm.is_some(), spiked);
        Ok(verdict)
    }

    /// How much wider the spread is taken while few points are behind it:
    /// 1 + 5/ν for ν points of evidence, which follows the ratio of a
    /// Student-t tail quantile (at 10⁻⁴) to the normal one (1.53 at 10
    /// degrees of freedom, 1.07 at 60). The evidence is capped at the
    /// moving baseline's effective sample size.
    fn youth(&self) -> f64 {
        let effective = (2.0 - self.weight) / self.weight;
        let evidence = f64::from(self.seen).min(effective) - 1.0;
        1.0 + 5.0 / evidence.max(1.0)
    }

    fn warm_up(&mut self, value: f64) {
        self.warmup.push(value);
        if self.warmup.len() < self.config.warmup_points as usize {
            return;
        }
        let mut points = std::mem::take(&mut self.warmup);
        let baseline = RobustLevel::from_points(&mut points);
        // The warm-up points give the tails their first peaks.
        for point in &points {
            let z = standardize(point - baseline.level, baseline.spread, baseline.level);
            self.above.learn(z);
            self.below.learn(-z);
        }
        self.baseline = Some(baseline);
    }

    /// The score and alarm for a standardized residual `z`; and whether the
    /// tail threshold was crossed in a watched direction.
    fn judge(&self, z: f64, residual: f64, expected: f64) -> (Verdict, bool) {
        let direction = self.config.direction;
        let (shift_up, shift_down) = self.cusum.scores(self.cusum_limit);
        let (spike, shift, deviation) = if z >= 0.0 {
            let spike = if direction.watches_up() {
                self.above.score(z, self.risk)
            } else {
                0.0
            };
            let shift = if direction.watches_up() {
                shift_up
            } else {
                0.0
            };
            (spike, shift, Deviation::Above)
        } else {
            let spike = if direction.watches_down() {
                self.below.score(-z, self.risk)
            } else {
                0.0
            };
            let shift = if direction.watches_down() {
                shift_down
            } else {
                0.0
            };
            (spike, shift, Deviation::Below)
        };
        let spiked = spike >= 1.0;
        let smallest = self
            .config
            .min_absolute_change
            .max(self.config.min_relative_change * expected.abs());
        // A change below the smallest that matters scores in proportion.
        let significance = if smallest > 0.0 {
            (residual.abs() / smallest).min(1.0)
        } else {
            1.0
        };
        let significant = significance >= 1.0 && residual != 0.0;
        let kind = if spiked {
            Some(AlarmKind::Spike)
        } else if shift >= 1.0 {
            Some(AlarmKind::LevelShift)
        } else {
            None
        };
        let alarm = kind
            .filter(|_| significant)
            .map(|kind| Alarm { kind, deviation });
        let score = if alarm.is_some() {
            1.0
        } else {
            (spike.max(shift) * significance).min(0.999)
        };
        let verdict = Verdict {
            expected: Some(expected),
            band: None,
            score,
            alarm,
        };
        (verdict, spiked)
    }

    fn learn(&mut self, at: i64, value: f64, residual: f64, z: f64, alarmed: bool, spiked: bool) {
        let Some(baseline) = self.baseline.as_mut() else {
            return;
        };
        let weight = if alarmed {
            self.weight / ALARM_SLOWDOWN
        } else {
            self.weight
        };
        let from_level = value - baseline.level;
        let limit = CLIP * baseline.spread;
        baseline.learn(residual, weight);
        if let Some(profile) = self.profile.as_mut() {
            profile.learn(at, from_level.clamp(-limit, limit));
        }
        self.cusum.learn(z, self.cusum_limit);
        if !spiked {
            self.above.learn(z);
            self.below.learn(-z);
        }
    }
}

/// `residual` in spreads, finite. A zero residual is 0 even on a flat
/// series; any other residual on a flat series is as large as allowed.
fn standardize(residual: f64, spread: f64, expected: f64) -> f64 {
    if residual == 0.0 {
        return 0.0;
    }
    // A spread rounded to nothing next to its level counts as none.
    let spread = if spread > 1e-12 * expected.abs() {
        spread
    } else {
        0.0
    };
    if spread == 0.0 {
        return MAX_Z.copysign(residual);
    }
    (residual / spread).clamp(-MAX_Z, MAX_Z)
}
