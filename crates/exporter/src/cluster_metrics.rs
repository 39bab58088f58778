//! Metrics of the shared prevalence store (`[cluster]`), registered beside the others when
//! the daemon runs with one.

use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// What the cluster thread counted (totals since start).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClusterStats {
    /// Contacts written to the store.
    pub written: u64,
    /// Contacts dropped (full backlog or channel).
    pub dropped: u64,
    /// Distinct contacts waiting for the store now.
    pub backlog: u64,
    /// Failed store operations.
    pub errors: u64,
    /// Seconds since the last successful flush (since start when none yet).
    pub flush_lag_seconds: f64,
    /// Whether a connection is up.
    pub connected: bool,
    /// Questions the store answered.
    pub answered: u64,
    /// Questions left unanswered (the alert was scored with the local view).
    pub unanswered: u64,
}

/// The families.
#[derive(Debug, Clone)]
pub struct ClusterMetrics {
    written: IntCounter,
    dropped: IntCounter,
    backlog: IntGauge,
    errors: IntCounter,
    lag: Gauge,
    connected: IntGauge,
    questions: IntCounterVec,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(format!("burstwatch_cluster_{name}"), help)
}

fn advance(c: &IntCounter, total: u64) {
    let cur = c.get();
    if total > cur {
        c.inc_by(total - cur);
    }
}

impl ClusterMetrics {
    /// Register every family on `r`, and `burstwatch_cluster_sensor_info{sensor_id}` = 1 naming
    /// this sensor in the store (to join with the others in queries). The label is not
    /// `sensor`: that one is the registry's own label on every series when `daemon.sensor` is
    /// set, and the two names may differ.
    pub fn register(r: &Registry, sensor: &str) -> Result<Self, prometheus::Error> {
        let info = prometheus::IntGaugeVec::new(
            opts(
                "sensor_info",
                "Always 1; the label names this sensor in the shared store.",
            ),
            &["sensor_id"],
        )?;
        r.register(Box::new(info.clone()))?;
        info.with_label_values(&[sensor]).set(1);
        let m = Self {
            written: IntCounter::with_opts(opts("contacts_written_total", "Contacts (subscriber, endpoint or prefix) written to the shared store."))?,
            dropped: IntCounter::with_opts(opts("contacts_dropped_total", "Contacts dropped before the shared store took them (backlog or hand-over full)."))?,
            backlog: IntGauge::with_opts(opts("backlog_contacts", "Distinct contacts waiting for the shared store."))?,
            errors: IntCounter::with_opts(opts("errors_total", "Failed operations on the shared store (connect, write, question)."))?,
            lag: Gauge::with_opts(opts("flush_lag_seconds", "Seconds since the last successful flush to the shared store."))?,
            connected: IntGauge::with_opts(opts("connected", "1 while connected to the shared store, else 0."))?,
            questions: IntCounterVec::new(opts("questions_total", "Prevalence questions to the shared store, by result (answered, unanswered: scored with the local view, rarity_certain false)."), &["result"])?,
        };
        r.register(Box::new(m.written.clone()))?;
        r.register(Box::new(m.dropped.clone()))?;
        r.register(Box::new(m.backlog.clone()))?;
        r.register(Box::new(m.errors.clone()))?;
        r.register(Box::new(m.lag.clone()))?;
        r.register(Box::new(m.connected.clone()))?;
        r.register(Box::new(m.questions.clone()))?;
        for l in ["answered", "unanswered"] {
            m.questions.with_label_values(&[l]);
        }
        Ok(m)
    }

    /// Show the latest counts.
    pub fn update(&self, s: &ClusterStats) {
        advance(&self.written, s.written);
        advance(&self.dropped, s.dropped);
        advance(&self.errors, s.errors);
        advance(&self.questions.with_label_values(&["answered"]), s.answered);
        advance(
            &self.questions.with_label_values(&["unanswered"]),
            s.unanswered,
        );
        self.backlog
            .set(i64::try_from(s.backlog).unwrap_or(i64::MAX));
        self.lag.set(s.flush_lag_seconds);
        self.connected.set(i64::from(s.connected));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn families_render_and_stay_monotonic() {
        let r = Registry::new();
        let m = ClusterMetrics::register(&r, "pop-1").unwrap();
        m.update(&ClusterStats {
            written: 10,
            backlog: 3,
            flush_lag_seconds: 0.5,
            connected: true,
            unanswered: 2,
            ..ClusterStats::default()
        });
        m.update(&ClusterStats {
            written: 7,
            ..ClusterStats::default()
        });
        let text = String::from_utf8({
            let mut b = Vec::new();
            prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &r.gather(), &mut b)
                .unwrap();
            b
        })
        .unwrap();
        assert!(
            text.contains("burstwatch_cluster_contacts_written_total 10"),
            "{text}"
        );
        assert!(text.contains("burstwatch_cluster_questions_total{result=\"unanswered\"} 2"));
        assert!(text.contains("burstwatch_cluster_backlog_contacts 0"));
        assert!(text.contains("burstwatch_cluster_connected 0"));
        assert!(text.contains("burstwatch_cluster_sensor_info{sensor_id=\"pop-1\"} 1"));
    }
}
