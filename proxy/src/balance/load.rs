//! An endpoint's load: requests in flight and a peak-EWMA of its response
//! time. A slow answer raises the average at once; fast ones lower it
//! with a 10 s decay, so one slow endpoint stops attracting traffic fast
//! and earns it back gradually.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const DECAY: Duration = Duration::from_secs(10);
/// What an endpoint that has not answered yet is assumed to take.
const DEFAULT_RTT: Duration = Duration::from_millis(30);

pub struct Load {
    in_flight: AtomicUsize,
    ewma: Mutex<Ewma>,
}

struct Ewma {
    nanos: f64,
    at: Instant,
}

/// Counts a request as in flight until dropped.
pub struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Load {
    fn default() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            ewma: Mutex::new(Ewma {
                nanos: DEFAULT_RTT.as_nanos() as f64,
                at: Instant::now(),
            }),
        }
    }
}

impl Load {
    pub fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Expected wait for one more request: latency × (in flight + 1).
    pub fn cost(&self, now: Instant) -> f64 {
        let ewma = self.ewma.lock().expect("load lock");
        // With no recent answers the estimate drifts back to the default.
        let w = decay_weight(now.saturating_duration_since(ewma.at));
        let nanos = ewma.nanos * w + DEFAULT_RTT.as_nanos() as f64 * (1.0 - w);
        nanos * (self.in_flight() + 1) as f64
    }

    /// Folds one response time into the average.
    pub fn observe(&self, rtt: Duration, now: Instant) {
        let rtt = rtt.as_nanos() as f64;
        let mut ewma = self.ewma.lock().expect("load lock");
        if rtt > ewma.nanos {
            ewma.nanos = rtt;
        } else {
            let w = decay_weight(now.saturating_duration_since(ewma.at));
            ewma.nanos = ewma.nanos * w + rtt * (1.0 - w);
        }
        ewma.at = now;
    }
}

fn decay_weight(elapsed: Duration) -> f64 {
    (-elapsed.as_secs_f64() / DECAY.as_secs_f64()).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_answer_raises_the_cost_at_once_and_fast_ones_lower_it_gradually() {
        let load = Load::default();
        let t0 = Instant::now();
        load.observe(Duration::from_millis(1), t0);
        let fast = load.cost(t0);
        load.observe(Duration::from_millis(500), t0);
        let slow = load.cost(t0);
        // The default guess (30 ms) decays slowly; 500 ms replaces it.
        assert!(slow > 10.0 * fast, "{slow} vs {fast}");
        load.observe(Duration::from_millis(1), t0 + Duration::from_secs(1));
        let after_one = load.cost(t0 + Duration::from_secs(1));
        assert!(after_one < slow && after_one > 10.0 * fast, "{after_one}");
    }

    #[test]
    fn requests_in_flight_multiply_the_cost() {
        let load = Load::default();
        let now = Instant::now();
        let idle = load.cost(now);
        let _a = load.start();
        let _b = load.start();
        assert_eq!(load.in_flight(), 2);
        assert!((load.cost(now) / idle - 3.0).abs() < 0.01);
        drop(_a);
        assert_eq!(load.in_flight(), 1);
    }
}
