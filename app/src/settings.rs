//! Settings: defaults, then the config file, then flags — validated once,
//! with every problem reported together.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use meshtwin_collector::CollectorConfig;
use meshtwin_model::config_file::ConfigFile;
pub(crate) use meshtwin_model::config_file::ConfigProblems;
use meshtwin_twin::TwinConfig;
use serde::{Deserialize, Serialize};

use crate::cli::{DemoArgs, ServeArgs};
use crate::store_settings::{QuerySettings, StoreSettings};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ListenConfig {
    pub(crate) address: IpAddr,
    pub(crate) otlp_grpc_port: u16,
    pub(crate) otlp_http_port: u16,
    pub(crate) web_port: u16,
    /// The control API proxies use (certificates; config watch).
    pub(crate) control_port: u16,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            otlp_grpc_port: 4317,
            otlp_http_port: 4318,
            web_port: 8080,
            control_port: 4320,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DemoConfig {
    pub(crate) traces_per_second: f64,
    pub(crate) seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            traces_per_second: 20.0,
            seed: 1,
        }
    }
}

/// The mesh CA's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct IdentitySettings {
    /// The trust domain of every SPIFFE ID the CA signs.
    pub(crate) trust_domain: String,
    /// Lifetime of proxy certificates; proxies renew at two-thirds.
    pub(crate) certificate_lifetime_seconds: u64,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        Self {
            trust_domain: "meshtwin.local".to_owned(),
            certificate_lifetime_seconds: 24 * 3600,
        }
    }
}

/// Everything the control plane runs with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    pub(crate) data_dir: PathBuf,
    pub(crate) listen: ListenConfig,
    pub(crate) collector: CollectorConfig,
    pub(crate) twin: TwinConfig,
    pub(crate) demo: DemoConfig,
    pub(crate) identity: IdentitySettings,
    pub(crate) store: StoreSettings,
    pub(crate) query: QuerySettings,
    /// Services, endpoints and overrides served to proxies over the
    /// control API's watch stream; re-read when the file changes.
    pub(crate) mesh_routes: Option<PathBuf>,
    /// Failover rules, checked at start and recorded in the audit log.
    pub(crate) failover_rules: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("meshtwin-data"),
            listen: ListenConfig::default(),
            collector: CollectorConfig::default(),
            twin: TwinConfig::default(),
            demo: DemoConfig::default(),
            identity: IdentitySettings::default(),
            store: StoreSettings::default(),
            query: QuerySettings::default(),
            mesh_routes: None,
            failover_rules: None,
        }
    }
}

impl Settings {
    pub(crate) fn for_serve(args: &ServeArgs) -> Result<Self, ConfigProblems> {
        let mut settings = match &args.config {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        settings.apply_flags(args);
        settings.validate()?;
        Ok(settings)
    }

    pub(crate) fn for_demo(args: &DemoArgs) -> Result<Self, ConfigProblems> {
        let mut settings = match &args.serve.config {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        settings.apply_flags(&args.serve);
        if let Some(rate) = args.rate {
            settings.demo.traces_per_second = rate;
        }
        if let Some(seed) = args.seed {
            settings.demo.seed = seed;
        }
        settings.validate()?;
        Ok(settings)
    }

    fn apply_flags(&mut self, args: &ServeArgs) {
        let listen = &mut self.listen;
        listen.address = args.bind.unwrap_or(listen.address);
        listen.otlp_grpc_port = args.otlp_grpc_port.unwrap_or(listen.otlp_grpc_port);
        listen.otlp_http_port = args.otlp_http_port.unwrap_or(listen.otlp_http_port);
        listen.web_port = args.web_port.unwrap_or(listen.web_port);
        listen.control_port = args.control_port.unwrap_or(listen.control_port);
        if let Some(dir) = &args.data_dir {
            self.data_dir = dir.clone();
        }
        if let Some(path) = &args.mesh_routes {
            self.mesh_routes = Some(path.clone());
        }
        if let Some(path) = &args.failover_rules {
            self.failover_rules = Some(path.clone());
        }
        if let Some(bytes) = args.max_request_bytes {
            self.collector.max_request_bytes = bytes;
        }
    }

    /// Reads a TOML file: every unknown key and every badly typed section
    /// is reported, not just the first.
    pub(crate) fn from_file(path: &Path) -> Result<Self, ConfigProblems> {
        let at = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigProblems(vec![format!("cannot read {at}: {e}")]))?;
        let defaults = Self::default();
        let mut file = ConfigFile::parse(
            &text,
            &defaults,
            &[
                "mesh_routes",
                "failover_rules",
                "store.dir",
                "store.memory_only_max_spans",
            ],
        )
        .map_err(|e| ConfigProblems(e.0.into_iter().map(|p| format!("{at}: {p}")).collect()))?;
        let settings = Self {
            data_dir: file.section("data_dir", defaults.data_dir),
            listen: file.section("listen", defaults.listen),
            collector: file.section("collector", defaults.collector),
            twin: file.section("twin", defaults.twin),
            demo: file.section("demo", defaults.demo),
            identity: file.section("identity", defaults.identity),
            store: file.section("store", defaults.store),
            query: file.section("query", defaults.query),
            mesh_routes: file.section("mesh_routes", defaults.mesh_routes),
            failover_rules: file.section("failover_rules", defaults.failover_rules),
        };
        file.finish(&at)?;
        Ok(settings)
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigProblems> {
        let mut problems = self.collector.problems("collector.");
        problems.extend(self.twin.problems("twin."));
        problems.extend(self.store.problems());
        problems.extend(self.query.problems());
        let l = &self.listen;
        let ports = [
            ("otlp_grpc_port", l.otlp_grpc_port),
            ("otlp_http_port", l.otlp_http_port),
            ("web_port", l.web_port),
            ("control_port", l.control_port),
        ];
        for (i, (name, port)) in ports.iter().enumerate() {
            for (other, other_port) in &ports[i + 1..] {
                if port == other_port && *port != 0 {
                    problems.push(format!("listen.{name} and listen.{other} are both {port}"));
                }
            }
        }
        let rate = self.demo.traces_per_second;
        if !(rate > 0.0 && rate <= 10_000.0) {
            problems.push(format!(
                "demo.traces_per_second: must be above 0 and at most 10000, not {rate}"
            ));
        }
        if let Err(e) =
            meshtwin_model::spiffe::SpiffeId::new(&self.identity.trust_domain, "ns", "sa")
        {
            problems.push(format!("identity.trust_domain: {e}"));
        }
        if !(5..=366 * 86_400).contains(&self.identity.certificate_lifetime_seconds) {
            problems.push(format!(
                "identity.certificate_lifetime_seconds: must be from 5 to 31622400, not {}",
                self.identity.certificate_lifetime_seconds
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            problems.push("data_dir: must not be empty".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigProblems(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Settings, ConfigProblems> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        Settings::from_file(file.path()).and_then(|s| s.validate().map(|()| s))
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        assert_eq!(load("").unwrap(), Settings::default());
    }

    #[test]
    fn every_unknown_key_and_bad_type_is_reported_together() {
        let problems = load(
            r#"
            colour = "blue"
            [listen]
            web_port = "eighty"
            [twin]
            pair_wait = 3
            max_nodes = -1
            [surprise]
            x = 1
            "#,
        )
        .unwrap_err()
        .0;
        let joined = problems.join("\n");
        assert_eq!(problems.len(), 5, "{joined}");
        for needle in [
            "`colour`",
            "`twin.pair_wait`",
            "`surprise`",
            "listen:",
            "twin:",
        ] {
            assert!(joined.contains(needle), "{needle} missing from {joined}");
        }
    }

    #[test]
    fn values_out_of_range_are_reported_together() {
        let problems = load(
            "[listen]\notlp_grpc_port = 9000\nweb_port = 9000\n[twin]\nidle_expiry_seconds = 5\n[collector]\nmax_request_bytes = 10\n",
        )
        .unwrap_err()
        .0;
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn every_key_of_the_example_file_is_known_commented_out_ones_too() {
        let example = include_str!("../../meshtwin.example.toml");
        let uncommented: String = example
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(setting)
                    if setting.starts_with("[[")
                        || setting.split_once(" = ").is_some_and(|(key, _)| {
                            key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        }) =>
                {
                    setting
                }
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_ne!(uncommented, example, "the example has commented-out keys");
        let settings = load(&uncommented).unwrap();
        assert!(settings.store.dir.is_some());
        assert!(settings.store.memory_only_max_spans.is_some());
        assert_eq!(settings.twin.detection.sensitivity_of("payments"), 7.0);
    }

    #[test]
    fn flags_override_the_file() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            file.path(),
            "[listen]\nweb_port = 9000\notlp_grpc_port = 5317\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file.path().to_owned()),
            web_port: Some(0),
            ..ServeArgs::default()
        };
        let settings = Settings::for_serve(&args).unwrap();
        assert_eq!(settings.listen.web_port, 0);
        assert_eq!(settings.listen.otlp_grpc_port, 5317);
        assert_eq!(settings.listen.otlp_http_port, 4318);
    }
}
