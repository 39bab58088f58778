//! What the HTTP sinks (Alertmanager, webhook) share: the client (plain `http://`, or `https://`
//! through rustls with the system's roots or a CA file), credentials read from files, batches
//! gathered from the queue, and delivery with retries.
//!
//! Each request has a timeout. Connection and TLS errors, timeouts, 5xx and 429 answers are
//! retried with exponential backoff up to `max_retries` times; other 4xx answers mean the
//! payload (or the credentials) is refused and are not retried.
//!
//! Secrets never reach a log line: [`Secret`] prints as `<redacted>`, and the `Authorization`
//! header is marked sensitive.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::sync::mpsc;

use super::{AlertEvent, Msg, SinkCounters, SinkError};

/// A password or token read from a file. Its `Debug` output hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The most bytes a secret file may hold.
const MAX_SECRET_BYTES: u64 = 16 * 1024;

impl Secret {
    /// Read a secret from `path`: one line, a trailing newline ignored, at most 16 KiB.
    /// The error names the file, never the content.
    pub fn read(path: &Path) -> Result<Secret, String> {
        use std::io::Read as _;
        let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut text = String::new();
        file.take(MAX_SECRET_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if text.len() as u64 > MAX_SECRET_BYTES {
            return Err(format!(
                "{}: larger than {MAX_SECRET_BYTES} bytes",
                path.display()
            ));
        }
        let line = text
            .strip_suffix('\n')
            .map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
        if line.is_empty() {
            return Err(format!("{}: empty", path.display()));
        }
        if line.chars().any(char::is_control) {
            return Err(format!(
                "{}: more than one line, or a control character",
                path.display()
            ));
        }
        Ok(Secret(line.to_string()))
    }

    /// Whether others than the owner and group may read `path` (a warning at start).
    pub fn world_readable(path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
    }

    /// A secret given as is (tests).
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
}

/// How an HTTP sink authenticates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// `Authorization: Bearer TOKEN`.
    Bearer(Secret),
}

impl Auth {
    /// The `Authorization` header value, marked sensitive.
    fn header(&self) -> Result<Option<HeaderValue>, String> {
        let text = match self {
            Auth::None => return Ok(None),
            Auth::Basic { username, password } => {
                format!(
                    "Basic {}",
                    base64(format!("{username}:{}", password.0).as_bytes())
                )
            }
            Auth::Bearer(token) => format!("Bearer {}", token.0),
        };
        let mut v = HeaderValue::from_str(&text)
            .map_err(|_| "the credentials are not a valid HTTP header value".to_string())?;
        v.set_sensitive(true);
        Ok(Some(v))
    }
}

/// Standard base64 with padding (RFC 4648), for basic auth.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// TLS and authentication of an HTTP sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpClientConfig {
    /// PEM file of the CA certificate(s) an `https://` server's certificate must chain to;
    /// `None`: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Credentials sent with every request.
    pub auth: Auth,
}

/// Timeout and retries of an HTTP sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Timeout of one request.
    pub timeout: Duration,
    /// Repeats after a failed attempt before the batch is given up.
    pub max_retries: u32,
    /// First backoff; doubles after each failure.
    pub backoff_initial: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_retries: 5,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// The CA certificates of a PEM file (at least one).
pub fn load_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// The TLS settings for an `https://` URL: the CA file's certificates, or the system's roots.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let (added, _) = roots.add_parsable_certificates(load_ca(path)?);
            if added == 0 {
                return Err(format!("{}: no usable CA certificate", path.display()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "system CA certificates: some could not be read");
            }
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(
                    "no system CA certificates found: install ca-certificates or set ca_file"
                        .into(),
                );
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The URL without credentials, query or fragment: a metric label and log field.
pub(crate) fn display_url(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or("");
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    let path = uri.path().trim_end_matches('/');
    format!("{scheme}://{host}{port}{path}")
}

/// What went wrong with one attempt.
enum Failure {
    /// Worth another try (connection, TLS, timeout, 5xx, 429).
    Retry(String),
    /// The receiver refused the payload or the credentials (other 4xx).
    Refused(String),
}

/// How an HTTP sink (Alertmanager, webhook) delivers: where to, with which client, retries
/// and batching, and how many alerts may wait.
#[derive(Debug, Clone)]
pub struct HttpDelivery {
    /// The URL (`http://` or `https://`); each sink says what it appends.
    pub url: String,
    /// TLS and credentials.
    pub client: HttpClientConfig,
    /// Timeout and retries.
    pub retry: Retry,
    /// Most alerts in one request.
    pub batch_max: usize,
    /// How long to gather a batch after its first alert.
    pub batch_wait: Duration,
    /// Alerts that may wait for delivery; more are dropped and counted.
    pub queue: usize,
}

impl HttpDelivery {
    /// Delivery to `url` with a queue of `queue` alerts, the default client and retries, and
    /// batches of up to 64 alerts gathered for at most 0.5 s.
    pub fn new(url: impl Into<String>, queue: usize) -> Self {
        Self {
            url: url.into(),
            client: HttpClientConfig::default(),
            retry: Retry::default(),
            batch_max: 64,
            batch_wait: Duration::from_millis(500),
            queue,
        }
    }
}

/// POSTs JSON bodies to one URL, with retries.
pub(crate) struct Poster {
    sink: &'static str,
    uri: Uri,
    target: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    auth: Option<HeaderValue>,
    retry: Retry,
}

impl Poster {
    /// Check `url` and build the client of `http` (reading the CA file or the system's roots
    /// for an `https://` URL). `sink` names the sink in log lines.
    pub(crate) fn new(
        sink: &'static str,
        url: &str,
        http: &HttpDelivery,
    ) -> Result<Self, SinkError> {
        let (client, retry) = (&http.client, http.retry);
        let bad = |reason: String| SinkError::Url {
            url: url.to_string(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL".into()))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(bad("needs an http:// or https:// URL".into())),
        };
        if uri.host().is_none() {
            return Err(bad("no host".into()));
        }
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(retry.timeout));
        conn.enforce_http(false);
        let tls = if https {
            tls_config(client.ca_file.as_deref()).map_err(bad)?
        } else {
            // Never used for an http:// URL; no roots needed.
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(format!("TLS: {e}")))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(conn);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let auth = client.auth.header().map_err(bad)?;
        let target = display_url(&uri);
        Ok(Self {
            sink,
            uri,
            target,
            client: http,
            auth,
            retry,
        })
    }

    /// The URL as a label value (no credentials, query or fragment).
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// Post one body holding `n` alerts, retrying with backoff; count the outcome.
    pub(crate) async fn deliver(&self, body: Bytes, n: u64, counters: &SinkCounters) {
        let (sink, url) = (self.sink, self.target.as_str());
        let mut backoff = self.retry.backoff_initial;
        let mut attempt = 0u32;
        loop {
            match self.post(body.clone()).await {
                Ok(()) => {
                    SinkCounters::add(&counters.sent, n);
                    break;
                }
                Err(Failure::Refused(why)) => {
                    tracing::warn!(sink, url, alerts = n, %why, "alerts refused; not retrying");
                    SinkCounters::add(&counters.failed, n);
                    break;
                }
                Err(Failure::Retry(why)) if attempt >= self.retry.max_retries => {
                    tracing::warn!(sink, url, alerts = n, attempts = attempt + 1, %why, "receiver unreachable; alerts given up");
                    SinkCounters::add(&counters.failed, n);
                    break;
                }
                Err(Failure::Retry(why)) => {
                    tracing::debug!(sink, url, %why, ?backoff, "post failed; retrying");
                    SinkCounters::add(&counters.retries, 1);
                    attempt += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry.backoff_max);
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
        if let Some(auth) = &self.auth {
            req.headers_mut().insert(AUTHORIZATION, auth.clone());
        }
        let attempt = async {
            let resp = self.client.request(req).await.map_err(|e| {
                // The error chain says why (refused, TLS certificate unknown, ...).
                let mut why = format!("request: {e}");
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    why.push_str(&format!(": {s}"));
                    src = s.source();
                }
                Failure::Retry(why)
            })?;
            let status = resp.status();
            // Read (a bounded part of) the answer so the connection can be reused.
            let text = match Limited::new(resp.into_body(), 64 * 1024).collect().await {
                Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                Err(_) => String::new(),
            };
            let text: String = text.trim().chars().take(512).collect();
            if status.is_success() {
                Ok(())
            } else if status.is_server_error() || status.as_u16() == 429 {
                Err(Failure::Retry(format!("{status}: {text}")))
            } else {
                Err(Failure::Refused(format!("{status}: {text}")))
            }
        };
        match tokio::time::timeout(self.retry.timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Retry("timed out".into())),
        }
    }
}

impl Poster {
    /// A batching HTTP sink's task: the batches of [`run_batches`] (sized as `http` says),
    /// each made a request body by `body` when it is complete and delivered with retries.
    pub(crate) async fn post_batches(
        &self,
        rx: mpsc::Receiver<Msg>,
        http: &HttpDelivery,
        counters: &SinkCounters,
        body: impl Fn(&[Arc<AlertEvent>]) -> Bytes,
    ) {
        let body = &body;
        run_batches(rx, http.batch_max, http.batch_wait, |batch| async move {
            self.deliver(body(&batch), batch.len() as u64, counters)
                .await;
        })
        .await;
    }
}

/// A sink task's loop: gather batches of up to `batch_max` alerts (waiting at most
/// `batch_wait` after the first), hand each to `deliver`, answer flushes after the alerts
/// queued before them are handled.
pub(crate) async fn run_batches<F, Fut>(
    mut rx: mpsc::Receiver<Msg>,
    batch_max: usize,
    batch_wait: Duration,
    mut deliver: F,
) where
    F: FnMut(Vec<Arc<AlertEvent>>) -> Fut,
    Fut: Future<Output = ()>,
{
    let batch_max = batch_max.max(1);
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
        let until = tokio::time::Instant::now() + batch_wait;
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
        deliver(batch).await;
        for done in flushes {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
        let h = Auth::Basic {
            username: "Aladdin".into(),
            password: Secret::new("open sesame"),
        }
        .header()
        .unwrap()
        .unwrap();
        assert_eq!(h, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(h.is_sensitive());
    }

    #[test]
    fn secrets_are_one_line_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "hunter2\r\n").unwrap();
        let s = Secret::read(&p).unwrap();
        assert_eq!(s, Secret::new("hunter2"));
        let auth = Auth::Bearer(s);
        assert!(!format!("{auth:?}").contains("hunter2"));
        std::fs::write(&p, "a\nb\n").unwrap();
        assert!(Secret::read(&p).unwrap_err().contains("more than one line"));
        std::fs::write(&p, "\n").unwrap();
        assert!(Secret::read(&p).unwrap_err().contains("empty"));
        assert!(Secret::read(&dir.path().join("none")).is_err());
    }

    #[test]
    fn display_url_drops_query_and_keeps_port() {
        for (url, shown) in [
            ("https://am1.example:9093/", "https://am1.example:9093"),
            ("http://[::1]:9093/am/?x=1", "http://[::1]:9093/am"),
            ("https://siem.example/in?token=x", "https://siem.example/in"),
        ] {
            assert_eq!(display_url(&url.parse().unwrap()), shown);
        }
    }
}
