//! The generic webhook sink: batched `POST {url}` of a JSON array, one element per alert: the
//! alert object exactly as the alert file holds it, with `sensor` (and `site`, when set) added
//! as its last keys. `Content-Type: application/json`. TLS, credentials and retries: see
//! [`super::client`]; a 2xx answer is success.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::client::{HttpDelivery, Poster};
use super::{AlertEvent, Msg, SinkCounters, SinkError};

/// Settings of the webhook sink: where and how to deliver; the alerts are POSTed to the URL
/// as it is.
pub type WebhookConfig = HttpDelivery;

/// The alert object of `json_line` with the `origin` keys (`sensor`, `site`) appended, except
/// those the line has already (a named sensor's alert lines carry `sensor`). A line that is not
/// a JSON object (never built by the daemon) is sent as it is.
pub fn with_origin(json_line: &str, origin: &[(String, String)]) -> String {
    let line = json_line.trim_end();
    let Some(body) = line.strip_suffix('}').filter(|_| line.starts_with('{')) else {
        return line.to_string();
    };
    let present = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line).ok();
    let mut out = String::with_capacity(line.len() + 64);
    out.push_str(body);
    let mut empty = body.trim_end() == "{";
    for (k, v) in origin.iter().filter(|(k, v)| {
        !v.is_empty() && !present.as_ref().is_some_and(|m| m.contains_key(k.as_str()))
    }) {
        if !empty {
            out.push(',');
        }
        empty = false;
        out.push_str(&serde_json::Value::from(k.as_str()).to_string());
        out.push(':');
        out.push_str(&serde_json::Value::from(v.as_str()).to_string());
    }
    out.push('}');
    out
}

/// The request body for a batch: a JSON array of alert objects.
pub fn payload(events: &[Arc<AlertEvent>], origin: &[(String, String)]) -> String {
    let mut out = String::from("[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&with_origin(&e.json_line, origin));
    }
    out.push(']');
    out
}

/// The running webhook sink.
pub(crate) struct Webhook {
    cfg: WebhookConfig,
    origin: Vec<(String, String)>,
    poster: Poster,
}

impl Webhook {
    /// Check the URL and build the client.
    pub(crate) fn new(cfg: &WebhookConfig, origin: &[(String, String)]) -> Result<Self, SinkError> {
        Ok(Self {
            poster: Poster::new("webhook", &cfg.url, cfg)?,
            cfg: cfg.clone(),
            origin: origin.to_vec(),
        })
    }

    /// The URL as a label value (no query).
    pub(crate) fn target(&self) -> String {
        self.poster.target().to_string()
    }

    /// The sink task: gather batches, deliver each with retries.
    pub(crate) async fn run(self, rx: mpsc::Receiver<Msg>, counters: Arc<SinkCounters>) {
        let body = |batch: &[Arc<AlertEvent>]| Bytes::from(payload(batch, &self.origin));
        self.poster
            .post_batches(rx, &self.cfg, &counters, body)
            .await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn origin_keys_are_appended_to_the_alert_object() {
        let origin = vec![
            ("sensor".to_string(), "edge \"1\"".to_string()),
            ("site".to_string(), String::new()),
        ];
        assert_eq!(
            with_origin("{\"id\":\"a\",\"n\":1}", &origin),
            "{\"id\":\"a\",\"n\":1,\"sensor\":\"edge \\\"1\\\"\"}"
        );
        assert_eq!(
            with_origin("{}", &origin),
            "{\"sensor\":\"edge \\\"1\\\"\"}"
        );
        assert_eq!(with_origin("[1]", &origin), "[1]");
        // A named sensor's line has its sensor already: not written twice.
        let both = vec![
            ("sensor".to_string(), "pop-1".to_string()),
            ("site".to_string(), "fra".to_string()),
        ];
        assert_eq!(
            with_origin("{\"id\":\"a\",\"sensor\":\"pop-1\"}", &both),
            "{\"id\":\"a\",\"sensor\":\"pop-1\",\"site\":\"fra\"}"
        );
        let events = [
            Arc::new(AlertEvent {
                json_line: "{\"id\":\"a\"}".into(),
                ..AlertEvent::default()
            }),
            Arc::new(AlertEvent {
                json_line: "{\"id\":\"b\"}".into(),
                ..AlertEvent::default()
            }),
        ];
        let v: serde_json::Value = serde_json::from_str(&payload(&events, &origin)).unwrap();
        assert_eq!(v[1]["id"], "b");
        assert_eq!(v[0]["sensor"], "edge \"1\"");
    }
}
