//! Failover rules in the control plane: the rules file is checked at
//! start (every problem reported, exit 64) and the rule set in force is
//! recorded in the audit log, with the file's SHA-256, so the log says
//! which rules were armed from when. `failover_loop` then runs them.

use std::path::Path;

use meshtwin_failover::RuleSet;
use meshtwin_failover::audit::{AuditLog, Opened, sha256_hex};

use crate::certificate_authority::unix_ms;
use crate::settings::ConfigProblems;

/// Reads and checks a rules file.
pub(crate) fn load_rules(path: &Path) -> Result<(RuleSet, String), ConfigProblems> {
    let at = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigProblems(vec![format!("cannot read {at}: {e}")]))?;
    let rules = RuleSet::from_toml(&text, &at)?;
    let missing: Vec<String> = rules
        .rules
        .iter()
        .flat_map(|rule| {
            let at = &at;
            rule.webhooks.iter().enumerate().filter_map(move |(i, hook)| {
                let set = std::env::var_os(&hook.secret_env).is_some_and(|v| !v.is_empty());
                (!set).then(|| {
                    format!(
                        "{at}: rule `{}`: webhooks[{i}]: the signing secret ${} is not set in the environment",
                        rule.name, hook.secret_env
                    )
                })
            })
        })
        .collect();
    if !missing.is_empty() {
        return Err(ConfigProblems(missing));
    }
    Ok((rules, text))
}

/// Opens the data directory's audit log and records the rules in force.
pub(crate) fn arm(rules_file: &Path, data_dir: &Path) -> Result<(RuleSet, AuditLog), String> {
    let (rules, text) = load_rules(rules_file).map_err(|e| e.to_string())?;
    let path = crate::audit_cli::log_path(data_dir);
    let now = unix_ms(std::time::SystemTime::now());
    let (mut log, opened) = AuditLog::open(&path, now)
        .map_err(|e| format!("cannot open the audit log {}: {e}", path.display()))?;
    match opened {
        Opened::Intact => {}
        Opened::TailDropped { bytes } => tracing::warn!(
            bytes,
            path = %path.display(),
            "the audit log's last record was cut off (a crash while writing it); dropped, and recorded"
        ),
        Opened::MovedAside { moved_to, broken } => tracing::error!(
            %broken,
            moved_to = %moved_to.display(),
            "the audit log's hash chain is broken; the file was moved aside and a new chain names it"
        ),
    }
    let summary: Vec<serde_json::Value> = rules
        .rules
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "mode": r.mode.as_str(),
                "service": r.service,
                "locality": r.locality,
            })
        })
        .collect();
    log.append(
        "rules_loaded",
        serde_json::json!({
            "file": rules_file.display().to_string(),
            "sha256": sha256_hex(text.as_bytes()),
            "max_services_at_once": rules.limits.max_services_at_once,
            "rules": summary,
        }),
        now,
    )
    .map_err(|e| format!("cannot write the audit log {}: {e}", path.display()))?;
    tracing::info!(rules = rules.rules.len(), audit = %path.display(), "failover rules loaded");
    Ok((rules, log))
}
