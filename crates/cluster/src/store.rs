//! The Redis side: connection, the three scripts, the sensor directory.
//!
//! Keys: `bw:e:<tag>` and `bw:p:<tag>` (an endpoint's and a prefix's sorted set, see
//! `lua/update.lua`), `bw:sensors` (sensor id → number), `bw:sensor-seq`, `bw:keycheck`, and
//! `bw:sensor:<id>` (a hash: number, state, watermark, last flush, counters).

use std::path::Path;
use std::time::Duration;

use burstwatch_engine::detect::GlobalPrevalence;
use redis::{Cmd, ConnectionLike as _, Value};

use crate::backlog::Members;
use crate::Error;

const UPDATE: &str = include_str!("lua/update.lua");
const QUERY: &str = include_str!("lua/query.lua");
const REGISTER: &str = include_str!("lua/register.lua");

/// Sets per script call, and calls per pipeline.
/// (Small calls keep Redis free for other sensors' questions in between: one call of 64 sets
/// runs well under a millisecond.)
const SETS_PER_CALL: usize = 64;
const CALLS_PER_PIPELINE: usize = 64;

/// How to reach the store.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL (`redis://`, `rediss://`, `redis+unix://`, `unix://`).
    pub url: String,
    /// The password, read from its file.
    pub password: Option<String>,
    /// Connect, read and write timeout.
    pub timeout: Duration,
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
            password,
            timeout: Duration::from_secs(2),
        })
    }
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
    conn: redis::Connection,
    update_sha: String,
    query_sha: String,
}

impl Store {
    /// Connect and load the scripts.
    pub fn connect(t: &Target) -> Result<Self, Error> {
        use redis::IntoConnectionInfo as _;
        let mut info = t.url.as_str().into_connection_info()?;
        if let Some(pw) = &t.password {
            let settings = info.redis_settings().clone().set_password(pw);
            info = info.set_redis_settings(settings);
        }
        let client = redis::Client::open(info)?;
        let conn = client.get_connection_with_timeout(t.timeout)?;
        conn.set_read_timeout(Some(t.timeout))?;
        conn.set_write_timeout(Some(t.timeout))?;
        let mut s = Self {
            conn,
            update_sha: String::new(),
            query_sha: String::new(),
        };
        s.update_sha = s.load(UPDATE)?;
        s.query_sha = s.load(QUERY)?;
        Ok(s)
    }

    fn load(&mut self, script: &str) -> Result<String, Error> {
        Ok(redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(script)
            .query(&mut self.conn)?)
    }

    /// This sensor's number, after checking the key. `Err(KeyMismatch)` when the store holds
    /// tags of another key.
    pub fn register(&mut self, sensor: &str, check: &str) -> Result<u16, Error> {
        let n: i64 = redis::Script::new(REGISTER)
            .key("bw:sensors")
            .key("bw:sensor-seq")
            .key("bw:keycheck")
            .arg(sensor)
            .arg(check)
            .invoke(&mut self.conn)?;
        if n < 0 {
            return Err(Error::KeyMismatch);
        }
        u16::try_from(n).map_err(|_| Error::TooManySensors)
    }

    /// Write sets of contacts (pipelined script calls). `sensor` is this sensor's number.
    pub fn write(
        &mut self,
        sets: &[(crate::tags::SetKey, Members)],
        now_sec: u32,
        lookback_sec: u32,
        cap: u32,
        ttl_sec: u64,
        sensor: u16,
    ) -> Result<(), Error> {
        let suffix = sensor.to_be_bytes();
        for pipeline_sets in sets.chunks(SETS_PER_CALL * CALLS_PER_PIPELINE) {
            let mut pipe = redis::pipe();
            for call in pipeline_sets.chunks(SETS_PER_CALL) {
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
                pipe.add_command(cmd).ignore();
            }
            pipe.exec(&mut self.conn)?;
        }
        Ok(())
    }

    /// Answers to questions: (endpoint set, prefix set, look-back start s, second asked).
    pub fn ask(
        &mut self,
        questions: &[(String, String, u32, u32)],
    ) -> Result<Vec<GlobalPrevalence>, Error> {
        let mut out = Vec::with_capacity(questions.len());
        for chunk in questions.chunks(256) {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(&self.query_sha).arg(chunk.len() * 2);
            for (e, p, _, _) in chunk {
                cmd.arg(e).arg(p);
            }
            for (_, _, lo, at) in chunk {
                cmd.arg(*lo).arg(*at);
            }
            let v: Vec<i64> = cmd.query(&mut self.conn)?;
            if v.len() != chunk.len() * 5 {
                return Err(Error::Reply("query answered the wrong number of values"));
            }
            let n = |x: i64| u32::try_from(x).unwrap_or(0);
            out.extend(v.chunks(5).map(|a| GlobalPrevalence {
                prevalence: n(a[0]),
                popular: a[1] != 0,
                prefix_prevalence: n(a[2]),
                prefix_popular: a[3] != 0,
                sensors: n(a[4]),
            }));
        }
        Ok(out)
    }

    /// Publish this sensor's line of the directory.
    pub fn heartbeat(&mut self, s: &SensorInfo) -> Result<(), Error> {
        let key = format!("bw:sensor:{}", s.id);
        redis::pipe()
            .hset_multiple(
                &key,
                &[
                    ("number", s.number.to_string()),
                    ("state", s.state.clone()),
                    ("mode", s.mode.clone()),
                    ("watermark_ns", s.watermark_ns.to_string()),
                    ("flushed_at_ms", s.flushed_at_ms.to_string()),
                    ("backlog", s.backlog.to_string()),
                    ("dropped", s.dropped.to_string()),
                    ("written", s.written.to_string()),
                ],
            )
            .ignore()
            .expire(&key, 7 * 86_400)
            .ignore()
            .exec(&mut self.conn)?;
        Ok(())
    }

    /// Every sensor of the directory.
    pub fn sensors(&mut self) -> Result<Vec<SensorInfo>, Error> {
        let ids: Vec<String> = redis::cmd("HKEYS")
            .arg("bw:sensors")
            .query(&mut self.conn)?;
        let mut out = Vec::new();
        for id in ids {
            let h: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
                .arg(format!("bw:sensor:{id}"))
                .query(&mut self.conn)?;
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

    /// Keys in the store and the memory it uses (bytes).
    pub fn size(&mut self) -> Result<(u64, u64), Error> {
        let keys: u64 = redis::cmd("DBSIZE").query(&mut self.conn)?;
        let info: String = redis::cmd("INFO").arg("memory").query(&mut self.conn)?;
        let used = info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Ok((keys, used))
    }

    /// Whether the connection still answers.
    pub fn is_open(&self) -> bool {
        self.conn.is_open()
    }

    /// A raw command (tests, benchmarks).
    pub fn raw(&mut self, cmd: &Cmd) -> Result<Value, Error> {
        Ok(self.conn.req_command(cmd)?)
    }
}
