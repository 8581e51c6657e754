//! Incidents: anomalies close in time and on the graph, grouped, with a
//! lifecycle (open → updated → resolved).

use serde::{Deserialize, Serialize};

use crate::anomaly::{AlarmKind, Anomaly, Deviation, Signal, Subject};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    Open,
    Resolved,
}

/// One signal of one node or edge that alarmed within an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentSignal {
    pub subject: Subject,
    /// The node's id, or the edge's `source->target`.
    pub id: String,
    pub signal: Signal,
    pub kind: AlarmKind,
    pub deviation: Deviation,
    pub first_unix_nanos: u64,
    pub last_unix_nanos: u64,
    /// Alarms (10 s buckets) of this signal in the incident.
    pub alarms: u64,
    /// The value furthest from what was expected, and what was expected then.
    pub worst_value: f64,
    pub expected: f64,
}

impl IncidentSignal {
    pub fn from_anomaly(anomaly: &Anomaly) -> Self {
        Self {
            subject: anomaly.subject,
            id: anomaly.id.clone(),
            signal: anomaly.signal,
            kind: anomaly.kind,
            deviation: anomaly.deviation,
            first_unix_nanos: anomaly.at_unix_nanos,
            last_unix_nanos: anomaly.at_unix_nanos,
            alarms: 1,
            worst_value: anomaly.value,
            expected: anomaly.expected,
        }
    }

    /// Whether `anomaly` is another alarm of this signal.
    pub fn matches(&self, anomaly: &Anomaly) -> bool {
        self.subject == anomaly.subject
            && self.signal == anomaly.signal
            && self.deviation == anomaly.deviation
            && self.id == anomaly.id
    }

    pub fn absorb(&mut self, anomaly: &Anomaly) {
        self.first_unix_nanos = self.first_unix_nanos.min(anomaly.at_unix_nanos);
        self.last_unix_nanos = self.last_unix_nanos.max(anomaly.at_unix_nanos);
        self.alarms += 1;
        if (anomaly.value - anomaly.expected).abs() > (self.worst_value - self.expected).abs() {
            self.worst_value = anomaly.value;
            self.expected = anomaly.expected;
            self.kind = anomaly.kind;
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Increasing from 1, never reused (also across restarts).
    pub id: u64,
    pub state: IncidentState,
    /// Event time of the first alarm, of the latest, and when it was
    /// declared resolved.
    pub opened_unix_nanos: u64,
    /// The twin's clock when the alarms were enough to open it (the
    /// detection delay ends here).
    #[serde(default)]
    pub confirmed_unix_nanos: u64,
    pub updated_unix_nanos: u64,
    pub resolved_unix_nanos: Option<u64>,
    /// Node ids with an alarm on them or on one of their edges, sorted.
    pub nodes: Vec<String>,
    /// The signals that alarmed, first alarm first.
    pub signals: Vec<IncidentSignal>,
    /// Alarms grouped into it.
    pub anomalies: u64,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.state == IncidentState::Open
    }
}

/// The node ids an anomaly is on: the node, or both ends of the edge.
pub fn anomaly_nodes(anomaly: &Anomaly) -> Vec<&str> {
    match anomaly.subject {
        Subject::Node => vec![anomaly.id.as_str()],
        Subject::Edge => match anomaly.id.split_once("->") {
            Some((source, target)) => vec![source, target],
            None => vec![anomaly.id.as_str()],
        },
    }
}
