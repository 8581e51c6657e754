//! `meshtwin failover check FILE` and `meshtwin failover test-hooks FILE`:
//! a rules file checked without starting anything, and its hooks called
//! with a test event, so that a webhook's signature and an exec hook's
//! script are known to work before an incident needs them. Exit codes:
//! 0; 64 for a bad rules file; 1 when a hook failed.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::Failure;
use crate::failover_hooks::fire;
use crate::failover_stage::load_rules;

#[derive(Debug, Args, Clone)]
pub(crate) struct FailoverArgs {
    #[command(subcommand)]
    command: FailoverCommand,
}

#[derive(Debug, Subcommand, Clone)]
enum FailoverCommand {
    /// Check a rules file and list its rules; every problem is reported.
    Check {
        /// The rules file (see failover-rules.example.toml).
        file: PathBuf,
    },
    /// Call every webhook and exec hook of the rules (or of one rule) with
    /// a test event (`"event": "test"`); nothing else happens. Prints each
    /// hook's result as a JSON line.
    TestHooks {
        /// The rules file.
        file: PathBuf,
        /// Only this rule's hooks.
        #[arg(long, value_name = "NAME")]
        rule: Option<String>,
    },
}

pub(crate) async fn failover(args: &FailoverArgs) -> Result<(), Failure> {
    match &args.command {
        FailoverCommand::Check { file } => {
            let (rules, _) = load_rules(file)?;
            println!(
                "{}: {} rules; at most {} service(s) failed over at once",
                file.display(),
                rules.rules.len(),
                rules.limits.max_services_at_once
            );
            for rule in &rules.rules {
                let hooks = rule.webhooks.len() + rule.exec.len();
                let moves = rule
                    .shift_traffic
                    .as_ref()
                    .map_or("no traffic move".to_owned(), |s| {
                        format!("moves to {}", s.to_locality)
                    });
                println!(
                    "  {} [{}] {}@{}: {}, {hooks} hook(s)",
                    rule.name,
                    rule.mode.as_str(),
                    rule.service,
                    rule.locality,
                    moves
                );
            }
            Ok(())
        }
        FailoverCommand::TestHooks { file, rule } => {
            let (rules, _) = load_rules(file)?;
            if let Some(name) = rule
                && rules.rule(name).is_none()
            {
                return Err(Failure::Exit(
                    64,
                    format!("{}: no rule `{name}`", file.display()),
                ));
            }
            let chosen = rules
                .rules
                .iter()
                .filter(|r| rule.as_ref().is_none_or(|name| &r.name == name));
            let mut failed = 0;
            for rule in chosen {
                let payload = serde_json::json!({
                    "event": "test",
                    "rule": rule.name,
                    "decision": "test",
                    "service": rule.service,
                    "locality": rule.locality,
                    "to_locality": rule.shift_traffic.as_ref().map(|s| &s.to_locality),
                    "note": "a test delivery from `meshtwin failover test-hooks`; no traffic moved",
                });
                for result in fire(rule, "test", "test", &payload).await {
                    failed += usize::from(!result.ok);
                    let line = serde_json::json!({ "rule": rule.name, "result": result });
                    println!("{line}");
                }
            }
            if failed > 0 {
                return Err(Failure::Exit(1, format!("{failed} hook(s) failed")));
            }
            Ok(())
        }
    }
}
