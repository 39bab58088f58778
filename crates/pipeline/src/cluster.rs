//! The shared prevalence store in the shell: starting the cluster thread from the settings,
//! moving contacts, questions and answers between it and the scorer (batch and live), and
//! `burstwatch cluster status`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use burstwatch_cluster::{Cluster, Mode, Options, Store, Tags, Target};
use burstwatch_config::Settings;
use burstwatch_engine::detect::{Contact, GlobalConfig, GlobalQuery};
use burstwatch_engine::Scorer;

/// Packets between two hand-overs of contacts in a batch run.
const BATCH_PACKETS: u32 = 4096;

/// The cluster thread and what the shell keeps for it.
pub struct Shared {
    sensor: String,
    cluster: Cluster,
    buf: Vec<Contact>,
    packets: u32,
}

/// Read the pseudonym key named by the settings (32 raw bytes or 64 hex digits).
fn read_key(path: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cluster key file {}", path.display()))?;
    anyhow::ensure!(
        meta.len() <= 4096,
        "cluster key file {} is too large",
        path.display()
    );
    let bytes =
        std::fs::read(path).with_context(|| format!("cluster key file {}", path.display()))?;
    burstwatch_anon::parse_key(&bytes)
        .with_context(|| format!("cluster key file {}", path.display()))
}

fn target(settings: &Settings) -> anyhow::Result<Option<Target>> {
    let c = &settings.cluster;
    let Some(url) = &c.redis_url else {
        return Ok(None);
    };
    let mut t = Target::new(url, c.password_file.as_deref())?;
    if let Some(ca) = &c.ca_file {
        t = t.with_ca_file(ca)?;
    }
    if let Some((cert, key)) = &c.client_cert {
        t = t.with_client_cert(cert, key)?;
    }
    Ok(Some(if c.redis_cluster {
        t.cluster(&c.redis_cluster_seeds)
    } else {
        t
    }))
}

/// A store's target, this sensor's name and its tags, every file read (see
/// [`Shared::prepare`]).
pub struct Prepared {
    target: Target,
    id: String,
    tags: Tags,
}

impl Shared {
    /// Start the thread when `[cluster] redis_url` is set, and turn the scorer's shared view
    /// on.
    pub fn start(settings: &Settings, mode: Mode) -> anyhow::Result<Option<Shared>> {
        match Self::prepare(settings)? {
            Some(p) => Self::start_prepared(p, settings, mode).map(Some),
            None => Ok(None),
        }
    }

    /// What [`Shared::start_prepared`] needs, with every file read now: the password, the CA
    /// and client certificate files and the pseudonym key (the daemon reads them before it
    /// gives up root, so they can stay root-only). `None` without `[cluster] redis_url`.
    pub fn prepare(settings: &Settings) -> anyhow::Result<Option<Prepared>> {
        let c = &settings.cluster;
        let Some(target) = target(settings)? else {
            return Ok(None);
        };
        // A DaemonSet names each node's sensor through the environment (one ConfigMap).
        let id = std::env::var("BURSTWATCH_SENSOR_ID")
            .ok()
            .filter(|v| !v.is_empty() && v.len() <= 128 && !v.chars().any(char::is_control))
            .or_else(|| c.sensor_id.clone());
        let (Some(id), Some(key_file)) = (id, &c.key_file) else {
            anyhow::bail!(
                "cluster.redis_url needs a name for this sensor (cluster.sensor_id, \
                 daemon.sensor or BURSTWATCH_SENSOR_ID) and cluster.key_file"
            );
        };
        let tags = Tags::new(&read_key(key_file)?);
        Ok(Some(Prepared { target, id, tags }))
    }

    /// Start the thread of a prepared store.
    pub fn start_prepared(p: Prepared, settings: &Settings, mode: Mode) -> anyhow::Result<Shared> {
        let c = &settings.cluster;
        let Prepared { target, id, tags } = p;
        let id = &id;
        let d = &settings.detect;
        let opts = Options {
            target,
            sensor_id: id.clone(),
            tags,
            flush_interval: Duration::from_millis(c.flush_interval_ms),
            max_backlog: c.max_backlog_contacts,
            set_cap: c.set_cap,
            lookback_ns: d.lookback_ns,
            ttl_extra_sec: u64::try_from((d.alert_hold_ns + c.answer_wait_ns) / 1_000_000_000)
                .unwrap_or(0)
                + 60,
            mode,
            peer_wait: Duration::from_millis(c.peer_wait_ms),
        };
        let cluster = Cluster::start(opts).context("cluster")?;
        tracing::info!(sensor = %id, "endpoint prevalence shared through the cluster store");
        Ok(Shared {
            sensor: id.clone(),
            cluster,
            buf: Vec::new(),
            packets: 0,
        })
    }

    /// The scorer's settings for the shared view.
    pub fn global_config(settings: &Settings) -> GlobalConfig {
        GlobalConfig {
            answer_wait_ns: settings.cluster.answer_wait_ns,
        }
    }

    /// This sensor's name in the store.
    pub fn sensor(&self) -> &str {
        &self.sensor
    }

    /// The thread's counters.
    pub fn counters(&self) -> std::sync::Arc<burstwatch_cluster::Counters> {
        std::sync::Arc::clone(self.cluster.counters())
    }

    /// Batch: wait until `n` sensors run (bounded).
    pub fn wait_for_sensors(&self, n: usize, timeout: Duration) -> usize {
        self.cluster.wait_for_sensors(n, timeout)
    }

    /// Batch, after each packet: hand contacts over now and then; when the scorer asks,
    /// flush, wait for the other sensors and answer before the next packet.
    pub fn after_packet(&mut self, scorer: &mut Scorer) {
        self.packets += 1;
        let first = scorer.poll_query();
        if first.is_none() && self.packets < BATCH_PACKETS {
            return;
        }
        self.packets = 0;
        scorer.drain_contacts(&mut self.buf);
        let now = scorer.now_ns();
        let Some(first) = first else {
            self.cluster.publish(std::mem::take(&mut self.buf), now);
            return;
        };
        let mut queries: Vec<GlobalQuery> = vec![first];
        queries.extend(std::iter::from_fn(|| scorer.poll_query()));
        let answers = self
            .cluster
            .sync(std::mem::take(&mut self.buf), now, queries);
        for (id, a) in answers {
            scorer.answer(id, a);
        }
    }

    /// Batch, after the engine finished: answer what it asked, score the rest locally.
    pub fn finish_batch(&mut self, scorer: &mut Scorer) {
        scorer.drain_contacts(&mut self.buf);
        let queries: Vec<GlobalQuery> = std::iter::from_fn(|| scorer.poll_query()).collect();
        let answers = self
            .cluster
            .sync(std::mem::take(&mut self.buf), scorer.now_ns(), queries);
        for (id, a) in answers {
            scorer.answer(id, a);
        }
        scorer.give_up_waiting();
    }

    /// Live: hand contacts and questions over (never waits), apply the answers that came.
    pub fn pump(&mut self, scorer: &mut Scorer) {
        scorer.drain_contacts(&mut self.buf);
        if !self.buf.is_empty() {
            self.cluster
                .publish(std::mem::take(&mut self.buf), scorer.now_ns());
        }
        let queries: Vec<GlobalQuery> = std::iter::from_fn(|| scorer.poll_query()).collect();
        self.cluster.ask(queries);
        for (id, a) in self.cluster.answers() {
            scorer.answer(id, a);
        }
    }

    /// Flush what is left and mark this sensor finished.
    pub fn finish(self) {
        self.cluster.finish();
    }

    /// One line for the summary.
    pub fn summary(&self) -> String {
        let c = self.cluster.counters();
        format!(
            "cluster: {} contacts written, {} dropped, {} not written yet, {} questions answered, {} unanswered, {} store errors",
            c.written.load(Ordering::Relaxed),
            c.dropped.load(Ordering::Relaxed),
            c.backlog.load(Ordering::Relaxed),
            c.answered.load(Ordering::Relaxed),
            c.unanswered.load(Ordering::Relaxed),
            c.errors.load(Ordering::Relaxed),
        )
    }
}

/// The counters as the exporter shows them.
pub fn stats(
    c: &burstwatch_cluster::Counters,
) -> burstwatch_exporter::cluster_metrics::ClusterStats {
    burstwatch_exporter::cluster_metrics::ClusterStats {
        written: c.written.load(Ordering::Relaxed),
        dropped: c.dropped.load(Ordering::Relaxed),
        backlog: c.backlog.load(Ordering::Relaxed),
        errors: c.errors.load(Ordering::Relaxed),
        flush_lag_seconds: c.flush_lag_seconds().unwrap_or(0.0),
        connected: c.connected.load(Ordering::Relaxed),
        answered: c.answered.load(Ordering::Relaxed),
        unanswered: c.unanswered.load(Ordering::Relaxed),
    }
}

/// Arguments of `burstwatch cluster`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// `burstwatch cluster ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Print the sensors the shared store has seen (state, packet time flushed, lag since
    /// their last flush, backlog, drops) and the store's size.
    Status {
        /// Configuration file naming `[cluster] redis_url` (and its password file).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Run `burstwatch cluster`.
pub fn run(args: &ClusterArgs) -> anyhow::Result<ExitCode> {
    let ClusterCommand::Status { config, json } = &args.command;
    let settings = Settings::load(config)?;
    let Some(t) = target(&settings)? else {
        anyhow::bail!("{}: no [cluster] redis_url", config.display());
    };
    let mut store = match Store::connect(&t) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("burstwatch: error: cannot reach the shared store: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let mut sensors = store.sensors()?;
    sensors.sort_by(|a, b| a.id.cmp(&b.id));
    let (keys, used) = store.size()?;
    let nodes = store.nodes(&t.url)?;
    let kind = if t.is_cluster {
        "redis-cluster"
    } else {
        "redis"
    };
    let now_ms = jiff::Timestamp::now().as_millisecond();
    if *json {
        let list: Vec<serde_json::Value> = sensors
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id, "number": s.number, "state": s.state, "mode": s.mode,
                    "watermark": crate::timestamp::rfc3339(s.watermark_ns),
                    "lag_seconds": (now_ms - s.flushed_at_ms) as f64 / 1000.0,
                    "backlog": s.backlog, "dropped": s.dropped, "written": s.written,
                })
            })
            .collect();
        let servers: Vec<serde_json::Value> = nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "addr": n.addr, "keys": n.keys, "used_memory_bytes": n.used_memory_bytes,
                })
            })
            .collect();
        let v = serde_json::json!({
            "sensors": list, "store": kind, "servers": servers, "keys": keys,
            "used_memory_bytes": used,
        });
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<20} {:>4} {:<9} {:<5} {:<30} {:>9} {:>9} {:>9} {:>12}",
        "SENSOR",
        "NUM",
        "STATE",
        "MODE",
        "FLUSHED UP TO (PACKET TIME)",
        "LAG S",
        "BACKLOG",
        "DROPPED",
        "WRITTEN"
    );
    for s in &sensors {
        println!(
            "{:<20} {:>4} {:<9} {:<5} {:<30} {:>9.1} {:>9} {:>9} {:>12}",
            s.id,
            s.number,
            s.state,
            s.mode,
            crate::timestamp::rfc3339(s.watermark_ns),
            (now_ms - s.flushed_at_ms) as f64 / 1000.0,
            s.backlog,
            s.dropped,
            s.written
        );
    }
    println!("store ({kind}): {keys} keys, {used} bytes of memory");
    if t.is_cluster {
        for n in &nodes {
            println!(
                "  primary {}: {} keys, {} bytes",
                n.addr, n.keys, n.used_memory_bytes
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
