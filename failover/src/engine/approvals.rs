//! An operator's answer to a decision awaiting approval.

use super::{Engine, Phase, act};
use crate::event::Event;
use crate::rule::Rule;

impl Engine {
    /// An operator approves a decision awaiting approval.
    pub fn approve(
        &mut self,
        rule: &str,
        decision: &str,
        operator: &str,
        now: u64,
    ) -> Result<Vec<Event>, String> {
        let found = self.awaiting(rule, decision)?;
        let mut events = vec![Event::Approved {
            rule: rule.to_owned(),
            decision: decision.to_owned(),
            operator: operator.to_owned(),
        }];
        if let Some(reason) = self.guardrail(&found, now, 0.0, false) {
            events.push(Event::Suppressed {
                rule: rule.to_owned(),
                reason,
            });
            return Ok(events);
        }
        let state = self.states.get_mut(rule).expect("awaiting has a state");
        act(&found, state, decision.to_owned(), now, false, &mut events);
        Ok(events)
    }

    /// An operator rejects a decision awaiting approval; the rule watches
    /// again after its cooldown.
    pub fn reject(
        &mut self,
        rule: &str,
        decision: &str,
        operator: &str,
        now: u64,
    ) -> Result<Vec<Event>, String> {
        let found = self.awaiting(rule, decision)?;
        let state = self.states.get_mut(rule).expect("awaiting has a state");
        state.phase = Phase::Cooldown {
            until: now + found.cooldown_s * 1000,
        };
        Ok(vec![Event::Rejected {
            rule: rule.to_owned(),
            decision: decision.to_owned(),
            operator: operator.to_owned(),
        }])
    }

    fn awaiting(&self, rule: &str, decision: &str) -> Result<Rule, String> {
        let found = self
            .rules
            .rule(rule)
            .ok_or_else(|| format!("no rule `{rule}`"))?;
        match self.states.get(rule).map(|s| &s.phase) {
            Some(Phase::AwaitingApproval { decision: d }) if d == decision => Ok(found.clone()),
            Some(Phase::AwaitingApproval { decision: d }) => Err(format!(
                "rule `{rule}` awaits approval of decision `{d}`, not `{decision}`"
            )),
            _ => Err(format!("rule `{rule}` has no decision awaiting approval")),
        }
    }
}
