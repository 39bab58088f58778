//! The ground truth written beside a simulated capture: which scenarios were injected, where
//! and when, and what the detector is expected to report for each (serde, JSON).
//!
//! ```json
//! {"seed":1,"subscribers":2000,"start_ts":1767225600.0,"end_ts":1767226201.1,
//!  "scenarios":[{"id":"s0001","kind":"burst_single","expect":"burst","src":"10.1.2.3",
//!    "dst":"198.19.7.44","dst_port":8443,"proto":"tcp","flows":3,
//!    "events":[{"start_ts":1767225900.123456,"end_ts":1767225911.5,
//!               "bytes_out":12000000,"bytes_in":240000}]}]}
//! ```
//!
//! Timestamps are seconds since the Unix epoch with microsecond precision; `bytes_*` are L3
//! (IP) bytes counted from the packets actually written (`out` = from the subscriber). An
//! event's `start_ts`/`end_ts` are its first and last packet. The truth holds exactly what the
//! capture holds: an event that the end of the capture (`--size`, `--duration`) cut off is kept
//! with what was written and marked `"cut": true` and `"should_detect": false`; events not
//! reached at all are left out, and so are scenarios none of whose events was reached.
//! `should_detect` separates what the detector must find (within its documented scope) from
//! what is out of scope, which `burstwatch eval` counts apart. Beacon scenarios have one event
//! per session (a connection per poll), or a single event for the connection that carries
//! every poll. `decoy_new_popular` and `decoy_periodic_popular` events each carry their own
//! `src` (one adopter or poller each; the scenario's `src` is the first). The two entries of a beacon-plus-bursts mission
//! share src/dst and carry `"part_of": "burst_with_beacon"` and the same `"mission"` id.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// What an injected scenario models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    /// One upstream burst (3–40 MB in 2–30 s) to a rare endpoint.
    BurstSingle,
    /// 3–6 bursts by one subscriber to one rare endpoint, spaced 60–240 s (±5 %).
    BurstPeriodic,
    /// Small periodic polls to a rare endpoint: period 1 s to 1 h (what the window holds),
    /// jitter up to ±50 % (±20 % at 1 s), sometimes missed beats, in a connection each or all
    /// in one long-lived TCP connection.
    Beacon,
    /// A large upload to one of the most popular servers.
    DecoyUploadPopular,
    /// A long symmetric UDP call to a rare peer.
    DecoyVideoCall,
    /// A large download from a popular or a rare server.
    DecoyCdnDownload,
    /// A new endpoint that many subscribers adopt at once, each with an upload.
    DecoyNewPopular,
    /// Benign periodic polls (push notifications, NTP, time and update checks) by many
    /// subscribers to one popular service: regular, but not rare.
    DecoyPeriodicPopular,
    /// A large upload to a little-used address in a popular service's prefix (the address is
    /// rare, its prefix is not: shared infrastructure).
    DecoySharedInfra,
    /// Backups to a common cloud: uploads for minutes, some by the subscriber of a positive
    /// scenario (a busy subscriber).
    DecoyCloudBackup,
}

impl ScenarioKind {
    /// Every kind, in report order.
    pub const ALL: [ScenarioKind; 10] = [
        Self::BurstSingle,
        Self::BurstPeriodic,
        Self::Beacon,
        Self::DecoyUploadPopular,
        Self::DecoyVideoCall,
        Self::DecoyCdnDownload,
        Self::DecoyNewPopular,
        Self::DecoyPeriodicPopular,
        Self::DecoySharedInfra,
        Self::DecoyCloudBackup,
    ];

    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BurstSingle => "burst_single",
            Self::BurstPeriodic => "burst_periodic",
            Self::Beacon => "beacon",
            Self::DecoyUploadPopular => "decoy_upload_popular",
            Self::DecoyVideoCall => "decoy_video_call",
            Self::DecoyCdnDownload => "decoy_cdn_download",
            Self::DecoyNewPopular => "decoy_new_popular",
            Self::DecoyPeriodicPopular => "decoy_periodic_popular",
            Self::DecoySharedInfra => "decoy_shared_infra",
            Self::DecoyCloudBackup => "decoy_cloud_backup",
        }
    }

    /// What the detector should report.
    pub fn expect(self) -> Expect {
        match self {
            Self::BurstSingle | Self::BurstPeriodic => Expect::Burst,
            Self::Beacon => Expect::Beacon,
            _ => Expect::None,
        }
    }
}

/// The expected alert kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// `burst` alerts, one per event.
    Burst,
    /// At least one `beacon` alert over the scenario's span.
    Beacon,
    /// No alert (a decoy).
    None,
}

/// One event of a scenario (a burst, a beacon session, a call, a download, an adoption).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruthEvent {
    /// First packet, seconds since the epoch.
    pub start_ts: f64,
    /// Last packet, seconds since the epoch.
    pub end_ts: f64,
    /// L3 bytes from the subscriber.
    pub bytes_out: u64,
    /// L3 bytes to the subscriber.
    pub bytes_in: u64,
    /// The subscriber of this event when it differs per event (`decoy_new_popular`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    /// The capture ended before the event did (a size or duration limit): the entry holds what
    /// was written.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cut: bool,
    /// For the events of a scenario expecting `burst`: the detector must find this event (it is
    /// within the documented detection scope). `false` marks an event out of scope (cut off,
    /// below the gates, adversarial): eval counts it apart, and an alert on it is still true.
    #[serde(default = "yes")]
    pub should_detect: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn yes() -> bool {
    true
}

/// One injected scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TruthScenario {
    /// `s0001`, ...
    pub id: String,
    /// What it models.
    pub kind: ScenarioKind,
    /// What the detector should report.
    pub expect: Expect,
    /// The subscriber.
    pub src: IpAddr,
    /// The external endpoint.
    pub dst: IpAddr,
    /// The endpoint's port.
    pub dst_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
    /// Parallel flows per event.
    pub flows: u32,
    /// Set on both entries of a mission (`burst_with_beacon`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_of: Option<String>,
    /// Mission id shared by the entries of one mission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mission: Option<String>,
    /// Shape labels: the subscriber's profile (`silent`, `low_uplink`, `normal`, `busy`), the
    /// endpoint (`shared_infra`), the beacon's carriage (`in_connection`, `per_connection`),
    /// and `adversarial` with its kind (`gate_edge`, `low_and_slow`, `split_flows`,
    /// `cloud_prefix`, `rule_edge`, `beyond_rule`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Beacon: the polls written (requests in one connection, or connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polls: Option<u32>,
    /// Beacon: the period drawn, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_s: Option<f64>,
    /// Beacon: the jitter drawn, as a share of the period (0.3: ±30 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<f64>,
    /// For a scenario expecting `beacon`: the detector must report it (within the documented
    /// scope); `false`: out of scope (cut off, too few or too irregular exchanges), counted
    /// apart by eval. Burst scenarios carry the flag per event; decoys never expect an alert.
    #[serde(default = "yes")]
    pub should_detect: bool,
    /// Its events in time order.
    pub events: Vec<TruthEvent>,
}

impl TruthScenario {
    /// Report label: the kind, prefixed by the mission shape for mission parts
    /// (`burst_with_beacon/beacon`) or by `adversarial/` for the adversarial shapes.
    pub fn label(&self) -> String {
        let kind = self.kind.as_str();
        match &self.part_of {
            Some(p) => format!("{p}/{kind}"),
            None if self.tags.iter().any(|t| t == "adversarial") => format!("adversarial/{kind}"),
            None => kind.to_owned(),
        }
    }
}

/// The ground truth of one simulated capture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// The simulation seed.
    pub seed: u64,
    /// Subscribers simulated.
    pub subscribers: u32,
    /// First packet of the capture, seconds since the epoch.
    pub start_ts: f64,
    /// Last packet of the capture, seconds since the epoch.
    pub end_ts: f64,
    /// Injected scenarios.
    pub scenarios: Vec<TruthScenario>,
}

/// Nanoseconds since the epoch as seconds with microsecond precision.
pub fn ns_to_ts(ns: i64) -> f64 {
    ns.div_euclid(1_000) as f64 / 1e6
}
