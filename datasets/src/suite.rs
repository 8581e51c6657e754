//! Evaluation suites: a checked-in config (topologies × fault types ×
//! seeds, negative controls, fault-free hours) expanded into cases, each
//! a [`CaseSpec`] that `dataset::generate` writes, cached on disk.
//!
//! The target of each fault (which service, which call) is drawn from the
//! services the traffic actually reaches, by a generator seeded from the
//! case's seed — so a suite with fresh seeds ([`seal`]) hits services
//! and draws traffic nobody has tuned on.

mod cache;
mod targets;

use std::collections::BTreeMap;

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::dataset::CaseSpec;
use crate::sim::{Fault, SimOptions};
use crate::topology::{Topology, TopologyError};

pub use cache::{GeneratedCase, SuiteProgress, generate};

/// The bundled `dev` suite's config.
pub const DEV: &str = include_str!("../suites/dev.toml");
/// The bundled 10-case `smoke` suite's config.
pub const SMOKE: &str = include_str!("../suites/smoke.toml");

/// A suite as written in its config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteConfig {
    pub name: String,
    pub topologies: Vec<String>,
    pub seeds: Vec<u64>,
    /// Simulated seconds of each fault case.
    pub duration_s: f64,
    pub fault_start_s: f64,
    pub fault_duration_s: f64,
    /// Fault types (`type` values); region outages only where there are
    /// two regions.
    pub faults: Vec<String>,
    /// One case per topology and seed with two faults at once.
    #[serde(default)]
    pub double_faults: bool,
    /// Fault types that are not faults (`load_surge`, `deploy`).
    #[serde(default)]
    pub negative_controls: Vec<String>,
    /// Seconds of fault-free traffic per topology (first seed only).
    #[serde(default)]
    pub fault_free_s: f64,
    /// Parameters per fault type, over the defaults.
    #[serde(default)]
    pub parameters: BTreeMap<String, toml::Table>,
    /// Keep only the first this many cases (after expansion).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Also time one root-cause ranking on a graph of this many services
    /// (a synthetic layered topology); none when absent.
    #[serde(default)]
    pub scale_check_services: Option<usize>,
}

/// What a case is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    Fault,
    DoubleFault,
    NegativeControl,
    FaultFree,
}

/// One case of a suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// `topology.fault.sSEED`, unique in the suite and a directory name.
    pub name: String,
    pub kind: CaseKind,
    pub topology: String,
    /// The fault type label (`double`, `fault_free` for those kinds).
    pub fault: String,
    pub spec: CaseSpec,
}

/// Parameters a fault type gets unless the config says otherwise.
fn default_parameters(fault: &str) -> Option<toml::Table> {
    let text = match fault {
        "cpu_hog" => "factor = 5.0",
        "memory_leak" => "mb_per_minute = 300.0\nmax_slowdown = 8.0",
        "slow_disk" => "factor = 10.0",
        "pool_exhaustion" => "concurrency = 1\nhold_ms = 500.0",
        "network_delay" => "delay_ms = 80.0",
        "packet_loss" => "share = 0.3",
        "error_returns" => "share = 0.3",
        "exception_burst" => "share = 0.8\nburst_s = 10.0\nperiod_s = 30.0",
        "load_surge" => "factor = 2.0",
        "deploy" => "factor = 1.1",
        "missing_call" | "instance_crash" | "region_outage" => "",
        _ => return None,
    };
    Some(toml::from_str(text).expect("valid defaults"))
}

/// A stable 64-bit FNV-1a hash, so a case's draws do not depend on the
/// order or number of other cases.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl SuiteConfig {
    pub fn from_toml(text: &str) -> Result<Self, TopologyError> {
        toml::from_str(text).map_err(|e| TopologyError(vec![e.to_string()]))
    }

    /// The bundled suite called `name` (`dev`, `smoke`), or the config file at that path.
    pub fn load(name_or_path: &str) -> Result<Self, TopologyError> {
        let text = match name_or_path {
            "dev" => DEV.to_owned(),
            "smoke" => SMOKE.to_owned(),
            path => std::fs::read_to_string(path).map_err(|e| {
                TopologyError(vec![format!("{path}: {e} (bundled suites: dev, smoke)")])
            })?,
        };
        Self::from_toml(&text)
    }

    /// Every case, in config order; all problems at once.
    pub fn cases(&self) -> Result<Vec<Case>, TopologyError> {
        let mut problems = Vec::new();
        for fault in self.faults.iter().chain(&self.negative_controls) {
            if default_parameters(fault).is_none() {
                problems.push(format!("unknown fault type {fault:?}"));
            }
        }
        if !(0.0 < self.fault_start_s
            && self.fault_start_s + self.fault_duration_s <= self.duration_s)
        {
            problems.push(format!(
                "the fault window {}..{} s must lie inside 0..{} s",
                self.fault_start_s,
                self.fault_start_s + self.fault_duration_s,
                self.duration_s
            ));
        }
        if self.seeds.is_empty() {
            problems.push("seeds is empty".to_owned());
        }
        let mut topologies = Vec::new();
        for name in &self.topologies {
            match crate::topology::library::bundled(name) {
                Ok(topology) => topologies.push((name.clone(), topology)),
                Err(e) => problems.extend(e.0),
            }
        }
        if !problems.is_empty() {
            return Err(TopologyError(problems));
        }
        let mut cases = Vec::new();
        for (name, topology) in &topologies {
            let targets = targets::Targets::measure(topology);
            for &seed in &self.seeds {
                let mut add = |kind, fault: &str, faults: Vec<Fault>, duration_s| {
                    cases.push(Case {
                        name: format!("{name}.{fault}.s{seed}"),
                        kind,
                        topology: name.clone(),
                        fault: fault.to_owned(),
                        spec: CaseSpec {
                            topology: name.clone(),
                            duration_s,
                            options: SimOptions {
                                seed,
                                faults,
                                ..SimOptions::default()
                            },
                        },
                    });
                };
                for fault in &self.faults {
                    let rng = &mut self.rng(name, fault, seed);
                    if let Some(f) = self.fault(fault, topology, &targets, rng, &mut problems) {
                        add(CaseKind::Fault, fault, vec![f], self.duration_s);
                    }
                }
                for control in &self.negative_controls {
                    let rng = &mut self.rng(name, control, seed);
                    if let Some(f) = self.fault(control, topology, &targets, rng, &mut problems) {
                        add(CaseKind::NegativeControl, control, vec![f], self.duration_s);
                    }
                }
                if self.double_faults
                    && let Some(pair) = self.double(name, topology, &targets, seed, &mut problems)
                {
                    add(CaseKind::DoubleFault, "double", pair, self.duration_s);
                }
                if self.fault_free_s > 0.0 && seed == self.seeds[0] {
                    add(
                        CaseKind::FaultFree,
                        "fault_free",
                        Vec::new(),
                        self.fault_free_s,
                    );
                }
            }
        }
        if !problems.is_empty() {
            return Err(TopologyError(problems));
        }
        if let Some(limit) = self.limit {
            cases.truncate(limit);
        }
        Ok(cases)
    }

    fn rng(&self, topology: &str, fault: &str, seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed ^ stable_hash(&format!("{topology}/{fault}")))
    }

    /// A fault of type `label` on a target drawn from `targets`; `None`
    /// (and no problem) where the type does not apply, such as a region
    /// outage in a one-region topology.
    fn fault(
        &self,
        label: &str,
        topology: &Topology,
        targets: &targets::Targets,
        rng: &mut ChaCha8Rng,
        problems: &mut Vec<String>,
    ) -> Option<Fault> {
        let mut table = default_parameters(label)?;
        if let Some(overrides) = self.parameters.get(label) {
            table.extend(overrides.clone());
        }
        let pick = |rng: &mut ChaCha8Rng, list: &[String]| -> Option<String> {
            (!list.is_empty()).then(|| list[rng.random_range(0..list.len())].clone())
        };
        let service = match label {
            "slow_disk" => pick(rng, &targets.datastores)?,
            "load_surge" => topology.entry.clone(),
            "missing_call" => {
                let (from, to) = targets
                    .calls
                    .get(rng.random_range(0..targets.calls.len().max(1)))?;
                table.insert("to".to_owned(), toml::Value::String(to.clone()));
                from.clone()
            }
            "region_outage" if targets.regions.len() < 2 => return None,
            "region_outage" => {
                let region = targets.regions[rng.random_range(0..targets.regions.len())].clone();
                table.insert("region".to_owned(), toml::Value::String(region));
                pick(rng, &targets.services)?
            }
            _ => pick(rng, &targets.services)?,
        };
        if let Some(spec) = topology.service(&service)
            && label != "region_outage"
        {
            let regions = topology.regions_of(spec);
            let region = regions[rng.random_range(0..regions.len())].clone();
            let instance = rng.random_range(0..spec.instances.max(1));
            table.insert("region".to_owned(), toml::Value::String(region));
            table.insert(
                "instance".to_owned(),
                toml::Value::Integer(i64::from(instance)),
            );
        }
        table.insert("type".to_owned(), toml::Value::String(label.to_owned()));
        table.insert("service".to_owned(), toml::Value::String(service));
        table.insert("start_s".to_owned(), toml::Value::Float(self.fault_start_s));
        table.insert(
            "duration_s".to_owned(),
            toml::Value::Float(self.fault_duration_s),
        );
        match table.clone().try_into::<Fault>() {
            Ok(fault) => Some(fault),
            Err(e) => {
                problems.push(format!("parameters of {label}: {e}"));
                None
            }
        }
    }

    /// Two faults of different types on different services, at once.
    fn double(
        &self,
        name: &str,
        topology: &Topology,
        targets: &targets::Targets,
        seed: u64,
        problems: &mut Vec<String>,
    ) -> Option<Vec<Fault>> {
        let rng = &mut self.rng(name, "double", seed);
        let kinds: Vec<&String> = self
            .faults
            .iter()
            .filter(|f| !matches!(f.as_str(), "region_outage" | "missing_call"))
            .collect();
        for _ in 0..32 {
            let first = kinds.get(rng.random_range(0..kinds.len().max(1)))?;
            let second = kinds[rng.random_range(0..kinds.len())];
            let a = self.fault(first, topology, targets, rng, problems)?;
            let b = self.fault(second, topology, targets, rng, problems)?;
            if first != &second && a.service != b.service {
                return Some(vec![a, b]);
            }
        }
        None
    }
}

/// `config` with fresh seeds from the operating system's entropy, for a
/// sealed suite: one nobody has tuned on.
pub fn seal(config: &SuiteConfig) -> std::io::Result<SuiteConfig> {
    use std::io::Read;
    let mut bytes = vec![0u8; 8 * config.seeds.len()];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let mut sealed = config.clone();
    sealed.name = format!("{}-sealed", config.name);
    sealed.seeds = bytes
        .chunks(8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) >> 11)
        .collect();
    Ok(sealed)
}

#[cfg(test)]
mod tests;
