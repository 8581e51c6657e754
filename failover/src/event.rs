//! What the engine decides. Each event is one audit record (`kind` is the
//! variant's name); the caller carries out the ones that act.

use meshtwin_model::routing::Override;
use serde::Serialize;

use crate::rule::Mode;

/// The effect a fail-over would have, worked out from the twin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub service: String,
    pub from_locality: String,
    pub to_locality: Option<String>,
    /// Requests per second that would move.
    pub moved_rate_per_second: f64,
    /// Share of the service's traffic that would move (0–1).
    pub moved_share: f64,
    /// Edges whose traffic moves: `caller → service@from` becomes
    /// `caller → service@to`, with their rates.
    pub edges: Vec<MovedEdge>,
    pub target_rate_per_second: f64,
    pub target_peak_rate_per_second: f64,
    /// Whether the target has served, at its peak, what it would carry.
    pub target_has_headroom: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MovedEdge {
    pub caller: String,
    pub rate_per_second: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The condition held for its time; what happens next depends on the
    /// mode.
    Decided {
        rule: String,
        decision: String,
        mode: Mode,
        signal: &'static str,
        value: Option<f64>,
        held_s: u64,
        prediction: Prediction,
    },
    /// The condition held but a guardrail stopped the action.
    Suppressed { rule: String, reason: String },
    /// An approval-mode decision was approved or rejected.
    Approved {
        rule: String,
        decision: String,
        operator: String,
    },
    Rejected {
        rule: String,
        decision: String,
        operator: String,
    },
    /// Move traffic and call the hooks.
    Act {
        rule: String,
        decision: String,
        #[serde(rename = "route_override")]
        overrides: Option<Override>,
    },
    /// Extend the override's expiry (not audited: nothing changes).
    Renew {
        rule: String,
        decision: String,
        #[serde(rename = "route_override")]
        overrides: Override,
    },
    /// Recovery held (or the rule ended): undo the move.
    FailBack {
        rule: String,
        decision: String,
        reason: String,
        dry_run: bool,
    },
    /// An approval that was no longer needed.
    Withdrawn {
        rule: String,
        decision: String,
        reason: String,
    },
}

impl Event {
    pub fn rule(&self) -> &str {
        match self {
            Self::Decided { rule, .. }
            | Self::Suppressed { rule, .. }
            | Self::Approved { rule, .. }
            | Self::Rejected { rule, .. }
            | Self::Act { rule, .. }
            | Self::Renew { rule, .. }
            | Self::FailBack { rule, .. }
            | Self::Withdrawn { rule, .. } => rule,
        }
    }

    /// The audit record's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Decided { .. } => "decided",
            Self::Suppressed { .. } => "suppressed",
            Self::Approved { .. } => "approved",
            Self::Rejected { .. } => "rejected",
            Self::Act { .. } => "act",
            Self::Renew { .. } => "renew",
            Self::FailBack { .. } => "fail_back",
            Self::Withdrawn { .. } => "withdrawn",
        }
    }

    /// Whether the event belongs in the audit log.
    pub fn audited(&self) -> bool {
        !matches!(self, Self::Renew { .. })
    }
}
