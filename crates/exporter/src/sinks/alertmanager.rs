//! The Alertmanager sink: batched `POST {url}/api/v2/alerts` (the v2 API's `postableAlerts`: a
//! JSON array of `{labels, annotations, startsAt, endsAt, generatorURL}`).
//!
//! One sink per URL: Alertmanager's HA cluster expects every client to send every alert to
//! every instance, so each instance has its own queue, retries and counters, and one that is
//! down does not hold up the others. TLS, credentials and retries: see [`super::client`].
//! Every alert carries the `origin` labels (`sensor`, `site`) besides its own.
//!
//! A burst alert describes a finished event, but an alert whose `endsAt` lies in the past
//! arrives already resolved and notifies nobody. So `endsAt` is the later of the event end and
//! the send time, plus `resolve_after`; the event's own times are in the annotations.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::client::{HttpDelivery, Poster};
use super::{rfc3339, AlertEvent, Msg, SinkCounters, SinkError};

/// Settings of one Alertmanager sink (one instance).
#[derive(Debug, Clone)]
pub struct AlertmanagerConfig {
    /// Delivery; its URL is the base URL, e.g. `http://127.0.0.1:9093` (the sink appends
    /// `/api/v2/alerts`).
    pub http: HttpDelivery,
    /// How long after sending an alert Alertmanager should consider it resolved.
    pub resolve_after: Duration,
    /// Optional link back to the source (e.g. a dashboard); sent as `generatorURL`.
    pub generator_url: Option<String>,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        Self {
            http: HttpDelivery::new("http://127.0.0.1:9093", 1024),
            resolve_after: Duration::from_secs(3600),
            generator_url: None,
        }
    }
}

/// `alertname` label of an alert kind.
pub fn alertname(kind: &str) -> &'static str {
    match kind {
        "burst" => "BurstwatchBurst",
        "beacon" => "BurstwatchBeacon",
        _ => "BurstwatchAlert",
    }
}

/// The request body for a batch: a JSON array of postable alerts, each with the `origin`
/// labels (`sensor`, `site`) besides its own.
pub fn payload(
    events: &[Arc<AlertEvent>],
    now_unix_ns: i64,
    cfg: &AlertmanagerConfig,
    origin: &[(String, String)],
) -> Value {
    let resolve = i64::try_from(cfg.resolve_after.as_nanos()).unwrap_or(i64::MAX);
    let alerts: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut labels = Map::new();
            labels.insert("alertname".into(), alertname(e.kind).into());
            for (k, v) in [
                ("severity", e.severity),
                ("kind", e.kind),
                ("src", &e.src),
                ("dst", &e.dst),
            ] {
                if !v.is_empty() {
                    labels.insert(k.into(), v.into());
                }
            }
            for (k, v) in origin {
                if !v.is_empty() {
                    labels.insert(k.clone(), v.clone().into());
                }
            }
            let description = format!(
                "{} {} -> {} score {:.2} from {} to {}",
                e.kind,
                e.src,
                e.dst,
                e.score,
                rfc3339(e.starts_at_unix_ns),
                rfc3339(e.ends_at_unix_ns)
            );
            let ends = e
                .ends_at_unix_ns
                .max(now_unix_ns)
                .max(e.starts_at_unix_ns)
                .saturating_add(resolve);
            let mut a = json!({
                "labels": labels,
                "annotations": {
                    "summary": e.summary,
                    "description": description,
                    "alert_id": e.id,
                    "score": format!("{:.3}", e.score),
                    "evidence": e.json_line,
                },
                "startsAt": rfc3339(e.starts_at_unix_ns),
                "endsAt": rfc3339(ends),
            });
            if let (Some(url), Some(obj)) = (&cfg.generator_url, a.as_object_mut()) {
                obj.insert("generatorURL".into(), url.clone().into());
            }
            a
        })
        .collect();
    Value::Array(alerts)
}

/// The running sink of one Alertmanager.
pub(crate) struct Webhook {
    cfg: AlertmanagerConfig,
    origin: Vec<(String, String)>,
    poster: Poster,
}

impl Webhook {
    /// Check the URL and build the client.
    pub(crate) fn new(
        cfg: &AlertmanagerConfig,
        origin: &[(String, String)],
    ) -> Result<Self, SinkError> {
        let url = &cfg.http.url;
        let full = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
        let poster = Poster::new("alertmanager", &full, &cfg.http).map_err(|e| {
            match e {
                // Name the URL as configured.
                SinkError::Url { reason, .. } => SinkError::Url {
                    url: url.clone(),
                    reason,
                },
                other => other,
            }
        })?;
        Ok(Self {
            cfg: cfg.clone(),
            origin: origin.to_vec(),
            poster,
        })
    }

    /// The base URL as a label value.
    pub(crate) fn target(&self) -> String {
        let url = &self.cfg.http.url;
        url.parse::<hyper::Uri>()
            .map_or_else(|_| url.clone(), |u| super::client::display_url(&u))
    }

    /// The sink task: gather batches, deliver each with retries.
    pub(crate) async fn run(self, rx: mpsc::Receiver<Msg>, counters: Arc<SinkCounters>) {
        let (cfg, origin) = (&self.cfg, &self.origin);
        let body = |batch: &[Arc<AlertEvent>]| {
            Bytes::from(payload(batch, unix_now_ns(), cfg, origin).to_string())
        };
        self.poster
            .post_batches(rx, &cfg.http, &counters, body)
            .await;
    }
}

/// Wall clock in ns since the Unix epoch (0 if the clock is before it).
fn unix_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
