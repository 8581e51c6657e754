//! Faults as data, what each does to an instance while it is active, and
//! the ground truth a scorer compares a root-cause ranking with.

use serde::{Deserialize, Serialize};

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    /// Something else burns the instance's CPUs: own work takes `factor`×.
    CpuHog { factor: f64 },
    /// Memory grows by `mb_per_minute`; collection pauses slow own work
    /// up to `max_slowdown`× by the fault's end, when the instance restarts.
    MemoryLeak {
        mb_per_minute: f64,
        max_slowdown: f64,
    },
    /// A database or cache answers `factor`× slower.
    SlowDisk { factor: f64 },
    /// The instance's request pool shrinks to `concurrency` slots, and
    /// each request keeps its slot `hold_ms` after it answers (a leaked
    /// connection, reclaimed by a timeout): requests queue, and once the
    /// queue is full they are turned away.
    PoolExhaustion {
        concurrency: u32,
        #[serde(default)]
        hold_ms: f64,
    },
    /// Every packet to and from the instance is `delay_ms` late.
    NetworkDelay { delay_ms: f64 },
    /// A `share` of calls to the instance lose a packet: 200 ms to
    /// retransmit, and one in five of those times out altogether.
    PacketLoss { share: f64 },
    /// A `share` of the instance's requests answer 500 / UNAVAILABLE.
    ErrorReturns { share: f64 },
    /// Unhandled exceptions on a `share` of requests, in bursts of
    /// `burst_s` seconds every `period_s`.
    ExceptionBurst {
        share: f64,
        burst_s: f64,
        period_s: f64,
    },
    /// The service stops making its calls to `to` (a bad deploy or flag).
    MissingCall { to: String },
    /// The instance is gone until the fault ends, then restarts cold.
    InstanceCrash,
    /// Every instance in the target's region is unreachable.
    RegionOutage,
    /// Negative control: entry traffic rises `factor`× (a legitimate surge).
    LoadSurge { factor: f64 },
    /// Negative control: a new version rolls out; own work takes `factor`×.
    Deploy { factor: f64 },
}

impl FaultKind {
    /// The label scored per fault type.
    pub fn label(&self) -> &'static str {
        match self {
            Self::CpuHog { .. } => "cpu_hog",
            Self::MemoryLeak { .. } => "memory_leak",
            Self::SlowDisk { .. } => "slow_disk",
            Self::PoolExhaustion { .. } => "pool_exhaustion",
            Self::NetworkDelay { .. } => "network_delay",
            Self::PacketLoss { .. } => "packet_loss",
            Self::ErrorReturns { .. } => "error_returns",
            Self::ExceptionBurst { .. } => "exception_burst",
            Self::MissingCall { .. } => "missing_call",
            Self::InstanceCrash => "instance_crash",
            Self::RegionOutage => "region_outage",
            Self::LoadSurge { .. } => "load_surge",
            Self::Deploy { .. } => "deploy",
        }
    }

    /// Load surges and deploys are not faults: nothing should be blamed.
    pub fn is_negative_control(&self) -> bool {
        matches!(self, Self::LoadSurge { .. } | Self::Deploy { .. })
    }

    /// Whether the fault hits one instance rather than every instance of
    /// the service.
    pub fn is_per_instance(&self) -> bool {
        matches!(
            self,
            Self::CpuHog { .. }
                | Self::MemoryLeak { .. }
                | Self::PoolExhaustion { .. }
                | Self::NetworkDelay { .. }
                | Self::PacketLoss { .. }
                | Self::ErrorReturns { .. }
                | Self::ExceptionBurst { .. }
                | Self::InstanceCrash
        )
    }
}

/// One scheduled fault. (Unknown keys are refused by [`FaultKind`]:
/// serde cannot deny them here beside a flattened field.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// The service it hits (for a region outage: any service in the
    /// region; for a load surge: the entry).
    pub service: String,
    /// Which of the service's instances (in `region`), for per-instance
    /// faults; 0 when absent.
    #[serde(default)]
    pub instance: u32,
    /// The region it hits; the topology's first when absent.
    #[serde(default)]
    pub region: Option<String>,
    /// Seconds after the simulation starts.
    pub start_s: f64,
    pub duration_s: f64,
}

/// What a scorer needs to know about one fault: where it was, when, and
/// which services it should visibly affect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub fault: String,
    pub negative_control: bool,
    /// The root-cause service (empty for a negative control).
    pub service: String,
    /// The root-cause instance, for per-instance faults.
    pub instance: Option<String>,
    pub region: String,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// Services whose signals the fault should move, root cause first.
    pub affected: Vec<String>,
}

/// The combined effect of the active faults on one instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Effects {
    pub slowdown: f64,
    pub extra_delay_ns: u64,
    pub loss: f64,
    pub error_share: f64,
    pub exception: Option<(f64, u64, u64, u64)>,
    pub concurrency: Option<u32>,
    /// How long a finished request keeps its slot.
    pub slot_hold_ns: u64,
    pub down: bool,
    /// Since when memory has been leaking, and how fast (MiB per second).
    pub leak: Option<(u64, f64, f64, u64)>,
}

impl Default for Effects {
    fn default() -> Self {
        Self {
            slowdown: 1.0,
            extra_delay_ns: 0,
            loss: 0.0,
            error_share: 0.0,
            exception: None,
            concurrency: None,
            slot_hold_ns: 0,
            down: false,
            leak: None,
        }
    }
}

impl Effects {
    /// Adds one active fault, which started at `start` and ends at `end`.
    pub(crate) fn add(&mut self, kind: &FaultKind, start: u64, end: u64) {
        match *kind {
            FaultKind::CpuHog { factor }
            | FaultKind::SlowDisk { factor }
            | FaultKind::Deploy { factor } => {
                self.slowdown *= factor;
            }
            FaultKind::MemoryLeak {
                mb_per_minute,
                max_slowdown,
            } => self.leak = Some((start, mb_per_minute / 60.0, max_slowdown, end)),
            FaultKind::PoolExhaustion {
                concurrency,
                hold_ms,
            } => {
                self.concurrency = Some(concurrency.max(1));
                self.slot_hold_ns = (hold_ms.max(0.0) * 1e6) as u64;
            }
            FaultKind::NetworkDelay { delay_ms } => {
                self.extra_delay_ns += (delay_ms * 1e6) as u64;
            }
            FaultKind::PacketLoss { share } => self.loss = share,
            FaultKind::ErrorReturns { share } => self.error_share = share,
            FaultKind::ExceptionBurst {
                share,
                burst_s,
                period_s,
            } => {
                self.exception = Some((
                    share,
                    start,
                    (burst_s * 1e9) as u64,
                    (period_s * 1e9) as u64,
                ));
            }
            FaultKind::InstanceCrash | FaultKind::RegionOutage => self.down = true,
            FaultKind::MissingCall { .. } | FaultKind::LoadSurge { .. } => {}
        }
    }

    /// Own-work multiplier at `now`, memory-leak pauses included.
    pub(crate) fn slowdown_at(&self, now: u64) -> f64 {
        let leak = self.leak.map_or(1.0, |(start, _, max, end)| {
            let progress =
                now.saturating_sub(start) as f64 / end.saturating_sub(start).max(1) as f64;
            1.0 + (max - 1.0) * progress.clamp(0.0, 1.0).powi(2)
        });
        self.slowdown * leak
    }

    /// Extra resident memory at `now`, in MiB.
    pub(crate) fn leaked_mb_at(&self, now: u64) -> f64 {
        self.leak.map_or(0.0, |(start, per_s, _, _)| {
            per_s * now.saturating_sub(start) as f64 / 1e9
        })
    }

    /// Share of requests failing at `now` because of the faults.
    pub(crate) fn error_share_at(&self, now: u64) -> (f64, bool) {
        if let Some((share, start, burst, period)) = self.exception
            && period > 0
            && (now.saturating_sub(start) % period) < burst
        {
            return (share.max(self.error_share), true);
        }
        (self.error_share, false)
    }
}
