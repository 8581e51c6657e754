//! Closed-loop failover: rules as data, the engine that decides from the
//! twin's signals, and the hash-chained audit log every decision goes to.
//! Synchronous and clock-free: the caller passes the time in.

pub mod audit;
pub mod rule;
pub mod rule_set;
pub mod signature;

pub use rule::{Condition, Limits, Mode, Rule, Signal};
pub use rule_set::RuleSet;
pub mod engine;
pub mod event;
pub mod observed;
mod prediction;
pub mod twin_signals;

pub use engine::{Engine, RuleStatus};
pub use event::{Event, Prediction};
pub use observed::{Observed, ScopeSignals};
pub use twin_signals::TwinSignals;
