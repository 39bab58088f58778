//! `[cluster]`: endpoint prevalence shared with other sensors through Redis.
//!
//! Secrets are never in the config text: the Redis password and the pseudonym key are read
//! from files.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::ctx::Ctx;
use crate::ConfigError;

/// Settings of the shared prevalence store; `redis_url = None`: every sensor on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `redis://host:port[/db]`, `rediss://...` (TLS) or `redis+unix:///path/to/socket`
    /// (also `unix:///path`); `None`: no shared store.
    pub redis_url: Option<String>,
    /// The store is a Redis Cluster: `redis_url` is the first node asked for its slot map,
    /// `redis_cluster_seeds` the others to ask if it does not answer.
    pub redis_cluster: bool,
    /// More nodes of the Redis Cluster (`redis://` or `rediss://`).
    pub redis_cluster_seeds: Vec<String>,
    /// File holding the Redis password (one line; a trailing newline is ignored).
    pub password_file: Option<PathBuf>,
    /// PEM file of the CA certificates `rediss://` servers are checked against instead of the
    /// system's roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// PEM files of the certificate and private key this sensor presents to `rediss://`
    /// servers that ask for one (`tls-auth-clients yes`): both or neither.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Name of this sensor in the store: the `cluster.sensor_id` key, else `daemon.sensor`
    /// (the environment variable `BURSTWATCH_SENSOR_ID` overrides both at start, e.g. the
    /// node name in a DaemonSet; one of them is needed).
    pub sensor_id: Option<String>,
    /// Key file of the pseudonyms the store holds (32 bytes, as `burstwatch keygen` writes):
    /// `cluster.key_file`, else `privacy.key_file`. Every sensor of a cluster needs the same.
    pub key_file: Option<PathBuf>,
    /// Contacts are flushed to the store this often (ms).
    pub flush_interval_ms: u64,
    /// A candidate whose hold passed waits this long (packet time, ns) for the store's answer.
    pub answer_wait_ns: i64,
    /// Distinct contacts kept while the store cannot take them; more are dropped and counted.
    pub max_backlog_contacts: usize,
    /// Subscribers kept per endpoint in the store; more make it popular.
    pub set_cap: u32,
    /// `analyze`: how long (wall clock, ms) a question waits for the other running sensors to
    /// reach its packet time.
    pub peer_wait_ms: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_cluster: false,
            redis_cluster_seeds: Vec::new(),
            password_file: None,
            ca_file: None,
            client_cert: None,
            sensor_id: None,
            key_file: None,
            flush_interval_ms: 1000,
            answer_wait_ns: 5_000_000_000,
            max_backlog_contacts: 1_000_000,
            set_cap: 8,
            peer_wait_ms: 30_000,
        }
    }
}

impl ClusterSettings {
    /// Whether a shared store is configured.
    pub fn enabled(&self) -> bool {
        self.redis_url.is_some()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawCluster {
    redis_url: Option<Spanned<String>>,
    redis_cluster: Option<Spanned<bool>>,
    redis_cluster_seeds: Option<Spanned<Vec<String>>>,
    password_file: Option<String>,
    ca_file: Option<Spanned<String>>,
    client_cert_file: Option<Spanned<String>>,
    client_key_file: Option<Spanned<String>>,
    sensor_id: Option<Spanned<String>>,
    key_file: Option<String>,
    flush_interval_ms: Option<Spanned<i64>>,
    answer_wait_seconds: Option<Spanned<f64>>,
    max_backlog_contacts: Option<Spanned<i64>>,
    set_cap: Option<Spanned<i64>>,
    peer_wait_seconds: Option<Spanned<f64>>,
}

/// Why a Redis URL is refused, or `None`.
fn url_error(url: &str) -> Option<String> {
    let schemes = ["redis://", "rediss://", "redis+unix://", "unix://"];
    if !schemes.iter().any(|s| url.starts_with(s)) {
        return Some(format!(
            "{url:?} is not a Redis URL (redis://, rediss://, redis+unix:// or unix://)"
        ));
    }
    if url.contains('@') && url.split("://").nth(1).is_some_and(|r| r.contains(':')) {
        let rest = url.split("://").nth(1).unwrap_or("");
        if rest.split('@').next().is_some_and(|u| u.contains(':')) {
            return Some(
                "the URL holds a password: put it in a file named by cluster.password_file".into(),
            );
        }
    }
    None
}

/// Why a URL cannot name a Redis Cluster node, or `None`: cluster nodes are reached over TCP.
fn tcp_only(url: &str) -> Option<String> {
    (url.starts_with("unix://") || url.starts_with("redis+unix://"))
        .then(|| format!("{url:?}: a Redis Cluster is reached over TCP (redis:// or rediss://)"))
}

impl Ctx<'_> {
    /// The `[cluster]` section; `sensor` (`daemon.sensor`) and `privacy_key` are the fallbacks.
    pub(crate) fn cluster(
        &self,
        r: &RawCluster,
        base: &Path,
        sensor: Option<&String>,
        privacy_key: Option<&PathBuf>,
    ) -> Result<ClusterSettings, ConfigError> {
        let d = ClusterSettings::default();
        let url = match &r.redis_url {
            Some(v) if v.get_ref().is_empty() => None,
            Some(v) => {
                if let Some(why) = url_error(v.get_ref()) {
                    return Err(self.invalid(v.span().start, "cluster.redis_url", why));
                }
                Some(v.get_ref().clone())
            }
            None => None,
        };
        let cluster = r.redis_cluster.as_ref().is_some_and(|v| *v.get_ref());
        let seeds = match &r.redis_cluster_seeds {
            Some(v) => {
                let at = v.span().start;
                if !cluster && !v.get_ref().is_empty() {
                    return Err(self.invalid(
                        at,
                        "cluster.redis_cluster_seeds",
                        "seeds are nodes of a Redis Cluster: set cluster.redis_cluster = true"
                            .into(),
                    ));
                }
                for s in v.get_ref() {
                    if let Some(why) = url_error(s).or_else(|| tcp_only(s)) {
                        return Err(self.invalid(at, "cluster.redis_cluster_seeds", why));
                    }
                }
                v.get_ref().clone()
            }
            None => Vec::new(),
        };
        if let (true, Some(v)) = (cluster, &r.redis_url) {
            if let Some(why) = tcp_only(v.get_ref()) {
                return Err(self.invalid(v.span().start, "cluster.redis_url", why));
            }
        }
        let tls = |u: &str| u.starts_with("rediss://");
        let all_tls = url.as_deref().is_some_and(tls) && seeds.iter().all(|u| tls(u));
        let tls_file = |v: &Option<Spanned<String>>, key: &str, what: &str| match v
            .as_ref()
            .filter(|v| !v.get_ref().is_empty())
        {
            Some(v) if !all_tls => Err(self.invalid(
                v.span().start,
                key,
                format!("{what} is for TLS servers: the store's URLs must be rediss://"),
            )),
            Some(v) => Ok(Some((v.span().start, base.join(v.get_ref())))),
            None => Ok(None),
        };
        let ca_file = tls_file(&r.ca_file, "cluster.ca_file", "a CA file")?.map(|(_, p)| p);
        let cert = tls_file(
            &r.client_cert_file,
            "cluster.client_cert_file",
            "a client certificate",
        )?;
        let key = tls_file(
            &r.client_key_file,
            "cluster.client_key_file",
            "a client key",
        )?;
        let client_cert = match (cert, key) {
            (Some((_, c)), Some((_, k))) => Some((c, k)),
            (None, None) => None,
            (Some((at, _)), None) | (None, Some((at, _))) => {
                return Err(self.invalid(
                    at,
                    "cluster.client_cert_file",
                    "a client certificate needs its key: set both client_cert_file and \
                     client_key_file, or neither"
                        .into(),
                ))
            }
        };
        let path = |p: &Option<String>| p.as_ref().filter(|p| !p.is_empty()).map(|p| base.join(p));
        // Empty: the fallback (the shipped config's way of leaving it unset).
        let sensor_id = match r.sensor_id.as_ref().filter(|v| !v.get_ref().is_empty()) {
            Some(_) => self.origin_name(&r.sensor_id, "cluster.sensor_id")?,
            None => sensor.cloned(),
        };
        let key_file = path(&r.key_file).or_else(|| privacy_key.cloned());
        if let Some(v) = &r.redis_url {
            if url.is_some() && key_file.is_none() {
                return Err(self.invalid(
                    v.span().start,
                    "cluster.redis_url",
                    "a shared store holds pseudonyms only: name their key in cluster.key_file \
                     (or privacy.key_file; every sensor needs the same key)"
                        .into(),
                ));
            }
        }
        let wait = self.seconds_in(
            &r.answer_wait_seconds,
            "cluster.answer_wait_seconds",
            d.answer_wait_ns,
            0.0,
            3600.0,
        )?;
        let peer_wait = self.seconds_in(
            &r.peer_wait_seconds,
            "cluster.peer_wait_seconds",
            d.peer_wait_ms as i64 * 1_000_000,
            0.0,
            3600.0,
        )?;
        Ok(ClusterSettings {
            redis_url: url,
            redis_cluster: cluster,
            redis_cluster_seeds: seeds,
            password_file: path(&r.password_file),
            ca_file,
            client_cert,
            sensor_id,
            key_file,
            flush_interval_ms: self.count_in(
                &r.flush_interval_ms,
                "cluster.flush_interval_ms",
                d.flush_interval_ms as usize,
                10,
                60_000,
            )? as u64,
            answer_wait_ns: wait,
            max_backlog_contacts: self.count_in(
                &r.max_backlog_contacts,
                "cluster.max_backlog_contacts",
                d.max_backlog_contacts,
                1,
                100_000_000,
            )?,
            set_cap: self.count_in(&r.set_cap, "cluster.set_cap", d.set_cap as usize, 4, 64)?
                as u32,
            peer_wait_ms: (peer_wait / 1_000_000) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use crate::Settings;

    #[test]
    fn cluster_section_parses_with_fallbacks() {
        let s = Settings::parse(
            "[daemon]\nsensor = \"pop-fra-1\"\n[privacy]\nkey_file = \"k.key\"\n\
             [cluster]\nredis_url = \"redis://127.0.0.1:6379\"\npassword_file = \"pw\"\n\
             answer_wait_seconds = 2.5\n",
            "/etc/bw/t.toml",
        )
        .unwrap();
        let c = &s.cluster;
        assert!(c.enabled());
        assert_eq!(c.sensor_id.as_deref(), Some("pop-fra-1"));
        assert_eq!(c.key_file.as_deref(), Some("/etc/bw/k.key".as_ref()));
        assert_eq!(c.password_file.as_deref(), Some("/etc/bw/pw".as_ref()));
        assert_eq!(c.answer_wait_ns, 2_500_000_000);
        assert_eq!(c.set_cap, 8);
        let s = Settings::parse(
            "[cluster]\nredis_url = \"rediss://r:6380\"\nsensor_id = \"a\"\nkey_file = \"x\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(s.cluster.sensor_id.as_deref(), Some("a"));
        assert_eq!(
            s.daemon.sensor.as_deref(),
            Some("a"),
            "the alerts' sensor label"
        );
        assert!(!Settings::default().cluster.enabled());
        assert!(!s.cluster.redis_cluster);
        let s = Settings::parse(
            "[cluster]\nredis_url = \"redis://10.0.0.1:7000\"\nredis_cluster = true\n\
             redis_cluster_seeds = [\"redis://10.0.0.2:7000\", \"rediss://10.0.0.3:7000\"]\n\
             sensor_id = \"a\"\nkey_file = \"x\"\n",
            "t.toml",
        )
        .unwrap();
        assert!(s.cluster.redis_cluster);
        assert_eq!(s.cluster.redis_cluster_seeds.len(), 2);
        assert_eq!(s.cluster.ca_file, None);
        let s = Settings::parse(
            "[cluster]\nredis_url = \"rediss://r:6380\"\nca_file = \"ca.pem\"\n\
             sensor_id = \"a\"\nkey_file = \"x\"\n",
            "/etc/bw/t.toml",
        )
        .unwrap();
        assert_eq!(
            s.cluster.ca_file.as_deref(),
            Some("/etc/bw/ca.pem".as_ref())
        );
        assert_eq!(s.cluster.client_cert, None);
        let s = Settings::parse(
            "[cluster]\nredis_url = \"rediss://r:6380\"\nclient_cert_file = \"c.pem\"\n\
             client_key_file = \"k.pem\"\nsensor_id = \"a\"\nkey_file = \"x\"\n",
            "/etc/bw/t.toml",
        )
        .unwrap();
        assert_eq!(
            s.cluster.client_cert,
            Some(("/etc/bw/c.pem".into(), "/etc/bw/k.pem".into()))
        );
    }

    #[test]
    fn cluster_errors_name_the_key() {
        let err = |t: &str| Settings::parse(t, "t.toml").unwrap_err().to_string();
        let e = err("[cluster]\nredis_url = \"http://x\"\nsensor_id = \"a\"\nkey_file = \"k\"\n");
        assert!(
            e.contains("cluster.redis_url") && e.contains("not a Redis URL"),
            "{e}"
        );
        let s = Settings::parse(
            "[cluster]\nredis_url = \"redis://x\"\nkey_file = \"k\"\n",
            "t",
        );
        assert_eq!(
            s.unwrap().cluster.sensor_id,
            None,
            "named at start (environment)"
        );
        let e = err("[cluster]\nredis_url = \"redis://x\"\nsensor_id = \"a\"\n");
        assert!(e.contains("cluster.key_file"), "{e}");
        let e = err(
            "[cluster]\nredis_url = \"redis://u:secret@x\"\nsensor_id = \"a\"\nkey_file = \"k\"\n",
        );
        assert!(e.contains("password_file"), "{e}");
        let e = err("[cluster]\nset_cap = 2\n");
        assert!(e.contains("cluster.set_cap"), "{e}");
        // A Redis Cluster: TCP nodes only, seeds only with the switch on.
        let e = err(
            "[cluster]\nredis_url = \"unix:///r.sock\"\nredis_cluster = true\nkey_file = \"k\"\n",
        );
        assert!(e.contains("cluster.redis_url") && e.contains("TCP"), "{e}");
        let e = err("[cluster]\nredis_url = \"redis://a:7000\"\nredis_cluster_seeds = [\"redis://b:7000\"]\nkey_file = \"k\"\n");
        assert!(
            e.contains("cluster.redis_cluster_seeds") && e.contains("redis_cluster = true"),
            "{e}"
        );
        // Client certificates: TLS only, certificate and key together.
        let e = err("[cluster]\nredis_url = \"redis://a\"\nclient_cert_file = \"c\"\nclient_key_file = \"k\"\nkey_file = \"k\"\n");
        assert!(
            e.contains("cluster.client_cert_file") && e.contains("rediss://"),
            "{e}"
        );
        let e = err(
            "[cluster]\nredis_url = \"rediss://a\"\nclient_key_file = \"k\"\nkey_file = \"k\"\n",
        );
        assert!(
            e.contains("cluster.client_cert_file") && e.contains("needs its key"),
            "{e}"
        );
        let e = err("[cluster]\nredis_url = \"redis://a:7000\"\nredis_cluster = true\nredis_cluster_seeds = [\"http://b\"]\nkey_file = \"k\"\n");
        assert!(
            e.contains("cluster.redis_cluster_seeds") && e.contains("not a Redis URL"),
            "{e}"
        );
    }
}
