//! Detector invariants (property tests) and behaviour on seeded series.

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::*;

const MINUTE: i64 = 60;

fn run(config: &DetectorConfig, points: &[f64], step: i64) -> Vec<Verdict> {
    let mut detector = Detector::new(config.clone());
    points
        .iter()
        .enumerate()
        .map(|(i, &value)| {
            detector
                .update(i as i64 * step, value)
                .expect("finite points")
        })
        .collect()
}

fn noise(seed: u64, mean: f64, sd: f64, len: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(mean, sd).expect("valid normal");
    (0..len).map(|_| normal.sample(&mut rng)).collect()
}

fn alarms(verdicts: &[Verdict]) -> Vec<usize> {
    verdicts
        .iter()
        .enumerate()
        .filter(|(_, v)| v.alarm.is_some())
        .map(|(i, _)| i)
        .collect()
}

fn any_config() -> impl Strategy<Value = DetectorConfig> {
    (
        1.0..=10.0f64,
        prop_oneof![
            Just(Direction::Up),
            Just(Direction::Down),
            Just(Direction::Both)
        ],
        10u32..60,
        any::<bool>(),
        prop_oneof![Just(0.0), 0.0..1.0f64],
    )
        .prop_map(
            |(sensitivity, direction, warmup_points, daily_seasonality, min_relative_change)| {
                DetectorConfig {
                    sensitivity,
                    direction,
                    warmup_points,
                    daily_seasonality,
                    min_relative_change,
                    ..DetectorConfig::default()
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_constant_series_never_alarms_and_scores_zero(
        config in any_config(),
        value in prop_oneof![Just(0.0), -1e9..1e9f64],
        len in 10usize..2000,
    ) {
        let verdicts = run(&config, &vec![value; len], MINUTE);
        for verdict in &verdicts {
            prop_assert_eq!(verdict.alarm, None);
            prop_assert_eq!(verdict.score, 0.0);
        }
    }

    #[test]
    fn scaling_a_series_changes_no_score_and_no_alarm(
        config in any_config(),
        seed in any::<u64>(),
        power in -30i32..30,
        spikes in proptest::collection::vec((0usize..600, -50.0..50.0f64), 0..6),
    ) {
        let mut points = noise(seed, 100.0, 10.0, 600);
        for (at, size) in spikes {
            points[at] += size * 10.0;
        }
        let factor = 2f64.powi(power);
        let scaled: Vec<f64> = points.iter().map(|p| p * factor).collect();
        let original = run(&config, &points, MINUTE);
        let rescaled = run(&config, &scaled, MINUTE);
        for (a, b) in original.iter().zip(&rescaled) {
            prop_assert_eq!(a.alarm, b.alarm);
            prop_assert_eq!(a.score, b.score);
            prop_assert_eq!(a.expected.map(|e| e * factor), b.expected);
        }
    }

    #[test]
    fn the_same_points_give_the_same_verdicts(config in any_config(), seed in any::<u64>()) {
        let points = noise(seed, 5.0, 1.0, 300);
        prop_assert_eq!(run(&config, &points, MINUTE), run(&config, &points, MINUTE));
    }

    #[test]
    fn nothing_alarms_during_warm_up(config in any_config(), seed in any::<u64>()) {
        let mut points = noise(seed, 5.0, 1.0, config.warmup_points as usize);
        points[3] = 1e12;
        points[7] = -1e12;
        let verdicts = run(&config, &points, MINUTE);
        prop_assert!(verdicts.iter().all(|v| v.alarm.is_none() && v.expected.is_none()));
    }
}

#[test]
fn gaussian_noise_rarely_alarms() {
    let config = DetectorConfig::default();
    let mut total = 0;
    for seed in 0..10 {
        total += alarms(&run(&config, &noise(seed, 100.0, 5.0, 10_000), 10)).len();
    }
    // 100,000 points at the default tail risk of 1e-4 per direction.
    assert!(total <= 60, "{total} alarms in 100,000 points of noise");
}

#[test]
fn a_spike_of_ten_spreads_alarms_as_a_spike_above() {
    let mut points = noise(1, 100.0, 5.0, 500);
    points[400] = 150.0;
    let verdicts = run(&DetectorConfig::default(), &points, 10);
    let alarm = verdicts[400].alarm.expect("the spike alarms");
    assert_eq!(alarm.kind, AlarmKind::Spike);
    assert_eq!(alarm.deviation, Deviation::Above);
    assert_eq!(verdicts[400].score, 1.0);
}

#[test]
fn a_lasting_shift_of_two_spreads_alarms_as_a_level_shift_within_thirty_points() {
    let mut points = noise(2, 100.0, 5.0, 600);
    for point in &mut points[400..] {
        *point += 10.0;
    }
    let verdicts = run(&DetectorConfig::default(), &points, 10);
    let first = alarms(&verdicts)
        .into_iter()
        .find(|&i| i >= 400)
        .expect("the shift alarms");
    assert!(first < 430, "first alarm at point {first}");
    assert!(
        verdicts[400..430]
            .iter()
            .any(|v| v.alarm.is_some_and(|a| a.kind == AlarmKind::LevelShift))
    );
}

#[test]
fn an_upward_detector_ignores_a_drop() {
    let mut points = noise(3, 100.0, 5.0, 500);
    for point in &mut points[400..] {
        *point = 10.0;
    }
    let up = DetectorConfig {
        direction: Direction::Up,
        ..DetectorConfig::default()
    };
    assert!(alarms(&run(&up, &points, 10)).iter().all(|&i| i < 400));
    let both = DetectorConfig::default();
    let drop = run(&both, &points, 10)[400].alarm.expect("the drop alarms");
    assert_eq!(drop.deviation, Deviation::Below);
}

#[test]
fn a_change_below_the_smallest_that_matters_scores_below_one_and_does_not_alarm() {
    // Very steady: 100 ± 0.1; then 110, +100 spreads but only +10 %.
    let mut points = noise(4, 100.0, 0.1, 300);
    points[250] = 110.0;
    let config = signal_config(Signal::Throughput, 5.0);
    let verdict = run(&config, &points, 10)[250];
    assert_eq!(verdict.alarm, None);
    assert!(
        verdict.score < 1.0 && verdict.score > 0.2,
        "{}",
        verdict.score
    );
}

#[test]
fn a_flat_zero_error_rate_alarms_when_errors_appear() {
    let mut points = vec![0.0; 100];
    points.extend([0.01, 0.5, 0.5]);
    let verdicts = run(&signal_config(Signal::ErrorRate, 5.0), &points, 10);
    assert_eq!(verdicts[100].alarm, None, "1 % is under the 2-point floor");
    assert!(verdicts[101].alarm.is_some());
}

#[test]
fn not_a_number_is_refused_and_changes_nothing() {
    let mut detector = Detector::new(DetectorConfig::default());
    for i in 0..50 {
        detector.update(i, 10.0).expect("finite");
    }
    assert_eq!(detector.update(50, f64::NAN), Err(NotFinite));
    assert_eq!(detector.update(50, f64::INFINITY), Err(NotFinite));
    let verdict = detector.update(51, 10.0).expect("finite");
    assert_eq!(verdict.expected, Some(10.0));
}

/// Hourly points with a daily swing of ±30 around 100, noise of 3.
fn daily_rhythm(days: usize) -> Vec<f64> {
    let hours = days * 24;
    let noise = noise(5, 0.0, 3.0, hours);
    (0..hours)
        .map(|h| {
            let phase = (h % 24) as f64 / 24.0 * std::f64::consts::TAU;
            100.0 + 30.0 * phase.sin() + noise[h]
        })
        .collect()
}

#[test]
fn the_daily_profile_finds_a_spike_that_a_daily_rhythm_hides() {
    let mut points = daily_rhythm(28);
    let spike = 24 * 25 + 6;
    points[spike] += 40.0;
    let hourly = 3600;
    let plain = DetectorConfig {
        half_life_points: 60.0,
        ..DetectorConfig::default()
    };
    let seasonal = DetectorConfig {
        daily_seasonality: true,
        ..plain.clone()
    };
    let plain_alarms = alarms(&run(&plain, &points, hourly));
    let seasonal_alarms = alarms(&run(&seasonal, &points, hourly));
    // Without the profile the rhythm widens the spread until the spike hides in it.
    assert!(!plain_alarms.contains(&spike), "{plain_alarms:?}");
    assert!(seasonal_alarms.contains(&spike), "{seasonal_alarms:?}");
    let after_a_week = seasonal_alarms.iter().filter(|&&i| i >= 7 * 24).count();
    assert!(after_a_week <= 2, "{seasonal_alarms:?}");
}
