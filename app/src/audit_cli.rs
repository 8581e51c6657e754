//! `meshtwin audit verify`: recomputes the audit log's hash chain, offline,
//! and names the first record that does not check out. Exit codes: 0 when
//! the chain is intact; 1 when it is broken; 66 when there is no log.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use meshtwin_failover::audit;

use crate::Failure;

/// Exit code when the log cannot be read (BSD `EX_NOINPUT`).
const EXIT_NO_LOG: u8 = 66;

/// The audit log's place in a data directory.
pub(crate) fn log_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("audit").join("audit.log")
}

#[derive(Debug, Args, Clone)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand, Clone)]
enum AuditCommand {
    /// Recompute every record's hash and link; print the head hash, or the
    /// first record that was altered, removed or reordered.
    Verify {
        /// The data directory whose `audit/audit.log` to check [default: ./meshtwin-data].
        #[arg(long, value_name = "DIR", conflicts_with = "file")]
        data_dir: Option<PathBuf>,
        /// An audit log file anywhere (a copy, an archive).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

pub(crate) fn audit(args: &AuditArgs) -> Result<(), Failure> {
    let AuditCommand::Verify { data_dir, file } = &args.command;
    let path = file.clone().unwrap_or_else(|| {
        log_path(
            &data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("meshtwin-data")),
        )
    });
    let at = path.display();
    let outcome = audit::verify_file(&path)
        .map_err(|e| Failure::Exit(EXIT_NO_LOG, format!("cannot read the audit log {at}: {e}")))?;
    match outcome {
        Ok(verified) => {
            println!(
                "{at}: {} records, chain intact; head {}",
                verified.records, verified.head
            );
            Ok(())
        }
        Err(broken) => Err(Failure::Exit(
            1,
            format!(
                "{at}: chain BROKEN at record {} (line {}): {}\n  the {} records before it are intact; their head is {}",
                broken.record,
                broken.line,
                broken.reason,
                broken.valid_before.records,
                broken.valid_before.head
            ),
        )),
    }
}
