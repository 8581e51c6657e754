//! Twin settings: how long halves wait for each other, when idle parts of
//! the graph expire, and the memory limits.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwinConfig {
    /// How long (twin time) one half of a call waits for the other: at
    /// least this long, at most about twice (ADR 002).
    pub pair_wait_seconds: u64,
    /// Nodes and edges with no traffic for this long disappear.
    pub idle_expiry_seconds: u64,
    /// At most this many nodes; spans of further services are counted and dropped.
    pub max_nodes: usize,
    /// At most this many edges; calls on further edges are counted and dropped.
    pub max_edges: usize,
    /// At most this many spans wait for their other half; the oldest are
    /// expired early when more arrive.
    pub max_pending_spans: usize,
    /// How often the twin publishes a snapshot and a delta.
    pub publish_interval_millis: u64,
    /// The streaming anomaly detectors on every node and edge.
    pub detection: DetectionConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    pub enabled: bool,
    /// 1 (only the most extreme) to 10 (the most alarms), for every
    /// service not listed in `services`.
    pub sensitivity: f64,
    /// Per-service sensitivity; an edge takes its callee's.
    pub services: Vec<ServiceSensitivity>,
    /// A series learns for this long (event time) before it may alarm.
    pub warmup_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSensitivity {
    pub service: String,
    pub sensitivity: f64,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            sensitivity: 5.0,
            services: Vec::new(),
            warmup_seconds: 120,
        }
    }
}

impl DetectionConfig {
    /// The sensitivity for `service`.
    pub fn sensitivity_of(&self, service: &str) -> f64 {
        self.services
            .iter()
            .find(|s| s.service == service)
            .map_or(self.sensitivity, |s| s.sensitivity)
    }

    /// Buckets of warm-up per series.
    pub fn warmup_buckets(&self) -> u32 {
        (self.warmup_seconds / 10) as u32
    }

    fn problems(&self, prefix: &str, problems: &mut Vec<String>) {
        if !(100..=86_400).contains(&self.warmup_seconds) {
            problems.push(format!(
                "{prefix}warmup_seconds: must be between 100 and 86400 (10 buckets of 10 s at least)"
            ));
        }
        let range = 1.0..=10.0;
        if !range.contains(&self.sensitivity) {
            problems.push(format!("{prefix}sensitivity: must be between 1 and 10"));
        }
        for (i, service) in self.services.iter().enumerate() {
            if !range.contains(&service.sensitivity) {
                problems.push(format!(
                    "{prefix}services[{i}] ({}): sensitivity must be between 1 and 10",
                    service.service
                ));
            }
            if self.services[..i]
                .iter()
                .any(|s| s.service == service.service)
            {
                problems.push(format!(
                    "{prefix}services[{i}]: {} is listed twice",
                    service.service
                ));
            }
        }
    }
}

impl Default for TwinConfig {
    fn default() -> Self {
        Self {
            pair_wait_seconds: 10,
            idle_expiry_seconds: 300,
            max_nodes: 10_000,
            max_edges: 50_000,
            max_pending_spans: 500_000,
            publish_interval_millis: 500,
            detection: DetectionConfig::default(),
        }
    }
}

impl TwinConfig {
    /// Every problem with these settings, prefixed with `prefix`.
    pub fn problems(&self, prefix: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let mut require = |ok: bool, key: &str, rule: &str| {
            if !ok {
                problems.push(format!("{prefix}{key}: {rule}"));
            }
        };
        require(
            (1..=3600).contains(&self.pair_wait_seconds),
            "pair_wait_seconds",
            "must be between 1 and 3600",
        );
        require(
            self.idle_expiry_seconds >= 60,
            "idle_expiry_seconds",
            "must be at least 60 (the last-minute view)",
        );
        require(self.max_nodes >= 1, "max_nodes", "must be at least 1");
        require(self.max_edges >= 1, "max_edges", "must be at least 1");
        require(
            self.max_pending_spans >= 1,
            "max_pending_spans",
            "must be at least 1",
        );
        require(
            (50..=10_000).contains(&self.publish_interval_millis),
            "publish_interval_millis",
            "must be between 50 and 10000",
        );
        self.detection
            .problems(&format!("{prefix}detection."), &mut problems);
        problems
    }
}
