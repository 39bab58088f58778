//! Once a second, the threads' counters to the exporter and the daemon's readiness; at exit,
//! what each alert sink delivered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use burstwatch_exporter::metrics::Metrics;
use burstwatch_exporter::sinks::Sinks;

use crate::export;
use crate::shared::Shared;

/// How long the alert sinks get at exit to deliver what is queued.
pub(crate) const SINK_DRAIN: Duration = Duration::from_secs(10);

/// One line at exit: per sink, alerts delivered and not delivered (given up, dropped at a
/// full queue, or still queued when the drain deadline passed).
pub(crate) fn log_sinks_at_exit(stats: &[burstwatch_exporter::stats::SinkStats]) {
    let undelivered: u64 = stats.iter().map(|s| s.failed + s.overflow + s.queued).sum();
    let line = stats
        .iter()
        .map(|s| {
            let target = if s.target.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.target)
            };
            format!(
                "{}: {} sent, {} undelivered{target}",
                s.name,
                s.sent,
                s.failed + s.overflow + s.queued
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if undelivered > 0 {
        tracing::warn!(undelivered, "alert sinks at exit: {line}");
    } else {
        tracing::info!("alert sinks at exit: {line}");
    }
}

/// The shared store's metric families and the counters they show.
pub(crate) type ClusterMetricsSource = (
    burstwatch_exporter::cluster_metrics::ClusterMetrics,
    Arc<burstwatch_cluster::Counters>,
);

/// Once a second: counters to the exporter; ready while every interface captures and every
/// output file can be written; the transit share judged (a warning when most traffic has no
/// side in the home networks).
pub(crate) async fn publish(
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    sinks: Arc<Sinks>,
    ready: Arc<AtomicBool>,
    cluster: Option<ClusterMetricsSource>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut transit = burstwatch_exporter::transit::TransitWatch::default();
    loop {
        tick.tick().await;
        let snapshot = export::snapshot(&shared, sinks.stats());
        metrics.update(&snapshot, export::now_ns());
        if let Some((m, c)) = &cluster {
            m.update(&burstwatch_pipeline::cluster::stats(c));
        }
        transit.check(std::time::Instant::now(), &snapshot.direction);
        // Not ready while an output file cannot be written: records are being held or lost.
        let outputs_ok = snapshot.outputs.iter().all(|o| !o.failing);
        ready.store(shared.all_up() && outputs_ok, Ordering::Relaxed);
    }
}
