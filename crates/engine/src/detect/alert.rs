//! Alerts: one per burst or beacon event, with the numbers behind the score.

use std::net::IpAddr;

/// What was detected.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum AlertKind {
    /// A short, high-bandwidth upstream transfer to an unusual endpoint.
    Burst,
    /// Small, regular exchanges with an unusual endpoint.
    Beacon,
}

impl AlertKind {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Burst => "burst",
            AlertKind::Beacon => "beacon",
        }
    }
}

/// Severity from the configured score bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Below the first band.
    Low,
    /// At least the first band.
    Medium,
    /// At least the second band.
    High,
    /// At least the third band.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Severity of a score given `[medium, high, critical]` lower bounds.
    pub fn from_score(score: f64, bands: &[f64; 3]) -> Severity {
        if score >= bands[2] {
            Severity::Critical
        } else if score >= bands[1] {
            Severity::High
        } else if score >= bands[0] {
            Severity::Medium
        } else {
            Severity::Low
        }
    }
}

/// Why an alert left before its hold (`alert_hold_seconds`) had passed. Prevalence may not
/// have settled: a later look at the endpoint could have found it common.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EarlyReason {
    /// The daemon was stopping (SIGTERM/SIGINT) and emitted everything on hold.
    Shutdown,
}

impl EarlyReason {
    /// Stable lower-case name (the `emitted_early` field of the alert JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            EarlyReason::Shutdown => "shutdown",
        }
    }
}

/// One part of the score: its name, the measured value, and what it added to the score.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    /// Stable name (`rate_jump`, `volume`, `asymmetry`, `rarity`, `novelty`, `recurrence`,
    /// `port_rarity`, `watchlist`, `regularity`, `warmup`; beacons also `size_regularity`;
    /// with no weight, only explaining: `interval`, for beacons the evidence (`events` seen,
    /// `events_needed` and `regularity_needed` for the beacon's period), and for bursts the
    /// entry threshold as `threshold_floor`, `threshold_baseline` or `threshold_uplink_peak`,
    /// valued in bit/s).
    pub name: &'static str,
    /// The measured value, in the unit the name implies (ratio, bytes, hosts, seconds, ...).
    pub value: f64,
    /// Contribution to the score (weight x normalised part; negative for damping).
    pub contribution: f64,
}

/// What is known about the endpoint at alert time.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointInfo {
    /// Distinct subscribers that talked to it within the look-back (capped at the tracking
    /// set size; `popular` says when the cap was reached).
    pub prevalence: u32,
    /// More subscribers than the exact set tracks.
    pub popular: bool,
    /// Length of the endpoint's prevalence prefix (`prevalence_prefix_v4`/`_v6`).
    pub prefix_len: u8,
    /// Distinct subscribers that talked to any address of that prefix within the look-back
    /// (capped like `prevalence`).
    pub prefix_prevalence: u32,
    /// More subscribers of the prefix than the exact set tracks.
    pub prefix_popular: bool,
    /// Sampled input: subscribers of the endpoint that sampling likely hid (Chao1's estimate
    /// from those seen in one and two sampled seconds; see `detect::prevalence`), counted with
    /// `prevalence` against `rare_max_hosts` and in the rarity score; 0 unsampled.
    pub unseen: u32,
    /// The same for the prefix; the test against `rare_prefix_max_hosts` counts it plus one
    /// standard error (`EndpointState::unseen_upper`) with `prefix_prevalence`.
    pub prefix_unseen: u32,
    /// Whether the look-back had filled when the alert was made (else rarity is uncertain).
    pub rarity_certain: bool,
    /// When this subscriber first talked to it (ns since the epoch), if known.
    pub first_seen_ns: Option<i64>,
    /// Autonomous system number, when a database is loaded.
    pub asn: Option<u32>,
    /// Distinct subscribers that talked to any endpoint of that autonomous system within the
    /// look-back (exact up to the set size) and whether it is popular (more than the set
    /// holds): context for the analyst, not a gate. `None` without a database.
    pub asn_prevalence: Option<(u32, bool)>,
    /// Name of the organisation holding that autonomous system, when the database names it.
    pub as_org: Option<String>,
    /// Country code, when a database is loaded.
    pub country: Option<String>,
    /// Whether it is on the watch list.
    pub watched: bool,
    /// With prevalence shared across sensors: the local counts and the store's answer (the
    /// fields above then hold the larger of the two).
    pub shared: Option<SharedPrevalence>,
}

/// An endpoint's prevalence seen from this sensor and from the shared store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SharedPrevalence {
    /// Distinct subscribers this sensor saw.
    pub local_prevalence: u32,
    /// More than the local set tracks.
    pub local_popular: bool,
    /// Distinct subscribers of the prefix this sensor saw.
    pub local_prefix_prevalence: u32,
    /// More than the local prefix set tracks.
    pub local_prefix_popular: bool,
    /// The store's answer; `None` when none came before the deadline (the alert was scored
    /// with the local view and `rarity_certain` is false).
    pub global: Option<super::global::GlobalPrevalence>,
}

/// The rate a second of the pair needed to start a burst, and what set it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateThreshold {
    /// Bit/s.
    pub bps: f64,
    /// The absolute floor, the subscriber's baseline times the factor, or a fraction of its
    /// uplink peak.
    pub basis: super::config::ThresholdBasis,
}

/// Connections an alert keeps (for their Community IDs); `flows` counts beyond.
pub const ALERT_CONNECTIONS: usize = 8;

/// One transport connection of an alert, as its Community ID needs it: the protocol and the
/// ports of the first packet of it the event saw, in that packet's direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Connection {
    /// IP protocol.
    pub proto: u8,
    /// That packet went from the subscriber to the endpoint.
    pub from_subscriber: bool,
    /// Its source and destination ports (ICMP/ICMPv6: its type and code); `None` where the
    /// protocol has none or they were not captured.
    pub ports: Option<(u16, u16)>,
}

impl Connection {
    /// The connection's Community ID between `subscriber` and `endpoint` (the alert's
    /// addresses, or what an output shows in their place).
    pub fn community_id(&self, seed: u16, subscriber: IpAddr, endpoint: IpAddr) -> Option<String> {
        let (src, dst) = if self.from_subscriber {
            (subscriber, endpoint)
        } else {
            (endpoint, subscriber)
        };
        crate::community_id::community_id(seed, src, dst, self.proto, self.ports)
    }
}

/// Up to [`ALERT_CONNECTIONS`] connections, in the order they were first seen (fixed size: no
/// allocation while packets are counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Connections {
    list: [Connection; ALERT_CONNECTIONS],
    len: u8,
}

impl Connections {
    /// The connections kept.
    pub fn as_slice(&self) -> &[Connection] {
        // `len` may come from a state file: never past the array.
        &self.list[..usize::from(self.len).min(ALERT_CONNECTIONS)]
    }

    /// Keep `c` if there is room.
    pub fn push(&mut self, c: Connection) {
        if let Some(slot) = self.list.get_mut(usize::from(self.len)) {
            *slot = c;
            self.len += 1;
        }
    }

    /// One connection.
    pub fn one(c: Connection) -> Self {
        let mut s = Self::default();
        s.push(c);
        s
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Stable id: a hash of kind, pair and start time (the same input gives the same ids).
    pub id: u64,
    /// Burst or beacon.
    pub kind: AlertKind,
    /// Subscriber (home) address.
    pub src: IpAddr,
    /// Endpoint (external) address.
    pub dst: IpAddr,
    /// Endpoint port carrying most of the upstream bytes.
    pub dst_port: u16,
    /// IP protocol of that port.
    pub proto: u8,
    /// First packet of the event (ns since the epoch).
    pub start_ns: i64,
    /// Last packet of the event (ns since the epoch).
    pub end_ns: i64,
    /// Packet time when the alert was decided.
    pub detected_ns: i64,
    /// Bytes subscriber -> endpoint (L3).
    pub bytes_out: u64,
    /// Bytes endpoint -> subscriber (L3).
    pub bytes_in: u64,
    /// Packets subscriber -> endpoint.
    pub packets_out: u64,
    /// Packets endpoint -> subscriber.
    pub packets_in: u64,
    /// Highest one-second upstream rate, bit/s.
    pub peak_bps: f64,
    /// Distinct transport connections involved (capped at 64).
    pub flows: u32,
    /// The first [`ALERT_CONNECTIONS`] of them (beacons: the latest exchange's).
    pub connections: Connections,
    /// Events of this kind for this pair so far, this one included.
    pub occurrence: u32,
    /// Score in [0, 1].
    pub score: f64,
    /// Severity from the score bands.
    pub severity: Severity,
    /// The parts of the score.
    pub reasons: Vec<Reason>,
    /// Endpoint context.
    pub endpoint: EndpointInfo,
    /// Host baseline (p95 upstream bit/s over active seconds) at detection, if warmed up.
    pub baseline_bps: Option<f64>,
    /// Bursts: the rate a second needed to start the burst, and what set it.
    pub rate_threshold: Option<RateThreshold>,
    /// The pair's smoothed rates (bytes/s, 10 s and 60 s views) just before a burst.
    pub pair_before: Option<super::pair::PairRates>,
    /// Set when the alert was emitted before its hold passed, with the reason.
    pub emitted_early: Option<EarlyReason>,
    /// Bursts: the 1-in-N sampling rate the burst was gated at, the highest its own packets
    /// carried (1: captured packets or unsampled export); 0 for beacons.
    pub sampling: u32,
}
