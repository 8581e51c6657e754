//! The rules file (`--failover-rules FILE`) and the checks every rule
//! passes, from the file or the API: all problems are reported at once.

use meshtwin_model::config_file::{ConfigFile, ConfigProblems};
use serde::{Deserialize, Serialize};

use crate::rule::{Condition, Limits, Rule, Signal};

/// The keys of a rule, so that a misspelt one is reported beside the
/// rule's other problems (serde stops at the first).
const RULE_KEYS: &[&str] = &[
    "name",
    "mode",
    "service",
    "locality",
    "when",
    "recover",
    "shift_traffic",
    "webhooks",
    "exec",
    "cooldown_s",
    "max_actions_per_hour",
    "max_traffic_share",
    "override_ttl_s",
    "failback",
    "probe_path",
    "expires",
];

/// Every rule in force and the limits over them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RuleSet {
    pub limits: Limits,
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// Reads a rules file's text; `origin` (the path) prefixes problems.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigProblems> {
        let defaults = Self::default();
        let mut file =
            ConfigFile::parse(text, &defaults, &[]).map_err(|e| prefixed(origin, e.0))?;
        let limits = file.section("limits", defaults.limits);
        let raw: Vec<toml::Value> = file.section("rules", Vec::new());
        let finished = file.finish(origin);
        let mut problems = finished.err().map(|e| e.0).unwrap_or_default();
        let mut rules = Vec::with_capacity(raw.len());
        for (i, mut value) in raw.into_iter().enumerate() {
            if let toml::Value::Table(table) = &mut value {
                let unknown: Vec<String> = table
                    .keys()
                    .filter(|k| !RULE_KEYS.contains(&k.as_str()))
                    .cloned()
                    .collect();
                for key in unknown {
                    problems.push(format!("{origin}: rules[{i}]: unknown key `{key}`"));
                    table.remove(&key);
                }
            }
            match value.try_into::<Rule>() {
                Ok(rule) => rules.push((i, rule)),
                Err(error) => {
                    problems.push(format!("{origin}: rules[{i}]: {}", error.message().trim()))
                }
            }
        }
        let found = set_problems(&limits, &rules);
        problems.extend(found.into_iter().map(|p| format!("{origin}: {p}")));
        let set = Self {
            limits,
            rules: rules.into_iter().map(|(_, rule)| rule).collect(),
        };
        if problems.is_empty() {
            Ok(set)
        } else {
            Err(ConfigProblems(problems))
        }
    }

    /// Every problem with these rules.
    pub fn problems(&self) -> Vec<String> {
        let rules: Vec<(usize, Rule)> = self.rules.iter().cloned().enumerate().collect();
        set_problems(&self.limits, &rules)
    }

    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.name == name)
    }
}

/// Problems of `rules`, each with its index in the file or request.
fn set_problems(limits: &Limits, rules: &[(usize, Rule)]) -> Vec<String> {
    let mut problems = Vec::new();
    if limits.max_services_at_once == 0 {
        problems.push("limits.max_services_at_once must be at least 1 (to stop every rule, set mode = \"off\")".to_owned());
    }
    for (n, (i, rule)) in rules.iter().enumerate() {
        let at = format!("rules[{i}] `{}`", rule.name);
        problems.extend(
            rule_problems(rule)
                .into_iter()
                .map(|p| format!("{at}: {p}")),
        );
        if rules[..n].iter().any(|(_, r)| r.name == rule.name) {
            problems.push(format!("{at}: another rule has the same name"));
        }
    }
    problems
}

fn prefixed(origin: &str, problems: Vec<String>) -> ConfigProblems {
    ConfigProblems(
        problems
            .into_iter()
            .map(|p| format!("{origin}: {p}"))
            .collect(),
    )
}

/// Every problem with one rule, without its name.
pub fn rule_problems(rule: &Rule) -> Vec<String> {
    let mut problems = Vec::new();
    let mut problem = |p: String| problems.push(p);
    let name_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    if rule.name.is_empty() || !rule.name.chars().all(name_ok) {
        problem("name must be non-empty: lowercase letters, digits, `-`, `_`, `.`".to_owned());
    }
    for (key, value) in [("service", &rule.service), ("locality", &rule.locality)] {
        if value.trim().is_empty() {
            problem(format!("{key} is required"));
        }
    }
    let conditions =
        [("when", &rule.when), ("recover", &rule.recover)].map(|(at, c)| condition_problems(at, c));
    let conditions_ok = conditions.iter().all(Vec::is_empty);
    conditions.into_iter().flatten().for_each(&mut problem);
    if rule.recover.for_s == 0 {
        problem(
            "recover.for_s must be at least 1: recovery must hold before traffic moves back"
                .to_owned(),
        );
    }
    if let Some(p) = overlap_problem(&rule.when, &rule.recover).filter(|_| conditions_ok) {
        problem(p);
    }
    if rule.shift_traffic.is_none() && rule.webhooks.is_empty() && rule.exec.is_empty() {
        problem("no action: give shift_traffic, webhooks or exec".to_owned());
    }
    if let Some(shift) = &rule.shift_traffic {
        if shift.to_locality.trim().is_empty() {
            problem("shift_traffic.to_locality is required".to_owned());
        } else if shift.to_locality == rule.locality {
            problem(format!(
                "shift_traffic.to_locality is the rule's own locality `{}`",
                rule.locality
            ));
        }
    }
    for (i, hook) in rule.webhooks.iter().enumerate() {
        if hook.url.starts_with("https://") {
            problem(format!(
                "webhooks[{i}].url: https:// is not supported yet; send to an http:// relay on a trusted network"
            ));
        } else if !hook.url.starts_with("http://") {
            problem(format!("webhooks[{i}].url must start with http://"));
        }
        if hook.secret_env.trim().is_empty() {
            problem(format!(
                "webhooks[{i}].secret_env is required: the environment variable holding the HMAC secret"
            ));
        }
        if !(1..=10).contains(&hook.max_attempts) {
            problem(format!("webhooks[{i}].max_attempts must be 1 to 10"));
        }
        if !(1..=300).contains(&hook.timeout_s) {
            problem(format!("webhooks[{i}].timeout_s must be 1 to 300"));
        }
    }
    for (i, hook) in rule.exec.iter().enumerate() {
        if hook
            .argv
            .first()
            .is_none_or(|program| program.trim().is_empty())
        {
            problem(format!("exec[{i}].argv must name a program"));
        }
        if !(1..=3600).contains(&hook.timeout_s) {
            problem(format!("exec[{i}].timeout_s must be 1 to 3600"));
        }
    }
    if rule.max_actions_per_hour == 0 {
        problem(
            "max_actions_per_hour must be at least 1 (to stop the rule, set mode = \"off\")"
                .to_owned(),
        );
    }
    if !(rule.max_traffic_share > 0.0 && rule.max_traffic_share <= 1.0) {
        problem("max_traffic_share must be above 0 and at most 1".to_owned());
    }
    if !rule.probe_path.starts_with('/') {
        problem("probe_path must start with /".to_owned());
    }
    if !(10..=86_400).contains(&rule.override_ttl_s) {
        problem("override_ttl_s must be 10 to 86400".to_owned());
    }
    if let Some(Err(e)) = expires_unix_ms(rule) {
        problem(e);
    }
    problems
}

/// When the rule stops being evaluated, if it says.
pub fn expires_unix_ms(rule: &Rule) -> Option<Result<u64, String>> {
    let text = rule.expires.as_ref()?;
    Some(
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000).max(0) as u64)
            .map_err(|e| format!("expires `{text}` is not an RFC 3339 time: {e}")),
    )
}

fn condition_problems(at: &str, c: &Condition) -> Vec<String> {
    let mut problems = Vec::new();
    let name = c.signal.as_str();
    if c.signal.is_flag() {
        if c.above.is_some() || c.below.is_some() {
            problems.push(format!(
                "{at}: {name} is a flag: use `active = true|false`, not above/below"
            ));
        }
        if c.active.is_none() {
            problems.push(format!(
                "{at}: {name} needs `active = true` or `active = false`"
            ));
        }
        return problems;
    }
    if c.active.is_some() {
        problems.push(format!(
            "{at}: {name} is a number: use above or below, not active"
        ));
    }
    match (c.above, c.below) {
        (Some(_), Some(_)) | (None, None) => {
            problems.push(format!("{at}: give exactly one of above and below"));
        }
        (Some(v), None) | (None, Some(v)) => {
            if !v.is_finite() || v < 0.0 {
                problems.push(format!(
                    "{at}: the threshold must be a number of at least 0"
                ));
            } else if c.signal == Signal::ErrorRatio && v > 1.0 {
                problems.push(format!("{at}: error_ratio is a share from 0 to 1, not {v}"));
            }
        }
    }
    problems
}

/// A recovery that would hold while the failure still holds would make
/// the rule flap: on the same signal, the two must exclude each other.
fn overlap_problem(when: &Condition, recover: &Condition) -> Option<String> {
    if when.signal != recover.signal {
        return None;
    }
    let name = when.signal.as_str();
    if when.signal.is_flag() {
        let active = when.active?;
        return (recover.active == Some(active))
            .then(|| format!("recover: {name} active = {active} is the failure condition itself"));
    }
    match (when.above, when.below, recover.above, recover.below) {
        (Some(fail), _, _, Some(ok)) if ok > fail => Some(format!(
            "recover: {name} below {ok} overlaps the failure ({name} above {fail}); use at most {fail}"
        )),
        (_, Some(fail), Some(ok), _) if ok < fail => Some(format!(
            "recover: {name} above {ok} overlaps the failure ({name} below {fail}); use at least {fail}"
        )),
        (Some(_), _, Some(_), _) | (_, Some(_), _, Some(_)) => {
            Some(format!("recover: {name} must go the other way from `when`"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
