//! Positive scenarios: upstream bursts (single and in series) and beacons, drawn over wide
//! ranges, and with `--adversarial` the shapes at and past the edge of what the detector is
//! documented to find (bursts at the gates, low and slow, split into many flows, into shared
//! infrastructure; beacons at and past the regularity rule).
//!
//! Every positive carries a planned scope (`PlannedScenario::scope`); the truth adds the rule
//! on what was written (`should_detect`: a burst of at least 2 MB at 1.5 Mbit/s or more within
//! 60 s; a beacon of 10 polls or more, period 1–600 s, within the jitter rule).

use super::{Planner, Profile, MB, S};
use crate::session::{Kind, Script};
use crate::truth::ScenarioKind;

/// How a beacon is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BeaconMode {
    /// Within the rule: jitter up to what the detector allows for its period.
    Normal,
    /// At the edge of the rule, with missed beats.
    Edge,
    /// Past the rule (too irregular or too few polls).
    Beyond,
}

impl Planner<'_> {
    /// One upstream burst to a rare endpoint (one in ten into shared infrastructure, out of
    /// scope): 1–100 MB at 0.5–100 Mbit/s (what the line allows) in 1–60 s, 1–6 flows, by a
    /// subscriber of a random profile.
    pub(super) fn burst_single(&mut self) {
        let (si, profile) = self.pick_positive_sub();
        let v6 = self.rng.chance(0.25);
        let shared = self.rng.chance(0.1);
        let ep = if shared {
            self.shared_infra_endpoint(v6)
        } else {
            self.rare_endpoint(v6)
        };
        let transport = self.burst_transport();
        let line = self.profile_line(si, profile).min(100e6 / 8.0);
        let drawn = self.shape((1.0 * MB, 100.0 * MB), (1.0, 60.0), 0.5e6 / 8.0, line);
        let size = self.burst_size(drawn);
        self.single_burst(si, profile, v6, ep, transport, size, &[], shared);
    }

    /// One burst of `size` (bytes, seconds) from subscriber `si` to `ep` over `transport`
    /// (UDP, port, flows) at a random time, and its truth, tagged with the profile, then `tags`;
    /// a busy subscriber's cloud backup is planned around it first; into `shared`
    /// infrastructure it is out of scope.
    #[allow(clippy::too_many_arguments)]
    fn single_burst(
        &mut self,
        si: usize,
        profile: Profile,
        v6: bool,
        ep: super::Endpoint,
        transport: (bool, u16, u32),
        size: (f64, f64),
        tags: &[&'static str],
        shared: bool,
    ) {
        let ((udp, port, flows), (bytes, secs)) = (transport, size);
        let at = self.start_within(secs);
        let ev = self.new_event(self.sub_ip(si, v6));
        self.transfer(si, v6, ep, udp, port, at, bytes, secs, flows, false, ev);
        let kind = ScenarioKind::BurstSingle;
        let sc = self.push_positive(kind, si, profile, v6, ep, transport, vec![ev], (at, secs));
        sc.tags.extend(tags);
        if shared {
            sc.tags.push("shared_infra");
            sc.scope = false;
        }
    }

    /// Start times of `n` events every `period` s (± `jitter`), from `at`.
    pub(super) fn periodic_starts(
        &mut self,
        at: i64,
        n: usize,
        period: f64,
        jitter: f64,
    ) -> Vec<i64> {
        let mut t = at;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(t);
            t += (period * self.rng.uniform(1.0 - jitter, 1.0 + jitter) * S) as i64;
        }
        v
    }

    /// Bursts of a series from `at` every `spacing` s (± 20 %), each 1–30 MB in 1–60 s at up to
    /// `line` bytes/s; returns their event indices.
    #[allow(clippy::too_many_arguments)]
    fn burst_series(
        &mut self,
        si: usize,
        v6: bool,
        ep: super::Endpoint,
        transport: (bool, u16, u32),
        at: i64,
        n: usize,
        spacing: f64,
        line: f64,
    ) -> Vec<u32> {
        let (udp, port, flows) = transport;
        let jitter = self.rng.uniform(0.0, 0.2);
        let starts = self.periodic_starts(at, n, spacing, jitter);
        let mut evs = Vec::with_capacity(n);
        let mut free_at = i64::MIN;
        for t in starts {
            let drawn = self.shape(
                (1.0 * MB, 30.0 * MB),
                (1.0, 60.0),
                0.5e6 / 8.0,
                line.min(100e6 / 8.0),
            );
            let (bytes, secs) = self.burst_size(drawn);
            // A burst starts at least 10 s after the previous one ended.
            let t = t.max(free_at);
            free_at = t + ((secs + 10.0) * S) as i64;
            let ev = self.new_event(self.sub_ip(si, v6));
            self.transfer(si, v6, ep, udp, port, t, bytes, secs, flows, false, ev);
            evs.push(ev);
        }
        evs
    }

    /// 2–6 bursts by one subscriber to one rare endpoint, 20–300 s apart.
    pub(super) fn burst_periodic(&mut self) {
        let (si, profile) = self.pick_positive_sub();
        let v6 = self.rng.chance(0.25);
        let ep = self.rare_endpoint(v6);
        let tr = self.burst_transport();
        let line = self.profile_line(si, profile);
        let avail = (self.w1 - self.w0) as f64 / S - 70.0;
        let mut n = 2 + self.rng.below(5) as usize;
        let mut spacing = self.loguniform(20.0, 300.0);
        while (n - 1) as f64 * (spacing * 1.2 + 70.0) > avail {
            if n > 2 {
                n -= 1;
            } else {
                spacing = ((avail - 70.0) / 1.2).max(20.0);
                break;
            }
        }
        let slack = (avail - (n - 1) as f64 * (spacing * 1.2 + 70.0)).max(0.0);
        let at = self.w0 + (self.rng.f64() * slack * S) as i64;
        let evs = self.burst_series(si, v6, ep, tr, at, n, spacing, line);
        let span = (at, (n - 1) as f64 * spacing + 60.0);
        let kind = ScenarioKind::BurstPeriodic;
        self.push_positive(kind, si, profile, v6, ep, tr, evs, span);
    }

    /// The truth of a burst scenario of subscriber `si` (of `profile`) to `ep` over `transport`
    /// (UDP, port, flows), tagged with the profile; for a busy subscriber, a cloud backup is
    /// planned over `span` (start, seconds) first.
    #[allow(clippy::too_many_arguments)]
    fn push_positive(
        &mut self,
        kind: ScenarioKind,
        si: usize,
        profile: Profile,
        v6: bool,
        ep: super::Endpoint,
        transport: (bool, u16, u32),
        events: Vec<u32>,
        span: (i64, f64),
    ) -> &mut super::PlannedScenario {
        if profile == Profile::Busy {
            self.cloud_backup(si, Some(span));
        }
        let (udp, port, flows) = transport;
        let sc = self.push_scenario(kind, si, v6, ep, port, udp, flows, events);
        sc.tags.push(profile.tag());
        sc
    }

    /// One adversarial burst to a rare endpoint, tagged; `size` MB and `rate` Mbit/s ranges.
    fn adversarial_burst(
        &mut self,
        tag: &'static str,
        size: (f64, f64),
        rate: (f64, f64),
        flows: u32,
        shared: bool,
    ) {
        let (si, profile) = if self.rng.chance(0.5) {
            (self.pick_silent_sub(), Profile::Silent)
        } else {
            (self.pick_sub(), Profile::Normal)
        };
        let v6 = self.rng.chance(0.25);
        let ep = if shared {
            self.shared_infra_endpoint(v6)
        } else {
            self.rare_endpoint(v6)
        };
        let (udp, port, _) = self.burst_transport();
        let avail = (self.w1 - self.w0) as f64 / S - 10.0;
        let k = self.scale;
        let mut bytes = self.loguniform(size.0, size.1) * MB * k;
        let r = self.loguniform(rate.0, rate.1) * 1e6 / 8.0 * k;
        let mut secs = bytes / r;
        if secs > avail {
            secs = avail;
            bytes = r * secs;
        }
        let size = (bytes, secs);
        let tags = ["adversarial", tag];
        self.single_burst(si, profile, v6, ep, (udp, port, flows), size, &tags, shared);
    }

    /// A burst at the gates: 1.6–2.6 MB at 0.9–2.4 Mbit/s (some in scope, some below).
    pub(super) fn gate_edge_burst(&mut self) {
        let flows = 1 + self.rng.below(2) as u32;
        self.adversarial_burst("gate_edge", (1.6, 2.6), (0.9, 2.4), flows, false);
    }

    /// Low and slow: 3–30 MB at 0.15–1.2 Mbit/s, minutes long (out of scope by the rule).
    pub(super) fn low_and_slow(&mut self) {
        self.adversarial_burst("low_and_slow", (3.0, 30.0), (0.15, 1.2), 1, false);
    }

    /// A burst split into 8–24 parallel flows: 3–30 MB at 2–40 Mbit/s (in scope: the
    /// detector adds up the flows of a pair).
    pub(super) fn split_burst(&mut self) {
        let flows = 8 + self.rng.below(17) as u32;
        self.adversarial_burst("split_flows", (3.0, 30.0), (2.0, 40.0), flows, false);
    }

    /// A burst into a popular cloud's prefix: 3–40 MB at 2–40 Mbit/s to a little-used address
    /// of shared infrastructure (out of scope: its prefix is not rare).
    pub(super) fn cloud_prefix_burst(&mut self) {
        let flows = 1 + self.rng.below(4) as u32;
        self.adversarial_burst("cloud_prefix", (3.0, 40.0), (2.0, 40.0), flows, true);
    }

    /// A beacon; with `mission`, also periodic bursts to the same endpoint.
    ///
    /// Randomised over what a beacon may be: period log-uniform from 1 s to what the window
    /// holds 14 times (at most an hour), jitter up to ±50 % from 30 s (the detector's rule asks
    /// more regularity of faster beacons: up to ±20 % at 1 s), sometimes missed beats, polls in
    /// a new connection each or all inside one long-lived TCP connection.
    pub(super) fn beacon(&mut self, mission: Option<u32>) {
        self.beacon_shaped(mission, BeaconMode::Normal);
    }

    /// Adversarial beacons: `in_rule` at the edge of the detector's rule (jitter between 80 %
    /// and all of what the rule allows, missed beats, 12–20 polls), otherwise beyond it
    /// (jitter past the rule, or 6–9 polls): out of scope by construction.
    pub(super) fn edge_beacon(&mut self, in_rule: bool) {
        let mode = if in_rule {
            BeaconMode::Edge
        } else {
            BeaconMode::Beyond
        };
        self.beacon_shaped(None, mode);
    }

    fn beacon_shaped(&mut self, mission: Option<u32>, mode: BeaconMode) {
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
            let n = match mode {
                BeaconMode::Normal => need.max(14 + self.rng.below(17) as usize),
                BeaconMode::Edge => 12 + self.rng.below(9) as usize,
                BeaconMode::Beyond => 6 + self.rng.below(15) as usize,
            };
            if n as f64 * period * 1.5 <= avail {
                shape = (n, period, nb, spacing);
                break;
            }
        }
        let (n, period, nb, spacing) = shape;
        let jmax = 0.2 + 0.3 * (period.log10() / 30f64.log10()).clamp(0.0, 1.0);
        let jitter = match mode {
            BeaconMode::Normal => self.rng.uniform(0.0, jmax),
            BeaconMode::Edge => self.rng.uniform(0.8 * jmax, jmax),
            // Past the rule in timing, or within it with too few polls.
            BeaconMode::Beyond if n >= 10 => self.rng.uniform(jmax + 0.1, 0.8),
            BeaconMode::Beyond => self.rng.uniform(0.0, jmax),
        };
        let slack = (avail - n as f64 * period * (1.0 + jitter)).max(0.0);
        let at = self.w0 + (self.rng.f64() * slack * S) as i64;
        let base_up = self.loguniform(150.0, 2500.0);
        let base_down = self.loguniform(150.0, 2500.0);
        let mut starts = self.periodic_starts(at, n, period, jitter);
        let miss = if mode == BeaconMode::Normal {
            0.08
        } else {
            0.15
        };
        if mode != BeaconMode::Normal || self.rng.chance(0.3) {
            // Missed beats (the agent was asleep, the poll failed): never the first two.
            let keep: Vec<bool> = (0..n).map(|i| i < 2 || !self.rng.chance(miss)).collect();
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
        sc.tags.push(if in_conn {
            "in_connection"
        } else {
            "per_connection"
        });
        sc.rounds = if in_conn { n as u32 } else { 0 };
        sc.beacon = Some((period, jitter));
        // The scope: a period of 1–600 s within the rule's jitter (the truth adds the polls
        // written, at least 10).
        sc.scope = mode != BeaconMode::Beyond && period <= 600.0;
        if mode != BeaconMode::Normal {
            sc.tags.push("adversarial");
            sc.tags.push(if mode == BeaconMode::Edge {
                "rule_edge"
            } else {
                "beyond_rule"
            });
        }
        let Some(m) = mission else { return };
        sc.part_of = Some("burst_with_beacon");
        sc.mission = Some(m);
        let first = at + (self.rng.uniform(2.0, 4.0) * period * S) as i64;
        let flows = if self.rng.chance(0.5) {
            1
        } else {
            2 + self.rng.below(3) as u32
        };
        let line = self.line_up(si);
        let evs = self.burst_series(si, v6, ep, (udp, port, flows), first, nb, spacing, line);
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
}
