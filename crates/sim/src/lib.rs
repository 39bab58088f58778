//! # burstwatch-sim
//!
//! A seeded, deterministic generator of ISP-like traffic, written as a classic pcap file
//! (Ethernet link type, microsecond timestamps, little-endian magic `a1b2c3d4`, snaplen 65535),
//! as seen at a tap between a population of home subscribers and the internet.
//!
//! ```no_run
//! use burstwatch_sim::{SimConfig, Simulator};
//! let cfg = SimConfig { seed: 7, subscribers: 500, target_bytes: Some(50 << 20), ..SimConfig::default() };
//! let file = std::fs::File::create("sim.pcap")?;
//! let summary = Simulator::new(cfg).write_pcap(file)?;
//! eprintln!("{} packets in {} bytes", summary.packets, summary.bytes);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Traffic model
//!
//! Subscribers start *activities* at Poisson-distributed times; each subscriber has a
//! log-normally distributed activity level (a few heavy users, many light ones) and a line rate.
//! An activity is one of:
//!
//! * **web browsing** (about half): an optional DNS lookup, then 1–3 TLS-over-TCP connections
//!   to port 443 of a server chosen by Zipf popularity over the server pool (a few servers are
//!   contacted by nearly every subscriber, most by few) – or one QUIC connection instead;
//! * **DNS** lookups alone (UDP 53 to one of two resolvers, with real queries and A/AAAA answers
//!   for names like `cdn123.example.net`);
//! * **video** streaming over TCP 443 or QUIC from one of the most popular servers: a chunk of
//!   about a megabyte every few seconds for minutes;
//! * **messaging** over QUIC (moderate sizes both ways);
//! * **uploads** (cloud sync) over TCP 443 to a top server: large upstream transfers;
//! * **NTP** (UDP 123) and **ping** (ICMP/ICMPv6 echo).
//!
//! TCP connections have a three-way handshake (with MSS, window-scale and SACK-permitted
//! options), one or more request/response rounds split into MSS-sized segments (each carrying
//! one TLS application-data record), delayed ACKs every second segment, and end with FIN/ACK
//! both ways (92 %), a reset (5 %) or nothing (3 %); 1 % of SYNs go unanswered and are retried.
//! QUIC connections start with long-header Initial/Handshake packets (version 1, random
//! ciphertext) and continue with short-header packets; acknowledgements are small packets.
//! Send rates are paced by a per-flow bandwidth capped by the subscriber's line rate, and
//! timing follows per-server and per-home round-trip times.
//!
//! A share of flows ([`SimConfig::ipv6_share`]) uses IPv6. Addresses come only from reserved
//! ranges: homes in 10.0.0.0/8, 100.64.0.0/10 and fd00::/8; servers in 198.51.100.0/24,
//! 203.0.113.0/24, 198.18.0.0/16 and 2001:db8:100::/40; resolvers and NTP servers in
//! 192.0.2.0/24 and 2001:db8::/32. Scenario endpoints get a /24 of 198.19.0.0/16 or a /48 of
//! 2001:db8::/32 each. MAC addresses are locally administered and derived from the IP address.
//!
//! ## Packets
//!
//! Frames are 60 to 1514 bytes (frames shorter than 60 bytes get an Ethernet zero-padding
//! trailer). IP lengths, UDP lengths and **all** checksums (IPv4 header, TCP, UDP, ICMP,
//! ICMPv6) are correct. Packets are written in non-decreasing timestamp order.
//!
//! ## Determinism
//!
//! The same [`SimConfig`] always produces byte-identical output with the same build (the
//! generator is a hand-rolled xoshiro256++; only `f64::ln`/`exp`/`cos` from the platform's math
//! library are involved, which could in principle differ in the last bit across platforms).

mod background;
pub mod eval;
pub mod export;
mod frame;
mod rng;
mod scenario;
mod session;
pub mod truth;
mod world;
mod written;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, BufWriter, Write};

use frame::{pcap_header, Frame};
use rng::Rng;
use session::Session;
use world::World;

pub use truth::{Expect, ScenarioKind, Truth, TruthEvent, TruthScenario};
use written::{build_truth, frame_facts, EventAcc};

/// 2026-01-01T00:00:00Z in nanoseconds since the Unix epoch.
pub const DEFAULT_START_TS_NS: i64 = 1_767_225_600 * 1_000_000_000;

/// Average pcap bytes one activity produces under the built-in model (measured), used to scale
/// the activity rate when [`SimConfig::target_bytes`] is set.
const BYTES_PER_ACTIVITY: f64 = 122_000.0;

/// Activities per subscriber per second when neither a rate nor a size is given.
const DEFAULT_ACTIVITY_RATE: f64 = 1.0 / 150.0;

/// What to simulate.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Seed of every random choice; the same configuration gives byte-identical output.
    pub seed: u64,
    /// Number of home subscribers (default 2000).
    pub subscribers: u32,
    /// Number of external servers in the popularity pool (default 4000).
    pub servers: u32,
    /// Packet-time span in seconds (default 600). Without [`SimConfig::target_bytes`] no packet
    /// is later than `start + duration` (flows still open then are cut off, as by the end of a
    /// capture).
    pub duration_secs: u32,
    /// Stop once this many bytes of pcap (headers included) have been written; the file ends
    /// at the first record that reaches the target, so it is at most one record larger. When
    /// set (and [`SimConfig::activity_rate`] is not), the activity rate is scaled so that the
    /// target is expected to be reached after about `duration_secs`; with a target, traffic
    /// continues past `duration_secs` if needed.
    pub target_bytes: Option<u64>,
    /// Time of the start of the simulation, ns since the Unix epoch (default 2026-01-01 UTC).
    pub start_ts_ns: i64,
    /// Share of flows over IPv6, 0..=1 (default 0.2).
    pub ipv6_share: f64,
    /// Activities (browsing, lookups, streams, ...) started per subscriber per second, on
    /// average. `None` (the default) picks it: scaled to `target_bytes` when that is set,
    /// otherwise 1/150, which gives about 1 GB for the other defaults.
    pub activity_rate: Option<f64>,
    /// Inject the labelled scenarios (bursts, beacons, decoys; see [`truth`]) into the
    /// background (default `false`: pure background). The background is the same either way.
    pub scenarios: bool,
    /// Multiplier of the byte volumes (and rates) of scenario transfers and calls, for quick
    /// tests (default 1: the sizes documented in [`truth`]).
    pub scenario_scale: f64,
    /// Add the adversarial scenarios (default `false`): bursts at and below the gates, low and
    /// slow, split into many flows or into shared infrastructure; beacons at and past the
    /// regularity rule. They are tagged `adversarial` and scoped in the truth.
    pub adversarial: bool,
    /// Every burst of the plain positive scenarios (single and in series; not the adversarial
    /// ones, not the decoys) at this mean upstream rate (bit/s) for this long (s), whatever
    /// the line, instead of drawn (default `None`). The rest of the plan is drawn as without
    /// it: a sweep of shapes runs the same subscribers, endpoints and background.
    pub burst_shape: Option<(f64, f64)>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            subscribers: 2000,
            servers: 4000,
            duration_secs: 600,
            target_bytes: None,
            start_ts_ns: DEFAULT_START_TS_NS,
            ipv6_share: 0.2,
            activity_rate: None,
            scenarios: false,
            scenario_scale: 1.0,
            adversarial: false,
            burst_shape: None,
        }
    }
}

/// What a run wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimSummary {
    /// Packets (pcap records) written.
    pub packets: u64,
    /// Bytes written, pcap file header included.
    pub bytes: u64,
    /// Flows (TCP/QUIC connections, DNS/NTP exchanges, ping sequences) with at least one packet.
    pub flows: u64,
    /// Timestamp of the first packet, ns since the Unix epoch (0 if none).
    pub first_ts_ns: i64,
    /// Timestamp of the last packet, ns since the Unix epoch (0 if none).
    pub last_ts_ns: i64,
}

/// The generator: build once from a [`SimConfig`], then write one or more (identical) pcaps.
pub struct Simulator {
    cfg: SimConfig,
    world: World,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// A live flow in the run loop.
struct Slot {
    session: Session,
    started: bool,
    /// Scenario event index + 1; 0 for background.
    tag: u32,
}

/// Mutable state of one run.
struct Run<'w> {
    world: &'w World,
    subs_next_port: Vec<u16>,
    rng: Rng,
    ipv6_share: f64,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    heap: BinaryHeap<Reverse<(i64, u64, u32)>>,
    serial: u64,
    recycled: Option<Session>,
    /// Random stream of the scenario flows (so the background does not depend on them).
    srng: Rng,
}

impl Simulator {
    /// Build the world (addresses, line rates, popularity) for `cfg`.
    pub fn new(cfg: SimConfig) -> Self {
        let world = World::new(cfg.seed, cfg.subscribers, cfg.servers);
        Self { cfg, world }
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Generate the traffic and write it as a pcap to `out` (buffered internally; pass a plain
    /// `File`). Every call with the same configuration writes the same bytes.
    pub fn write_pcap<W: Write>(&mut self, out: W) -> io::Result<SimSummary> {
        self.write_pcap_with_truth(out).map(|(s, _)| s)
    }

    /// Like [`Simulator::write_pcap`], and return the ground truth of the injected scenarios
    /// (none unless [`SimConfig::scenarios`]). Scenarios are placed between 42 % and 95 % of
    /// the duration (85 % with a size target); one not complete when the capture ends (possible
    /// with a size target) is left out of the truth.
    pub fn write_pcap_with_truth<W: Write>(&mut self, out: W) -> io::Result<(SimSummary, Truth)> {
        let cfg = &self.cfg;
        let mut w = BufWriter::with_capacity(4 << 20, out);
        w.write_all(&pcap_header())?;
        let mut sum = SimSummary {
            bytes: 24,
            ..SimSummary::default()
        };
        let start = cfg.start_ts_ns;
        let mut truth = Truth {
            seed: cfg.seed,
            subscribers: cfg.subscribers,
            start_ts: truth::ns_to_ts(start),
            end_ts: truth::ns_to_ts(start),
            scenarios: Vec::new(),
        };
        if cfg.target_bytes.is_some_and(|t| t <= 24) {
            w.flush()?;
            return Ok((sum, truth));
        }

        let end = start.saturating_add(i64::from(cfg.duration_secs) * 1_000_000_000);
        let unbounded = cfg.target_bytes.is_some();
        let plan = if cfg.scenarios {
            let d = i64::from(cfg.duration_secs) * 1_000_000_000;
            let w1 = if unbounded {
                d / 100 * 85
            } else {
                d / 100 * 95
            };
            scenario::plan(
                &self.world,
                cfg.seed,
                cfg.scenario_scale,
                cfg.adversarial,
                cfg.burst_shape,
                start + d / 100 * 42,
                start + w1,
            )
        } else {
            scenario::Plan::default()
        };
        let mut events = vec![
            EventAcc {
                first: i64::MAX,
                last: i64::MIN,
                ..EventAcc::default()
            };
            plan.event_src.len()
        ];
        for f in &plan.flows {
            events[f.event as usize].open += 1;
        }
        let mut next_planned = 0usize;
        let nsubs = f64::from(cfg.subscribers);
        let per_sub = match (cfg.activity_rate, cfg.target_bytes) {
            (Some(r), _) => r,
            (None, Some(t)) => {
                t as f64
                    / (f64::from(cfg.duration_secs.max(1)) * BYTES_PER_ACTIVITY)
                    / nsubs.max(1.0)
            }
            (None, None) => DEFAULT_ACTIVITY_RATE,
        };
        let total_rate = per_sub * nsubs; // activities per second
        let mean_gap_ns = if total_rate > 0.0 && total_rate.is_finite() {
            1e9 / total_rate
        } else {
            0.0
        };

        let mut run = Run {
            world: &self.world,
            subs_next_port: self.world.subs.iter().map(|s| s.next_port).collect(),
            rng: Rng::new(cfg.seed, 2),
            ipv6_share: cfg.ipv6_share.clamp(0.0, 1.0),
            slots: Vec::new(),
            free: Vec::new(),
            heap: BinaryHeap::new(),
            serial: 0,
            recycled: None,
            srng: Rng::new(cfg.seed, 4),
        };
        let mut frame = Frame::new();
        let mut next_arrival = if mean_gap_ns > 0.0 {
            start + run.rng.exp(mean_gap_ns) as i64
        } else {
            i64::MAX
        };
        let pool = &self.world.pool[..];
        loop {
            let top = run.heap.peek().map(|r| r.0 .0);
            if let Some(pf) = plan.flows.get(next_planned) {
                let at = pf.spec.start_ns;
                if (unbounded || at <= end) && top.is_none_or(|t| at <= t) && at <= next_arrival {
                    run.add_tagged(pf.spec.clone(), pf.event + 1);
                    next_planned += 1;
                    continue;
                }
            }
            let arrivals_open = next_arrival != i64::MAX && (unbounded || next_arrival <= end);
            if arrivals_open && top.is_none_or(|t| next_arrival <= t) {
                run.spawn_activity(next_arrival);
                next_arrival += (run.rng.exp(mean_gap_ns) as i64).max(1);
                continue;
            }
            let Some(Reverse((ts, _, idx))) = run.heap.pop() else {
                break;
            };
            if !unbounded && ts > end {
                break;
            }
            let Some(slot) = run.slots[idx as usize].as_mut() else {
                continue;
            };
            let (t, len) = if slot.tag == 0 {
                slot.session.step(&mut run.rng, &mut frame, pool)
            } else {
                let r = slot.session.step(&mut run.srng, &mut frame, pool);
                let ev = &mut events[slot.tag as usize - 1];
                let (up, l3) = frame_facts(&frame.buf, &slot.session.net().sub_ip);
                ev.first = ev.first.min(r.0);
                ev.last = ev.last.max(r.0);
                ev.packets += 1;
                if up {
                    ev.up += l3;
                } else {
                    ev.down += l3;
                }
                r
            };
            debug_assert_eq!(t, ts);
            if !slot.started {
                slot.started = true;
                sum.flows += 1;
            }
            w.write_all(&frame.buf[..len])?;
            if sum.packets == 0 {
                sum.first_ts_ns = t;
            }
            sum.last_ts_ns = t;
            sum.packets += 1;
            sum.bytes += len as u64;
            match slot.session.next_ts() {
                Some(n) => {
                    run.serial += 1;
                    run.heap.push(Reverse((n, run.serial, idx)));
                }
                None => {
                    if slot.tag != 0 {
                        events[slot.tag as usize - 1].open -= 1;
                    }
                    run.recycled = run.slots[idx as usize].take().map(|s| s.session);
                    run.free.push(idx);
                }
            }
            if cfg.target_bytes.is_some_and(|t| sum.bytes >= t) {
                break;
            }
        }
        w.flush()?;
        if sum.packets > 0 {
            truth.start_ts = truth::ns_to_ts(sum.first_ts_ns);
            truth.end_ts = truth::ns_to_ts(sum.last_ts_ns);
        }
        truth.scenarios = build_truth(&plan, &events);
        Ok((sum, truth))
    }
}

fn v4_16(a: [u8; 4]) -> [u8; 16] {
    let mut x = [0u8; 16];
    x[..4].copy_from_slice(&a);
    x
}
