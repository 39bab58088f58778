#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::*;
use crate::sinks::{Retry, Sinks, SinksConfig};
use hyper::Request;

/// Requests a test receiver got: (method, path, JSON body).
type Log = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A tiny HTTP receiver: answers the n-th request with `statuses[n]` (200 after the list) and
/// records every request.
async fn receiver(statuses: Vec<u16>) -> (SocketAddr, Log) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let log2 = Arc::clone(&log);
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            let log = Arc::clone(&log2);
            let statuses = statuses.clone();
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let log = Arc::clone(&log);
                let statuses = statuses.clone();
                async move {
                    let method = req.method().to_string();
                    let path = req.uri().path().to_string();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let v: Value = serde_json::from_slice(&body).unwrap();
                    let n = {
                        let mut l = log.lock().unwrap();
                        l.push((method, path, v));
                        l.len() - 1
                    };
                    let code = statuses.get(n).copied().unwrap_or(200);
                    let mut r = Response::new(Full::new(Bytes::from_static(b"{}")));
                    *r.status_mut() = StatusCode::from_u16(code).unwrap();
                    Ok::<_, std::convert::Infallible>(r)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), svc),
            );
        }
    });
    (addr, log)
}

fn event(i: u32, kind: &'static str) -> AlertEvent {
    AlertEvent {
        json_line: format!("{{\"id\":\"id{i}\"}}"),
        id: format!("id{i}"),
        kind,
        severity: "critical",
        score: 0.91,
        src: "10.0.0.7".into(),
        dst: "198.51.100.9:443".into(),
        starts_at_unix_ns: 1_700_000_000_000_000_000,
        ends_at_unix_ns: 1_700_000_012_000_000_000,
        summary: format!("burst {i}"),
    }
}

fn fast(url: String) -> AlertmanagerConfig {
    AlertmanagerConfig {
        http: HttpDelivery {
            retry: Retry {
                timeout: Duration::from_secs(2),
                backoff_initial: Duration::from_millis(10),
                backoff_max: Duration::from_millis(40),
                ..Retry::default()
            },
            batch_wait: Duration::from_millis(20),
            ..HttpDelivery::new(url, 1024)
        },
        ..AlertmanagerConfig::default()
    }
}

async fn start(cfg: AlertmanagerConfig) -> Sinks {
    Sinks::start(&SinksConfig {
        alertmanager: vec![cfg],
        ..SinksConfig::default()
    })
    .await
    .unwrap()
}

#[test]
fn payload_follows_the_v2_postable_alert_schema() {
    let cfg = AlertmanagerConfig {
        generator_url: Some("http://grafana.example/d/burstwatch".into()),
        ..AlertmanagerConfig::default()
    };
    let now = 1_700_000_100_000_000_000;
    let mut beacon = event(2, "beacon");
    beacon.src.clear();
    let origin = [
        ("sensor".to_string(), "edge-1".to_string()),
        ("site".to_string(), String::new()),
    ];
    let p = payload(
        &[Arc::new(event(1, "burst")), Arc::new(beacon)],
        now,
        &cfg,
        &origin,
    );
    let a = &p[0];
    assert_eq!(a["labels"]["alertname"], "BurstwatchBurst");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["labels"]["dst"], "198.51.100.9:443");
    assert_eq!(a["labels"]["sensor"], "edge-1");
    assert!(
        a["labels"].get("site").is_none(),
        "an empty site adds no label"
    );
    assert_eq!(a["annotations"]["alert_id"], "id1");
    assert_eq!(a["annotations"]["summary"], "burst 1");
    assert_eq!(a["startsAt"], "2023-11-14T22:13:20.000Z");
    // Ends an hour after the send time, not at the (past) event end.
    assert_eq!(a["endsAt"], "2023-11-14T23:15:00.000Z");
    assert_eq!(a["generatorURL"], "http://grafana.example/d/burstwatch");
    assert_eq!(p[1]["labels"]["alertname"], "BurstwatchBeacon");
    assert!(
        p[1]["labels"].get("src").is_none(),
        "empty label values are left out"
    );
}

#[test]
fn urls_are_checked() {
    for (url, ok) in [
        ("http://127.0.0.1:9093", true),
        ("http://am.example/prefix/", true),
        ("https://am.example", true),
        ("ftp://am.example", false),
        ("127.0.0.1:9093", false),
        ("not a url", false),
    ] {
        let cfg = AlertmanagerConfig {
            http: HttpDelivery::new(url, 1024),
            ..AlertmanagerConfig::default()
        };
        assert_eq!(Webhook::new(&cfg, &[]).is_ok(), ok, "{url}");
    }
}

#[tokio::test]
async fn retries_server_errors_then_delivers_one_batch() {
    let (addr, log) = receiver(vec![500, 503]).await;
    let sinks = start(fast(format!("http://{addr}/"))).await;
    for i in 0..3 {
        sinks.send(event(i, "burst"));
    }
    let stats = sinks.shutdown(Duration::from_secs(10)).await;
    let s = &stats[0];
    assert_eq!(
        (s.name, s.sent, s.failed, s.retries, s.overflow, s.queued),
        ("alertmanager", 3, 0, 2, 0, 0)
    );
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3, "two failed attempts and the successful one");
    for (method, path, body) in log.iter() {
        assert_eq!((method.as_str(), path.as_str()), ("POST", "/api/v2/alerts"));
        let ids: Vec<_> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["annotations"]["alert_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, ["id0", "id1", "id2"]);
    }
}

#[tokio::test]
async fn refused_payloads_are_not_retried() {
    let (addr, log) = receiver(vec![400]).await;
    let sinks = start(fast(format!("http://{addr}"))).await;
    sinks.send(event(1, "burst"));
    assert!(sinks.flush(Duration::from_secs(5)).await);
    sinks.send(event(2, "beacon"));
    let stats = sinks.shutdown(Duration::from_secs(10)).await;
    assert_eq!(
        (stats[0].sent, stats[0].failed, stats[0].retries),
        (1, 1, 0)
    );
    assert_eq!(log.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn overflow_is_counted_while_the_receiver_is_down() {
    // A port nobody listens on.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut cfg = fast(format!("http://{addr}"));
    cfg.http.queue = 4;
    cfg.http.batch_max = 1;
    cfg.http.retry.max_retries = 2;
    let sinks = start(cfg).await;
    for i in 0..20 {
        sinks.send(event(i, "burst"));
    }
    let queued = sinks.stats()[0].clone();
    assert_eq!((queued.overflow, queued.queued), (16, 4));
    let stats = sinks.shutdown(Duration::from_secs(10)).await;
    let s = &stats[0];
    assert_eq!((s.sent, s.failed, s.overflow, s.queued), (0, 4, 16, 0));
    assert_eq!(s.retries, 4 * 2);
}

#[tokio::test]
async fn shutdown_deadline_counts_undelivered_alerts_as_failed() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut cfg = fast(format!("http://{addr}"));
    cfg.http.retry.max_retries = 1000;
    cfg.http.retry.backoff_initial = Duration::from_millis(50);
    let sinks = start(cfg).await;
    sinks.send(event(1, "burst"));
    sinks.send(event(2, "burst"));
    let t0 = std::time::Instant::now();
    let stats = sinks.shutdown(Duration::from_millis(300)).await;
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!((stats[0].sent, stats[0].failed, stats[0].queued), (0, 2, 0));
}
