//! A failover rule as data: when a signal of one service in one locality
//! has held past a threshold for long enough, move that service's traffic
//! to another locality (and call hooks), within limits; move it back once
//! the recovery condition has held for its own, longer, time.

use serde::{Deserialize, Serialize};

/// What a rule may do when its condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Evaluated by nobody.
    Off,
    /// Decides and records the predicted effect; never touches traffic.
    #[default]
    DryRun,
    /// Decides, then waits for an operator's approval before acting.
    Approval,
    /// Acts on its own.
    Auto,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::DryRun => "dry_run",
            Self::Approval => "approval",
            Self::Auto => "auto",
        }
    }
}

/// A signal the twin keeps per service and locality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Failed requests over all requests, last minute (0–1).
    ErrorRatio,
    /// 99th percentile latency, last minute, milliseconds.
    P99Ms,
    /// Requests per second, last minute.
    RatePerSecond,
    /// An anomaly is open on the service.
    Anomaly,
    /// An open incident includes the service.
    Incident,
}

impl Signal {
    /// Whether the signal is a yes/no (`active`) rather than a number.
    pub fn is_flag(self) -> bool {
        matches!(self, Self::Anomaly | Self::Incident)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ErrorRatio => "error_ratio",
            Self::P99Ms => "p99_ms",
            Self::RatePerSecond => "rate_per_second",
            Self::Anomaly => "anomaly",
            Self::Incident => "incident",
        }
    }
}

/// A signal compared with a threshold (`above` or `below`), or a flag
/// (`active`), that must hold for `for_s` seconds in a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub signal: Signal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default)]
    pub for_s: u64,
}

/// Moves the rule's service away from its locality: the proxies get an
/// override that puts `to_locality` first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftTraffic {
    pub to_locality: String,
}

/// An HTTP POST of the decision, signed with HMAC-SHA256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    /// Name of the environment variable that holds the signing secret, so
    /// that the secret is in no file.
    pub secret_env: String,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_hook_timeout")]
    pub timeout_s: u64,
}

/// A program run with the decision as JSON on its standard input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecHook {
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    #[serde(default = "default_hook_timeout")]
    pub timeout_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique; names the rule in decisions, overrides and the audit log.
    pub name: String,
    #[serde(default)]
    pub mode: Mode,
    pub service: String,
    pub locality: String,
    pub when: Condition,
    pub recover: Condition,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift_traffic: Option<ShiftTraffic>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<ExecHook>,
    /// After a fail-back, the rule does not fire again for this long.
    #[serde(default = "default_cooldown")]
    pub cooldown_s: u64,
    /// Fail-overs allowed in any hour.
    #[serde(default = "default_per_hour")]
    pub max_actions_per_hour: u32,
    /// Largest share (0–1) of the service's traffic the rule may move: the
    /// share its locality carried when the condition held.
    #[serde(default = "default_share")]
    pub max_traffic_share: f64,
    /// Each override lives this long unless renewed, so traffic is never
    /// pinned by a control plane that died.
    #[serde(default = "default_override_ttl")]
    pub override_ttl_s: u64,
    /// Move traffic back once `recover` has held.
    #[serde(default = "default_true")]
    pub failback: bool,
    /// While traffic is moved away, the control plane sends one `GET` of
    /// this path a second to each endpoint of the locality, so that its
    /// recovery shows in the twin.
    #[serde(default = "default_probe_path")]
    pub probe_path: String,
    /// RFC 3339; from then on the rule is not evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// Limits over all rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Services whose traffic may be moved at the same time.
    pub max_services_at_once: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_services_at_once: 1,
        }
    }
}

fn default_attempts() -> u32 {
    4
}
fn default_hook_timeout() -> u64 {
    10
}
fn default_cooldown() -> u64 {
    300
}
fn default_per_hour() -> u32 {
    4
}
fn default_share() -> f64 {
    1.0
}
fn default_override_ttl() -> u64 {
    120
}
fn default_probe_path() -> String {
    "/".to_owned()
}
fn default_true() -> bool {
    true
}
