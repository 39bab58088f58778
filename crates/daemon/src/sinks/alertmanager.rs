//! The Alertmanager sink: batched `POST {url}/api/v2/alerts` (the v2 API's `postableAlerts`: a
//! JSON array of `{labels, annotations, startsAt, endsAt, generatorURL}`).
//!
//! Each request has a timeout. Connection errors, timeouts, 5xx and 429 answers are retried
//! with exponential backoff up to `max_retries` times; other 4xx answers mean the payload is
//! refused and are not retried. Plain `http://` only (the client is hyper-util's, without a TLS
//! stack): put a local proxy in front of an `https://` Alertmanager.
//!
//! A burst alert describes a finished event, but an alert whose `endsAt` lies in the past
//! arrives already resolved and notifies nobody. So `endsAt` is the later of the event end and
//! the send time, plus `resolve_after`; the event's own times are in the annotations.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::{rfc3339, AlertEvent, Msg, SinkCounters, SinkError};

/// Settings of the Alertmanager sink.
#[derive(Debug, Clone)]
pub struct AlertmanagerConfig {
    /// Base URL, e.g. `http://127.0.0.1:9093` (the sink appends `/api/v2/alerts`).
    pub url: String,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Most alerts in one request.
    pub batch_max: usize,
    /// How long to gather a batch after its first alert.
    pub batch_wait: Duration,
    /// Repeats after a failed attempt before the batch is given up.
    pub max_retries: u32,
    /// First backoff; doubles after each failure.
    pub backoff_initial: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// Alerts that may wait for delivery; more are dropped and counted.
    pub queue: usize,
    /// How long after sending an alert Alertmanager should consider it resolved.
    pub resolve_after: Duration,
    /// Optional link back to the source (e.g. a dashboard); sent as `generatorURL`.
    pub generator_url: Option<String>,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:9093".into(),
            timeout: Duration::from_secs(10),
            batch_max: 64,
            batch_wait: Duration::from_millis(500),
            max_retries: 5,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            queue: 1024,
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

/// The request body for a batch: a JSON array of postable alerts.
pub fn payload(events: &[Arc<AlertEvent>], now_unix_ns: i64, cfg: &AlertmanagerConfig) -> Value {
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

/// What went wrong with one attempt.
enum Failure {
    /// Worth another try (connection, timeout, 5xx, 429).
    Retry(String),
    /// The receiver refused the payload (other 4xx).
    Refused(String),
}

/// The running sink.
pub(crate) struct Webhook {
    cfg: AlertmanagerConfig,
    uri: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Webhook {
    /// Check the URL and build the client.
    pub(crate) fn new(cfg: &AlertmanagerConfig) -> Result<Self, SinkError> {
        let bad = |reason: &str| SinkError::Url {
            url: cfg.url.clone(),
            reason: reason.into(),
        };
        let full = format!("{}/api/v2/alerts", cfg.url.trim_end_matches('/'));
        let uri: Uri = full.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(bad("https is not supported; use a local proxy")),
            _ => return Err(bad("needs an http:// URL")),
        }
        if uri.host().is_none() {
            return Err(bad("no host"));
        }
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(cfg.timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(conn);
        Ok(Self {
            cfg: cfg.clone(),
            uri,
            client,
        })
    }

    /// The sink task: gather batches, deliver each with retries.
    pub(crate) async fn run(self, mut rx: mpsc::Receiver<Msg>, counters: Arc<SinkCounters>) {
        let batch_max = self.cfg.batch_max.max(1);
        loop {
            let first = match rx.recv().await {
                None => return,
                Some(Msg::Flush(done)) => {
                    let _ = done.send(());
                    continue;
                }
                Some(Msg::Alert(e)) => e,
            };
            let mut batch = vec![first];
            let mut flushes = Vec::new();
            let until = tokio::time::Instant::now() + self.cfg.batch_wait;
            while batch.len() < batch_max {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(Msg::Alert(e))) => batch.push(e),
                    Ok(Some(Msg::Flush(done))) => {
                        flushes.push(done);
                        break;
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            self.deliver(&batch, &counters).await;
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    /// Post one batch, retrying with backoff.
    async fn deliver(&self, batch: &[Arc<AlertEvent>], counters: &SinkCounters) {
        let n = batch.len() as u64;
        let body = payload(batch, unix_now_ns(), &self.cfg);
        let body = Bytes::from(body.to_string());
        let mut backoff = self.cfg.backoff_initial;
        let mut attempt = 0u32;
        loop {
            match self.post(body.clone()).await {
                Ok(()) => {
                    SinkCounters::add(&counters.sent, n);
                    break;
                }
                Err(Failure::Refused(why)) => {
                    tracing::warn!(alerts = n, %why, "alertmanager refused alerts; not retrying");
                    SinkCounters::add(&counters.failed, n);
                    break;
                }
                Err(Failure::Retry(why)) if attempt >= self.cfg.max_retries => {
                    tracing::warn!(alerts = n, attempts = attempt + 1, %why, "alertmanager unreachable; alerts given up");
                    SinkCounters::add(&counters.failed, n);
                    break;
                }
                Err(Failure::Retry(why)) => {
                    tracing::debug!(%why, ?backoff, "alertmanager post failed; retrying");
                    SinkCounters::add(&counters.retries, 1);
                    attempt += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.cfg.backoff_max);
                }
            }
        }
        counters.done(n);
    }

    /// One attempt.
    async fn post(&self, body: Bytes) -> Result<(), Failure> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = self.uri.clone();
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let attempt = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| Failure::Retry(format!("request: {e}")))?;
            let status = resp.status();
            // Read (a bounded part of) the answer so the connection can be reused.
            let text = match Limited::new(resp.into_body(), 64 * 1024).collect().await {
                Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                Err(_) => String::new(),
            };
            if status.is_success() {
                Ok(())
            } else if status.is_server_error() || status.as_u16() == 429 {
                Err(Failure::Retry(format!("{status}: {}", text.trim())))
            } else {
                Err(Failure::Refused(format!("{status}: {}", text.trim())))
            }
        };
        match tokio::time::timeout(self.cfg.timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Retry("timed out".into())),
        }
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
