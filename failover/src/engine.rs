//! The decision loop: on every tick each rule's conditions are tested on
//! the twin's signals, and a rule whose failure condition has held long
//! enough decides, within its guardrails, what its mode lets it do.
//!
//! Per rule: watching → (decided) → awaiting approval | active → (recover
//! held) → fail-back → cooldown → watching. A dry run goes through the
//! same states without moving traffic, so its records say what `auto`
//! would have done and when.

use std::collections::{BTreeMap, VecDeque};

use meshtwin_model::routing::Override;

use crate::event::Event;
use crate::observed::{Observed, holds, value};
use crate::prediction::predict;
use crate::rule::{Mode, Rule};
use crate::rule_set::{RuleSet, expires_unix_ms};

const HOUR_MS: u64 = 3_600_000;

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Watching,
    AwaitingApproval {
        decision: String,
    },
    Active {
        decision: String,
        dry_run: bool,
        moved: Option<Override>,
    },
    Cooldown {
        until: u64,
    },
}

#[derive(Debug, Clone)]
struct RuleState {
    phase: Phase,
    failing_since: Option<u64>,
    recovering_since: Option<u64>,
    /// When the rule moved traffic (or, in a dry run, would have).
    acted_at: VecDeque<u64>,
    /// The guardrail last reported this episode, so it is said once.
    suppressed: Option<String>,
}

impl Default for RuleState {
    fn default() -> Self {
        Self {
            phase: Phase::Watching,
            failing_since: None,
            recovering_since: None,
            acted_at: VecDeque::new(),
            suppressed: None,
        }
    }
}

/// A rule's state, for the API.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleStatus {
    pub rule: String,
    pub mode: Mode,
    /// watching, awaiting_approval, active, dry_run_active or cooldown.
    pub phase: &'static str,
    pub decision: Option<String>,
    pub failing_since_unix_ms: Option<u64>,
    pub recovering_since_unix_ms: Option<u64>,
}

pub struct Engine {
    rules: RuleSet,
    states: BTreeMap<String, RuleState>,
}

impl Engine {
    pub fn new(rules: RuleSet) -> Self {
        Self {
            rules,
            states: BTreeMap::new(),
        }
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// Puts `rules` in force. A rule that is gone or changed while it had
    /// moved traffic fails back first.
    pub fn replace_rules(&mut self, rules: RuleSet) -> Vec<Event> {
        let mut events = Vec::new();
        for (name, state) in &mut self.states {
            let unchanged = rules.rule(name) == self.rules.rule(name);
            if !unchanged {
                end(name, state, "the rule was changed or removed", &mut events);
                *state = RuleState::default();
            }
        }
        self.rules = rules;
        events
    }

    /// Evaluates every rule at `now_ms`.
    pub fn tick(&mut self, now_ms: u64, observed: &Observed) -> Vec<Event> {
        let mut events = Vec::new();
        for rule in self.rules.rules.clone() {
            self.tick_rule(&rule, now_ms, observed, &mut events);
        }
        events
    }

    fn tick_rule(&mut self, rule: &Rule, now: u64, observed: &Observed, events: &mut Vec<Event>) {
        let expired = matches!(expires_unix_ms(rule), Some(Ok(at)) if at <= now);
        let state = self.states.entry(rule.name.clone()).or_default();
        if rule.mode == Mode::Off || expired {
            let why = if expired {
                "the rule expired"
            } else {
                "the rule is off"
            };
            end(&rule.name, state, why, events);
            *state = RuleState::default();
            return;
        }
        let scope = observed.scope(&rule.service, &rule.locality);
        state.failing_since = since(state.failing_since, holds(&rule.when, scope), now);
        state.recovering_since = since(state.recovering_since, holds(&rule.recover, scope), now);
        if state.failing_since.is_none() {
            state.suppressed = None;
        }
        let recovered = held(state.recovering_since, rule.recover.for_s, now);
        if matches!(state.phase, Phase::Cooldown { until } if now >= until) {
            state.phase = Phase::Watching;
        }
        match state.phase.clone() {
            Phase::Cooldown { .. } => {}
            Phase::Watching => {
                if held(state.failing_since, rule.when.for_s, now) {
                    self.decide(rule, now, observed, events);
                }
            }
            Phase::AwaitingApproval { decision } if recovered => {
                events.push(Event::Withdrawn {
                    rule: rule.name.clone(),
                    decision,
                    reason: "recovered before anyone approved".to_owned(),
                });
                state.phase = Phase::Watching;
            }
            Phase::AwaitingApproval { .. } => {}
            Phase::Active {
                decision, dry_run, ..
            } if recovered && rule.failback => {
                events.push(Event::FailBack {
                    rule: rule.name.clone(),
                    decision,
                    reason: format!(
                        "{} held for {} s",
                        describe(&rule.recover),
                        rule.recover.for_s
                    ),
                    dry_run,
                });
                state.phase = Phase::Cooldown {
                    until: now + rule.cooldown_s * 1000,
                };
            }
            Phase::Active {
                decision,
                dry_run: false,
                moved: Some(current),
            } => {
                let ttl = rule.override_ttl_s * 1000;
                if current.expires_unix_ms <= now + ttl / 2 {
                    let renewed = Override {
                        expires_unix_ms: now + ttl,
                        ..current
                    };
                    state.phase = Phase::Active {
                        decision: decision.clone(),
                        dry_run: false,
                        moved: Some(renewed.clone()),
                    };
                    events.push(Event::Renew {
                        rule: rule.name.clone(),
                        decision,
                        overrides: renewed,
                    });
                }
            }
            Phase::Active { .. } => {}
        }
    }

    /// The failure condition held for its time: check the guardrails,
    /// record the decision and do what the mode allows.
    fn decide(&mut self, rule: &Rule, now: u64, observed: &Observed, events: &mut Vec<Event>) {
        let prediction = predict(rule, observed);
        let dry_run = rule.mode == Mode::DryRun;
        let guardrail = self.guardrail(rule, now, prediction.moved_share, dry_run);
        let state = self.states.get_mut(&rule.name).expect("state exists");
        if let Some(reason) = guardrail {
            if state.suppressed.as_ref() != Some(&reason) {
                state.suppressed = Some(reason.clone());
                events.push(Event::Suppressed {
                    rule: rule.name.clone(),
                    reason,
                });
            }
            return;
        }
        let decision = format!("{}@{now}", rule.name);
        let held_s = state.failing_since.map_or(0, |since| (now - since) / 1000);
        let scope = observed.scope(&rule.service, &rule.locality);
        events.push(Event::Decided {
            rule: rule.name.clone(),
            decision: decision.clone(),
            mode: rule.mode,
            signal: rule.when.signal.as_str(),
            value: scope.and_then(|s| value(s, rule.when.signal)),
            held_s,
            prediction,
        });
        if rule.mode == Mode::Approval {
            state.phase = Phase::AwaitingApproval { decision };
        } else {
            act(rule, state, decision, now, dry_run, events);
        }
    }

    /// Why the rule may not act now, if it may not.
    fn guardrail(&self, rule: &Rule, now: u64, share: f64, dry_run: bool) -> Option<String> {
        let state = &self.states[&rule.name];
        let recent = state
            .acted_at
            .iter()
            .filter(|at| **at + HOUR_MS > now)
            .count();
        if recent >= rule.max_actions_per_hour as usize {
            return Some(format!(
                "rate limit: {recent} fail-overs in the last hour, the rule allows {}",
                rule.max_actions_per_hour
            ));
        }
        if share > rule.max_traffic_share {
            return Some(format!(
                "blast radius: {}@{} carries {:.0} % of {}'s traffic, the rule may move at most {:.0} %",
                rule.service,
                rule.locality,
                share * 100.0,
                rule.service,
                rule.max_traffic_share * 100.0
            ));
        }
        if rule.shift_traffic.is_some() {
            let moved: std::collections::BTreeSet<&str> = self
                .states
                .iter()
                .filter(|(_, s)| matches!(&s.phase, Phase::Active { dry_run: d, moved: Some(_), .. } if *d == dry_run))
                .filter_map(|(name, _)| self.rules.rule(name).map(|r| r.service.as_str()))
                .filter(|service| *service != rule.service)
                .collect();
            let limit = self.rules.limits.max_services_at_once as usize;
            if moved.len() >= limit {
                return Some(format!(
                    "blast radius: traffic of {} service(s) is already moved ({}), the limit is {limit}",
                    moved.len(),
                    moved.into_iter().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        None
    }

    /// The overrides in force now, for the routes served to proxies.
    pub fn overrides(&self) -> Vec<Override> {
        self.states
            .values()
            .filter_map(|s| match &s.phase {
                Phase::Active {
                    dry_run: false,
                    moved,
                    ..
                } => moved.clone(),
                _ => None,
            })
            .collect()
    }

    pub fn status(&self) -> Vec<RuleStatus> {
        self.rules
            .rules
            .iter()
            .map(|rule| {
                let state = self.states.get(&rule.name).cloned().unwrap_or_default();
                let (phase, decision) = match state.phase {
                    Phase::Watching => ("watching", None),
                    Phase::AwaitingApproval { decision } => ("awaiting_approval", Some(decision)),
                    Phase::Active {
                        decision,
                        dry_run: true,
                        ..
                    } => ("dry_run_active", Some(decision)),
                    Phase::Active { decision, .. } => ("active", Some(decision)),
                    Phase::Cooldown { .. } => ("cooldown", None),
                };
                RuleStatus {
                    rule: rule.name.clone(),
                    mode: rule.mode,
                    phase,
                    decision,
                    failing_since_unix_ms: state.failing_since,
                    recovering_since_unix_ms: state.recovering_since,
                }
            })
            .collect()
    }
}

/// Moves traffic (unless a dry run) and enters the active phase.
fn act(
    rule: &Rule,
    state: &mut RuleState,
    decision: String,
    now: u64,
    dry_run: bool,
    events: &mut Vec<Event>,
) {
    state.acted_at.push_back(now);
    while state.acted_at.front().is_some_and(|at| at + HOUR_MS <= now) {
        state.acted_at.pop_front();
    }
    let moved = rule.shift_traffic.as_ref().map(|shift| Override {
        service: rule.service.clone(),
        expires_unix_ms: now + rule.override_ttl_s * 1000,
        locality_priorities: [(shift.to_locality.clone(), 0), (rule.locality.clone(), 1)].into(),
        faults: None,
        reason: format!("failover rule `{}`, decision `{decision}`", rule.name),
    });
    if !dry_run {
        events.push(Event::Act {
            rule: rule.name.clone(),
            decision: decision.clone(),
            overrides: moved.clone(),
        });
    }
    state.phase = Phase::Active {
        decision,
        dry_run,
        moved,
    };
}

/// Undoes whatever the rule has in flight.
fn end(rule: &str, state: &RuleState, reason: &str, events: &mut Vec<Event>) {
    match &state.phase {
        Phase::Active {
            decision, dry_run, ..
        } => events.push(Event::FailBack {
            rule: rule.to_owned(),
            decision: decision.clone(),
            reason: reason.to_owned(),
            dry_run: *dry_run,
        }),
        Phase::AwaitingApproval { decision } => events.push(Event::Withdrawn {
            rule: rule.to_owned(),
            decision: decision.clone(),
            reason: reason.to_owned(),
        }),
        Phase::Watching | Phase::Cooldown { .. } => {}
    }
}

/// When a condition started holding, now that it does or does not.
fn since(previous: Option<u64>, holds: bool, now: u64) -> Option<u64> {
    holds.then(|| previous.unwrap_or(now))
}

fn held(since: Option<u64>, for_s: u64, now: u64) -> bool {
    since.is_some_and(|since| now.saturating_sub(since) >= for_s * 1000)
}

fn describe(c: &crate::rule::Condition) -> String {
    let name = c.signal.as_str();
    match (c.above, c.below, c.active) {
        (Some(v), _, _) => format!("{name} above {v}"),
        (_, Some(v), _) => format!("{name} below {v}"),
        (_, _, Some(a)) => format!("{name} active = {a}"),
        _ => name.to_owned(),
    }
}

mod approvals;
#[cfg(test)]
mod tests;
