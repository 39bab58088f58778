//! The HTTP endpoints: `GET /metrics` (Prometheus text format), `GET /healthz` (200 while the
//! process runs), `GET /readyz` (200 once the daemon says it is ready, 503 before), 404 for
//! anything else. HTTP/1.1 on hyper, with a header-read timeout, a cap on concurrent
//! connections and a graceful shutdown driven by a future.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;

/// Where the exporter listens unless configured otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1:9811";

/// Most connections served at once; further ones are closed on accept.
pub const MAX_CONNECTIONS: usize = 64;

/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for requests in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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

/// Serve until `shutdown` completes, then stop accepting and give requests in flight
/// [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: TcpListener,
    endpoints: Endpoints,
    shutdown: impl Future<Output = ()>,
) -> Result<(), HttpError> {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_transient(&e) => {
                    tracing::warn!(error = %e, "exporter: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(HttpError::Accept(e)),
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(%peer, "exporter: too many connections, closing one");
            continue;
        };
        let ep = endpoints.clone();
        let service = hyper::service::service_fn(move |req| {
            let ep = ep.clone();
            async move { Ok::<_, Infallible>(route(&ep, &req)) }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "exporter: connection ended with an error");
            }
            drop(permit);
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

/// Accept errors that concern one connection (or a momentary lack of descriptors), not the
/// listener.
fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || e.raw_os_error().is_some_and(|c| c == 24 || c == 23) // EMFILE, ENFILE
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
        assert!(body.contains("burstwatch_build_info{version=\"1.2.3\"} 1"));
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
}
