//! Parquet files with plain Arrow types, written batch by batch.
//!
//! polars' `ParquetWriter` always writes its newest Arrow types, in which text is `Utf8View`
//! (`string_view`): pyarrow, and pandas through it, can then neither filter, compare, sort nor
//! join those columns. This writer converts every batch to polars' oldest Arrow types
//! (`CompatLevel::oldest()`: text becomes `LargeUtf8`, pyarrow's `large_string`) and hands it to
//! the Parquet file writer of polars' own `polars-parquet` crate, so the Arrow schema stored in
//! the file and the columns agree. Datetime columns in µs with the UTC zone are written as
//! Parquet `TIMESTAMP(MICROS, isAdjustedToUTC=true)`.

use std::io::Write;

use polars::prelude::*;
use polars_parquet::write::{
    get_dtype_encoding, row_group_iter, CompressionOptions, Encoding, FileWriter,
    StatisticsOptions, Version, WriteOptions,
};

/// A Parquet file being written: one row group per [`write_batch`](Self::write_batch).
pub struct PlainParquetWriter<W: Write> {
    writer: FileWriter<W>,
    schema: Schema,
    encodings: Vec<Vec<Encoding>>,
    options: WriteOptions,
}

impl<W: Write> PlainParquetWriter<W> {
    /// A writer of frames with `schema`, zstd-compressed, with min/max/null-count statistics
    /// (what readers use to skip row groups on a filter).
    pub fn new(out: W, schema: &Schema) -> PolarsResult<Self> {
        let arrow = schema.to_arrow(CompatLevel::oldest());
        let encodings = arrow
            .iter_values()
            .map(|f| get_dtype_encoding(&f.dtype))
            .collect();
        let options = WriteOptions {
            statistics: StatisticsOptions::default(),
            compression: CompressionOptions::Zstd(None),
            version: Version::V1,
            data_page_size: None,
        };
        Ok(Self {
            writer: FileWriter::try_new(out, arrow, options)?,
            schema: schema.clone(),
            encodings,
            options,
        })
    }

    /// Write `df` (single-chunk columns, the schema given at creation) as a row group.
    pub fn write_batch(&mut self, df: &DataFrame) -> PolarsResult<()> {
        if **df.schema() != self.schema {
            polars_bail!(SchemaMismatch: "batch schema {:?} differs from the file's {:?}", df.schema(), self.schema);
        }
        for batch in df.iter_chunks(CompatLevel::oldest(), false) {
            let rows = batch.len();
            if rows == 0 {
                continue;
            }
            let fields = self.writer.parquet_schema().fields().to_vec();
            let group = row_group_iter(batch, self.encodings.clone().into(), fields, self.options);
            self.writer.write(rows as u64, group)?;
        }
        Ok(())
    }

    /// Write the footer (with the Arrow schema) and flush the output.
    pub fn finish(mut self) -> PolarsResult<()> {
        self.writer.end(None)?;
        self.writer.into_inner().flush()?;
        Ok(())
    }
}
