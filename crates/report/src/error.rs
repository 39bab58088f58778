//! Errors of report writing.

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Creating or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// polars rejected a table (a schema mismatch or a writer fault).
    #[error("{table}: {source}")]
    Polars {
        /// The table's name.
        table: &'static str,
        /// The cause.
        source: polars::error::PolarsError,
    },
    /// A row did not match its table's column types (a bug; the table was not written).
    #[error("{table}: row does not match the schema at column {column}")]
    Schema {
        /// The table's name.
        table: &'static str,
        /// The first offending column.
        column: &'static str,
    },
}
