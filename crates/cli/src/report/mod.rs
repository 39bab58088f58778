//! `analyze --report DIR`: the forensic report, behind the `report` cargo feature.
//!
//! Without the feature the arguments still parse, and `--report` is a usage error naming the
//! feature; [`Collector`] is then an empty enum, so the hooks in `analyze` compile to nothing.
//! With it, `collect.rs` feeds the report during the run through `sink.rs` (the report on a
//! thread of its own when the run has two) and `second_pass.rs` reads the inputs again for the
//! alert timelines, selecting packets exactly as the first pass did.

use std::path::PathBuf;

#[cfg(feature = "report")]
mod collect;
#[cfg(feature = "report")]
mod second_pass;
#[cfg(feature = "report")]
mod sink;

/// Arguments of `analyze` for the report.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Write a forensic report into this directory: flows, alerts, bursts, hosts, endpoints and
    /// alert timelines as tables, and report.html (needs the `report` feature).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Table format of --report.
    #[arg(long, value_enum, default_value = "parquet", requires = "report")]
    pub report_format: ReportFormat,
}

/// Table format of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Apache Parquet.
    Parquet,
    /// CSV with a header row.
    Csv,
}

#[cfg(feature = "report")]
pub use collect::Collector;

/// Without the `report` feature: no collector can exist.
#[cfg(not(feature = "report"))]
pub enum Collector {}

#[cfg(not(feature = "report"))]
impl Collector {
    /// `--report` given: a usage error; else no collector.
    pub fn start(
        args: &crate::analyze::AnalyzeArgs,
        _home: &burstwatch_engine::PrefixSet,
        _privacy: &crate::privacy::Privacy,
    ) -> anyhow::Result<Option<Self>> {
        if args.report.report.is_some() {
            anyhow::bail!(
                "--report needs burstwatch built with the `report` feature \
                 (cargo build --release --features report)"
            );
        }
        Ok(None)
    }
    /// Unreachable without the feature.
    pub fn enable(&self, _engine: &mut burstwatch_engine::Engine) {
        match *self {}
    }
    /// Unreachable without the feature.
    pub fn packet(&mut self, _ts_ns: i64, _meta: &burstwatch_wire::PacketMeta) {
        match *self {}
    }
    /// Unreachable without the feature.
    pub fn flow(&mut self, _rec: &burstwatch_engine::FlowRecord) {
        match *self {}
    }
    /// Unreachable without the feature.
    pub fn alert(&mut self, _alert: &burstwatch_engine::Alert) {
        match *self {}
    }
    /// Unreachable without the feature.
    pub fn bursts(&mut self, _engine: &mut burstwatch_engine::Engine) {
        match *self {}
    }
    /// Unreachable without the feature.
    pub fn finish(
        self,
        _args: &crate::analyze::AnalyzeArgs,
        _sum: &crate::summary::Summary,
        _archive: &burstwatch_capture::Archive,
    ) -> anyhow::Result<()> {
        match self {}
    }
}
