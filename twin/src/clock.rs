//! The twin's event-time clock.
//!
//! The clock follows the span timestamps (the largest end time seen), so
//! replaying yesterday's spans builds yesterday's graph. When spans stop
//! arriving, it keeps moving with the wall clock after a grace period, so
//! rates decay and idle edges expire on a live system too. It never goes
//! backwards.

/// How long the clock waits for more spans before following the wall clock.
pub(crate) const IDLE_GRACE_NANOS: u64 = 5_000_000_000;

#[derive(Debug, Clone, Default)]
pub(crate) struct TwinClock {
    now: u64,
    watermark: u64,
    /// Wall time at which `watermark` last advanced.
    watermark_wall: u64,
}

impl TwinClock {
    /// Records a span that ended at `event` (already capped at `wall`).
    pub(crate) fn observe(&mut self, event: u64, wall: u64) {
        if event > self.watermark {
            self.watermark = event;
            self.watermark_wall = wall;
        }
        self.now = self.now.max(self.watermark);
    }

    /// Lets the clock follow the wall clock once no span has moved it for
    /// longer than the grace period.
    pub(crate) fn tick(&mut self, wall: u64) {
        if self.watermark == 0 {
            return;
        }
        let idle = wall.saturating_sub(self.watermark_wall);
        if idle > IDLE_GRACE_NANOS {
            self.now = self.now.max(self.watermark + (idle - IDLE_GRACE_NANOS));
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn follows_event_time_not_wall_time() {
        let mut clock = TwinClock::default();
        // Spans from a day ago, replayed now.
        clock.observe(100 * S, 86_500 * S);
        clock.observe(90 * S, 86_500 * S);
        assert_eq!(clock.now(), 100 * S);
        clock.tick(86_501 * S);
        assert_eq!(clock.now(), 100 * S, "within the grace period");
    }

    #[test]
    fn moves_with_the_wall_when_idle_and_never_back() {
        let mut clock = TwinClock::default();
        clock.observe(100 * S, 100 * S);
        clock.tick(108 * S);
        assert_eq!(clock.now(), 103 * S);
        clock.observe(101 * S, 108 * S);
        assert_eq!(clock.now(), 103 * S, "monotonic");
        clock.observe(110 * S, 110 * S);
        assert_eq!(clock.now(), 110 * S);
    }

    #[test]
    fn an_empty_clock_stays_at_zero() {
        let mut clock = TwinClock::default();
        clock.tick(1_000 * S);
        assert_eq!(clock.now(), 0);
    }
}
