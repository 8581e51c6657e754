//! Reading a TOML config file so that *every* problem is reported at once:
//! each unknown key, and each section that does not parse, rather than the
//! first error serde meets.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Config that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigProblems(pub Vec<String>);

/// A parsed file whose sections are read one by one, collecting problems.
pub struct ConfigFile {
    table: toml::Table,
    problems: Vec<String>,
}

impl ConfigFile {
    /// Parses `text` and removes (reporting) every key that `defaults`,
    /// serialized, does not have. `optional` lists dotted keys that
    /// defaults leave out (`None` options). Arrays of tables are left to
    /// the section's own `deny_unknown_fields`.
    pub fn parse<T: Serialize>(
        text: &str,
        defaults: &T,
        optional: &[&str],
    ) -> Result<Self, ConfigProblems> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigProblems(vec![e.to_string()]))?;
        let mut known = toml::Table::try_from(defaults).expect("defaults serialize to a table");
        for key in optional {
            let mut table = &mut known;
            let mut parts = key.split('.').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    table.insert(part.to_owned(), toml::Value::Boolean(true));
                } else {
                    let entry = table
                        .entry(part.to_owned())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    let toml::Value::Table(inner) = entry else {
                        break;
                    };
                    table = inner;
                }
            }
        }
        let mut problems = Vec::new();
        remove_unknown(&mut table, &known, "", &mut problems);
        Ok(Self { table, problems })
    }

    /// Reads one top-level entry, or records why it cannot be read and
    /// returns `default`.
    pub fn section<T: DeserializeOwned>(&mut self, key: &str, default: T) -> T {
        let Some(value) = self.table.get(key) else {
            return default;
        };
        match value.clone().try_into() {
            Ok(parsed) => parsed,
            Err(error) => {
                let error: toml::de::Error = error;
                self.problems
                    .push(format!("{key}: {}", error.message().trim()));
                default
            }
        }
    }

    /// The problems found so far, each prefixed with `origin` (the path).
    pub fn finish(self, origin: &str) -> Result<(), ConfigProblems> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigProblems(
                self.problems
                    .into_iter()
                    .map(|p| format!("{origin}: {p}"))
                    .collect(),
            ))
        }
    }
}

/// Removes keys of `table` that `known` lacks, reporting each.
fn remove_unknown(
    table: &mut toml::Table,
    known: &toml::Table,
    prefix: &str,
    problems: &mut Vec<String>,
) {
    table.retain(|key, value| {
        let path = format!("{prefix}{key}");
        match known.get(key) {
            None => {
                problems.push(format!("unknown key `{path}`"));
                false
            }
            Some(toml::Value::Table(known_inner)) => {
                if let toml::Value::Table(inner) = value {
                    remove_unknown(inner, known_inner, &format!("{path}."), problems);
                }
                true
            }
            Some(_) => true,
        }
    });
}
