//! Decoys: benign traffic that looks like a positive in one respect and must not be alerted
//! (popular endpoints, shared infrastructure, large sustained transfers, periodic popular
//! services, backups to common clouds, new services adopted by many).

use super::{Planner, MB, S};
use crate::session::{Kind, Script};
use crate::truth::ScenarioKind;

impl Planner<'_> {
    pub(super) fn upload_popular(&mut self) {
        let si = self.pick_sub();
        // The IPv6 address of a top server is popular only in a large enough population.
        let v6 = self.rng.chance(0.2) && self.used_subs.len() >= 1000;
        let ep = self.popular_endpoint(2, v6);
        let flows = 1 + self.rng.below(4) as u32;
        let line = self.line_up(si);
        let (bytes, secs) = self.shape((10.0 * MB, 50.0 * MB), (5.0, 30.0), 1e6, line);
        let span = (self.w1 - self.w0) as f64 - (secs + 5.0) * S;
        let at = self.w0 + (self.rng.f64() * span) as i64;
        let kind = ScenarioKind::DecoyUploadPopular;
        self.upload(kind, si, v6, ep, flows, at, (bytes, secs));
    }

    /// An upload of `bytes` over `flows` TCP connections to port 443 of `ep`, from `at` for
    /// `secs` s, and its truth as `kind`.
    #[allow(clippy::too_many_arguments)]
    fn upload(
        &mut self,
        kind: ScenarioKind,
        si: usize,
        v6: bool,
        ep: super::Endpoint,
        flows: u32,
        at: i64,
        (bytes, secs): (f64, f64),
    ) {
        let ev = self.new_event(self.sub_ip(si, v6));
        self.transfer(si, v6, ep, false, 443, at, bytes, secs, flows, false, ev);
        self.push_scenario(kind, si, v6, ep, 443, false, flows, vec![ev]);
    }

    pub(super) fn video_call(&mut self) {
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

    pub(super) fn cdn_download(&mut self, popular: bool) {
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

    pub(super) fn new_popular(&mut self, adopters: usize) {
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
    pub(super) fn periodic_popular(&mut self, pollers: usize) {
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

    /// A large upload (5–60 MB at 2–40 Mbit/s, what the line allows) to a little-used address
    /// in a popular service's prefix: the address is rare, its prefix is not.
    pub(super) fn shared_infra_upload(&mut self) {
        let si = self.pick_sub();
        let v6 = self.rng.chance(0.2) && self.used_subs.len() >= 1000;
        let ep = self.shared_infra_endpoint(v6);
        let flows = 1 + self.rng.below(4) as u32;
        let line = self.line_up(si).min(40e6 / 8.0);
        let (bytes, secs) = self.shape((5.0 * MB, 60.0 * MB), (2.0, 60.0), 2e6 / 8.0, line);
        let at = self.start_within(secs);
        let kind = ScenarioKind::DecoySharedInfra;
        self.upload(kind, si, v6, ep, flows, at, (bytes, secs));
    }

    /// A backup to a common cloud (one of the two most popular servers): 1–6 uploads of
    /// 2–100 MB each at 20–70 % of the line over 2–8 minutes; `around` (start, seconds) places
    /// it over a positive scenario of the same subscriber (a busy subscriber).
    pub(super) fn cloud_backup(&mut self, si: usize, around: Option<(i64, f64)>) {
        let v6 = self.rng.chance(0.2) && self.used_subs.len() >= 1000;
        let ep = self.popular_endpoint(2, v6);
        let total = self.rng.uniform(120.0, 480.0);
        let n = 1 + self.rng.below(6) as usize;
        let at = match around {
            Some((t, secs)) => {
                let lead = self.rng.uniform(0.0, (total - secs).clamp(0.0, 120.0));
                (t - (lead * S) as i64).max(self.w0)
            }
            None => self.start_within(total),
        };
        let starts = self.periodic_starts(at, n, total / n as f64, 0.3);
        let line = 0.85 * self.world.subs[si].up_bps / 8.0;
        let mut evs = Vec::with_capacity(n);
        for t in starts {
            let share = self.rng.uniform(0.2, 0.7);
            let secs = (total / n as f64 * self.rng.uniform(0.5, 0.9)).max(5.0);
            let bytes = (line * share * secs).clamp(2.0 * MB, 100.0 * MB) * self.scale;
            let ev = self.new_event(self.sub_ip(si, v6));
            self.transfer(si, v6, ep, false, 443, t, bytes, secs, 1, false, ev);
            evs.push(ev);
        }
        let sc = self.push_scenario(
            ScenarioKind::DecoyCloudBackup,
            si,
            v6,
            ep,
            443,
            false,
            1,
            evs,
        );
        if around.is_some() {
            sc.tags.push("busy");
        }
    }
}
