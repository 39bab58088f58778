//! The daemon's alert sinks beyond the alert file: Alertmanager URLs, the webhook, syslog, and
//! the `sensor`/`site` names every alert they send carries.
//!
//! Secrets (passwords, tokens) are never in the config text: only the files that hold them.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::ctx::Ctx;
use crate::ConfigError;

/// One URL or several: `alertmanager_url = "http://am:9093"` or `= ["https://am1:9093", ...]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// TLS and authentication of an HTTP sink.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpClientSettings {
    /// PEM file of the CA certificate(s) the server's certificate must chain to (instead of
    /// the system's roots); only for `https://` URLs.
    pub ca_file: Option<PathBuf>,
    /// Credentials sent with every request.
    pub auth: AuthSettings,
}

/// How an HTTP sink authenticates. The secrets are read from files at start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuthSettings {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Basic`, the password read from a file.
    Basic {
        /// User name.
        username: String,
        /// File holding the password (one line; a trailing newline is ignored).
        password_file: PathBuf,
    },
    /// `Authorization: Bearer`, the token read from a file.
    Bearer {
        /// File holding the token (one line; a trailing newline is ignored).
        token_file: PathBuf,
    },
}

impl AuthSettings {
    /// The secret files, with the config key that names each.
    pub fn files(&self) -> Vec<(&'static str, &Path)> {
        match self {
            AuthSettings::None => Vec::new(),
            AuthSettings::Basic { password_file, .. } => vec![("password_file", password_file)],
            AuthSettings::Bearer { token_file } => vec![("token_file", token_file)],
        }
    }
}

/// `[daemon.webhook]`: alerts POSTed as a JSON array to a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// `http://` or `https://` URL the alerts are POSTed to.
    pub url: String,
    /// TLS and authentication.
    pub client: HttpClientSettings,
    /// Alerts waiting for delivery beyond this are dropped (and counted).
    pub queue: usize,
    /// Most alerts in one request.
    pub batch_max: usize,
}

/// Where the syslog sink sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTransport {
    /// One datagram per message to `host:port`.
    Udp(String),
    /// A TCP stream to `host:port`, messages framed by octet counting (RFC 6587).
    Tcp(String),
    /// A local datagram socket such as `/dev/log`.
    Unix(PathBuf),
}

/// `[daemon.syslog]`: RFC 5424 messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogSettings {
    /// Where to send.
    pub transport: SyslogTransport,
    /// Facility number (0 to 23; `daemon` is 3).
    pub facility: u8,
    /// APP-NAME field.
    pub app_name: String,
    /// Alerts waiting for delivery beyond this are dropped (and counted).
    pub queue: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawClient {
    ca_file: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawWebhook {
    url: Option<Spanned<String>>,
    queue: Option<Spanned<i64>>,
    batch_max: Option<Spanned<i64>>,
    ca_file: Option<Spanned<String>>,
    username: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
}

impl RawWebhook {
    fn client(&self) -> RawClient {
        RawClient {
            ca_file: self.ca_file.clone(),
            username: self.username.clone(),
            password_file: self.password_file.clone(),
            token_file: self.token_file.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSyslog {
    address: Option<Spanned<String>>,
    facility: Option<Spanned<String>>,
    app_name: Option<Spanned<String>>,
    queue: Option<Spanned<i64>>,
}

/// Syslog facility names (RFC 5424 table 1) and their codes.
const FACILITIES: [(&str, u8); 24] = [
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("ntp", 12),
    ("security", 13),
    ("console", 14),
    ("solaris-cron", 15),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// Why `name` cannot be a `sensor` or `site` name, or `None` when it can: 1 to 128 printable
/// characters (it becomes an Alertmanager label value and a JSON string).
fn name_error(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty")
    } else if name.len() > 128 {
        Some("longer than 128 bytes")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    }
}

impl Ctx<'_> {
    /// `daemon.sensor` / `daemon.site`.
    pub(crate) fn origin_name(
        &self,
        v: &Option<Spanned<String>>,
        key: &str,
    ) -> Result<Option<String>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        if let Some(why) = name_error(v.get_ref()) {
            return Err(self.invalid(v.span().start, key, format!("{why}: {:?}", v.get_ref())));
        }
        Ok(Some(v.get_ref().clone()))
    }

    /// `daemon.alertmanager_url`: a string or a list, each checked.
    pub(crate) fn alertmanager_urls(
        &self,
        v: &Option<Spanned<OneOrMany>>,
    ) -> Result<Vec<String>, ConfigError> {
        let Some(v) = v else { return Ok(Vec::new()) };
        let urls: Vec<&String> = match v.get_ref() {
            OneOrMany::One(u) if u.is_empty() => Vec::new(),
            OneOrMany::One(u) => vec![u],
            OneOrMany::Many(list) => list.iter().collect(),
        };
        let mut out: Vec<String> = Vec::new();
        for url in urls {
            let bad = |why: String| self.invalid(v.span().start, "daemon.alertmanager_url", why);
            check_url(url, false).map_err(|why| bad(format!("{why}, got {url:?}")))?;
            let url = url.trim_end_matches('/').to_string();
            if out.contains(&url) {
                // Each instance would get every alert twice.
                return Err(bad(format!("{url:?} is listed twice")));
            }
            out.push(url);
        }
        Ok(out)
    }

    /// A sink's TLS and authentication keys, under `section` (e.g. `daemon.webhook`).
    pub(crate) fn client(
        &self,
        r: &RawClient,
        section: &str,
        base: &Path,
    ) -> Result<HttpClientSettings, ConfigError> {
        let path = |v: &Option<Spanned<String>>, key: &str| -> Result<_, ConfigError> {
            match v {
                Some(p) if p.get_ref().is_empty() => Err(self.invalid(
                    p.span().start,
                    &format!("{section}.{key}"),
                    "empty path".into(),
                )),
                Some(p) => Ok(Some(base.join(p.get_ref()))),
                None => Ok(None),
            }
        };
        let ca_file = path(&r.ca_file, "ca_file")?;
        let password_file = path(&r.password_file, "password_file")?;
        let token_file = path(&r.token_file, "token_file")?;
        let auth = match (&r.username, password_file, token_file) {
            (None, None, None) => AuthSettings::None,
            (Some(u), Some(password_file), None) => {
                let username = u.get_ref();
                if username.is_empty()
                    || username.contains(':')
                    || username.chars().any(char::is_control)
                {
                    return Err(self.invalid(
                        u.span().start,
                        &format!("{section}.username"),
                        format!("not a user name for basic auth (empty, ':' or a control character): {username:?}"),
                    ));
                }
                AuthSettings::Basic {
                    username: username.clone(),
                    password_file,
                }
            }
            (None, None, Some(token_file)) => AuthSettings::Bearer { token_file },
            (Some(u), None, _) => {
                return Err(self.invalid(
                    u.span().start,
                    &format!("{section}.username"),
                    "needs password_file (the password is read from a file, never from the \
                     config)"
                        .into(),
                ))
            }
            (None, Some(_), _) => {
                let at = r.password_file.as_ref().map_or(0, |v| v.span().start);
                return Err(self.invalid(
                    at,
                    &format!("{section}.password_file"),
                    "needs username".into(),
                ));
            }
            (Some(_), Some(_), Some(_)) => {
                let at = r.token_file.as_ref().map_or(0, |v| v.span().start);
                return Err(self.invalid(
                    at,
                    &format!("{section}.token_file"),
                    "basic auth (username, password_file) or a bearer token (token_file), \
                     not both"
                        .into(),
                ));
            }
        };
        Ok(HttpClientSettings { ca_file, auth })
    }

    /// `[daemon.webhook]`: `None` when the table is absent.
    pub(crate) fn webhook(
        &self,
        r: &Option<Spanned<RawWebhook>>,
        base: &Path,
    ) -> Result<Option<WebhookSettings>, ConfigError> {
        let Some(w) = r else { return Ok(None) };
        let at = w.span().start;
        let r = w.get_ref();
        let Some(url) = &r.url else {
            return Err(self.invalid(
                at,
                "daemon.webhook.url",
                "the [daemon.webhook] table needs a url".into(),
            ));
        };
        if let Err(why) = check_url(url.get_ref(), true) {
            return Err(self.invalid(
                url.span().start,
                "daemon.webhook.url",
                format!("{why}, got {:?}", url.get_ref()),
            ));
        }
        Ok(Some(WebhookSettings {
            url: url.get_ref().clone(),
            client: self.client(&r.client(), "daemon.webhook", base)?,
            queue: self.count(&r.queue, "daemon.webhook.queue", 10_000, 10_000_000)?,
            batch_max: self.count(&r.batch_max, "daemon.webhook.batch_max", 64, 10_000)?,
        }))
    }

    /// `[daemon.syslog]`: `None` when the table is absent.
    pub(crate) fn syslog(
        &self,
        r: &Option<Spanned<RawSyslog>>,
    ) -> Result<Option<SyslogSettings>, ConfigError> {
        let Some(s) = r else { return Ok(None) };
        let at = s.span().start;
        let r = s.get_ref();
        let Some(address) = &r.address else {
            return Err(self.invalid(
                at,
                "daemon.syslog.address",
                "the [daemon.syslog] table needs an address (udp://HOST:PORT, \
                 tcp://HOST:PORT or unix:///dev/log)"
                    .into(),
            ));
        };
        let transport = syslog_transport(address.get_ref()).map_err(|why| {
            self.invalid(
                address.span().start,
                "daemon.syslog.address",
                format!("{why}, got {:?}", address.get_ref()),
            )
        })?;
        let facility = match &r.facility {
            None => 3,
            Some(f) => FACILITIES
                .iter()
                .find(|(n, _)| *n == f.get_ref().as_str())
                .map(|&(_, c)| c)
                .ok_or_else(|| {
                    self.invalid(
                        f.span().start,
                        "daemon.syslog.facility",
                        format!(
                            "not a facility name (daemon, local0 to local7, ...), got {:?}",
                            f.get_ref()
                        ),
                    )
                })?,
        };
        let app_name = match &r.app_name {
            None => "burstwatch".to_string(),
            Some(a) => {
                let name = a.get_ref();
                // RFC 5424 APP-NAME: 1 to 48 printable US-ASCII characters, no space.
                if name.is_empty()
                    || name.len() > 48
                    || !name.bytes().all(|b| (33..=126).contains(&b))
                {
                    return Err(self.invalid(
                        a.span().start,
                        "daemon.syslog.app_name",
                        format!("must be 1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME), got {name:?}"),
                    ));
                }
                name.clone()
            }
        };
        Ok(Some(SyslogSettings {
            transport,
            facility,
            app_name,
            queue: self.count(&r.queue, "daemon.syslog.queue", 10_000, 10_000_000)?,
        }))
    }
}

/// `udp://host:port`, `tcp://host:port` or `unix:///path`.
fn syslog_transport(address: &str) -> Result<SyslogTransport, &'static str> {
    let (scheme, rest) = address
        .split_once("://")
        .ok_or("must be udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH")?;
    match scheme {
        "unix" => {
            if !rest.starts_with('/') {
                return Err("a unix socket needs an absolute path, e.g. unix:///dev/log");
            }
            Ok(SyslogTransport::Unix(PathBuf::from(rest)))
        }
        "udp" | "tcp" => {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or("needs a port, e.g. udp://127.0.0.1:514")?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || host.contains(['/', ' ', '@']) {
                return Err("not a host name or address");
            }
            match port.parse::<u16>() {
                Ok(0) | Err(_) => return Err("the port must be 1 to 65535"),
                Ok(_) => {}
            }
            Ok(if scheme == "udp" {
                SyslogTransport::Udp(rest.to_string())
            } else {
                SyslogTransport::Tcp(rest.to_string())
            })
        }
        _ => Err("must be udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH"),
    }
}

/// A URL an HTTP sink can use: `http(s)://host[:port][/path]`, parsed by the same parser as the
/// sinks' HTTP client. No credentials in it (they belong in files); a query only where
/// `query_ok` (the Alertmanager sink appends `/api/v2/alerts`).
pub(crate) fn check_url(url: &str, query_ok: bool) -> Result<(), &'static str> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| "not a URL (expected e.g. http://127.0.0.1:9093)")?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("must start with http:// or https://"),
    }
    match uri.host() {
        None | Some("") => return Err("has no host"),
        Some(_) => {}
    }
    let authority = uri.authority().map_or("", |a| a.as_str());
    if authority.contains('@') {
        return Err("must not hold credentials: use username and password_file, or token_file");
    }
    // The parser keeps an out-of-range port and reports none: look at the text itself.
    let port = authority
        .rfind(':')
        .filter(|&i| i > authority.rfind(']').unwrap_or(0))
        .map(|i| &authority[i + 1..]);
    match port.map(str::parse::<u16>) {
        Some(Err(_)) => return Err("not a URL: the port must be 1 to 65535"),
        Some(Ok(0)) => return Err("port 0 cannot be connected to"),
        _ => {}
    }
    if !query_ok && uri.query().is_some() {
        return Err("must not have a query: alerts go to {url}/api/v2/alerts");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use crate::Settings;

    use super::*;

    fn err(text: &str) -> String {
        Settings::parse(text, "x.toml").unwrap_err().to_string()
    }

    #[test]
    fn alertmanager_url_takes_one_url_or_several_with_tls_and_auth() {
        let s = Settings::parse(
            "[daemon]\nalertmanager_url = [\"https://am1:9093\", \"http://am2:9093/\"]\n\
             sensor = \"edge-1\"\nsite = \"Frankfurt DC2\"\n\
             [daemon.alertmanager]\nca_file = \"ca.pem\"\nusername = \"bw\"\n\
             password_file = \"/run/secrets/am\"\n",
            "/etc/bw/b.toml",
        )
        .unwrap();
        let d = &s.daemon;
        assert_eq!(d.alertmanager_url, ["https://am1:9093", "http://am2:9093"]);
        assert_eq!(
            d.alertmanager.ca_file.as_deref(),
            Some(Path::new("/etc/bw/ca.pem"))
        );
        assert_eq!(
            d.alertmanager.auth,
            AuthSettings::Basic {
                username: "bw".into(),
                password_file: "/run/secrets/am".into()
            }
        );
        assert_eq!(
            (d.sensor.as_deref(), d.site.as_deref()),
            (Some("edge-1"), Some("Frankfurt DC2"))
        );
        let s = Settings::parse("[daemon]\nalertmanager_url = \"http://am:9093\"\n", "t").unwrap();
        assert_eq!(s.daemon.alertmanager_url, ["http://am:9093"]);
        let s = Settings::parse("[daemon]\nalertmanager_url = \"\"\n", "t").unwrap();
        assert!(s.daemon.alertmanager_url.is_empty());
    }

    #[test]
    fn webhook_and_syslog_tables_parse_with_defaults() {
        let s = Settings::parse(
            "[daemon.webhook]\nurl = \"https://siem.example/in?src=bw\"\ntoken_file = \"tok\"\n\
             [daemon.syslog]\naddress = \"tcp://[2001:db8::1]:6514\"\nfacility = \"local3\"\n",
            "/etc/bw/b.toml",
        )
        .unwrap();
        let w = s.daemon.webhook.unwrap();
        assert_eq!(w.url, "https://siem.example/in?src=bw");
        assert_eq!(
            w.client.auth,
            AuthSettings::Bearer {
                token_file: "/etc/bw/tok".into()
            }
        );
        assert_eq!((w.queue, w.batch_max), (10_000, 64));
        let l = s.daemon.syslog.unwrap();
        assert_eq!(
            l.transport,
            SyslogTransport::Tcp("[2001:db8::1]:6514".into())
        );
        assert_eq!((l.facility, l.app_name.as_str()), (19, "burstwatch"));
        let s = Settings::parse("[daemon.syslog]\naddress = \"unix:///dev/log\"\n", "t").unwrap();
        let l = s.daemon.syslog.unwrap();
        assert_eq!(l.transport, SyslogTransport::Unix("/dev/log".into()));
        assert_eq!(l.facility, 3);
    }

    #[test]
    fn bad_sink_keys_name_key_and_line() {
        for (text, key, what) in [
            ("[daemon]\n\nsensor = \"\"", "daemon.sensor", "empty"),
            ("[daemon]\n\nsite = \"a\\nb\"", "daemon.site", "control"),
            ("[daemon.alertmanager]\n\nusername = \"bw\"", "daemon.alertmanager.username", "password_file"),
            ("[daemon.alertmanager]\n\npassword_file = \"p\"", "daemon.alertmanager.password_file", "username"),
            (
                "[daemon.alertmanager]\nusername = \"bw\"\npassword_file = \"p\"\ntoken_file = \"t\"",
                "daemon.alertmanager.token_file",
                "not both",
            ),
            ("[daemon.alertmanager]\n\npassword = \"secret\"", "", "unknown field"),
            ("[daemon.webhook]\n\nurl = \"siem:80\"", "daemon.webhook.url", "https://"),
            ("[daemon.webhook]\n\nqueue = 5", "daemon.webhook.url", "needs a url"),
            ("[daemon.syslog]\n\naddress = \"udp://host\"", "daemon.syslog.address", "port"),
            ("[daemon.syslog]\n\naddress = \"unix://dev/log\"", "daemon.syslog.address", "absolute"),
            ("[daemon.syslog]\n\naddress = \"http://host:514\"", "daemon.syslog.address", "udp://"),
            (
                "[daemon.syslog]\naddress = \"udp://h:514\"\nfacility = \"local9\"",
                "daemon.syslog.facility",
                "facility",
            ),
            (
                "[daemon.syslog]\naddress = \"udp://h:514\"\napp_name = \"burst watch\"",
                "daemon.syslog.app_name",
                "APP-NAME",
            ),
        ] {
            let e = err(&format!("{text}\n"));
            assert!(e.contains(what), "{text}: {e}");
            if key.is_empty() {
                continue;
            }
            // A missing key is reported at its table's header.
            let line = if what.starts_with("needs a") { 1 } else { text.lines().count() };
            assert!(e.starts_with(&format!("x.toml:{line}: {key}:")), "{text}: {e}");
        }
    }
}
