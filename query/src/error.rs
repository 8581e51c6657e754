//! What can go wrong with a query, in words an SRE can act on, with the
//! line and column of the SQL the error points at when there is one.

use std::time::Duration;

use datafusion::error::DataFusionError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The SQL is wrong: it does not parse, names what does not exist, or
    /// asks for what is not allowed (queries are read-only).
    #[error("{}", with_position(message, *line, *column))]
    Invalid {
        message: String,
        line: Option<u64>,
        column: Option<u64>,
    },
    #[error("the query ran longer than {}s and was cancelled", .0.as_secs_f64())]
    Timeout(Duration),
    /// Valid SQL that failed while running (out of its memory limit, an
    /// unreadable file).
    #[error("{0}")]
    Failed(String),
    #[error("the query engine has stopped")]
    Stopped,
}

fn with_position(message: &str, line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(line), Some(column)) if !message.contains("Line: ") => {
            format!("{message} (line {line}, column {column})")
        }
        _ => message.to_owned(),
    }
}

/// `Line: L, Column: C` in a parser message.
fn parser_position(message: &str) -> Option<(u64, u64)> {
    let rest = &message[message.rfind("Line: ")? + "Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

impl QueryError {
    pub(crate) fn from_datafusion(error: &DataFusionError, sql: &str) -> Self {
        let root = error.find_root();
        let message = match root {
            DataFusionError::SQL(parser, _) => parser.to_string(),
            other => other.message().trim().to_owned(),
        };
        let span = error
            .diagnostic()
            .and_then(|d| d.span)
            .filter(|s| s.start.line > 0)
            .map(|s| (s.start.line, s.start.column));
        match root {
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..) => {
                let (line, column) = span.or_else(|| parser_position(&message)).unzip();
                let mut message = first_line(&message);
                if ["DDL", "DML", "Statement"]
                    .iter()
                    .any(|what| message.starts_with(&format!("{what} not supported")))
                {
                    message.push_str(" (queries are read-only)");
                }
                Self::Invalid {
                    message,
                    line,
                    column,
                }
            }
            DataFusionError::NotImplemented(_) => Self::Invalid {
                message: format!("not supported: {}", first_line(&message)),
                line: span.map(|s| s.0),
                column: span.map(|s| s.1),
            },
            DataFusionError::ResourcesExhausted(_) => Self::Failed(format!(
                "the query needs more memory than its limit; narrow the time range or group by fewer keys ({})",
                first_line(&message)
            )),
            _ => {
                tracing::debug!(%sql, %error, "query failed");
                Self::Failed(first_line(&message))
            }
        }
    }

    /// Where in the SQL the error points, when it does.
    pub fn position(&self) -> Option<(u64, u64)> {
        match self {
            Self::Invalid {
                line: Some(line),
                column: Some(column),
                ..
            } => Some((*line, *column)),
            _ => None,
        }
    }
}

/// DataFusion appends backtraces and hints on later lines; the first says it.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::parser_position;

    #[test]
    fn reads_the_parser_position() {
        let message = "Expected: an expression, found: FROM at Line: 2, Column: 13";
        assert_eq!(parser_position(message), Some((2, 13)));
        assert_eq!(parser_position("no position here"), None);
    }
}
