//! The fault schedule: which instances and calls each fault touches, when,
//! what the instances feel while faults are active, and the ground truth.

use super::Simulation;
use crate::sim::SimOptions;
use crate::sim::faults::{Effects, Fault, FaultKind, GroundTruth};
use crate::sim::plan::{CallId, InstanceId, Plan, ServiceId};
use crate::topology::Topology;

struct Scheduled {
    fault: Fault,
    service: ServiceId,
    region: usize,
    instances: Vec<InstanceId>,
    calls: Vec<CallId>,
    start: u64,
    end: u64,
    active: bool,
}

pub(super) struct Schedule {
    faults: Vec<Scheduled>,
}

impl Schedule {
    /// Resolves each fault's targets. Faults naming an unknown service or
    /// region are skipped (suite files are checked before they get here).
    pub(super) fn new(plan: &Plan, topology: &Topology, options: &SimOptions) -> Self {
        let faults = options
            .faults
            .iter()
            .filter_map(|fault| resolve(plan, topology, fault))
            .collect();
        Self { faults }
    }

    pub(super) fn windows(&self) -> Vec<(u64, u64)> {
        self.faults.iter().map(|f| (f.start, f.end)).collect()
    }

    pub(super) fn load_factor(&self) -> f64 {
        self.faults
            .iter()
            .filter(|f| f.active)
            .map(|f| match f.fault.kind {
                FaultKind::LoadSurge { factor } => factor,
                _ => 1.0,
            })
            .product()
    }

    pub(super) fn call_disabled(&self, call: CallId) -> bool {
        self.faults
            .iter()
            .any(|f| f.active && f.calls.contains(&call))
    }

    /// The combined effects on `instance` of the active faults.
    fn effects_on(&self, instance: InstanceId) -> (Effects, f64) {
        let mut effects = Effects::default();
        let mut hog = 0.0;
        for f in self
            .faults
            .iter()
            .filter(|f| f.active && f.instances.contains(&instance))
        {
            effects.add(&f.fault.kind, f.start, f.end);
            if let FaultKind::CpuHog { factor } = f.fault.kind {
                hog = 1.0 - 1.0 / factor.max(1.0);
            }
        }
        (effects, hog)
    }

    pub(super) fn ground_truth(&self, plan: &Plan, base: u64) -> Vec<GroundTruth> {
        self.faults.iter().map(|f| truth(plan, f, base)).collect()
    }
}

fn resolve(plan: &Plan, topology: &Topology, fault: &Fault) -> Option<Scheduled> {
    let service = topology.service_index(&fault.service)?;
    let region = match &fault.region {
        Some(name) => plan.regions.iter().position(|r| **r == **name)?,
        None => 0,
    };
    let in_region = plan.services[service].instances.get(region)?;
    let instances = match &fault.kind {
        FaultKind::RegionOutage => plan
            .instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.region == region && i.service != plan.entry)
            .map(|(id, _)| id)
            .collect(),
        FaultKind::LoadSurge { .. } | FaultKind::MissingCall { .. } => Vec::new(),
        kind if kind.is_per_instance() => vec![*in_region.get(fault.instance as usize)?],
        _ => in_region.clone(),
    };
    let calls = match &fault.kind {
        FaultKind::MissingCall { to } => {
            let to = topology.service_index(to)?;
            (0..plan.calls.len())
                .filter(|&c| plan.calls[c].from == service && plan.calls[c].to == to)
                .collect()
        }
        _ => Vec::new(),
    };
    let start = (fault.start_s.max(0.0) * 1e9) as u64;
    Some(Scheduled {
        service,
        region,
        instances,
        calls,
        start,
        end: start + (fault.duration_s.max(0.0) * 1e9) as u64,
        active: false,
        fault: fault.clone(),
    })
}

fn truth(plan: &Plan, f: &Scheduled, base: u64) -> GroundTruth {
    let name = |s: ServiceId| plan.services[s].name.to_string();
    let kind = &f.fault.kind;
    let (service, instance, affected) = match kind {
        _ if kind.is_negative_control() => (String::new(), None, Vec::new()),
        FaultKind::RegionOutage => {
            let mut services: Vec<ServiceId> = f
                .instances
                .iter()
                .map(|&i| plan.instances[i].service)
                .collect();
            services.dedup();
            (
                String::new(),
                None,
                services.into_iter().map(name).collect(),
            )
        }
        FaultKind::MissingCall { to } => {
            let mut affected = vec![name(f.service), to.clone()];
            if let Some(&call) = f.calls.first() {
                let callee = plan.calls[call].to;
                affected.extend(plan.downstream_of(callee).into_iter().map(name));
            }
            (name(f.service), None, affected)
        }
        _ => {
            let mut affected = vec![name(f.service)];
            affected.extend(plan.upstream_of(f.service).into_iter().map(name));
            let instance = kind
                .is_per_instance()
                .then(|| {
                    f.instances
                        .first()
                        .map(|&i| plan.instances[i].name.to_string())
                })
                .flatten();
            (name(f.service), instance, affected)
        }
    };
    GroundTruth {
        fault: kind.label().to_owned(),
        negative_control: kind.is_negative_control(),
        service,
        instance,
        region: plan.regions[f.region].to_string(),
        start_unix_nano: base + f.start,
        end_unix_nano: base + f.end,
        affected,
    }
}

impl Simulation {
    pub(super) fn fault_edge(&mut self, index: usize, starting: bool) {
        let now = self.now;
        let scheduled = &mut self.faults.faults[index];
        scheduled.active = starting;
        let kind = scheduled.fault.kind.clone();
        let touched = scheduled.instances.clone();
        for instance in touched.iter().copied() {
            let (effects, hog) = self.faults.effects_on(instance);
            let state = &mut self.instances[instance];
            let was_down = state.effects.down;
            state.effects = effects;
            state.cpu_hog = hog;
            match (was_down, effects.down) {
                (false, true) => state.down_since = Some(now),
                (true, false) => {
                    state.down_since = None;
                    state.restarted_at = Some(now);
                }
                _ => {}
            }
            if let FaultKind::MemoryLeak { .. } = kind
                && !starting
            {
                state.restarted_at = Some(now);
            }
            if let FaultKind::Deploy { .. } = kind {
                state.deployed |= starting;
            }
        }
        // Slots a pool got back are taken at once by those waiting.
        for instance in touched {
            let slots = self.plan.service_of(instance).concurrency;
            loop {
                let state = &mut self.instances[instance];
                if state.busy >= state.slots(slots) {
                    break;
                }
                let Some(next) = state.waiting.pop_front() else {
                    break;
                };
                self.start(next);
            }
        }
    }
}
