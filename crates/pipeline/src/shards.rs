//! The engine on one thread, or split by home host over worker threads.
//!
//! [`Engines::One`] is the plain [`Engine`]. [`Engines::Sharded`] runs one
//! [`Shard`] (flow table and per-subscriber detector) per worker thread and the
//! population-wide [`Scorer`] on the calling thread: the caller routes each packet to the shard
//! of its home host ([`Router`]), packets travel in rounds of [`ROUND`] (every shard gets its
//! part of every round, so all shards stay in step), and the shards' events come back and are
//! merged into packet order before the scorer sees them. Alerts are exactly those of one engine
//! (see `burstwatch_engine::shard`); flow records are the same set, in another order.
//!
//! Nothing is locked per packet: each shard owns its state, and the only shared state (the
//! scorer's) lives on one thread.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use anyhow::Context as _;
use burstwatch_engine::detect::state::{HostsPart, LearnedState};
use burstwatch_engine::detect::{EarlyReason, Enrich};
use burstwatch_engine::shard::{merge_into, Router, Shard, Tagged};
use burstwatch_engine::{
    Alert, DetectConfig, DetectStats, Engine, FlowConfig, FlowRecord, FlowStats, Scorer,
};
use burstwatch_wire::PacketMeta;

/// Packets per round handed to the shards.
pub const ROUND: usize = 1024;
/// Records per message from a shard after the end of input (the flows still open then come
/// back in chunks as they are popped, not all at once).
const TAIL_CHUNK: usize = 4096;
/// Rounds in flight before the caller waits for the oldest one's results.
const DEPTH: usize = 4;

/// One engine, or several host shards and a scorer.
pub enum Engines {
    /// Everything on the calling thread.
    One(Box<Engine>),
    /// Host shards on worker threads.
    Sharded(Box<ShardPool>),
}

/// What an engine is made from: flow and detector settings, the flow-hash seed, endpoint
/// enrichment and learned state to start from.
pub struct EngineSpec {
    /// Flow-table settings.
    pub flow: FlowConfig,
    /// Detector settings.
    pub detect: DetectConfig,
    /// Keys the flow hash (random in a deployment, fixed in tests).
    pub seed: u64,
    /// Endpoint enrichment (ASN, country), if configured.
    pub enrich: Option<Box<dyn Enrich>>,
    /// Baselines and prevalence learned by an earlier run.
    pub state: Option<LearnedState>,
}

impl Engines {
    /// `workers` engines (1: a plain engine on the calling thread) made from `spec`.
    pub fn new(workers: usize, spec: EngineSpec) -> anyhow::Result<Self> {
        if workers > 1 {
            return Ok(Engines::Sharded(Box::new(ShardPool::new(workers, spec)?)));
        }
        let mut e = Engine::new(spec.flow, spec.detect, spec.seed);
        if let Some(en) = spec.enrich {
            e.detector_mut().set_enrich(en);
        }
        if let Some(s) = spec.state {
            e.detector_mut().restore(s)?;
        }
        Ok(Engines::One(Box::new(e)))
    }

    /// Count one decoded packet.
    #[inline]
    pub fn ingest(&mut self, ts: i64, meta: &PacketMeta) {
        match self {
            Engines::One(e) => e.ingest(ts, meta),
            Engines::Sharded(p) => p.ingest(ts, meta),
        }
    }

    /// Packet time with no packet (an idle link). With shards this also hands over the
    /// round in progress and waits for every result, so an idle link gets its alerts.
    pub fn advance_to(&mut self, ts: i64) {
        match self {
            Engines::One(e) => e.advance_to(ts),
            Engines::Sharded(p) => p.advance_to(ts),
        }
    }

    /// Host shards: hand over the round in progress now (the results come back with later
    /// rounds). Nothing to do for one engine.
    pub fn flush(&mut self) {
        if let Engines::Sharded(p) = self {
            p.send_round();
            while p.in_flight > DEPTH {
                p.collect_one();
            }
        }
    }

    /// End of input: every flow exported, every burst finished, every alert emitted.
    pub fn finish(&mut self) {
        match self {
            Engines::One(e) => e.finish(),
            Engines::Sharded(p) => p.finish(),
        }
    }

    /// Next finished flow record.
    #[inline]
    pub fn pop_record(&mut self) -> Option<FlowRecord> {
        match self {
            Engines::One(e) => e.pop_record(),
            Engines::Sharded(p) => p.pop_record(),
        }
    }

    /// Whether a flow record or an alert may be waiting (always, with shards).
    #[inline]
    pub fn has_output(&self) -> bool {
        match self {
            Engines::One(e) => e.has_output(),
            Engines::Sharded(_) => true,
        }
    }

    /// Next alert.
    #[inline]
    pub fn pop_alert(&mut self) -> Option<Alert> {
        match self {
            Engines::One(e) => e.pop_alert(),
            Engines::Sharded(p) => p.scorer.pop_alert(),
        }
    }

    /// Flow-table counters (summed over shards, as of their last results).
    pub fn flow_stats(&self) -> FlowStats {
        match self {
            Engines::One(e) => e.flows().stats(),
            Engines::Sharded(p) => {
                let mut s = FlowStats::default();
                for f in &p.flow_stats {
                    s.add(f);
                }
                s
            }
        }
    }

    /// Detector counters (summed over shards and the scorer).
    pub fn detect_stats(&self) -> DetectStats {
        match self {
            Engines::One(e) => e.detector().stats(),
            Engines::Sharded(p) => {
                let mut s = p.scorer.stats();
                for d in &p.detect_stats {
                    s.add(d);
                }
                s
            }
        }
    }

    /// New thresholds and caps; learned state is kept. With shards, they apply from the next
    /// round on, in packet order.
    pub fn set_config(&mut self, flow: FlowConfig, detect: DetectConfig) {
        match self {
            Engines::One(e) => {
                e.flows_mut().set_config(flow);
                e.detector_mut().set_config(detect);
            }
            Engines::Sharded(p) => p.set_config(flow, detect),
        }
    }

    /// Input ends because the process stops, not because the data ended: alerts still on
    /// hold at [`Engines::finish`] are marked with `reason`.
    pub fn set_finish_reason(&mut self, reason: EarlyReason) {
        self.scorer_mut().set_finish_reason(reason);
    }

    /// What has been learned so far, while running (a checkpoint). With shards this hands
    /// over the round in progress and waits for every shard's baselines.
    pub fn snapshot(&mut self) -> LearnedState {
        match self {
            Engines::One(e) => e.detector().learned_state(),
            Engines::Sharded(p) if !p.finished => p.snapshot(),
            Engines::Sharded(_) => self.learned_state(),
        }
    }

    /// Use these enrich databases from now on (`None`: none).
    pub fn set_enrich(&mut self, enrich: Option<Box<dyn Enrich>>) {
        self.scorer_mut().replace_enrich(enrich);
    }

    /// What has been learned (call after [`Engines::finish`] when sharded: the shards'
    /// baselines come back with their threads; records not popped yet are kept).
    pub fn learned_state(&mut self) -> LearnedState {
        match self {
            Engines::One(e) => e.detector().learned_state(),
            Engines::Sharded(p) => {
                p.join();
                let locals: Vec<_> = p.done.iter().map(|s| s.subscribers()).collect();
                LearnedState::collect(&p.scorer, &locals)
            }
        }
    }

    /// The population-wide scorer (the shared prevalence view).
    pub fn scorer_mut(&mut self) -> &mut Scorer {
        match self {
            Engines::One(e) => e.detector_mut().scorer_mut(),
            Engines::Sharded(p) => &mut p.scorer,
        }
    }

    /// The single engine, if that is what runs (forensic report hooks).
    pub fn single(&mut self) -> Option<&mut Engine> {
        match self {
            Engines::One(e) => Some(e),
            Engines::Sharded(_) => None,
        }
    }
}

/// An item of a round, in packet order.
#[allow(clippy::large_enum_variant)] // packets are nearly every item; boxing would allocate each
enum Item {
    /// A packet for this shard: its number in the stream, its time and the stream's time.
    Packet(RoutedPacket),
    Tick(u64, i64),
    Finish(u64, i64),
    Config(Box<(FlowConfig, DetectConfig)>),
    /// Send the shard's subscriber baselines back with this round's results.
    Snapshot,
}

/// A packet with what the router knows of it.
struct RoutedPacket {
    /// Position in the packet stream (orders the shards' events when they are merged).
    seq: u64,
    /// Capture time (ns).
    ts: i64,
    /// Stream time: the latest capture time so far (ns).
    now: i64,
    meta: PacketMeta,
}

/// What a shard hands back after a round (after the last one, the records of the flows open
/// at the end of input follow in chunks of [`TAIL_CHUNK`], with nothing else).
struct Done {
    /// The round's buffer, emptied, for reuse.
    items: Vec<Item>,
    events: Vec<Tagged>,
    records: Vec<FlowRecord>,
    flows: FlowStats,
    detect: DetectStats,
    /// The baselines, when the round asked for them.
    hosts: Option<HostsPart>,
}

/// Host shards on worker threads, and the scorer.
pub struct ShardPool {
    router: Router,
    scorer: Scorer,
    round: Vec<Vec<Item>>,
    /// Emptied round buffers back from each shard.
    spare: Vec<Vec<Vec<Item>>>,
    in_round: usize,
    inputs: Vec<SyncSender<Vec<Item>>>,
    outputs: Vec<Receiver<Done>>,
    threads: Vec<JoinHandle<Shard>>,
    in_flight: usize,
    records: VecDeque<FlowRecord>,
    flow_stats: Vec<FlowStats>,
    detect_stats: Vec<DetectStats>,
    /// The shards, back from their threads after `finish`.
    done: Vec<Shard>,
    finished: bool,
    /// Baselines sent back for a snapshot, one per shard.
    hosts: Vec<HostsPart>,
    /// After `finish`: the shard whose end-of-input records are being popped.
    draining: usize,
}

impl ShardPool {
    fn new(workers: usize, spec: EngineSpec) -> anyhow::Result<Self> {
        let EngineSpec {
            flow,
            detect,
            seed,
            enrich,
            state,
        } = spec;
        let router = Router::new(workers, detect.home_nets.clone());
        let mut scorer = Scorer::new(detect.clone(), seed);
        if let Some(en) = enrich {
            scorer.set_enrich(en);
        }
        let mut shards: Vec<Shard> = (0..workers)
            .map(|i| Shard::new(i, flow.clone(), detect.clone(), seed))
            .collect();
        if let Some(s) = state {
            let mut locals: Vec<_> = shards.iter_mut().map(|s| s.subscribers_mut()).collect();
            s.restore_into(&mut scorer, &mut locals, |ip| router.shard_of_host(ip))?;
        }
        let (mut inputs, mut outputs, mut threads) = (Vec::new(), Vec::new(), Vec::new());
        for (i, shard) in shards.into_iter().enumerate() {
            let (in_tx, in_rx) = mpsc::sync_channel::<Vec<Item>>(DEPTH + 1);
            let (out_tx, out_rx) = mpsc::sync_channel::<Done>(DEPTH + 1);
            let handle = std::thread::Builder::new()
                .name(format!("shard-{i}"))
                .spawn(move || shard_loop(shard, in_rx, out_tx))
                .context("cannot start a shard thread")?;
            inputs.push(in_tx);
            outputs.push(out_rx);
            threads.push(handle);
        }
        Ok(Self {
            router,
            scorer,
            round: (0..workers).map(|_| Vec::new()).collect(),
            spare: (0..workers).map(|_| Vec::new()).collect(),
            in_round: 0,
            inputs,
            outputs,
            threads,
            in_flight: 0,
            records: VecDeque::new(),
            flow_stats: vec![FlowStats::default(); workers],
            detect_stats: vec![DetectStats::default(); workers],
            done: Vec::new(),
            finished: false,
            hosts: Vec::new(),
            draining: 0,
        })
    }

    #[inline]
    fn ingest(&mut self, ts: i64, meta: &PacketMeta) {
        if self.finished {
            return;
        }
        let r = self.router.route(ts, meta);
        if let Some(t) = r.tick {
            for part in &mut self.round {
                part.push(Item::Tick(r.seq, t));
            }
        }
        if let Some(part) = self.round.get_mut(r.shard) {
            part.push(Item::Packet(RoutedPacket {
                seq: r.seq,
                ts,
                now: r.now,
                meta: meta.clone(),
            }));
        }
        self.in_round += 1;
        if self.in_round >= ROUND {
            self.send_round();
            while self.in_flight > DEPTH {
                self.collect_one();
            }
        }
    }

    fn advance_to(&mut self, ts: i64) {
        if self.finished {
            return;
        }
        if let Some((seq, t)) = self.router.advance(ts) {
            for part in &mut self.round {
                part.push(Item::Tick(seq, t));
            }
        }
        self.send_round();
        while self.in_flight > 0 {
            self.collect_one();
        }
    }

    fn set_config(&mut self, flow: FlowConfig, detect: DetectConfig) {
        self.router.set_home(detect.home_nets.clone());
        self.scorer.set_config(detect.clone());
        for part in &mut self.round {
            part.push(Item::Config(Box::new((flow.clone(), detect.clone()))));
        }
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        let fin = self.router.finish();
        for part in &mut self.round {
            part.push(Item::Finish(fin.seq, fin.now));
        }
        self.send_round();
        while self.in_flight > 0 {
            self.collect_one();
        }
        self.finished = true;
        // Hang up: each shard thread sends the records of its open flows, then ends.
        self.inputs.clear();
    }

    /// Next record; after `finish`, the shards' end-of-input records one chunk at a time.
    fn pop_record(&mut self) -> Option<FlowRecord> {
        loop {
            if let Some(r) = self.records.pop_front() {
                return Some(r);
            }
            if !self.finished {
                return None;
            }
            let Some(rx) = self.outputs.get(self.draining) else {
                self.join();
                return None;
            };
            match rx.recv() {
                Ok(done) => self.records.extend(done.records),
                Err(_) => self.draining += 1,
            }
        }
    }

    /// After `finish`: take the records not popped yet and the shards back from their threads.
    fn join(&mut self) {
        if !self.finished || self.threads.is_empty() {
            return;
        }
        for rx in self.outputs.iter().skip(self.draining) {
            while let Ok(done) = rx.recv() {
                self.records.extend(done.records);
            }
        }
        self.draining = self.outputs.len();
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(shard) => self.done.push(shard),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    }

    /// The learned state now: every shard sends its baselines at the same place in packet
    /// order, and the scorer has taken every event before it.
    fn snapshot(&mut self) -> LearnedState {
        for part in &mut self.round {
            part.push(Item::Snapshot);
        }
        self.send_round();
        while self.in_flight > 0 {
            self.collect_one();
        }
        let parts = std::mem::take(&mut self.hosts);
        LearnedState::from_parts(&self.scorer, parts)
    }

    /// Hand every shard its part of the round (parts may be empty: all stay in step).
    fn send_round(&mut self) {
        if self.round.iter().all(Vec::is_empty) {
            return;
        }
        for ((part, tx), spare) in self.round.iter_mut().zip(&self.inputs).zip(&mut self.spare) {
            let items = std::mem::replace(part, spare.pop().unwrap_or_default());
            if tx.send(items).is_err() {
                panic_from_shards(&mut self.threads);
            }
        }
        self.in_round = 0;
        self.in_flight += 1;
    }

    /// Take the oldest round's results from every shard, merge the events into packet order
    /// for the scorer, and queue the records.
    fn collect_one(&mut self) {
        let mut parts = Vec::with_capacity(self.outputs.len());
        for (i, rx) in self.outputs.iter().enumerate() {
            let Ok(done) = rx.recv() else {
                panic_from_shards(&mut self.threads);
            };
            parts.push(done.events);
            self.spare[i].push(done.items);
            self.records.extend(done.records);
            self.flow_stats[i] = done.flows;
            self.detect_stats[i] = done.detect;
            self.hosts.extend(done.hosts);
        }
        merge_into(&mut parts, &mut self.scorer);
        self.in_flight -= 1;
    }
}

/// A shard thread hung up: it panicked; pass the panic on.
fn panic_from_shards(threads: &mut Vec<JoinHandle<Shard>>) -> ! {
    for t in threads.drain(..) {
        if let Err(panic) = t.join() {
            std::panic::resume_unwind(panic);
        }
    }
    panic!("a shard thread stopped");
}

fn shard_loop(mut shard: Shard, rx: Receiver<Vec<Item>>, tx: SyncSender<Done>) -> Shard {
    for mut items in rx.iter() {
        let mut records = Vec::new();
        let mut hosts = None;
        let mut finished = false;
        for item in items.drain(..) {
            if finished {
                continue; // nothing follows the end
            }
            match item {
                Item::Packet(p) => shard.packet(p.seq, p.ts, p.now, &p.meta),
                Item::Tick(seq, ts) => shard.tick(seq, ts),
                Item::Finish(seq, now) => {
                    shard.finish(seq, now);
                    finished = true;
                    continue; // its records follow the round's results, in chunks
                }
                Item::Config(c) => {
                    let (flow, detect) = *c;
                    shard.flows_mut().set_config(flow);
                    shard.subscribers_mut().set_config(detect);
                }
                Item::Snapshot => hosts = Some(HostsPart::of(shard.subscribers())),
            }
            while let Some(r) = shard.pop_record() {
                records.push(r);
            }
        }
        let done = Done {
            items,
            events: shard.take_events(),
            records,
            flows: shard.flows().stats(),
            detect: shard.subscribers().stats(),
            hosts,
        };
        if tx.send(done).is_err() {
            break;
        }
        // The bounded channel makes each chunk wait for the caller to pop the one before.
        while finished && shard.flows().has_records() {
            let chunk: Vec<FlowRecord> = std::iter::from_fn(|| shard.pop_record())
                .take(TAIL_CHUNK)
                .collect();
            let done = Done {
                items: Vec::new(),
                events: Vec::new(),
                records: chunk,
                flows: shard.flows().stats(),
                detect: shard.subscribers().stats(),
                hosts: None,
            };
            if tx.send(done).is_err() {
                break;
            }
        }
    }
    shard
}
