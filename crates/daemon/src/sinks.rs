//! The alert sinks' settings from the config: Alertmanager URLs, webhook and syslog, with their
//! credentials read from files (at start, while the process may still be root), the `sensor`
//! and `site` labels; and what `check-config` checks of them.

use anyhow::Context as _;
use burstwatch_config::{AuthSettings, DaemonSettings, HttpClientSettings, SyslogTransport};
use burstwatch_exporter::sinks::alertmanager::AlertmanagerConfig;
use burstwatch_exporter::sinks::syslog::{host_name, Transport};
use burstwatch_exporter::sinks::{
    client, Auth, HttpClientConfig, HttpDelivery, Secret, SinksConfig, SyslogConfig, WebhookConfig,
};

/// The sinks to start, secrets read.
pub fn config(d: &DaemonSettings) -> anyhow::Result<SinksConfig> {
    let am_client = client_config(&d.alertmanager).context("daemon.alertmanager")?;
    let webhook = match &d.webhook {
        None => None,
        Some(w) => Some(WebhookConfig {
            client: client_config(&w.client).context("daemon.webhook")?,
            batch_max: w.batch_max,
            ..WebhookConfig::new(w.url.clone(), w.queue)
        }),
    };
    Ok(SinksConfig {
        file: d.alerts_file.clone(),
        stdout: d.alerts_stdout,
        alertmanager: d
            .alertmanager_url
            .iter()
            .map(|url| AlertmanagerConfig {
                http: HttpDelivery {
                    client: am_client.clone(),
                    ..HttpDelivery::new(url.clone(), d.alertmanager_queue)
                },
                ..AlertmanagerConfig::default()
            })
            .collect(),
        webhook,
        syslog: d.syslog.as_ref().map(|s| SyslogConfig {
            transport: match &s.transport {
                SyslogTransport::Udp(a) => Transport::Udp(a.clone()),
                SyslogTransport::Tcp(a) => Transport::Tcp(a.clone()),
                SyslogTransport::Unix(p) => Transport::Unix(p.clone()),
            },
            facility: s.facility,
            app_name: s.app_name.clone(),
            queue: s.queue,
            ..SyslogConfig::default()
        }),
        origin: origin(d),
        queue: d.alertmanager_queue.max(1024),
    })
}

/// The names of the sinks the daemon runs with `d` (secrets not read).
pub fn names(d: &DaemonSettings) -> Vec<&'static str> {
    let mut names = Vec::new();
    if d.alerts_file.is_some() {
        names.push("file");
    }
    if d.alerts_stdout {
        names.push("stdout");
    }
    names.extend(d.alertmanager_url.iter().map(|_| "alertmanager"));
    if d.webhook.is_some() {
        names.push("webhook");
    }
    if d.syslog.is_some() {
        names.push("syslog");
    }
    names
}

/// The `sensor` (default: the host name) and `site` labels.
pub fn origin(d: &DaemonSettings) -> Vec<(String, String)> {
    vec![
        (
            "sensor".to_string(),
            d.sensor.clone().unwrap_or_else(host_name),
        ),
        ("site".to_string(), d.site.clone().unwrap_or_default()),
    ]
}

fn client_config(c: &HttpClientSettings) -> anyhow::Result<HttpClientConfig> {
    let read =
        |key: &str, p: &std::path::Path| Secret::read(p).map_err(|e| anyhow::anyhow!("{key}: {e}"));
    let auth = match &c.auth {
        AuthSettings::None => Auth::None,
        AuthSettings::Basic {
            username,
            password_file,
        } => Auth::Basic {
            username: username.clone(),
            password: read("password_file", password_file)?,
        },
        AuthSettings::Bearer { token_file } => Auth::Bearer(read("token_file", token_file)?),
    };
    Ok(HttpClientConfig {
        ca_file: c.ca_file.clone(),
        auth,
    })
}

/// A finding of [`check`]: the key, whether it stops the start, and the message.
pub struct Finding {
    /// Dotted key.
    pub key: String,
    /// An error (else a warning).
    pub error: bool,
    /// What is wrong.
    pub message: String,
}

/// A warning when every user can read the secret file `path`.
pub fn world_readable(key: String, path: &std::path::Path) -> Option<Finding> {
    Secret::world_readable(path).then(|| Finding {
        key,
        error: false,
        message: format!(
            "{}: readable by every user; make it 0600 or 0640 (chmod o-r)",
            path.display()
        ),
    })
}

/// CA files that hold certificates, secret files that can be read (and are not readable by
/// everyone), a syslog socket that exists.
pub fn check(d: &DaemonSettings) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut clients = Vec::new();
    if !d.alertmanager_url.is_empty() {
        clients.push(("daemon.alertmanager", &d.alertmanager));
    }
    if let Some(w) = &d.webhook {
        clients.push(("daemon.webhook", &w.client));
    }
    for (section, c) in clients {
        if let Some(ca) = &c.ca_file {
            if let Err(e) = client::load_ca(ca) {
                out.push(Finding {
                    key: format!("{section}.ca_file"),
                    error: true,
                    message: e,
                });
            }
        }
        for (key, path) in c.auth.files() {
            let key = format!("{section}.{key}");
            match Secret::read(path) {
                Err(e) => out.push(Finding {
                    key,
                    error: true,
                    message: e,
                }),
                Ok(_) => out.extend(world_readable(key, path)),
            }
        }
    }
    if let Some(SyslogTransport::Unix(p)) = d.syslog.as_ref().map(|s| &s.transport) {
        use std::os::unix::fs::FileTypeExt as _;
        match std::fs::metadata(p) {
            Ok(m) if m.file_type().is_socket() => {}
            Ok(_) => out.push(Finding {
                key: "daemon.syslog.address".into(),
                error: true,
                message: format!("{} is not a socket", p.display()),
            }),
            Err(e) => out.push(Finding {
                key: "daemon.syslog.address".into(),
                error: false,
                message: format!(
                    "{}: {e}; alerts to syslog fail until it exists",
                    p.display()
                ),
            }),
        }
    }
    out
}
