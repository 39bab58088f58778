//! Columnar row batches and their Parquet/CSV writers.
//!
//! Rows are appended per record (never per packet) into typed column vectors; every
//! [`FLUSH_ROWS`] rows the batch becomes a polars `DataFrame` and is written out as one row
//! group (Parquet) or chunk (CSV), so a table's memory stays bounded however long the run.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::parquet::PlainParquetWriter;
use crate::schema::{Table, Ty};
use crate::ReportError;

/// How CSV writes timestamps (chrono format of the UTC time): RFC 3339 with µs and `Z`.
const CSV_TIMESTAMP: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

/// Rows buffered before a batch is written.
pub const FLUSH_ROWS: usize = 64 * 1024;

/// Output format of the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Apache Parquet (zstd-compressed), one row group per batch; plain Arrow types (text as
    /// `large_string`, timestamps as `timestamp[us, tz=UTC]`).
    #[default]
    Parquet,
    /// CSV with a header row; nulls are empty fields, timestamps RFC 3339 in UTC with µs.
    Csv,
}

impl Format {
    /// File extension.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

/// One cell of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// Text or null.
    S(Option<String>),
    /// u32 or null.
    U32(Option<u32>),
    /// u64 or null.
    U64(Option<u64>),
    /// f64 or null.
    F64(Option<f64>),
    /// bool or null.
    B(Option<bool>),
    /// Timestamp (µs since the Unix epoch, UTC) or null.
    Ts(Option<i64>),
}

enum Data {
    S(Vec<Option<String>>),
    U32(Vec<Option<u32>>),
    U64(Vec<Option<u64>>),
    F64(Vec<Option<f64>>),
    B(Vec<Option<bool>>),
    Ts(Vec<Option<i64>>),
}

impl Data {
    fn new(ty: Ty) -> Data {
        match ty {
            Ty::Str => Data::S(Vec::new()),
            Ty::U32 => Data::U32(Vec::new()),
            Ty::U64 => Data::U64(Vec::new()),
            Ty::F64 => Data::F64(Vec::new()),
            Ty::Bool => Data::B(Vec::new()),
            Ty::Ts => Data::Ts(Vec::new()),
        }
    }

    /// Append; `false` when the value's type does not fit (a null is appended instead).
    fn push(&mut self, v: Val) -> bool {
        match (self, v) {
            (Data::S(c), Val::S(x)) => c.push(x),
            (Data::U32(c), Val::U32(x)) => c.push(x),
            (Data::U64(c), Val::U64(x)) => c.push(x),
            (Data::F64(c), Val::F64(x)) => c.push(x),
            (Data::B(c), Val::B(x)) => c.push(x),
            (Data::Ts(c), Val::Ts(x)) => c.push(x),
            (d, _) => {
                d.push_null();
                return false;
            }
        }
        true
    }

    fn push_null(&mut self) {
        match self {
            Data::S(c) => c.push(None),
            Data::U32(c) => c.push(None),
            Data::U64(c) => c.push(None),
            Data::F64(c) => c.push(None),
            Data::B(c) => c.push(None),
            Data::Ts(c) => c.push(None),
        }
    }

    fn take(&mut self, name: &str) -> Column {
        let name = PlSmallStr::from(name);
        match self {
            Data::S(c) => Column::new(name, std::mem::take(c)),
            Data::U32(c) => Column::new(name, std::mem::take(c)),
            Data::U64(c) => Column::new(name, std::mem::take(c)),
            Data::F64(c) => Column::new(name, std::mem::take(c)),
            Data::B(c) => Column::new(name, std::mem::take(c)),
            Data::Ts(c) => Int64Chunked::from_iter_options(name, std::mem::take(c).into_iter())
                .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                .into_column(),
        }
    }
}

/// Rows of one table, column by column.
pub struct Batch {
    table: Table,
    cols: Vec<Data>,
    len: usize,
    bad: Option<&'static str>,
}

impl Batch {
    /// An empty batch of `table`.
    pub fn new(table: Table) -> Self {
        Self {
            cols: table.cols.iter().map(|c| Data::new(c.ty)).collect(),
            table,
            len: 0,
            bad: None,
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no rows are held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append one row; its cells must follow the table's columns in order and type.
    pub fn push(&mut self, row: Vec<Val>) {
        let mut cells = row.into_iter();
        for (i, col) in self.cols.iter_mut().enumerate() {
            let ok = match cells.next() {
                Some(v) => col.push(v),
                None => {
                    col.push_null();
                    false
                }
            };
            if !ok && self.bad.is_none() {
                self.bad = Some(self.table.cols[i].name);
            }
        }
        if cells.next().is_some() && self.bad.is_none() {
            self.bad = Some("(extra cells)");
        }
        self.len += 1;
    }

    /// The rows so far as a `DataFrame`; the batch is empty afterwards.
    pub fn take_frame(&mut self) -> Result<DataFrame, ReportError> {
        if let Some(column) = self.bad {
            return Err(ReportError::Schema {
                table: self.table.name,
                column,
            });
        }
        let columns: Vec<Column> = self
            .cols
            .iter_mut()
            .zip(self.table.cols)
            .map(|(d, c)| d.take(c.name))
            .collect();
        let height = std::mem::take(&mut self.len);
        DataFrame::new(height, columns).map_err(|source| ReportError::Polars {
            table: self.table.name,
            source,
        })
    }
}

enum Writer {
    // Boxed: the Parquet writer is several times the size of the CSV one.
    Parquet(Box<PlainParquetWriter<BufWriter<File>>>),
    Csv(polars::io::csv::write::BatchedWriter<BufWriter<File>>),
}

/// A table being written: a batch that is flushed to its file every [`FLUSH_ROWS`] rows.
pub struct TableOut {
    batch: Batch,
    path: PathBuf,
    format: Format,
    writer: Option<Writer>,
    rows: u64,
}

impl TableOut {
    /// A table to be written as `dir/<name>.<ext>` (the file is created at the first flush).
    pub fn new(dir: &Path, table: Table, format: Format) -> Self {
        Self {
            path: dir.join(format!("{}.{}", table.name, format.ext())),
            batch: Batch::new(table),
            format,
            writer: None,
            rows: 0,
        }
    }

    /// Append one row, writing a batch out when it is full.
    pub fn push(&mut self, row: Vec<Val>) -> Result<(), ReportError> {
        self.batch.push(row);
        if self.batch.len() >= FLUSH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn pl_err(&self, source: PolarsError) -> ReportError {
        ReportError::Polars {
            table: self.batch.table.name,
            source,
        }
    }

    fn flush(&mut self) -> Result<(), ReportError> {
        let df = self.batch.take_frame()?;
        if self.writer.is_none() {
            let file = File::create(&self.path).map_err(|source| ReportError::Io {
                path: self.path.display().to_string(),
                source,
            })?;
            let out = BufWriter::with_capacity(1 << 16, file);
            let schema = df.schema();
            let w = match self.format {
                Format::Parquet => {
                    PlainParquetWriter::new(out, schema).map(|w| Writer::Parquet(Box::new(w)))
                }
                Format::Csv => CsvWriter::new(out)
                    .with_datetime_format(Some(CSV_TIMESTAMP.into()))
                    .batched(schema)
                    .map(Writer::Csv),
            };
            self.writer = Some(w.map_err(|e| self.pl_err(e))?);
        }
        let res = match self.writer.as_mut() {
            Some(Writer::Parquet(w)) => w.write_batch(&df),
            Some(Writer::Csv(w)) => w.write_batch(&df),
            None => Ok(()),
        };
        res.map_err(|e| self.pl_err(e))?;
        self.rows += df.height() as u64;
        Ok(())
    }

    /// Write what is left and close the file (an empty table still gets its header/schema).
    /// Returns the rows written.
    pub fn finish(mut self) -> Result<u64, ReportError> {
        if !self.batch.is_empty() || self.writer.is_none() {
            self.flush()?;
        }
        let res = match self.writer.take() {
            Some(Writer::Parquet(w)) => w.finish(),
            Some(Writer::Csv(mut w)) => w.finish(),
            None => Ok(()),
        };
        res.map_err(|e| self.pl_err(e))?;
        Ok(self.rows)
    }
}
