//! The HTTP endpoints: `GET /metrics` (Prometheus text format), `GET /healthz` (200 while the
//! process runs), `GET /readyz` (200 once the daemon says it is ready, 503 before), 404 for
//! anything else. HTTP/1.1 on hyper, with a graceful shutdown driven by a future.
//!
//! Hostile or broken clients cannot lock a scraper out:
//! * at most [`Limits::max_connections`] connections are open; when the table is full, the
//!   least recently active connection is closed to make room (`conns`), so a new scrape is
//!   served however many idle connections are held;
//! * a client must send a complete request head within [`Limits::header_read_timeout`], on a
//!   new connection (a connection that sends nothing or a slow, partial header is closed) and
//!   between requests of a keep-alive connection (the idle timeout);
//! * a connection lives at most [`Limits::connection_deadline`]: the first response after it
//!   says `Connection: close`, and a client that does not read it (a slow reader) is dropped
//!   [`SHUTDOWN_GRACE`] later;
//! * refused or evicted connections and accept errors are logged at most once per
//!   [`Limits::log_every`], with the count of events each line stands for (`throttle`).

mod conns;
mod throttle;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::metrics::Metrics;
use conns::Table;
use throttle::Throttle;

/// Where the exporter listens unless configured otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1:9811";

/// Most connections open at once (fewer when the open-file limit is low, see
/// [`Limits::for_open_files`]); a new one closes the least recently active.
pub const MAX_CONNECTIONS: usize = 1024;

/// File descriptors left to the rest of the daemon (captures, output files, sink sockets)
/// when the connection cap is sized from the open-file limit.
pub const RESERVED_FDS: u64 = 256;

/// How long a client may take to send a request head, on a new connection and between two
/// requests of a keep-alive connection.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one connection may stay open, whatever it does (plus [`SHUTDOWN_GRACE`] to finish
/// the response in flight).
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(60);

/// At most one log line per this period for connection floods and accept errors.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// How long shutdown waits for requests in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The server's bounds on connections (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once; a new one closes the least recently active.
    pub max_connections: usize,
    /// Time allowed for a request head (new connection, or idle between requests).
    pub header_read_timeout: Duration,
    /// Longest life of one connection (plus [`SHUTDOWN_GRACE`] for the response in flight).
    pub connection_deadline: Duration,
    /// Shortest period between two log lines about floods or accept errors.
    pub log_every: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            connection_deadline: CONNECTION_DEADLINE,
            log_every: LOG_EVERY,
        }
    }
}

impl Limits {
    /// The defaults, with the connection cap lowered so that connections leave
    /// [`RESERVED_FDS`] of the process's open-file limit `nofile` (its soft limit) to the
    /// rest of the daemon; at least 16 connections.
    pub fn for_open_files(nofile: u64) -> Limits {
        let fit = usize::try_from(nofile.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
        Limits {
            max_connections: fit.clamp(16, MAX_CONNECTIONS),
            ..Limits::default()
        }
    }
}

/// Errors of the HTTP server.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Accepting connections failed.
    #[error("accept: {0}")]
    Accept(std::io::Error),
}

/// What the endpoints show: the exporter and the readiness flag the daemon core sets once its
/// captures are open and its state is restored.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The exporter rendered by `/metrics`.
    pub metrics: Arc<Metrics>,
    /// `/readyz` answers 200 while this is true.
    pub ready: Arc<AtomicBool>,
}

/// Bind the listening socket (port 0 picks a free port; see `local_addr()`).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })
}

/// Serve with the default [`Limits`] until `shutdown` completes (see [`serve_with`]).
pub async fn serve(
    listener: TcpListener,
    endpoints: Endpoints,
    shutdown: impl Future<Output = ()>,
) -> Result<(), HttpError> {
    serve_with(listener, endpoints, Limits::default(), shutdown).await
}

/// Serve until `shutdown` completes, then stop accepting and give requests in flight
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve_with(
    listener: TcpListener,
    endpoints: Endpoints,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> Result<(), HttpError> {
    let graceful = GracefulShutdown::new();
    let table = Table::new(limits.max_connections);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut evictions = Throttle::new(limits.log_every);
    let mut accept_errors = Throttle::new(limits.log_every);
    let mut flush = tokio::time::interval(limits.log_every);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            _ = flush.tick() => {
                let now = Instant::now();
                if let Some(n) = evictions.flush(now) {
                    log_evictions(n, limits.max_connections);
                }
                if let Some(n) = accept_errors.flush(now) {
                    tracing::warn!(errors = n, "exporter: accept failed");
                }
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_transient(&e) => {
                    if let Some(n) = accept_errors.event(1, Instant::now()) {
                        tracing::warn!(error = %e, errors = n, "exporter: accept failed");
                    }
                    // Out of descriptors: the stalest connection gives its own back.
                    if is_fd_exhaustion(&e) && table.evict_oldest() {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
                Err(e) => return Err(HttpError::Accept(e)),
            },
        };
        let (handle, evicted, closed) = table.admit();
        if closed > 0 {
            if let Some(n) = evictions.event(closed as u64, Instant::now()) {
                log_evictions(n, limits.max_connections);
            }
        }
        let ep = endpoints.clone();
        let (accepted, deadline) = (Instant::now(), limits.connection_deadline);
        let service = hyper::service::service_fn(move |req| {
            handle.touch();
            let mut resp = route(&ep, &req);
            // Past its deadline the connection ends after this response.
            if accepted.elapsed() >= deadline {
                resp.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            async move { Ok::<_, Infallible>(resp) }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        let hard_deadline = deadline + SHUTDOWN_GRACE;
        tokio::spawn(async move {
            tokio::select! {
                ended = conn => if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "exporter: connection ended with an error");
                },
                _ = evicted => {
                    tracing::debug!(%peer, "exporter: connection closed to make room");
                }
                () = tokio::time::sleep(hard_deadline) => {
                    tracing::debug!(%peer, "exporter: connection closed at its deadline");
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("exporter: requests still open after the shutdown grace; closing");
    }
    Ok(())
}

fn log_evictions(closed: u64, limit: usize) {
    tracing::warn!(
        closed,
        limit,
        "exporter: connection limit reached; closed the least recently active connections \
         (counted since the last such line)"
    );
}

/// Accept errors that concern one connection (or a momentary lack of descriptors), not the
/// listener.
fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || is_fd_exhaustion(e)
}

/// EMFILE or ENFILE: no descriptor left for the new connection.
fn is_fd_exhaustion(e: &std::io::Error) -> bool {
    e.raw_os_error().is_some_and(|c| c == 24 || c == 23)
}

/// Answer one request.
fn route(ep: &Endpoints, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    match (get, req.uri().path()) {
        (true, "/metrics") => match ep.metrics.render() {
            Ok(text) => reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                text,
            ),
            Err(e) => {
                tracing::error!(error = %e, "exporter: cannot render metrics");
                text(StatusCode::INTERNAL_SERVER_ERROR, "cannot render metrics\n")
            }
        },
        (true, "/healthz") => text(StatusCode::OK, "ok\n"),
        (true, "/readyz") => {
            if ep.ready.load(Ordering::Acquire) {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
        }
        (false, "/metrics" | "/healthz" | "/readyz") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    reply(status, "text/plain; charset=utf-8", body.to_string())
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        let status = buf[9..12].parse().unwrap();
        let body = buf.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    }

    #[tokio::test]
    async fn routes_readiness_and_graceful_shutdown() {
        let metrics = Arc::new(Metrics::new("1.2.3").unwrap());
        let ready = Arc::new(AtomicBool::new(false));
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let ep = Endpoints {
            metrics,
            ready: Arc::clone(&ready),
        };
        let server = tokio::spawn(serve(listener, ep, async {
            let _ = stop_rx.await;
        }));

        let (st, body) = get(addr, "GET", "/metrics").await;
        assert_eq!(st, 200);
        assert!(body.contains(r#"burstwatch_build_info{commit="unknown",features="",rustc="unknown",version="1.2.3"} 1"#));
        assert_eq!(get(addr, "GET", "/healthz").await.0, 200);
        assert_eq!(get(addr, "GET", "/readyz").await.0, 503);
        ready.store(true, Ordering::Release);
        assert_eq!(get(addr, "GET", "/readyz").await.0, 200);
        assert_eq!(get(addr, "GET", "/nope").await.0, 404);
        assert_eq!(get(addr, "POST", "/metrics").await.0, 405);

        stop_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    /// A server with small limits on a free port; the sender stops it.
    async fn small_server(
        limits: Limits,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), HttpError>>,
    ) {
        let ep = Endpoints {
            metrics: Arc::new(Metrics::new("1.2.3").unwrap()),
            ready: Arc::new(AtomicBool::new(true)),
        };
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_with(listener, ep, limits, async {
            let _ = stop_rx.await;
        }));
        (addr, stop_tx, server)
    }

    /// Read until the peer closes; how long that took.
    async fn closed_within(s: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        let mut buf = [0u8; 4096];
        tokio::time::timeout(limit, async {
            while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
        })
        .await
        .ok()
        .map(|()| t0.elapsed())
    }

    #[tokio::test]
    async fn idle_connections_make_room_for_a_scrape_and_slow_ones_time_out() {
        let limits = Limits {
            max_connections: 16,
            header_read_timeout: Duration::from_millis(400),
            connection_deadline: Duration::from_secs(30),
            log_every: Duration::from_secs(10),
        };
        let (addr, stop, server) = small_server(limits).await;
        // Four times the cap of connections that send nothing: each scrape is still served.
        let mut idle = Vec::new();
        for _ in 0..64 {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        for _ in 0..5 {
            let (st, body) =
                tokio::time::timeout(Duration::from_secs(2), get(addr, "GET", "/metrics"))
                    .await
                    .unwrap();
            assert_eq!(st, 200);
            assert!(body.contains("burstwatch_build_info"));
        }
        // A partial request head, then silence: closed by the header-read timeout.
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let took = closed_within(&mut slow, Duration::from_secs(3)).await;
        assert!(
            took.is_some_and(|t| t >= Duration::from_millis(300)),
            "{took:?}"
        );
        // A keep-alive connection left idle after its request: closed by the same timeout.
        let mut kept = tokio::net::TcpStream::connect(addr).await.unwrap();
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(closed_within(&mut kept, Duration::from_secs(3))
            .await
            .is_some());
        // The idle crowd itself is gone by now (timed out or evicted).
        for s in &mut idle {
            assert!(closed_within(s, Duration::from_secs(1)).await.is_some());
        }
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_connection_lives_no_longer_than_its_deadline() {
        let limits = Limits {
            connection_deadline: Duration::from_millis(500),
            ..Limits::default()
        };
        let (addr, stop, server) = small_server(limits).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        // A request every 100 ms keeps the header timeout away; the deadline still ends it,
        // after a complete response that says so.
        let t0 = Instant::now();
        let mut answers = String::new();
        let closed = loop {
            let req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
            if s.write_all(req).await.is_err() {
                break true;
            }
            let mut buf = [0u8; 1024];
            let read = tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await;
            match read {
                Ok(Ok(0) | Err(_)) => break true,
                Ok(Ok(n)) => answers.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => {}
            }
            if t0.elapsed() > Duration::from_secs(5) {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(closed, "still open after 5 s");
        assert!(t0.elapsed() >= Duration::from_millis(400));
        let last = answers.rsplit("HTTP/1.1 ").next().unwrap();
        assert!(
            last.starts_with("200") && last.contains("connection: close"),
            "{last}"
        );
        assert!(last.ends_with("ok\n"), "the last response is whole: {last}");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn the_connection_cap_leaves_descriptors_to_the_daemon() {
        assert_eq!(Limits::for_open_files(1024).max_connections, 768);
        assert_eq!(
            Limits::for_open_files(1 << 20).max_connections,
            MAX_CONNECTIONS
        );
        assert_eq!(Limits::for_open_files(100).max_connections, 16);
    }
}
