//! # burstwatch-exporter
//!
//! What the daemon (`crates/daemon`) publishes and where its alerts go: metrics, the HTTP
//! endpoints and the alert sinks. Its boundary with the daemon and the sans-IO engine is plain
//! data:
//!
//! ```text
//!  workers (engine, counters) ──once a second──▶ StatsSnapshot ──update──▶ Metrics ──▶ GET /metrics
//!  engine alerts ──▶ AlertEvent ──send (never blocks)──▶ Sinks ──▶ file, stdout, Alertmanager
//! ```
//!
//! * [`stats`]: [`stats::StatsSnapshot`], the plain-data interface between the daemon core and
//!   the exporter.
//! * [`metrics`]: the Prometheus registry (`burstwatch_*` families, listed in `METRICS.md`).
//! * [`http`]: `/metrics`, `/healthz`, `/readyz` on tokio and hyper, with graceful shutdown.
//! * [`linefile`]: JSON lines to a file or stdout that hold through write faults (a bounded
//!   backlog, retries, dropped lines counted), for the flow records and the alert line sinks.
//! * [`sinks`]: alert sinks (JSON lines to a file or stdout, the Alertmanager v2 API) behind
//!   bounded queues whose overflow is counted.
//! * [`transit`]: the share of traffic with neither side in the home networks, judged once a
//!   period and logged when high (the likely cause: `detect.home_nets`).
#![forbid(unsafe_code)]

pub mod cluster_metrics;
mod flow_metrics;
pub mod http;
pub mod linefile;
pub mod metrics;
pub mod sinks;
pub mod stats;
pub mod transit;
