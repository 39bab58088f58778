//! The Redis side: connection, the three scripts, the sensor directory.
//!
//! Keys: `bw:e:{..}<tag>` and `bw:p:{..}<tag>` (an endpoint's and a prefix's sorted set, see
//! `lua/update.lua`; the braces hold the set's bucket, its Redis Cluster hash tag),
//! `bw:{dir}:sensors` (sensor id → number), `bw:{dir}:seq`, `bw:{dir}:keycheck` (one hash
//! slot: the registration script takes all three), and `bw:sensor:<id>` (a hash: number,
//! state, watermark, last flush, counters).
//!
//! The store is one Redis server or a Redis Cluster (`cluster.redis_cluster`): then the
//! client follows the cluster's slot map and redirects, script calls take the sets of one
//! bucket only, and sizes are summed over the primaries.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use burstwatch_engine::detect::GlobalPrevalence;
use redis::{Cmd, ConnectionLike as _, Value};
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::backlog::Members;
use crate::conn::{exec_all, groups, query_all, Conn};
use crate::info::{info_field, text_of, used_memory, NodeSize};
use crate::tags::{bucket, bucket_of_name, SetKey};
use crate::Error;

const UPDATE: &str = include_str!("lua/update.lua");
const QUERY: &str = include_str!("lua/query.lua");
const REGISTER: &str = include_str!("lua/register.lua");

/// The sensor directory's keys (one hash slot).
const DIRECTORY: &str = "bw:{dir}:sensors";
const SEQUENCE: &str = "bw:{dir}:seq";
const KEYCHECK: &str = "bw:{dir}:keycheck";

/// Sets per script call, and calls per pipeline.
/// (Small calls keep Redis free for other sensors' questions in between: one call of 64 sets
/// runs well under a millisecond.)
const SETS_PER_CALL: usize = 64;
const CALLS_PER_PIPELINE: usize = 64;
/// Sets per question call.
const KEYS_PER_QUESTION: usize = 512;

/// How to reach the store. Its `Debug` output hides the password and the client key.
#[derive(Clone)]
pub struct Target {
    /// The URL (`redis://`, `rediss://`, `redis+unix://`, `unix://`); of a Redis Cluster, the
    /// first node to ask for the cluster's map.
    pub url: String,
    /// A Redis Cluster: more nodes to ask for its map if the first does not answer (empty for
    /// one server). Set with [`Target::cluster`].
    pub seeds: Vec<String>,
    /// Whether the store is a Redis Cluster.
    pub is_cluster: bool,
    /// The password, read from its file.
    pub password: Option<String>,
    /// PEM certificates of the CAs that `rediss://` servers are checked against instead of the
    /// system's roots (read from `cluster.ca_file`).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM certificate and private key presented to `rediss://` servers that ask for a client
    /// certificate (read from `cluster.client_cert_file` and `cluster.client_key_file`).
    pub client_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// Connect, read and write timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |set: bool| if set { "<redacted>" } else { "none" };
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("seeds", &self.seeds)
            .field("is_cluster", &self.is_cluster)
            .field("password", &hidden(self.password.is_some()))
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field("client_pem", &hidden(self.client_pem.is_some()))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Target {
    /// The URL and the password in `password_file` (first line).
    pub fn new(url: &str, password_file: Option<&Path>) -> Result<Self, Error> {
        let password = match password_file {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| Error::Password {
                    path: p.display().to_string(),
                    source: e,
                })?;
                Some(text.lines().next().unwrap_or("").to_string())
            }
            None => None,
        };
        Ok(Self {
            url: url.to_string(),
            seeds: Vec::new(),
            is_cluster: false,
            password,
            ca_pem: None,
            client_pem: None,
            timeout: Duration::from_secs(2),
        })
    }

    /// The same, checking `rediss://` servers against the CA certificates in `ca_file` (PEM,
    /// at most 1 MiB) instead of the system's roots.
    pub fn with_ca_file(mut self, ca_file: &Path) -> Result<Self, Error> {
        let pem = read_pem(ca_file)
            .and_then(|pem| certificates(&pem).map(|_| pem))
            .map_err(|why| Error::CaFile {
                path: ca_file.display().to_string(),
                why,
            })?;
        self.ca_pem = Some(pem);
        Ok(self)
    }

    /// The same, presenting the certificate in `cert_file` with the private key in `key_file`
    /// (PEM, at most 1 MiB each) to `rediss://` servers that ask for a client certificate.
    pub fn with_client_cert(mut self, cert_file: &Path, key_file: &Path) -> Result<Self, Error> {
        let fail = |path: &Path| {
            let path = path.display().to_string();
            move |why| Error::ClientCert { path, why }
        };
        let cert = read_pem(cert_file).map_err(fail(cert_file))?;
        let chain = certificates(&cert).map_err(fail(cert_file))?;
        let key = read_pem(key_file).map_err(fail(key_file))?;
        let der = private_key(&key).map_err(fail(key_file))?;
        // The key must be one rustls can sign with, and the certificate's.
        let provider = rustls::crypto::ring::default_provider();
        CertifiedKey::from_der(chain, der, &provider).map_err(|e| {
            fail(key_file)(match e {
                rustls::Error::InconsistentKeys(_) => {
                    format!("not the key of the certificate in {}", cert_file.display())
                }
                e => format!("not a usable private key: {e}"),
            })
        })?;
        self.client_pem = Some((cert, key));
        Ok(self)
    }

    /// Whether connections use certificates of their own (a CA file or a client certificate)
    /// rather than the URL's defaults.
    pub(crate) fn has_certs(&self) -> bool {
        self.ca_pem.is_some() || self.client_pem.is_some()
    }

    /// The same, as a Redis Cluster whose map `url` or else one of `seeds` gives.
    pub fn cluster(mut self, seeds: &[String]) -> Self {
        self.is_cluster = true;
        self.seeds = seeds.to_vec();
        self
    }
}

/// The bytes of the file `path` (at most 1 MiB), else why not.
fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > 1 << 20 {
        return Err("larger than 1 MiB".into());
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

/// The certificates of a PEM file (at least one).
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

/// The private key of a PEM file.
fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    let text = String::from_utf8_lossy(pem);
    if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(
            "an encrypted private key: the daemon cannot ask for its passphrase; \
                    store it decrypted (openssl pkey -in KEY -out NEW) and readable by root only"
                .into(),
        );
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        pem::Error::NoItemsFound => "no PEM private key in it".to_string(),
        e => format!("not a PEM private key: {e}"),
    })
}

/// One sensor as the directory shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SensorInfo {
    /// Its id.
    pub id: String,
    /// Its number (the suffix of its members).
    pub number: u16,
    /// `running` or `finished`.
    pub state: String,
    /// `live` or `batch`.
    pub mode: String,
    /// Packet time up to which its contacts are in the store (ns).
    pub watermark_ns: i64,
    /// Wall clock of its last flush (ms since the epoch).
    pub flushed_at_ms: i64,
    /// Contacts waiting in its backlog at that flush.
    pub backlog: u64,
    /// Contacts it dropped so far.
    pub dropped: u64,
    /// Contacts it wrote so far.
    pub written: u64,
}

/// A connection with its scripts loaded.
pub struct Store {
    conn: Conn,
    update_sha: String,
    query_sha: String,
}

impl Store {
    /// Connect and load the scripts (on every node of a cluster).
    pub fn connect(t: &Target) -> Result<Self, Error> {
        let mut s = Self {
            conn: Conn::open(t)?,
            update_sha: String::new(),
            query_sha: String::new(),
        };
        s.update_sha = s.load(UPDATE)?;
        s.query_sha = s.load(QUERY)?;
        Ok(s)
    }

    fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
    }

    fn load(&mut self, script: &str) -> Result<String, Error> {
        // On a cluster SCRIPT LOAD goes to every node (one digest, whichever answers).
        Ok(redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(script)
            .query(self.conn.get())?)
    }

    /// This sensor's number, after checking the key. `Err(KeyMismatch)` when the store holds
    /// tags of another key.
    pub fn register(&mut self, sensor: &str, check: &str) -> Result<u16, Error> {
        let n: i64 = redis::Script::new(REGISTER)
            .key(DIRECTORY)
            .key(SEQUENCE)
            .key(KEYCHECK)
            .arg(sensor)
            .arg(check)
            .invoke(self.conn.get())?;
        if n < 0 {
            return Err(Error::KeyMismatch);
        }
        u16::try_from(n).map_err(|_| Error::TooManySensors)
    }

    /// Write sets of contacts (pipelined script calls). `sensor` is this sensor's number.
    pub fn write(
        &mut self,
        sets: &[(SetKey, Members)],
        now_sec: u32,
        lookback_sec: u32,
        cap: u32,
        ttl_sec: u64,
        sensor: u16,
    ) -> Result<(), Error> {
        let suffix = sensor.to_be_bytes();
        let calls = groups(
            sets.iter().map(|s| (bucket(&s.0), s)),
            self.is_cluster(),
            SETS_PER_CALL,
        );
        for pipeline_calls in calls.chunks(CALLS_PER_PIPELINE) {
            let mut cmds = Vec::with_capacity(pipeline_calls.len());
            for call in pipeline_calls {
                let mut cmd = redis::cmd("EVALSHA");
                cmd.arg(&self.update_sha).arg(call.len());
                for (key, _) in call {
                    cmd.arg(crate::tags::key_name(key));
                }
                cmd.arg(now_sec)
                    .arg(lookback_sec)
                    .arg(cap)
                    .arg(ttl_sec)
                    .arg(&suffix[..]);
                for (_, members) in call {
                    cmd.arg(members.len());
                    for (tag, sec) in members {
                        cmd.arg(&tag[..]).arg(*sec);
                    }
                }
                cmds.push(cmd);
            }
            exec_all(&mut self.conn, cmds)?;
        }
        Ok(())
    }

    /// Answers to questions: (endpoint set, prefix set, look-back start s, second asked).
    pub fn ask(
        &mut self,
        questions: &[(String, String, u32, u32)],
    ) -> Result<Vec<GlobalPrevalence>, Error> {
        // Each question asks about two sets; the sets go out grouped, the answers come back
        // into their question's place.
        let sets = questions
            .iter()
            .enumerate()
            .flat_map(|(i, (e, p, lo, at))| {
                [(2 * i, e, *lo, *at), (2 * i + 1, p, *lo, *at)]
                    .map(|s| (bucket_of_name(s.1).unwrap_or(0), s))
            });
        let calls = groups(sets, self.is_cluster(), KEYS_PER_QUESTION);
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmds = Vec::with_capacity(calls.len());
        for call in &calls {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(&self.query_sha).arg(call.len());
            for (_, key, _, _) in call {
                cmd.arg(key.as_str());
            }
            for (_, _, lo, at) in call {
                cmd.arg(*lo).arg(*at);
            }
            cmds.push(cmd);
        }
        let mut per_set = vec![[0i64; 3]; questions.len() * 2];
        for (call, reply) in calls.iter().zip(query_all(&mut self.conn, cmds)?) {
            let v: Vec<i64> = redis::from_redis_value(reply)
                .map_err(|_| Error::Reply("query answered something else than numbers"))?;
            if v.len() != call.len() * 3 {
                return Err(Error::Reply("query answered the wrong number of values"));
            }
            for ((slot, ..), a) in call.iter().zip(v.chunks(3)) {
                per_set[*slot].copy_from_slice(a);
            }
        }
        let n = |x: i64| u32::try_from(x).unwrap_or(0);
        Ok(per_set
            .chunks(2)
            .map(|q| GlobalPrevalence {
                prevalence: n(q[0][0]),
                popular: q[0][1] != 0,
                prefix_prevalence: n(q[1][0]),
                prefix_popular: q[1][1] != 0,
                sensors: n(q[0][2]),
            })
            .collect())
    }

    /// Publish this sensor's line of the directory.
    pub fn heartbeat(&mut self, s: &SensorInfo) -> Result<(), Error> {
        let key = format!("bw:sensor:{}", s.id);
        let mut set = redis::cmd("HSET");
        set.arg(&key);
        for (field, value) in [
            ("number", s.number.to_string()),
            ("state", s.state.clone()),
            ("mode", s.mode.clone()),
            ("watermark_ns", s.watermark_ns.to_string()),
            ("flushed_at_ms", s.flushed_at_ms.to_string()),
            ("backlog", s.backlog.to_string()),
            ("dropped", s.dropped.to_string()),
            ("written", s.written.to_string()),
        ] {
            set.arg(field).arg(value);
        }
        let mut expire = redis::cmd("EXPIRE");
        expire.arg(&key).arg(7 * 86_400);
        exec_all(&mut self.conn, vec![set, expire])
    }

    /// Every sensor of the directory.
    pub fn sensors(&mut self) -> Result<Vec<SensorInfo>, Error> {
        let ids: Vec<String> = redis::cmd("HKEYS").arg(DIRECTORY).query(self.conn.get())?;
        let mut out = Vec::new();
        for id in ids {
            let h: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
                .arg(format!("bw:sensor:{id}"))
                .query(self.conn.get())?;
            if h.is_empty() {
                continue;
            }
            let num = |k: &str| h.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
            out.push(SensorInfo {
                number: u16::try_from(num("number")).unwrap_or(0),
                state: h.get("state").cloned().unwrap_or_default(),
                mode: h.get("mode").cloned().unwrap_or_default(),
                watermark_ns: num("watermark_ns"),
                flushed_at_ms: num("flushed_at_ms"),
                backlog: num("backlog").max(0) as u64,
                dropped: num("dropped").max(0) as u64,
                written: num("written").max(0) as u64,
                id,
            });
        }
        Ok(out)
    }

    /// Keys in the store and the memory it uses (bytes), summed over a cluster's primaries.
    pub fn size(&mut self) -> Result<(u64, u64), Error> {
        let keys: u64 = redis::cmd("DBSIZE").query(self.conn.get())?;
        let info: Value = redis::cmd("INFO").arg("memory").query(self.conn.get())?;
        Ok((keys, used_memory(&info)))
    }

    /// Per server (a cluster's primaries, by address; one server: its URL), the keys it holds
    /// and the memory it uses, in address order.
    pub fn nodes(&mut self, url: &str) -> Result<Vec<NodeSize>, Error> {
        let keyspace: Value = redis::cmd("INFO").arg("keyspace").query(self.conn.get())?;
        let memory: Value = redis::cmd("INFO").arg("memory").query(self.conn.get())?;
        let per_node = |v: &Value| -> Vec<(String, String)> {
            match v {
                Value::Map(m) => m.iter().map(|(k, v)| (text_of(k), text_of(v))).collect(),
                other => vec![(url.to_string(), text_of(other))],
            }
        };
        let mem: BTreeMap<String, String> = per_node(&memory).into_iter().collect();
        let mut out: Vec<NodeSize> = per_node(&keyspace)
            .into_iter()
            .map(|(addr, ks)| NodeSize {
                used_memory_bytes: mem.get(&addr).map_or(0, |m| info_field(m, "used_memory")),
                keys: ks
                    .lines()
                    .filter(|l| l.starts_with("db"))
                    .filter_map(|l| {
                        let keys = l.split_once(':')?.1.split(',').next()?;
                        keys.strip_prefix("keys=")?.parse::<u64>().ok()
                    })
                    .sum(),
                addr,
            })
            .collect();
        out.sort_by(|a, b| a.addr.cmp(&b.addr));
        Ok(out)
    }

    /// Whether the connection still answers.
    pub fn is_open(&self) -> bool {
        match &self.conn {
            Conn::One(c) => c.is_open(),
            Conn::Cluster(c) => c.is_open(),
        }
    }

    /// A raw command (tests, benchmarks).
    pub fn raw(&mut self, cmd: &Cmd) -> Result<Value, Error> {
        Ok(self.conn.get().req_command(cmd)?)
    }
}
