//! Streaming anomaly detection for one series at a time.
//!
//! In: points `(time, value)` of a series, in time order. Out: per point,
//! what was expected, a score in [0, 1] and whether it alarmed, and why (a
//! spike beyond a tail threshold, or a lasting level shift).
//!
//! - [`robust`]: the baseline, a Huber-weighted moving level and spread,
//!   started from the median and MAD of the warm-up points;
//! - [`seasonal`]: an optional hour-of-day profile learned across days;
//! - [`spot`]: the tail threshold from extreme-value theory (SPOT);
//! - [`cusum`]: the change-point test for level shifts;
//! - [`signals`]: the settings the twin uses for latency, errors and
//!   throughput.
//!
//! No alarm during warm-up; O(1) work per point and a fixed size per
//! series once warm. Deterministic: the same points give the same verdicts.

mod config;
mod cusum;
mod detector;
mod robust;
mod seasonal;
mod signals;
mod spot;
#[cfg(test)]
mod tests;

pub use config::{DetectorConfig, Direction};
pub use detector::{Alarm, Detector, NotFinite, Verdict};
pub use meshtwin_model::anomaly::{AlarmKind, Deviation, Signal};
pub use signals::signal_config;
