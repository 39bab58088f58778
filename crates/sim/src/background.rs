//! The background traffic model: which subscriber starts which activity, and the flows
//! (with their lookups) each activity opens (see the crate docs for the model).

use std::cmp::Reverse;

use crate::frame::Net;
use crate::session::{App, Kind, Session, Spec};
use crate::world::{mac_for, NTP_V4, NTP_V6, RESOLVERS_V4, RESOLVERS_V6};
use crate::{v4_16, Run, Slot};

impl Run<'_> {
    pub(crate) fn add(&mut self, spec: Spec) {
        let session = Session::new(spec, &mut self.rng, self.recycled.take());
        self.push_slot(session, 0);
    }

    /// Add a scenario flow of event `tag - 1`.
    pub(crate) fn add_tagged(&mut self, spec: Spec, tag: u32) {
        let session = Session::new(spec, &mut self.srng, self.recycled.take());
        self.push_slot(session, tag);
    }

    fn push_slot(&mut self, session: Session, tag: u32) {
        let Some(ts) = session.next_ts() else { return };
        let slot = Some(Slot {
            session,
            started: false,
            tag,
        });
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.serial += 1;
        self.heap.push(Reverse((ts, self.serial, idx)));
    }

    /// The two ends of a new flow from subscriber `si` to `srv_ip`.
    fn net(&mut self, si: usize, v6: bool, srv_ip: [u8; 16], srv_port: u16) -> Net {
        let sub = &self.world.subs[si];
        let sub_ip = if v6 { sub.v6 } else { v4_16(sub.v4) };
        let p = &mut self.subs_next_port[si];
        let sub_port = *p;
        *p = if *p >= 60999 { 32768 } else { *p + 1 };
        Net {
            v6,
            sub_mac: mac_for(&sub_ip, v6),
            srv_mac: mac_for(&srv_ip, v6),
            sub_ip,
            srv_ip,
            sub_port,
            srv_port,
        }
    }

    fn server_ip(&self, k: u32, v6: bool) -> [u8; 16] {
        let s = &self.world.servers[k as usize];
        if v6 {
            s.v6
        } else {
            v4_16(s.v4)
        }
    }

    /// A flow from subscriber `si` to server `k`.
    #[allow(clippy::too_many_arguments)]
    fn flow(&mut self, si: usize, k: u32, v6: bool, kind: Kind, app: App, port: u16, at: i64) {
        let srv_ip = self.server_ip(k, v6);
        let net = self.net(si, v6, srv_ip, port);
        let sub = &self.world.subs[si];
        let srv = &self.world.servers[k as usize];
        let spec = Spec {
            kind,
            app,
            net,
            start_ns: at,
            rtt_srv_ns: srv.rtt_ns * self.rng.uniform(0.9, 1.2),
            rtt_sub_ns: sub.access_rtt_ns * self.rng.uniform(0.9, 1.3),
            up_ttl: sub.ttl - 1,
            down_ttl: srv.ttl,
            up_bps: sub.up_bps.min(self.rng.lognormal(10e6, 0.9, 0.5e6, 1e9)),
            down_bps: sub.down_bps.min(self.rng.lognormal(30e6, 0.9, 1e6, 1e9)),
            name: k,
            answer: [0; 16],
            script: None,
        };
        self.add(spec);
    }

    /// A DNS lookup of server `k`'s name (or an NTP exchange when `ntp`); returns the lookup's
    /// round-trip time in ns.
    fn infra(&mut self, si: usize, k: u32, v6: bool, ntp: bool, at: i64) -> f64 {
        let which = self.rng.below(2) as usize;
        let (srv_ip, port) = match (ntp, v6) {
            (false, false) => (v4_16(RESOLVERS_V4[which]), 53),
            (false, true) => (RESOLVERS_V6[which], 53),
            (true, false) => (v4_16(NTP_V4[which]), 123),
            (true, true) => (NTP_V6[which], 123),
        };
        let rtt = if ntp || self.rng.chance(0.7) {
            self.rng.lognormal(3e6, 0.5, 0.5e6, 30e6)
        } else {
            self.rng.lognormal(40e6, 0.8, 5e6, 1e9)
        };
        let net = self.net(si, v6, srv_ip, port);
        let sub = &self.world.subs[si];
        let spec = Spec {
            kind: if ntp { Kind::Ntp } else { Kind::Dns },
            app: App::Web,
            net,
            start_ns: at,
            rtt_srv_ns: rtt,
            rtt_sub_ns: sub.access_rtt_ns,
            up_ttl: sub.ttl - 1,
            down_ttl: 60,
            up_bps: sub.up_bps,
            down_bps: sub.down_bps,
            name: k,
            answer: self.server_ip(k, v6),
            script: None,
        };
        self.add(spec);
        rtt
    }

    /// Start one activity of a random subscriber at `t`.
    pub(crate) fn spawn_activity(&mut self, t: i64) {
        let si = self.world.sub_pick.sample(&mut self.rng);
        let v6 = self.rng.chance(self.ipv6_share);
        let x = self.rng.f64();
        let (kind, app, top, lookup) = if x < 0.47 {
            (Kind::Tcp, App::Web, None, 0.7)
        } else if x < 0.55 {
            (Kind::Quic, App::Web, None, 0.7)
        } else if x < 0.555 {
            let kind = if self.rng.chance(0.5) {
                Kind::Tcp
            } else {
                Kind::Quic
            };
            (kind, App::Video, Some(30), 0.5)
        } else if x < 0.655 {
            (Kind::Quic, App::Messaging, Some(100), 0.3)
        } else if x < 0.665 {
            (Kind::Tcp, App::Upload, Some(10), 0.5)
        } else if x < 0.93 {
            let k = self.world.pick_server(&mut self.rng, None);
            self.infra(si, k, v6, false, t);
            return;
        } else if x < 0.96 {
            self.infra(si, 0, v6, true, t);
            return;
        } else {
            let k = self.world.pick_server(&mut self.rng, None);
            self.flow(si, k, v6, Kind::Ping, App::Web, 0, t);
            return;
        };
        let k = self.world.pick_server(&mut self.rng, top);
        let at = self.connect(si, k, v6, kind, app, lookup, t);
        if app == App::Web {
            // A page pulls in third-party servers too (CDNs, fonts, analytics): popular ones
            // mostly, each with its own lookup and connection.
            for _ in 0..self.rng.geometric(1.5).min(6) {
                let k3 = self.world.pick_server(&mut self.rng, None);
                let kind3 = if self.rng.chance(0.8) {
                    Kind::Tcp
                } else {
                    Kind::Quic
                };
                let at3 = at + self.rng.uniform(30e6, 600e6) as i64;
                self.connect(si, k3, v6, kind3, App::Web, 0.6, at3);
            }
        }
    }

    /// Optionally look server `k` up (with probability `lookup`), then open the connection(s)
    /// to it; returns when the first connection starts.
    #[allow(clippy::too_many_arguments)]
    fn connect(
        &mut self,
        si: usize,
        k: u32,
        v6: bool,
        kind: Kind,
        app: App,
        lookup: f64,
        t: i64,
    ) -> i64 {
        let mut at = t;
        if self.rng.chance(lookup) {
            let rtt = self.infra(si, k, v6, false, t);
            at = t + (rtt + self.rng.uniform(50e3, 2e6)) as i64;
        }
        let first = at;
        let conns = if kind == Kind::Tcp && app == App::Web {
            1 + self.rng.geometric(0.6).min(5)
        } else {
            1
        };
        for _ in 0..conns {
            self.flow(si, k, v6, kind, app, 443, at);
            at += self.rng.uniform(0.0, 50e6) as i64;
        }
        first
    }
}
