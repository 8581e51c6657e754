//! A dataset as Parquet tables, through Polars: `spans.parquet` (one row
//! per span), `metrics.parquet` (one row per data point) and
//! `labels.parquet` (one row per scheduled fault). Rows are written in
//! row groups of [`ROWS_PER_GROUP`], so memory stays bounded whatever
//! the dataset's size. Only this crate links Polars.

pub mod tables;

use std::fs::File;
use std::path::{Path, PathBuf};

use meshtwin_datasets::dataset::{DatasetError, DatasetReader, Payload, read_labels};
use polars::prelude::*;

pub use tables::{MetricRows, SpanRows};

/// Rows buffered before they are written as one row group.
pub const ROWS_PER_GROUP: usize = 250_000;

#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    #[error("{0}")]
    Dataset(#[from] DatasetError),
    #[error("writing Parquet: {0}")]
    Polars(#[from] PolarsError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub spans: u64,
    pub metric_points: u64,
    pub labels: u64,
    /// Records of the dataset that could not be read, skipped.
    pub unreadable: u64,
    pub files: Vec<PathBuf>,
}

/// One table's file, written row group by row group, renamed into place
/// when finished so a reader never sees half of it.
struct TableFile {
    path: PathBuf,
    partial: PathBuf,
    writer: Option<BatchedWriter<File>>,
}

impl TableFile {
    fn new(out: &Path, table: &str) -> Self {
        let path = out.join(format!("{table}.parquet"));
        Self {
            partial: out.join(format!("{table}.parquet.partial")),
            path,
            writer: None,
        }
    }

    fn write(&mut self, frame: &DataFrame) -> Result<(), ParquetError> {
        if self.writer.is_none() {
            let file = File::create(&self.partial).map_err(|source| ParquetError::Io {
                path: self.partial.display().to_string(),
                source,
            })?;
            let writer = ParquetWriter::new(file)
                .with_compression(ParquetCompression::Zstd(None))
                .batched(frame.schema())?;
            self.writer = Some(writer);
        }
        self.writer
            .as_mut()
            .expect("opened above")
            .write_batch(frame)?;
        Ok(())
    }

    fn finish(
        self,
        empty: impl FnOnce() -> PolarsResult<DataFrame>,
    ) -> Result<PathBuf, ParquetError> {
        let mut table = self;
        if table.writer.is_none() {
            table.write(&empty()?)?;
        }
        table.writer.take().expect("written").finish()?;
        std::fs::rename(&table.partial, &table.path).map_err(|source| ParquetError::Io {
            path: table.path.display().to_string(),
            source,
        })?;
        Ok(table.path)
    }
}

/// Writes the dataset in `dir` as Parquet tables in `out`; `progress`
/// gets the number of requests read so far.
pub fn convert(
    dir: &Path,
    out: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<Written, ParquetError> {
    let reader = DatasetReader::open(dir)?;
    std::fs::create_dir_all(out).map_err(|source| ParquetError::Io {
        path: out.display().to_string(),
        source,
    })?;
    let mut written = Written::default();
    let (mut span_rows, mut metric_rows) = (SpanRows::default(), MetricRows::default());
    let (mut spans, mut metrics) = (TableFile::new(out, "spans"), TableFile::new(out, "metrics"));
    for (read, batch) in reader.enumerate() {
        match batch {
            Ok(batch) => match &batch.payload {
                Payload::Traces(request) => span_rows.push(request),
                Payload::Metrics(request) => metric_rows.push(request),
            },
            Err(_) => written.unreadable += 1,
        }
        if span_rows.len() >= ROWS_PER_GROUP {
            written.spans += span_rows.len() as u64;
            spans.write(&span_rows.take()?)?;
        }
        if metric_rows.len() >= ROWS_PER_GROUP {
            written.metric_points += metric_rows.len() as u64;
            metrics.write(&metric_rows.take()?)?;
        }
        progress(read as u64 + 1);
    }
    written.spans += span_rows.len() as u64;
    written.metric_points += metric_rows.len() as u64;
    if !span_rows.is_empty() {
        spans.write(&span_rows.take()?)?;
    }
    if !metric_rows.is_empty() {
        metrics.write(&metric_rows.take()?)?;
    }
    written.files.push(spans.finish(|| span_rows.take())?);
    written.files.push(metrics.finish(|| metric_rows.take())?);
    let labels = read_labels(dir)?;
    written.labels = labels.len() as u64;
    let mut labels_table = TableFile::new(out, "labels");
    labels_table.write(&tables::labels(&labels)?)?;
    written
        .files
        .push(labels_table.finish(|| tables::labels(&[]))?);
    Ok(written)
}

#[cfg(test)]
mod tests;
