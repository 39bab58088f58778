//! Planning of the injected scenarios (see [`crate::truth`] for the kinds): which subscriber,
//! which endpoint, which flows when. The plan is drawn up front from its own random stream,
//! and its flows are run by the same [`Session`](crate::session::Session) machinery as the
//! background, so the packets look alike.
//!
//! Rare endpoints come from address space the background never uses, each in a prefix of its
//! own: one /24 of 198.19.0.0/16 each, and `2001:db8:eXXX::/48` blocks. *Shared
//! infrastructure* endpoints are little-used servers of the pool in a prefix that holds popular
//! ones (the address is rare, its prefix is not).
//!
//! What is drawn, by job: [`positive`] plans bursts and beacons (and the adversarial ones),
//! [`decoy`] the benign look-alikes; this module holds the planner's shared tools.

mod decoy;
mod positive;

use crate::frame::Net;
use crate::rng::Rng;
use crate::session::{App, Kind, Script, Spec};
use crate::truth::ScenarioKind;
use crate::world::{doc_v6, mac_for, World};

const S: f64 = 1e9;
const MB: f64 = 1e6;

/// One flow of a scenario, tagged with the event it belongs to.
pub(crate) struct PlannedFlow {
    pub spec: Spec,
    pub event: u32,
}

/// One planned scenario (the truth entry without the measured event facts).
pub(crate) struct PlannedScenario {
    pub kind: ScenarioKind,
    pub part_of: Option<&'static str>,
    pub mission: Option<u32>,
    pub v6: bool,
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub dst_port: u16,
    pub udp: bool,
    pub flows: u32,
    /// Global event indices, in time order.
    pub events: Vec<u32>,
    /// Whether each event names its own subscriber.
    pub per_event_src: bool,
    /// Within the documented detection scope as planned (the truth adds what was written:
    /// volume, rate and duration of a burst, exchanges of a beacon; see `should_detect`).
    pub scope: bool,
    /// Shape labels for the truth (`silent`, `low_uplink`, `shared_infra`, `adversarial`, ...).
    pub tags: Vec<&'static str>,
    /// Beacon inside one connection: the polls (request/response rounds) it carries.
    pub rounds: u32,
    /// Beacon: planned period (s) and jitter (± share of the period).
    pub beacon: Option<(f64, f64)>,
}

/// The whole plan.
#[derive(Default)]
pub(crate) struct Plan {
    /// Sorted by start time.
    pub flows: Vec<PlannedFlow>,
    pub scenarios: Vec<PlannedScenario>,
    /// Subscriber address of each event.
    pub event_src: Vec<[u8; 16]>,
}

/// A scenario endpoint.
#[derive(Clone, Copy)]
struct Endpoint {
    ip: [u8; 16],
    rtt_ns: f64,
    ttl: u8,
}

struct Planner<'w> {
    world: &'w World,
    rng: Rng,
    plan: Plan,
    used_subs: Vec<bool>,
    free_v4: Vec<u8>,
    next_v6: u16,
    next_port: u16,
    scale: f64,
    /// Forced shape of the plain bursts: (bytes/s, seconds).
    burst_shape: Option<(f64, f64)>,
    w0: i64,
    w1: i64,
}

/// The traffic a positive scenario's subscriber makes besides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Profile {
    /// One of the least active subscribers: hardly any traffic of its own.
    Silent,
    /// A DSL or mobile line: the scenario's transfers get 0.8–3 Mbit/s upstream.
    LowUplink,
    /// An ordinary subscriber of the background.
    Normal,
    /// A subscriber that also uploads to a popular cloud for minutes around the scenario
    /// (a `decoy_cloud_backup` of its own).
    Busy,
}

impl Profile {
    fn tag(self) -> &'static str {
        match self {
            Self::Silent => "silent",
            Self::LowUplink => "low_uplink",
            Self::Normal => "normal",
            Self::Busy => "busy",
        }
    }
}

fn v4_16(a: [u8; 4]) -> [u8; 16] {
    let mut x = [0u8; 16];
    x[..4].copy_from_slice(&a);
    x
}

/// Plan the scenarios of one run: all flows start at or after `w0` and are expected to end
/// by `w1` (ns since the epoch).
pub(crate) fn plan(
    world: &World,
    seed: u64,
    scale: f64,
    adversarial: bool,
    burst_shape: Option<(f64, f64)>,
    w0: i64,
    w1: i64,
) -> Plan {
    // /24 blocks of 198.19.0.0/16, one per rare endpoint (the same 250 numbers as when they
    // were hosts of one /24, so that the plan's random choices stay those of earlier versions).
    let mut free_v4: Vec<u8> = (1..=254u8)
        .filter(|h| ![53, 54, 123, 124].contains(h))
        .collect();
    let mut rng = Rng::new(seed, 3);
    for i in (1..free_v4.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        free_v4.swap(i, j);
    }
    let nsubs = world.subs.len();
    let mut p = Planner {
        world,
        rng,
        plan: Plan::default(),
        used_subs: vec![false; nsubs],
        free_v4,
        next_v6: 0,
        next_port: 0,
        scale: if scale > 0.0 && scale.is_finite() {
            scale
        } else {
            1.0
        },
        burst_shape: burst_shape
            .filter(|&(bps, secs)| bps > 0.0 && secs > 0.0 && bps.is_finite() && secs.is_finite())
            .map(|(bps, secs)| (bps / 8.0, secs)),
        w0,
        w1,
    };
    if nsubs < 40 || w1 - w0 < (150.0 * S) as i64 {
        return p.plan;
    }
    let n_pos = (nsubs / 300).clamp(4, 10);
    for _ in 0..3 * n_pos {
        p.burst_single();
    }
    for _ in 0..n_pos {
        p.burst_periodic();
    }
    for _ in 0..n_pos {
        p.beacon(None);
    }
    for m in 0..n_pos {
        p.beacon(Some(m as u32 + 1));
    }
    let n_decoy = 4 + usize::from(nsubs >= 4000);
    for _ in 0..n_decoy {
        p.upload_popular();
    }
    for _ in 0..n_decoy {
        p.video_call();
    }
    for i in 0..4 {
        p.cdn_download(i % 2 == 0);
    }
    let adopters = (nsubs / 20).clamp(30, 200);
    let n_newpop = (1000.0 / (adopters as f64 * 3.6)).clamp(1.0, 4.0) as usize;
    for _ in 0..n_newpop {
        p.new_popular(adopters);
    }
    for _ in 0..2 {
        p.periodic_popular((nsubs / 50).clamp(8, 40));
    }
    for _ in 0..n_decoy {
        p.shared_infra_upload();
    }
    for _ in 0..n_decoy {
        let si = p.pick_sub();
        p.cloud_backup(si, None);
    }
    if adversarial {
        for _ in 0..n_pos {
            p.gate_edge_burst();
            p.low_and_slow();
            p.split_burst();
            p.cloud_prefix_burst();
            p.edge_beacon(true);
            p.edge_beacon(false);
        }
    }
    let mut plan = p.plan;
    plan.flows.sort_by_key(|f| (f.spec.start_ns, f.event));
    plan
}

impl Planner<'_> {
    fn loguniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + (hi.ln() - lo.ln()) * self.rng.f64()).exp()
    }

    /// A subscriber not used by another scenario (in a small population where every one is
    /// taken, any subscriber: scenarios then share one).
    fn pick_sub(&mut self) -> usize {
        let n = self.used_subs.len();
        for _ in 0..8 * n {
            let i = self.rng.below(n as u64) as usize;
            if !self.used_subs[i] {
                self.used_subs[i] = true;
                return i;
            }
        }
        match self.used_subs.iter().position(|u| !*u) {
            Some(i) => {
                self.used_subs[i] = true;
                i
            }
            None => self.rng.below(n as u64) as usize,
        }
    }

    fn rare_endpoint(&mut self, v6: bool) -> Endpoint {
        let ip = match (v6, self.free_v4.pop()) {
            (false, Some(b)) => v4_16([198, 19, b, b]),
            _ => {
                self.next_v6 += 1;
                let mut ip = doc_v6(0xe000 + self.next_v6, 0);
                ip[8..16].copy_from_slice(&self.rng.next_u64().to_be_bytes());
                ip
            }
        };
        Endpoint {
            ip,
            rtt_ns: self.rng.lognormal(60e6, 0.6, 5e6, 300e6),
            ttl: [64u8, 128, 255][self.rng.below(3) as usize] - 8 - self.rng.below(16) as u8,
        }
    }

    /// A popular server (Zipf rank below `top`).
    fn popular_endpoint(&mut self, top: usize, v6: bool) -> Endpoint {
        let rank = self.rng.below(top as u64) as usize;
        let s = &self.world.servers[self.world.rank_to_server[rank] as usize];
        Endpoint {
            ip: if v6 { s.v6 } else { v4_16(s.v4) },
            rtt_ns: s.rtt_ns,
            ttl: s.ttl,
        }
    }

    fn sub_ip(&self, si: usize, v6: bool) -> [u8; 16] {
        let s = &self.world.subs[si];
        if v6 {
            s.v6
        } else {
            v4_16(s.v4)
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn flow(
        &mut self,
        si: usize,
        v6: bool,
        ep: Endpoint,
        kind: Kind,
        port: u16,
        at: i64,
        up_bps: f64,
        down_bps: f64,
        script: Script,
        event: u32,
    ) {
        let sub = &self.world.subs[si];
        let sub_ip = self.sub_ip(si, v6);
        if self.next_port == 0 || self.next_port >= 60999 {
            self.next_port = 32768 + self.rng.below(28000) as u16;
        }
        let sub_port = self.next_port;
        self.next_port += 1 + self.rng.below(3) as u16;
        let spec = Spec {
            kind,
            app: App::Web,
            net: Net {
                v6,
                sub_mac: mac_for(&sub_ip, v6),
                srv_mac: mac_for(&ep.ip, v6),
                sub_ip,
                srv_ip: ep.ip,
                sub_port,
                srv_port: port,
            },
            start_ns: at,
            rtt_srv_ns: ep.rtt_ns * self.rng.uniform(0.9, 1.2),
            rtt_sub_ns: sub.access_rtt_ns * self.rng.uniform(0.9, 1.3),
            up_ttl: sub.ttl - 1,
            down_ttl: ep.ttl,
            up_bps,
            down_bps,
            name: 0,
            answer: [0; 16],
            script: Some(script),
        };
        self.plan.flows.push(PlannedFlow { spec, event });
    }

    fn new_event(&mut self, src: [u8; 16]) -> u32 {
        self.plan.event_src.push(src);
        (self.plan.event_src.len() - 1) as u32
    }

    /// Size (bytes) and duration (s) of a transfer of `size` in `lo..hi` bytes lasting
    /// `dlo..dhi` s at `min_rate..max_rate` bytes/s.
    fn shape(
        &mut self,
        size: (f64, f64),
        dur: (f64, f64),
        min_rate: f64,
        max_rate: f64,
    ) -> (f64, f64) {
        // Volumes and rates scale together, durations stay (`scale` 1 changes nothing).
        let k = self.scale;
        let (size, min_rate, max_rate) = ((size.0 * k, size.1 * k), min_rate * k, max_rate * k);
        for _ in 0..50 {
            let b = self.loguniform(size.0, size.1);
            let rlo = min_rate.max(b / dur.1);
            let rhi = max_rate.min(b / dur.0);
            if rlo <= rhi {
                let r = self.loguniform(rlo, rhi);
                return (b, b / r);
            }
        }
        // Slow line: the smallest size at the highest rate the line allows.
        let r = max_rate.max(min_rate);
        (size.0, (size.0 / r).max(dur.0))
    }

    /// A plain burst's (bytes, seconds): as drawn, or the forced shape (drawn first all the
    /// same, so that the rest of the plan does not change).
    fn burst_size(&self, drawn: (f64, f64)) -> (f64, f64) {
        match self.burst_shape {
            Some((rate, secs)) => (rate * secs, secs),
            None => drawn,
        }
    }

    /// Flows of one upload (or download, `down`) of `bytes` over `secs` as `n` parallel flows.
    #[allow(clippy::too_many_arguments)]
    fn transfer(
        &mut self,
        si: usize,
        v6: bool,
        ep: Endpoint,
        udp: bool,
        port: u16,
        at: i64,
        bytes: f64,
        secs: f64,
        n: u32,
        down: bool,
        event: u32,
    ) {
        let weights: Vec<f64> = (0..n).map(|_| self.rng.uniform(0.7, 1.3)).collect();
        let total: f64 = weights.iter().sum();
        let mut t = at;
        let line = if down {
            self.world.subs[si].up_bps
        } else {
            self.world.subs[si].down_bps
        };
        // Parallel flows start within a few hundred ms; each is paced (with 10 % headroom for
        // handshake, response and close) so that the event as a whole lasts about `secs`.
        let stagger = self.rng.uniform(0.02, 0.1);
        let active = (secs - stagger * f64::from(n.saturating_sub(1)) - 0.15).max(0.5 * secs);
        for w in weights {
            let b = bytes * w / total;
            let bps = b * 8.0 / active * 1.1;
            let small = self.rng.uniform(200.0, 2000.0);
            let (up, dn, up_bps, down_bps) = if down {
                (self.rng.uniform(300.0, 900.0), b, line, bps)
            } else {
                (b, small, bps, line)
            };
            let script = Script {
                up: up as u64,
                down: dn as u64,
                rounds: 1,
                think_ns: 0.0,
                linger_ns: 0.1 * S,
                handshake: port == 443,
                call_end_ns: 0,
            };
            let kind = if udp { Kind::Quic } else { Kind::Tcp };
            self.flow(si, v6, ep, kind, port, t, up_bps, down_bps, script, event);
            t += (stagger * self.rng.uniform(0.5, 1.5) * S) as i64;
        }
    }

    fn burst_transport(&mut self) -> (bool, u16, u32) {
        let udp = self.rng.chance(0.3);
        let port = if udp {
            [443, 443, 5004][self.rng.below(3) as usize]
        } else {
            [443, 443, 8443, 4433, 9001][self.rng.below(5) as usize]
        };
        let flows = if self.rng.chance(0.5) {
            1
        } else {
            2 + self.rng.below(5) as u32
        };
        (udp, port, flows)
    }

    #[allow(clippy::too_many_arguments)]
    fn push_scenario(
        &mut self,
        kind: ScenarioKind,
        si: usize,
        v6: bool,
        ep: Endpoint,
        port: u16,
        udp: bool,
        flows: u32,
        events: Vec<u32>,
    ) -> &mut PlannedScenario {
        let src = self.sub_ip(si, v6);
        self.plan.scenarios.push(PlannedScenario {
            kind,
            part_of: None,
            mission: None,
            v6,
            src,
            dst: ep.ip,
            dst_port: port,
            udp,
            flows,
            events,
            per_event_src: false,
            scope: kind.expect() != crate::truth::Expect::None,
            tags: Vec::new(),
            rounds: 0,
            beacon: None,
        });
        self.plan
            .scenarios
            .last_mut()
            .unwrap_or_else(|| unreachable!())
    }

    fn line_up(&self, si: usize) -> f64 {
        0.85 * self.world.subs[si].up_bps / 8.0
    }

    /// One of the least active subscribers not used by another scenario (the quietest of a
    /// few drawn).
    fn pick_silent_sub(&mut self) -> usize {
        let n = self.used_subs.len();
        let mut best = None::<usize>;
        for _ in 0..40 {
            let i = self.rng.below(n as u64) as usize;
            if !self.used_subs[i]
                && best.is_none_or(|b| self.world.activity[i] < self.world.activity[b])
            {
                best = Some(i);
            }
        }
        match best {
            Some(i) => {
                self.used_subs[i] = true;
                i
            }
            None => self.pick_sub(),
        }
    }

    /// A subscriber for a positive scenario and its profile: silent 25 %, low uplink 25 %,
    /// normal 30 %, busy 20 %.
    fn pick_positive_sub(&mut self) -> (usize, Profile) {
        let x = self.rng.f64();
        if x < 0.25 {
            (self.pick_silent_sub(), Profile::Silent)
        } else if x < 0.5 {
            (self.pick_sub(), Profile::LowUplink)
        } else if x < 0.8 {
            (self.pick_sub(), Profile::Normal)
        } else {
            (self.pick_sub(), Profile::Busy)
        }
    }

    /// Upstream bytes/s the profile allows a scenario transfer of subscriber `si`.
    fn profile_line(&mut self, si: usize, profile: Profile) -> f64 {
        match profile {
            Profile::LowUplink => self.loguniform(0.8e6, 3e6) / 8.0 * self.scale,
            _ => self.line_up(si),
        }
    }

    /// A little-used server (popularity rank beyond a quarter of the pool) in a prefix (the
    /// /24, or the /48 of every IPv6 server) that holds popular servers too.
    fn shared_infra_endpoint(&mut self, v6: bool) -> Endpoint {
        let w = self.world;
        let n = w.servers.len();
        // IPv4: the first 508 servers fill 198.51.100.0/24 and 203.0.113.0/24.
        let span = if v6 { n } else { n.min(508) };
        let mut pick = self.world.rank_to_server[n - 1] as usize;
        for _ in 0..200 {
            let k = self.rng.below(span as u64) as usize;
            if w.server_rank[k] as usize >= n / 4 {
                pick = k;
                break;
            }
        }
        let s = &w.servers[pick];
        Endpoint {
            ip: if v6 { s.v6 } else { v4_16(s.v4) },
            rtt_ns: s.rtt_ns,
            ttl: s.ttl,
        }
    }

    /// Random start of something lasting `secs` within the window.
    fn start_within(&mut self, secs: f64) -> i64 {
        let span = ((self.w1 - self.w0) as f64 - (secs + 5.0) * S).max(0.0);
        self.w0 + (self.rng.f64() * span) as i64
    }
}
