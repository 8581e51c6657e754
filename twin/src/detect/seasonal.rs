//! An hour-of-day profile learned across days: each hour's offset from the
//! level is the mean of that hour's (clipped) residuals, folded into the
//! hour's offset once per day with a half-life of [`HALF_LIFE_DAYS`].
//!
//! It helps series sampled every few minutes or hours, whose level moves
//! slower than a day. A series sampled every few seconds follows its daily
//! rhythm through the level alone.

const HOUR: i64 = 3600;
const HALF_LIFE_DAYS: f64 = 3.0;

#[derive(Debug, Clone)]
pub(crate) struct DailyProfile {
    offsets: [f64; 24],
    days: [u16; 24],
    /// The hour (since the epoch) being summed, and its sum and count.
    hour: Option<i64>,
    sum: f64,
    count: u32,
}

impl Default for DailyProfile {
    fn default() -> Self {
        Self {
            offsets: [0.0; 24],
            days: [0; 24],
            hour: None,
            sum: 0.0,
            count: 0,
        }
    }
}

impl DailyProfile {
    /// The learned offset for the hour of day of `at` (Unix seconds); 0
    /// until that hour has been seen on one whole day.
    pub(crate) fn offset(&self, at: i64) -> f64 {
        let slot = hour_of_day(at.div_euclid(HOUR));
        if self.days[slot] > 0 {
            self.offsets[slot]
        } else {
            0.0
        }
    }

    /// Adds one point's residual from the level (not from the level plus
    /// this profile) at `at`.
    pub(crate) fn learn(&mut self, at: i64, residual: f64) {
        let hour = at.div_euclid(HOUR);
        if self.hour != Some(hour) {
            self.fold();
            self.hour = Some(hour);
        }
        self.sum += residual;
        self.count += 1;
    }

    fn fold(&mut self) {
        let Some(hour) = self.hour else { return };
        if self.count == 0 {
            return;
        }
        let slot = hour_of_day(hour);
        let mean = self.sum / f64::from(self.count);
        if self.days[slot] == 0 {
            self.offsets[slot] = mean;
        } else {
            let weight = 1.0 - 0.5f64.powf(1.0 / HALF_LIFE_DAYS);
            self.offsets[slot] += weight * (mean - self.offsets[slot]);
        }
        self.days[slot] = self.days[slot].saturating_add(1);
        self.sum = 0.0;
        self.count = 0;
    }
}

fn hour_of_day(hour: i64) -> usize {
    hour.rem_euclid(24) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_is_learned_once_it_has_passed_and_applies_a_day_later() {
        let mut profile = DailyProfile::default();
        let nine = 9 * HOUR;
        for minute in 0..60 {
            profile.learn(nine + minute * 60, 10.0);
        }
        assert_eq!(profile.offset(nine), 0.0, "the hour is still being summed");
        profile.learn(nine + HOUR, 0.0);
        assert_eq!(profile.offset(nine + 24 * HOUR + 120), 10.0);
        assert_eq!(profile.offset(nine + HOUR), 0.0);
    }
}
