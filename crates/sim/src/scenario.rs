//! Planning of the injected scenarios (see [`crate::truth`] for the kinds): which subscriber,
//! which endpoint, which flows when. The plan is drawn up front from its own random stream,
//! and its flows are run by the same [`Session`](crate::session::Session) machinery as the
//! background, so the packets look alike.
//!
//! Rare endpoints come from address space the background never uses, each in a prefix of its
//! own: one /24 of 198.19.0.0/16 each, and `2001:db8:eXXX::/48` blocks.

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
    w0: i64,
    w1: i64,
}

fn v4_16(a: [u8; 4]) -> [u8; 16] {
    let mut x = [0u8; 16];
    x[..4].copy_from_slice(&a);
    x
}

/// Plan the scenarios of one run: all flows start at or after `w0` and are expected to end
/// by `w1` (ns since the epoch).
pub(crate) fn plan(world: &World, seed: u64, scale: f64, w0: i64, w1: i64) -> Plan {
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
        w0,
        w1,
    };
    if nsubs < 40 || w1 - w0 < (150.0 * S) as i64 {
        return p.plan;
    }
    let n_pos = (nsubs / 300).clamp(4, 10);
    for _ in 0..n_pos {
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
    let mut plan = p.plan;
    plan.flows.sort_by_key(|f| (f.spec.start_ns, f.event));
    plan
}

impl Planner<'_> {
    fn loguniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + (hi.ln() - lo.ln()) * self.rng.f64()).exp()
    }

    /// A subscriber not used by another scenario.
    fn pick_sub(&mut self) -> usize {
        let n = self.used_subs.len();
        loop {
            let i = self.rng.below(n as u64) as usize;
            if !self.used_subs[i] {
                self.used_subs[i] = true;
                return i;
            }
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
        });
        self.plan
            .scenarios
            .last_mut()
            .unwrap_or_else(|| unreachable!())
    }

    fn line_up(&self, si: usize) -> f64 {
        0.85 * self.world.subs[si].up_bps / 8.0
    }

    fn burst_single(&mut self) {
        let si = self.pick_sub();
        let v6 = self.rng.chance(0.25);
        let ep = self.rare_endpoint(v6);
        let (udp, port, flows) = self.burst_transport();
        let line = self.line_up(si);
        let (bytes, secs) = self.shape((3.0 * MB, 40.0 * MB), (2.0, 30.0), 1e6, line);
        let span = (self.w1 - self.w0) as f64 - (secs + 5.0) * S;
        let at = self.w0 + (self.rng.f64() * span) as i64;
        let ev = self.new_event(self.sub_ip(si, v6));
        self.transfer(si, v6, ep, udp, port, at, bytes, secs, flows, false, ev);
        self.push_scenario(
            ScenarioKind::BurstSingle,
            si,
            v6,
            ep,
            port,
            udp,
            flows,
            vec![ev],
        );
    }

    /// Start times of `n` events every `period` s (± `jitter`), from `at`.
    fn periodic_starts(&mut self, at: i64, n: usize, period: f64, jitter: f64) -> Vec<i64> {
        let mut t = at;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(t);
            t += (period * self.rng.uniform(1.0 - jitter, 1.0 + jitter) * S) as i64;
        }
        v
    }

    /// Bursts of a periodic series from `at`; returns their event indices.
    #[allow(clippy::too_many_arguments)]
    fn burst_series(
        &mut self,
        si: usize,
        v6: bool,
        ep: Endpoint,
        transport: (bool, u16, u32),
        at: i64,
        n: usize,
        spacing: f64,
    ) -> Vec<u32> {
        let (udp, port, flows) = transport;
        let line = self.line_up(si);
        let starts = self.periodic_starts(at, n, spacing, 0.05);
        let mut evs = Vec::with_capacity(n);
        for t in starts {
            let (bytes, secs) = self.shape((2.0 * MB, 15.0 * MB), (2.0, 30.0), 1e6, line);
            let ev = self.new_event(self.sub_ip(si, v6));
            self.transfer(si, v6, ep, udp, port, t, bytes, secs, flows, false, ev);
            evs.push(ev);
        }
        evs
    }

    fn burst_periodic(&mut self) {
        let si = self.pick_sub();
        let v6 = self.rng.chance(0.25);
        let ep = self.rare_endpoint(v6);
        let tr = self.burst_transport();
        let avail = (self.w1 - self.w0) as f64 / S - 40.0;
        let mut n = 3 + self.rng.below(4) as usize;
        let mut spacing = self.rng.uniform(60.0, 240.0);
        while (n - 1) as f64 * spacing * 1.05 > avail {
            if n > 3 {
                n -= 1;
            } else {
                spacing = (avail / ((n - 1) as f64 * 1.05)).max(60.0);
                break;
            }
        }
        let slack = (avail - (n - 1) as f64 * spacing * 1.05).max(0.0);
        let at = self.w0 + (self.rng.f64() * slack * S) as i64;
        let evs = self.burst_series(si, v6, ep, tr, at, n, spacing);
        self.push_scenario(
            ScenarioKind::BurstPeriodic,
            si,
            v6,
            ep,
            tr.1,
            tr.0,
            tr.2,
            evs,
        );
    }

    /// A beacon; with `mission`, also periodic bursts to the same endpoint.
    ///
    /// Randomised over what a beacon may be: period log-uniform from 1 s to what the window
    /// holds 14 times (at most an hour), jitter up to ±50 % from 30 s (the detector's rule asks
    /// more regularity of faster beacons: up to ±20 % at 1 s), sometimes missed beats, polls in
    /// a new connection each or all inside one long-lived TCP connection.
    fn beacon(&mut self, mission: Option<u32>) {
        let si = self.pick_sub();
        let v6 = self.rng.chance(0.25);
        let ep = self.rare_endpoint(v6);
        let udp = self.rng.chance(0.3);
        let port = if udp {
            [443, 4500, 8999][self.rng.below(3) as usize]
        } else {
            [443, 443, 8443, 8080][self.rng.below(4) as usize]
        };
        let in_conn = !udp && self.rng.chance(0.5);
        let avail = (self.w1 - self.w0) as f64 / S - 10.0;
        let pmax = (avail / (14.0 * 1.5)).clamp(1.0, 3600.0);
        // (sessions, period, bursts, spacing)
        let mut shape = (14usize, 10.0f64.min(pmax), 3usize, 60.0f64);
        for _ in 0..100 {
            let period = self.loguniform(1.0, pmax);
            let (nb, spacing) = (
                3 + self.rng.below(4) as usize,
                self.rng.uniform(60.0, 240.0),
            );
            let need = if mission.is_some() {
                ((4.0 * period + (nb - 1) as f64 * spacing * 1.05 + 40.0) / period).ceil() as usize
                    + 1
            } else {
                0
            };
            let n = need.max(14 + self.rng.below(17) as usize);
            if n as f64 * period * 1.5 <= avail {
                shape = (n, period, nb, spacing);
                break;
            }
        }
        let (n, period, nb, spacing) = shape;
        let jmax = 0.2 + 0.3 * (period.log10() / 30f64.log10()).clamp(0.0, 1.0);
        let jitter = self.rng.uniform(0.0, jmax);
        let slack = (avail - n as f64 * period * (1.0 + jitter)).max(0.0);
        let at = self.w0 + (self.rng.f64() * slack * S) as i64;
        let base_up = self.loguniform(150.0, 2500.0);
        let base_down = self.loguniform(150.0, 2500.0);
        let mut starts = self.periodic_starts(at, n, period, jitter);
        if self.rng.chance(0.3) {
            // Missed beats (the agent was asleep, the poll failed): never the first two.
            let keep: Vec<bool> = (0..n).map(|i| i < 2 || !self.rng.chance(0.08)).collect();
            let mut k = keep.iter();
            starts.retain(|_| *k.next().unwrap_or(&true));
        }
        let mut evs = Vec::with_capacity(n);
        let src = self.sub_ip(si, v6);
        let line = self.world.subs[si].up_bps;
        if in_conn {
            // One connection, `n` polls `period` apart (the session's think time varies by
            // ±20 % on its own).
            let ev = self.new_event(src);
            let script = Script {
                up: base_up as u64,
                down: base_down as u64,
                rounds: n as u32,
                think_ns: period * S,
                linger_ns: 0.3 * S,
                handshake: false,
                call_end_ns: 0,
            };
            self.flow(si, v6, ep, Kind::Tcp, port, at, line, line, script, ev);
            evs.push(ev);
        }
        for t in starts.into_iter().filter(|_| !in_conn) {
            let ev = self.new_event(src);
            let script = Script {
                up: (base_up * self.rng.uniform(0.85, 1.15)).clamp(150.0, 3000.0) as u64,
                down: (base_down * self.rng.uniform(0.85, 1.15)).clamp(150.0, 3000.0) as u64,
                rounds: 1,
                think_ns: 0.0,
                linger_ns: 0.3 * S,
                handshake: false,
                call_end_ns: 0,
            };
            let kind = if udp { Kind::Quic } else { Kind::Tcp };
            self.flow(si, v6, ep, kind, port, t, line, line, script, ev);
            evs.push(ev);
        }
        let sc = self.push_scenario(ScenarioKind::Beacon, si, v6, ep, port, udp, 1, evs);
        let Some(m) = mission else { return };
        sc.part_of = Some("burst_with_beacon");
        sc.mission = Some(m);
        let first = at + (self.rng.uniform(2.0, 4.0) * period * S) as i64;
        let flows = if self.rng.chance(0.5) {
            1
        } else {
            2 + self.rng.below(3) as u32
        };
        let evs = self.burst_series(si, v6, ep, (udp, port, flows), first, nb, spacing);
        let sc = self.push_scenario(
            ScenarioKind::BurstPeriodic,
            si,
            v6,
            ep,
            port,
            udp,
            flows,
            evs,
        );
        sc.part_of = Some("burst_with_beacon");
        sc.mission = Some(m);
    }

    fn upload_popular(&mut self) {
        let si = self.pick_sub();
        // The IPv6 address of a top server is popular only in a large enough population.
        let v6 = self.rng.chance(0.2) && self.used_subs.len() >= 1000;
        let ep = self.popular_endpoint(2, v6);
        let flows = 1 + self.rng.below(4) as u32;
        let line = self.line_up(si);
        let (bytes, secs) = self.shape((10.0 * MB, 50.0 * MB), (5.0, 30.0), 1e6, line);
        let span = (self.w1 - self.w0) as f64 - (secs + 5.0) * S;
        let at = self.w0 + (self.rng.f64() * span) as i64;
        let ev = self.new_event(self.sub_ip(si, v6));
        self.transfer(si, v6, ep, false, 443, at, bytes, secs, flows, false, ev);
        self.push_scenario(
            ScenarioKind::DecoyUploadPopular,
            si,
            v6,
            ep,
            443,
            false,
            flows,
            vec![ev],
        );
    }

    fn video_call(&mut self) {
        let si = self.pick_sub();
        let v6 = self.rng.chance(0.25);
        let ep = self.rare_endpoint(v6);
        let port = if self.rng.chance(0.5) {
            3478
        } else {
            50000 + self.rng.below(10000) as u16
        };
        let avail = (self.w1 - self.w0) as f64 / S - 5.0;
        let secs = self.rng.uniform(300.0, 720.0).min(avail);
        let at = self.w0 + (self.rng.f64() * (avail - secs).max(0.0) * S) as i64;
        let rate = self.loguniform(1e6, 3e6) * self.scale;
        let per_frame = |r: f64| (r / 8.0 * 0.02) as u64;
        let up = per_frame(rate * self.rng.uniform(0.9, 1.1));
        let down = per_frame(rate * self.rng.uniform(0.9, 1.1));
        let ev = self.new_event(self.sub_ip(si, v6));
        let script = Script {
            up,
            down,
            call_end_ns: at + (secs * S) as i64,
            ..Script::default()
        };
        self.flow(si, v6, ep, Kind::Call, port, at, 0.0, 0.0, script, ev);
        self.push_scenario(
            ScenarioKind::DecoyVideoCall,
            si,
            v6,
            ep,
            port,
            true,
            1,
            vec![ev],
        );
    }

    fn cdn_download(&mut self, popular: bool) {
        let si = self.pick_sub();
        let v6 = self.rng.chance(0.2);
        let ep = if popular {
            self.popular_endpoint(5, v6)
        } else {
            self.rare_endpoint(v6)
        };
        let flows = 1 + self.rng.below(4) as u32;
        let line = 0.85 * self.world.subs[si].down_bps / 8.0;
        let (bytes, secs) = self.shape((50.0 * MB, 300.0 * MB), (20.0, 120.0), 0.0, line);
        let span = (self.w1 - self.w0) as f64 - (secs + 5.0) * S;
        let at = self.w0 + (self.rng.f64() * span) as i64;
        let udp = self.rng.chance(0.3);
        let ev = self.new_event(self.sub_ip(si, v6));
        self.transfer(si, v6, ep, udp, 443, at, bytes, secs, flows, true, ev);
        self.push_scenario(
            ScenarioKind::DecoyCdnDownload,
            si,
            v6,
            ep,
            443,
            udp,
            flows,
            vec![ev],
        );
    }

    fn new_popular(&mut self, adopters: usize) {
        let v6 = self.rng.chance(0.25);
        let ep = self.rare_endpoint(v6);
        let span = (self.w1 - self.w0) as f64 - 110.0 * S;
        let t0 = self.w0 + (self.rng.f64() * span) as i64;
        let free = self.used_subs.iter().filter(|u| !**u).count();
        let n = adopters.min(free.saturating_sub(10));
        let mut list: Vec<(i64, usize)> = (0..n)
            .map(|_| {
                let si = self.pick_sub();
                (t0 + (self.rng.f64() * 90.0 * S) as i64, si)
            })
            .collect();
        // Adopters stay free for other decoys' subscribers too: release them.
        for &(_, si) in &list {
            self.used_subs[si] = false;
        }
        list.sort_unstable();
        let mut evs = Vec::with_capacity(n);
        for &(at, si) in &list {
            let line = self.line_up(si);
            let (bytes, secs) = self.shape((2.0 * MB, 6.0 * MB), (2.0, 10.0), 0.0, line);
            let ev = self.new_event(self.sub_ip(si, v6));
            self.transfer(si, v6, ep, false, 443, at, bytes, secs, 1, false, ev);
            evs.push(ev);
        }
        let Some(&(_, first)) = list.first() else {
            return;
        };
        let sc = self.push_scenario(
            ScenarioKind::DecoyNewPopular,
            first,
            v6,
            ep,
            443,
            false,
            1,
            evs,
        );
        sc.per_event_src = true;
    }

    /// Many subscribers poll one popular service at the same period, each in one long-lived
    /// connection or a connection per poll (push notifications, NTP, update checks).
    fn periodic_popular(&mut self, pollers: usize) {
        let v6 = self.rng.chance(0.2) && self.used_subs.len() >= 1000;
        let ep = self.popular_endpoint(10, v6);
        let (udp, port) =
            [(false, 443), (false, 5223), (false, 5228), (true, 123)][self.rng.below(4) as usize];
        let avail = (self.w1 - self.w0) as f64 / S - 10.0;
        let period = self.loguniform(5.0, (avail / 14.0).clamp(5.0, 600.0));
        let n = ((avail / period) as usize).clamp(3, if udp { 40 } else { 400 });
        let free = self.used_subs.iter().filter(|u| !**u).count();
        let m = pollers.min(free.saturating_sub(10));
        let mut evs = Vec::with_capacity(m * 4);
        let mut first = None;
        let mut picked = Vec::with_capacity(m);
        for _ in 0..m {
            let si = self.pick_sub();
            picked.push(si);
            first.get_or_insert(si);
            let src = self.sub_ip(si, v6);
            let line = self.world.subs[si].up_bps;
            let at = self.w0 + (self.rng.f64() * period.min(avail) * S) as i64;
            let up = self.rng.uniform(80.0, 400.0) as u64;
            let down = self.rng.uniform(80.0, 900.0) as u64;
            if udp {
                for t in self.periodic_starts(at, n, period, 0.02) {
                    let ev = self.new_event(src);
                    let script = Script {
                        up,
                        down,
                        rounds: 1,
                        linger_ns: 0.1 * S,
                        ..Script::default()
                    };
                    self.flow(si, v6, ep, Kind::Quic, port, t, line, line, script, ev);
                    evs.push((t, ev));
                }
            } else {
                let ev = self.new_event(src);
                let script = Script {
                    up,
                    down,
                    rounds: n as u32,
                    think_ns: period * S,
                    linger_ns: 0.3 * S,
                    ..Script::default()
                };
                self.flow(si, v6, ep, Kind::Tcp, port, at, line, line, script, ev);
                evs.push((at, ev));
            }
        }
        evs.sort_unstable();
        let evs: Vec<u32> = evs.into_iter().map(|e| e.1).collect();
        // Pollers stay free for other decoys' subscribers too: release them.
        for si in picked {
            self.used_subs[si] = false;
        }
        let Some(first) = first else {
            return;
        };
        let sc = self.push_scenario(
            ScenarioKind::DecoyPeriodicPopular,
            first,
            v6,
            ep,
            port,
            udp,
            1,
            evs,
        );
        sc.per_event_src = true;
    }
}
