//! The audit trail: an append-only file of JSON records, each chained to
//! the one before by SHA-256, so that changing, removing or reordering a
//! record breaks the chain from that record on.
//!
//! One line per record: `<hash> <entry>`, where `<entry>` is the record's
//! JSON (`seq`, `at_unix_ms`, `kind`, `prev`, `record`) exactly as hashed
//! and `<hash>` is the lowercase hex SHA-256 of those bytes. `prev` is the
//! hash of the record before (64 zeros for the first). Verification needs
//! only the file: `meshtwin audit verify` recomputes every hash and names
//! the first record that does not match. Cutting records off the end
//! leaves a shorter valid chain; the head hash it prints, kept elsewhere,
//! is what shows that.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One record as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub seq: u64,
    pub at_unix_ms: u64,
    pub kind: String,
    pub prev: String,
    pub record: serde_json::Value,
}

/// A chain that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    /// The last record's hash (`GENESIS` for an empty log).
    pub head: String,
}

/// Where and why a chain stops checking out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit record {record} (line {line}): {reason}")]
pub struct Broken {
    /// 1-based line in the file.
    pub line: u64,
    /// The sequence number the record should have.
    pub record: u64,
    pub reason: String,
    /// The chain up to the record before.
    pub valid_before: Verified,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest(&SHA256, bytes).as_ref())
}

/// Checks every record of `text`, a whole audit file.
pub fn verify_text(text: &[u8]) -> Result<Verified, Broken> {
    let mut chain = Verified {
        records: 0,
        head: GENESIS.to_owned(),
    };
    let mut rest = text;
    let mut line = 0;
    while !rest.is_empty() {
        line += 1;
        let broken = |reason: String, chain: &Verified| Broken {
            line,
            record: chain.records + 1,
            reason,
            valid_before: chain.clone(),
        };
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            return Err(broken(
                format!(
                    "incomplete last record ({} bytes without an end of line): cut off while written, or altered",
                    rest.len()
                ),
                &chain,
            ));
        };
        let (this, after) = (&rest[..end], &rest[end + 1..]);
        rest = after;
        check_line(this, &chain).map_err(|reason| broken(reason, &chain))?;
        chain.records += 1;
        chain.head = String::from_utf8_lossy(&this[..64]).into_owned();
    }
    Ok(chain)
}

fn check_line(line: &[u8], chain: &Verified) -> Result<(), String> {
    if line.len() < 66 || line[64] != b' ' {
        return Err("not `<sha-256 hex> <json>`".to_owned());
    }
    let (hash, entry) = (&line[..64], &line[65..]);
    let computed = sha256_hex(entry);
    if hash != computed.as_bytes() {
        return Err(format!(
            "hash mismatch: the record's bytes hash to {computed}, the file says {}",
            String::from_utf8_lossy(hash)
        ));
    }
    let entry: AuditEntry = serde_json::from_slice(entry)
        .map_err(|e| format!("the record is not a valid audit entry: {e}"))?;
    let expected = chain.records + 1;
    if entry.seq != expected {
        return Err(format!(
            "sequence number {} where {expected} was expected: records were removed or reordered",
            entry.seq
        ));
    }
    if entry.prev != chain.head {
        return Err(format!(
            "prev is {} but the record before hashes to {}",
            entry.prev, chain.head
        ));
    }
    Ok(())
}

/// Checks the audit file at `path`.
pub fn verify_file(path: &Path) -> io::Result<Result<Verified, Broken>> {
    Ok(verify_text(&std::fs::read(path)?))
}

/// The writing end, opened once per process. Every append is synced to
/// disk before it returns.
pub struct AuditLog {
    path: PathBuf,
    file: File,
    chain: Verified,
}

/// What opening found, besides the log itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A new file, or an existing chain that checked out.
    Intact,
    /// The last record was cut off (a crash while writing it); its bytes
    /// were dropped and a `recovered` record says how many.
    TailDropped { bytes: u64 },
    /// The chain was broken; the file was moved to `moved_to` and a new
    /// chain starts with a `chain_broken` record naming it.
    MovedAside { moved_to: PathBuf, broken: Broken },
}

impl AuditLog {
    /// Opens (or creates) the log at `path`, checking the chain so far.
    pub fn open(path: &Path, now_unix_ms: u64) -> io::Result<(Self, Opened)> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = match std::fs::read(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let (chain, opened) = match verify_text(&text) {
            Ok(chain) => (chain, Opened::Intact),
            Err(broken) if is_cut_tail(&text, &broken) => {
                let keep = text.len() - tail_len(&text);
                OpenOptions::new()
                    .write(true)
                    .open(path)?
                    .set_len(keep as u64)?;
                let bytes = (text.len() - keep) as u64;
                (broken.valid_before, Opened::TailDropped { bytes })
            }
            Err(broken) => {
                let moved_to = path.with_extension(format!("broken-{now_unix_ms}"));
                std::fs::rename(path, &moved_to)?;
                let chain = Verified {
                    records: 0,
                    head: GENESIS.to_owned(),
                };
                (chain, Opened::MovedAside { moved_to, broken })
            }
        };
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let mut log = Self {
            path: path.to_owned(),
            file,
            chain,
        };
        match &opened {
            Opened::Intact => {}
            Opened::TailDropped { bytes } => {
                log.append(
                    "recovered",
                    serde_json::json!({ "dropped_incomplete_record_bytes": bytes }),
                    now_unix_ms,
                )?;
            }
            Opened::MovedAside { moved_to, broken } => {
                log.append(
                    "chain_broken",
                    serde_json::json!({
                        "moved_to": moved_to.display().to_string(),
                        "first_bad_line": broken.line,
                        "first_bad_record": broken.record,
                        "reason": broken.reason,
                        "valid_records": broken.valid_before.records,
                        "valid_head": broken.valid_before.head,
                    }),
                    now_unix_ms,
                )?;
            }
        }
        Ok((log, opened))
    }

    /// Appends one record and syncs it; returns it as written.
    pub fn append(
        &mut self,
        kind: &str,
        record: serde_json::Value,
        at_unix_ms: u64,
    ) -> io::Result<AuditEntry> {
        let entry = AuditEntry {
            seq: self.chain.records + 1,
            at_unix_ms,
            kind: kind.to_owned(),
            prev: self.chain.head.clone(),
            record,
        };
        let json = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        let hash = sha256_hex(&json);
        let mut line = Vec::with_capacity(json.len() + 66);
        line.extend_from_slice(hash.as_bytes());
        line.push(b' ');
        line.extend_from_slice(&json);
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.sync_data()?;
        self.chain.records += 1;
        self.chain.head = hash;
        Ok(entry)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records so far and the last one's hash.
    pub fn chain(&self) -> &Verified {
        &self.chain
    }
}

/// Bytes after the last end of line.
fn tail_len(text: &[u8]) -> usize {
    text.iter().rev().take_while(|b| **b != b'\n').count()
}

/// Whether the only fault is a last record without its end of line.
fn is_cut_tail(text: &[u8], broken: &Broken) -> bool {
    let lines = text.iter().filter(|b| **b == b'\n').count() as u64;
    broken.line == lines + 1 && tail_len(text) > 0
}

#[cfg(test)]
mod tests;
