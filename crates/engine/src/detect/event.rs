//! What the per-subscriber half of the detector tells the population-wide half.
//!
//! [`Subscribers`](super::subscribers::Subscribers) keeps the state that belongs to one subscriber (baseline,
//! pairs, bursts); [`Scorer`](super::scorer::Scorer) keeps what needs every subscriber
//! (endpoint prevalence, port usage) and turns candidates into alerts. Everything that crosses
//! from one to the other is an [`Event`], so the two can run in one thread (the
//! [`Detector`](super::Detector)) or on different threads (host shards and one scorer), and
//! the scorer sees the same sequence either way.

use super::alert::{AlertKind, Connections};
use super::beacon::BeaconFacts;
use super::burstlog::BurstRecord;
use super::pair::FinishedBurst;
use crate::key::Addr;
use burstwatch_wire::proto::{TCP, UDP};

/// One message from a subscriber shard to the scorer. Opaque outside the engine: shells
/// carry it between threads in the order they got it.
#[derive(Debug, Clone)]
pub struct Event(pub(crate) EventKind);

#[derive(Debug, Clone)]
pub(crate) enum EventKind {
    /// Packet time entered a new second (`ts`, ns): hold-expired candidates are due, idle
    /// endpoints can go.
    Tick(i64),
    /// End of input at packet time `now` (ns): everything pending is emitted.
    Finish(i64),
    /// A subscriber talked to an endpoint (new pair, after a second of silence, or one of a
    /// sampled pair's first three seconds) at `ts`;
    /// `port_slot` is set for a new TCP/UDP pair (see [`port_slot`]).
    Touch {
        ext: Addr,
        /// The subscriber's address (published when prevalence is shared with other sensors).
        home: Addr,
        host: u32,
        ts: i64,
        port_slot: Option<u32>,
        /// 1 for a sampled second (flow export at 1 in N > 1), 0 for a contact seen
        /// unsampled (see `super::prevalence`).
        samples: u8,
    },
    /// A burst or beacon waiting for its hold.
    Candidate(Box<Candidate>),
    /// A burst stopped by a per-subscriber gate (recorded only when burst recording is on).
    Burst(Box<BurstRecord>),
}

/// Slots of [`port_slot`]: every TCP port, then every UDP port.
pub(crate) const PORT_SLOTS: usize = 2 * 65_536;

/// A destination port's slot in the population's port table: the TCP port, or 65536 + the UDP
/// port; `None` for other protocols.
#[inline]
pub(crate) fn port_slot(proto: u8, port: u16) -> Option<u32> {
    match proto {
        TCP => Some(u32::from(port)),
        UDP => Some(65_536 + u32::from(port)),
        _ => None,
    }
}

impl Event {
    /// Whether this event marks a new second of packet time (shells tag it between the
    /// candidates its sweep produced and the packet's own events).
    pub fn is_tick(&self) -> bool {
        matches!(self.0, EventKind::Tick(_) | EventKind::Finish(_))
    }
}

/// A burst or beacon waiting for its hold to pass (also kept in the learned state, so that a
/// candidate on hold at a crash is emitted after the restart).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Candidate {
    pub emit_at: i64,
    pub kind: AlertKind,
    pub home: Addr,
    pub ext: Addr,
    pub v4: bool,
    pub detected_ns: i64,
    pub burst: Option<FinishedBurst>,
    /// Beacon: (regularity, median interval s, median event bytes, events).
    pub beacon: Option<(f64, f64, f64, u32)>,
    /// Beacon: the whole analysis (absent from state files written before it existed).
    #[serde(default)]
    pub beacon_facts: Option<BeaconFacts>,
    pub pair_first_seen_ns: i64,
    pub occurrence: u32,
    pub recurrence: f64,
    pub baseline_bytes: Option<f64>,
    pub totals: (u64, u64, u64, u64),
    pub proto_port: (u8, u16),
    /// The connections to name in the alert (bursts: the burst's first; beacons: the latest).
    #[serde(default)]
    pub connections: Connections,
    pub start_ns: i64,
    pub end_ns: i64,
}

impl Candidate {
    /// The candidate with counts a state file could carry out of range brought back within
    /// what the detector makes (the file is input, not trusted to be well formed).
    pub(crate) fn sanitized(mut self) -> Self {
        if let Some(b) = self.burst.as_mut() {
            b.acc.flows = b.acc.flows.min(64);
        }
        self.occurrence = self.occurrence.max(1);
        if !self.recurrence.is_finite() {
            self.recurrence = 0.0;
        }
        self.baseline_bytes = self.baseline_bytes.filter(|b| b.is_finite() && *b >= 0.0);
        self
    }
}
