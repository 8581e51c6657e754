//! A result as a text table, CSV (RFC 4180) or JSON rows.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::WriterBuilder;
use datafusion::arrow::json::writer::JsonArray;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches_with_schema;
use serde::Serialize;

use crate::{QueryError, QueryResult};

/// How `meshtwin query` prints a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Table,
    Csv,
    Json,
}

/// A column's name and Arrow type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
}

fn failed(error: ArrowError) -> QueryError {
    QueryError::Failed(format!("cannot render the result: {error}"))
}

pub fn columns(result: &QueryResult) -> Vec<Column> {
    result
        .schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
        })
        .collect()
}

/// The rows as JSON objects, nulls included.
pub fn json_rows(result: &QueryResult) -> Result<Vec<serde_json::Value>, QueryError> {
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(Vec::new());
    let batches: Vec<&RecordBatch> = result.batches.iter().collect();
    writer.write_batches(&batches).map_err(failed)?;
    writer.finish().map_err(failed)?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| QueryError::Failed(format!("cannot render the result: {e}")))
}

fn csv_field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn csv(result: &QueryResult) -> Result<String, QueryError> {
    let mut out = String::new();
    let names: Vec<&str> = result
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(&mut out, name);
    }
    out.push_str("\r\n");
    let options = FormatOptions::default();
    for batch in &result.batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(failed)?;
        for row in 0..batch.num_rows() {
            for (i, formatter) in formatters.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                csv_field(&mut out, &formatter.value(row).to_string());
            }
            out.push_str("\r\n");
        }
    }
    Ok(out)
}

/// The result in `format`; the table says when rows were cut.
pub fn render(result: &QueryResult, format: Format) -> Result<String, QueryError> {
    match format {
        Format::Table => {
            let table = pretty_format_batches_with_schema(result.schema.clone(), &result.batches)
                .map_err(failed)?;
            let mut text = format!("{table}\n{} rows", result.rows);
            if result.truncated {
                text.push_str(
                    " (truncated at the row limit; narrow the query or raise --max-rows)",
                );
            }
            text.push_str(&format!(" in {:.3}s\n", result.elapsed.as_secs_f64()));
            Ok(text)
        }
        Format::Csv => csv(result),
        Format::Json => {
            let rows = json_rows(result)?;
            let mut text = serde_json::to_string_pretty(&rows)
                .map_err(|e| QueryError::Failed(e.to_string()))?;
            text.push('\n');
            Ok(text)
        }
    }
}

/// The rows as values of `T`, deserialized from their JSON form (for
/// queries whose columns the caller wrote).
pub(crate) fn typed_rows<T: serde::de::DeserializeOwned>(
    result: &QueryResult,
) -> Result<Vec<T>, QueryError> {
    json_rows(result)?
        .into_iter()
        .map(|row| {
            serde_json::from_value(row)
                .map_err(|e| QueryError::Failed(format!("unexpected row from the store: {e}")))
        })
        .collect()
}
