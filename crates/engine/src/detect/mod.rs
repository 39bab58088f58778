//! Burst and beacon detection on packet time.
//!
//! Per packet with one side in the home networks and the other outside:
//!
//! 1. the subscriber's state keeps one-second upstream bins and a robust baseline of its
//!    active seconds (streaming p50/p95 in the log domain, trusted after a warm-up), leaving
//!    out the bytes of pairs in a burst or recently a candidate, so bursts do not raise it;
//! 2. the (subscriber, endpoint) pair keeps one-second bins both ways; a closed bin feeds the
//!    burst state machine: a second at or above `max(floor, min(factor x host p95, fraction x
//!    host uplink peak))` starts a burst,
//!    seconds at a fraction of that continue it, a few quiet seconds end it;
//! 3. the endpoint's prevalence set counts distinct subscribers within the look-back.
//!
//! A finished burst that moved enough bytes, mostly upstream, in at most the maximum duration
//! becomes a candidate; after a hold (so prevalence settles) it is scored and, if the endpoint
//! is rare (or watched) and not allowed, and the score passes, becomes an [`Alert`]. Pairs whose
//! silence-separated exchanges are small and regular become `beacon` candidates.

pub mod alert;
pub mod beacon;
pub mod burstlog;
pub mod config;
mod event;
pub mod exchange;
pub mod global;
pub mod idle;
pub mod pair;
mod pending;
pub mod prevalence;
mod ring;
pub mod sampling;
pub mod score;
pub(crate) mod scorer;
pub mod state;
pub mod stats;
pub(crate) mod subscribers;

use std::net::IpAddr;

use crate::key::{addr_to_ip, Addr};
use crate::Ingested;
pub use alert::{
    Alert, AlertKind, Connection, Connections, EarlyReason, EndpointInfo, RateThreshold, Reason,
    Severity, SharedPrevalence, ALERT_CONNECTIONS,
};
pub use burstlog::{BurstOutcome, BurstRecord};
use burstwatch_wire::PacketMeta;
pub use config::{DetectConfig, EndpointLists, ThresholdBasis, Weights};
pub use event::Event;
pub use global::{Contact, GlobalConfig, GlobalPrevalence, GlobalQuery, GlobalStats};
pub use pair::PairRates;
pub use scorer::{prefix_cap, Scorer};
pub use subscribers::Subscribers;

use crate::NS_PER_SEC;

/// ASN/country lookup for endpoints, supplied by the shell (e.g. from a MaxMind-format file).
/// Lookups happen only when an alert is scored, never per packet.
pub trait Enrich: Send {
    /// Autonomous system number and ISO country code of an address, when known.
    fn lookup(&self, ip: IpAddr) -> (Option<u32>, Option<String>);

    /// Name of the organisation holding the address's autonomous system, when known (looked up
    /// only for alerts that are emitted).
    fn as_org(&self, _ip: IpAddr) -> Option<String> {
        None
    }
}

/// Which side of a packet is the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From a home address to an outside one.
    Up,
    /// From an outside address to a home one.
    Down,
    /// Both sides at home.
    Internal,
    /// Neither side at home (transit).
    Transit,
}

/// Counters kept by the detector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectStats {
    /// Packets from home to outside.
    pub packets_up: u64,
    /// Packets from outside to home.
    pub packets_down: u64,
    /// Packets with both sides at home (counted, not scored).
    pub packets_internal: u64,
    /// Packets with neither side at home (counted, not scored).
    pub packets_transit: u64,
    /// L3 bytes by the same four directions: up, down, internal, transit.
    pub bytes_up: u64,
    /// L3 bytes from outside to home.
    pub bytes_down: u64,
    /// L3 bytes with both sides at home.
    pub bytes_internal: u64,
    /// L3 bytes with neither side at home.
    pub bytes_transit: u64,
    /// Packets to or from a non-unicast outside address (broadcast, multicast, link-local;
    /// counted, not scored).
    pub packets_not_unicast: u64,
    /// Bursts segmented (before any gate).
    pub bursts: u64,
    /// Bursts longer than the maximum duration (sustained transfers, not alerted).
    pub bursts_too_long: u64,
    /// Bursts below the minimum volume (under sampling: by their lower bound).
    pub bursts_too_small: u64,
    /// Of those, bursts from sampled input whose estimate passed the volume gate but whose
    /// lower bound did not pass it or the rate floor (see [`sampling`]).
    pub bursts_uncertain: u64,
    /// Bursts not mostly upstream.
    pub bursts_not_upstream: u64,
    /// Pairs whose polls were regular at the end of input but fewer than a beacon of their
    /// period needs (short captures).
    pub beacons_too_few: u64,
    /// Of those, the most polls seen and the count their period needed.
    pub beacons_too_few_most: (u32, u32),
    /// Open exchanges of beacon candidates not queued for closing on silence (queue full;
    /// see [`idle`]): each is closed by its pair's next exchange instead.
    pub beacon_idle_dropped: u64,
    /// Candidates dropped because the endpoint is allow-listed.
    pub suppressed_allowed: u64,
    /// Candidates dropped because the endpoint is not rare.
    pub suppressed_common: u64,
    /// Candidates dropped for a score below the threshold.
    pub suppressed_low_score: u64,
    /// Alerts by kind (`[burst, beacon]`) and severity (low..critical).
    pub alerts: [[u64; 4]; 2],
    /// Subscribers tracked now.
    pub hosts: usize,
    /// Pairs tracked now.
    pub pairs: usize,
    /// Endpoints tracked now.
    pub endpoints: usize,
    /// Endpoint prefixes tracked now (prefix-level prevalence).
    pub prefixes: usize,
    /// Evictions at the caps: `[hosts, pairs, endpoints, prefixes]`.
    pub evicted: [u64; 4],
}

impl DetectStats {
    /// Add another part's counters (subscriber shards and the scorer each count their own).
    pub fn add(&mut self, o: &DetectStats) {
        self.packets_up += o.packets_up;
        self.packets_down += o.packets_down;
        self.packets_internal += o.packets_internal;
        self.packets_transit += o.packets_transit;
        self.bytes_up += o.bytes_up;
        self.bytes_down += o.bytes_down;
        self.bytes_internal += o.bytes_internal;
        self.bytes_transit += o.bytes_transit;
        self.packets_not_unicast += o.packets_not_unicast;
        self.bursts += o.bursts;
        self.bursts_too_long += o.bursts_too_long;
        self.bursts_too_small += o.bursts_too_small;
        self.bursts_uncertain += o.bursts_uncertain;
        self.bursts_not_upstream += o.bursts_not_upstream;
        self.beacons_too_few += o.beacons_too_few;
        self.beacons_too_few_most = self.beacons_too_few_most.max(o.beacons_too_few_most);
        self.beacon_idle_dropped += o.beacon_idle_dropped;
        self.suppressed_allowed += o.suppressed_allowed;
        self.suppressed_common += o.suppressed_common;
        self.suppressed_low_score += o.suppressed_low_score;
        for (a, b) in self.alerts.iter_mut().zip(o.alerts) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.hosts += o.hosts;
        self.pairs += o.pairs;
        self.endpoints += o.endpoints;
        self.prefixes += o.prefixes;
        for (a, b) in self.evicted.iter_mut().zip(o.evicted) {
            *a += b;
        }
    }
}

/// The detector in one piece: the per-subscriber [`Subscribers`] feeding the population-wide
/// [`Scorer`] directly. Feed it with [`Detector::ingest`]; pull alerts with
/// [`Detector::pop_alert`]. Host shards run several `Subscribers`s and one `Scorer` instead
/// (see [`crate::shard`]) and produce the same alerts.
pub struct Detector {
    subscribers: Subscribers,
    scorer: Scorer,
    events: Vec<Event>,
}

impl Detector {
    /// A detector with these settings.
    pub fn new(cfg: DetectConfig, hash_seed: u64) -> Self {
        Self {
            subscribers: Subscribers::new(cfg.clone(), hash_seed),
            scorer: Scorer::new(cfg, hash_seed),
            events: Vec::with_capacity(16),
        }
    }

    /// Use an ASN/country lookup for endpoint context and ASN/country lists.
    pub fn set_enrich(&mut self, enrich: Box<dyn Enrich>) {
        self.scorer.set_enrich(enrich);
    }

    /// Replace the lookup (a config reload; `None`: no enrichment).
    pub fn replace_enrich(&mut self, enrich: Option<Box<dyn Enrich>>) {
        self.scorer.replace_enrich(enrich);
    }

    /// Replace thresholds (a config reload); learned state is kept.
    pub fn set_config(&mut self, cfg: DetectConfig) {
        self.subscribers.set_config(cfg.clone());
        self.scorer.set_config(cfg);
    }

    /// The population-wide half (the shared prevalence view: contacts, questions, answers).
    pub fn scorer_mut(&mut self) -> &mut Scorer {
        &mut self.scorer
    }

    /// The population-wide half, read-only.
    pub fn scorer(&self) -> &Scorer {
        &self.scorer
    }

    /// The settings in force.
    pub fn config(&self) -> &DetectConfig {
        &self.scorer.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> DetectStats {
        let mut s = self.subscribers.stats();
        s.add(&self.scorer.stats());
        s
    }

    /// Next alert, if any.
    pub fn pop_alert(&mut self) -> Option<Alert> {
        self.scorer.pop_alert()
    }

    /// Whether an alert is waiting for [`Detector::pop_alert`].
    #[inline]
    pub fn has_alerts(&self) -> bool {
        self.scorer.has_alerts()
    }

    /// Record every segmented burst with its gate outcome, keeping at most `cap` undrained
    /// records (drain them with [`Detector::pop_burst`]). Off unless called.
    pub fn record_bursts(&mut self, cap: usize) {
        self.subscribers.record_bursts(true);
        self.scorer.record_bursts(cap);
    }

    /// Next burst record, if recording is on and one is ready.
    pub fn pop_burst(&mut self) -> Option<BurstRecord> {
        self.scorer.pop_burst()
    }

    /// Burst records lost to a full queue.
    pub fn bursts_dropped(&self) -> u64 {
        self.scorer.bursts_dropped()
    }

    /// Which side is the subscriber.
    #[inline]
    pub fn direction(&self, src: &Addr, dst: &Addr) -> Direction {
        self.subscribers.direction(src, dst)
    }

    /// Count one packet: `ip_len` L3 bytes from `src:sport` to `dst:dport`, protocol `proto`;
    /// `flow_hash` identifies its connection (for counting the flows of a burst). Without the
    /// decoded packet every packet is taken to carry payload (part of an exchange); use
    /// [`Detector::count`] to leave out ACKs and keep-alive probes.
    #[allow(clippy::too_many_arguments)] // the per-packet facts, passed flat to stay allocation-free
    pub fn ingest(
        &mut self,
        ts: i64,
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        proto: u8,
        ip_len: u32,
        flow_hash: u32,
    ) {
        let mut hint = u32::MAX;
        self.subscribers.count_packet(
            ts,
            src,
            dst,
            sport,
            dport,
            proto,
            None,
            ip_len,
            ip_len,
            flow_hash,
            0,
            &mut hint,
            &mut self.events,
        );
        self.pass_events();
    }

    /// Count one packet that the flow table has just counted as `flow`; `pair_slot` is the
    /// word the table keeps with the flow (see [`Subscribers::count`]).
    #[inline]
    pub fn count(&mut self, ts: i64, meta: &PacketMeta, flow: &Ingested, pair_slot: &mut u32) {
        self.subscribers
            .count(ts, meta, flow, pair_slot, &mut self.events);
        self.pass_events();
    }

    #[inline]
    fn pass_events(&mut self) {
        if !self.events.is_empty() {
            for ev in self.events.drain(..) {
                self.scorer.apply(ev);
            }
        }
    }

    /// The input's bytes are 1-in-`rate` estimates (see [`Scorer::set_sampling`]).
    pub fn set_sampling(&mut self, rate: u32) {
        self.scorer.set_sampling(rate);
    }

    /// Move packet time forward: end quiet bursts, emit alerts whose hold passed.
    pub fn advance_to(&mut self, ts: i64) {
        self.subscribers.advance_to(ts, &mut self.events);
        self.pass_events();
    }

    /// Call before [`Detector::finish`] when input ends because the process stops, not
    /// because the data ended: alerts still on hold then carry `reason`.
    pub fn set_finish_reason(&mut self, reason: EarlyReason) {
        self.scorer.set_finish_reason(reason);
    }

    /// End of input: finish every burst and emit every pending alert regardless of its hold.
    pub fn finish(&mut self) {
        self.subscribers.finish(&mut self.events);
        self.pass_events();
    }
}

/// Whether an outside address can be an endpoint: not unspecified, loopback, link-local,
/// multicast or the IPv4 limited broadcast.
fn is_unicast_endpoint(a: &Addr) -> bool {
    match addr_to_ip(*a) {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            let seg0 = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (seg0 & 0xffc0) == 0xfe80)
        }
    }
}

/// FNV-1a 64 of the alert's identity: stable across runs, machines and versions.
fn alert_id(kind: AlertKind, home: &Addr, ext: &Addr, start_ns: i64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(kind as u8);
    home.iter().chain(ext.iter()).for_each(|&b| eat(b));
    start_ns.to_le_bytes().iter().for_each(|&b| eat(b));
    h
}
