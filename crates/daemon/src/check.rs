//! What the daemon needs beyond a config that parses, checked before it starts (and by
//! `burstwatch check-config`): interfaces named, a filter libpcap compiles for each interface's
//! link type, output and state paths it can write, enrich databases and a key file it can
//! read, sink CA and secret files it can read, an account that exists. Errors stop the start
//! (exit 2, so the systemd unit does not restart-loop); warnings do not (an interface that is
//! not there yet is retried). No interface named at all stops the start but leaves the file
//! valid: it is how the configuration ships.

use std::path::Path;

use burstwatch_capture::{interface_exists, interface_link_type, privilege, BpfFilter};
use burstwatch_config::{key_line, Backend, Settings};

/// The findings of [`check`], each a line `FILE:LINE: KEY: MESSAGE` (no line when the key is
/// not in the file).
#[derive(Debug, Default)]
pub struct Findings {
    /// What would make the daemon fail, or capture nothing for good.
    pub errors: Vec<String>,
    /// What the daemon copes with but an operator should know.
    pub warnings: Vec<String>,
    /// What a valid file may leave open but the daemon cannot start without (no interface
    /// named, as shipped): `check-config` warns, `--strict` and the daemon's start refuse.
    pub not_ready: Vec<String>,
}

struct At<'a> {
    origin: &'a Path,
    text: &'a str,
}

impl At<'_> {
    fn say(&self, key: &str, message: impl std::fmt::Display) -> String {
        match key_line(self.text, key) {
            Some(line) => format!("{}:{line}: {key}: {message}", self.origin.display()),
            None => format!("{}: {key}: {message}", self.origin.display()),
        }
    }
}

/// Check `settings` (parsed from `text`, the file `origin`) against this machine.
pub fn check(settings: &Settings, origin: &Path, text: &str) -> Findings {
    let at = At { origin, text };
    let mut f = Findings::default();
    let d = &settings.daemon;
    if d.interfaces.is_empty() && d.flow_listen.is_empty() {
        f.not_ready.push(at.say(
            "daemon.interfaces",
            "no interface to capture on: the daemon will not start until one is named, e.g. \
             interfaces = [\"eth1\"] (or flow export is received: flow_listen = \
             [\"udp://0.0.0.0:2055\"])",
        ));
    }
    if !d.interfaces.is_empty() && !d.flow_listen.is_empty() {
        f.warnings.push(at.say(
            "daemon.flow_listen",
            "flow export and packet capture in one daemon: the flow bins reach the engine 75 s \
             behind the captured packets and count as late there; run one daemon for each",
        ));
    }
    if !d.flow_listen.is_empty() && d.state_file.is_none() {
        f.warnings.push(at.say(
            "daemon.flow_listen",
            "no daemon.state_file: the exporters' templates are not kept across a restart, so \
             their data records are dropped (counted as template misses) until each exporter \
             sends its templates again (routers do every few minutes); set state_file to \
             keep them",
        ));
    }
    for name in &d.interfaces {
        if interface_exists(name) == Some(false) {
            f.warnings.push(at.say(
                "daemon.interfaces",
                format!(
                    "{name:?} does not exist on this machine now; the daemon starts anyway and \
                     retries it (retry_seconds, doubling up to 60 s), /readyz answering 503 \
                     until it captures"
                ),
            ));
        }
    }
    if !d.filter.is_empty() {
        // The afpacket ring compiles the filter for the Ethernet frames it reads.
        let mut link_types = d
            .interfaces
            .iter()
            .map(|i| match d.backend {
                Backend::Pcap => interface_link_type(i),
                Backend::AfPacket => burstwatch_capture::LinkType::ETHERNET,
            })
            .collect::<Vec<_>>();
        if link_types.is_empty() {
            link_types.push(burstwatch_capture::LinkType::ETHERNET);
        }
        link_types.dedup();
        for lt in link_types {
            if let Err(e) = BpfFilter::check(&d.filter, lt) {
                f.errors.push(at.say(
                    "daemon.filter",
                    format!("libpcap cannot compile {:?}: {}", e.expr, e.message),
                ));
                break;
            }
        }
    }
    for (key, path) in [
        ("daemon.alerts_file", &d.alerts_file),
        ("daemon.flows_file", &d.flows_file),
    ] {
        if let Some(p) = path {
            if let Err(why) = writable_output(p) {
                f.errors
                    .push(at.say(key, format!("{}: {why}", p.display())));
            }
        }
    }
    for finding in super::sinks::check(d)
        .into_iter()
        .chain(cluster_files(&settings.cluster))
    {
        let line = at.say(&finding.key, finding.message);
        if finding.error {
            f.errors.push(line);
        } else {
            f.warnings.push(line);
        }
    }
    if let Some(p) = &d.state_file {
        if let Err(why) = state_path(p) {
            f.errors
                .push(at.say("daemon.state_file", format!("{}: {why}", p.display())));
        }
    }
    let e = &settings.enrich;
    for (key, path, asn) in [
        ("enrich.asn_database", &e.asn_database, true),
        ("enrich.country_database", &e.country_database, false),
    ] {
        if let Some(p) = path {
            // Opened as the daemon opens it: read whole and checked for its layout.
            let opened = if asn {
                burstwatch_enrich::MmdbEnricher::open(Some(p), None)
            } else {
                burstwatch_enrich::MmdbEnricher::open(None, Some(p))
            };
            if let Err(err) = opened {
                f.errors
                    .push(at.say(key, format!("{:#}", anyhow::Error::new(err))));
            }
        }
    }
    if let Err(err) = burstwatch_pipeline::privacy::Privacy::from_settings(settings) {
        f.errors
            .push(at.say("privacy.key_file", format!("{err:#}")));
    }
    if let Some(user) = &d.user {
        if let Err(err) = privilege::lookup_user(user) {
            f.errors.push(at.say("daemon.user", err));
        }
    }
    f
}

/// The shared store's files read as the daemon reads them (password, CA file, client
/// certificate and key): an error for each one that fails, and a warning for a password or
/// client key that every user can read.
fn cluster_files(c: &burstwatch_config::ClusterSettings) -> Vec<super::sinks::Finding> {
    use burstwatch_cluster::Target;
    let mut out = Vec::new();
    let Some(url) = &c.redis_url else {
        return out;
    };
    let mut fail = |key: &str, e: burstwatch_cluster::Error| {
        out.push(super::sinks::Finding {
            key: key.into(),
            error: true,
            message: e.to_string(),
        })
    };
    if let Err(e) = Target::new(url, c.password_file.as_deref()) {
        fail("cluster.password_file", e);
    }
    // Without a password file a target is always made.
    if let Ok(t) = Target::new(url, None) {
        if let Some(Err(e)) = c.ca_file.as_ref().map(|ca| t.clone().with_ca_file(ca)) {
            fail("cluster.ca_file", e);
        }
        if let Some(Err(e)) = c
            .client_cert
            .as_ref()
            .map(|(cert, key)| t.clone().with_client_cert(cert, key))
        {
            fail("cluster.client_cert_file", e);
        }
    }
    let secrets = [
        ("cluster.password_file", c.password_file.as_deref()),
        (
            "cluster.client_key_file",
            c.client_cert.as_ref().map(|(_, k)| k.as_path()),
        ),
    ];
    for (key, path) in secrets {
        out.extend(path.and_then(|p| super::sinks::world_readable(key.into(), p)));
    }
    out
}

/// Whether the daemon can append to `p`: an existing regular file (or a character device such
/// as `/dev/null`) it may write, or a new file in a directory it may write.
fn writable_output(p: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt as _;
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => Err("is a directory".into()),
        Ok(m) if m.is_file() || m.file_type().is_char_device() => {
            may_write(p).map_err(|e| format!("cannot be written: {e}"))
        }
        Ok(_) => Err(
            "is not a regular file (a FIFO would block the daemon, a socket cannot be opened)"
                .into(),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => writable_dir_of(p),
        Err(e) => Err(e.to_string()),
    }
}

/// The state file is read at start and replaced (a temporary file renamed over it) at exit.
fn state_path(p: &Path) -> Result<(), String> {
    match std::fs::metadata(p) {
        Ok(m) if !m.is_file() => return Err("is not a regular file".into()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.to_string()),
    }
    writable_dir_of(p).map_err(|why| format!("the state could not be saved at exit: {why}"))
}

fn writable_dir_of(p: &Path) -> Result<(), String> {
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => may_write(dir)
            .map_err(|e| format!("directory {} cannot be written: {e}", dir.display())),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(e) => Err(format!("directory {}: {e}", dir.display())),
    }
}

/// access(2) with W_OK: the permission check of this process's real user (root passes unless
/// the file system is read-only).
fn may_write(p: &Path) -> Result<(), std::io::Error> {
    rustix::fs::access(p, rustix::fs::Access::WRITE_OK).map_err(std::io::Error::from)
}
