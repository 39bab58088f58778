//! One flow (TCP connection, QUIC connection, DNS/NTP exchange, ping sequence) as a state
//! machine that emits its packets one at a time in non-decreasing time order.
//!
//! Timing is as seen at the ISP vantage point: a packet from the home reaches the server and its
//! answer comes back after the server-side round trip (`rtt_srv`); a packet from the server
//! reaches the home and its answer comes back after the access round trip (`rtt_sub`).

mod payload;
mod tcp;
mod udp;

use std::collections::VecDeque;

use crate::frame::{Frame, Hop, Net, ACK};
use crate::rng::Rng;

/// What the flow carries, which sets the sizes of its request/response exchanges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum App {
    /// Web page/API fetches: small requests, heavy-tailed responses.
    Web,
    /// Adaptive streaming: a request every few seconds, chunks of about a megabyte.
    Video,
    /// Cloud photo/backup sync: large uploads, small replies.
    Upload,
    /// Chat/app traffic: moderate sizes both ways.
    Messaging,
}

/// Transport and shape of the flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// TLS over TCP (normally port 443).
    Tcp,
    /// QUIC over UDP 443.
    Quic,
    /// DNS query and answer over UDP 53.
    Dns,
    /// NTP client/server over UDP 123.
    Ntp,
    /// ICMP or ICMPv6 echo.
    Ping,
    /// A real-time call: RTP-like UDP frames both ways at a fixed frame interval
    /// (scenario flows only; needs a [`Script`]).
    Call,
}

/// Fixed shape of a scenario flow, overriding the random draws of the traffic model.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Script {
    /// Bytes of each request (upstream) and response (downstream); for a call, the mean bytes
    /// of one frame each way.
    pub up: u64,
    pub down: u64,
    /// Request/response rounds on the connection.
    pub rounds: u32,
    /// Pause between rounds, ns.
    pub think_ns: f64,
    /// Idle time between the last data and the close, ns (drawn up to this).
    pub linger_ns: f64,
    /// QUIC: start with the long-header handshake (otherwise plain datagrams right away).
    pub handshake: bool,
    /// Call: end of the call, ns since the epoch.
    pub call_end_ns: i64,
}

/// Frame interval of a call.
const CALL_FRAME_NS: i64 = 20_000_000;

/// How a connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Close {
    /// FIN/ACK both ways, started by the client or the server.
    Fin { by_client: bool },
    /// A reset from one side.
    Rst { by_client: bool },
    /// No close is seen (half-open, idle, or beyond the capture).
    Silent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Syn(u8),
    SynAck,
    HsAck,
    QuicHs(u8),
    Data,
    Close(u8),
    Query,
    Reply,
    Done,
}

/// A pure acknowledgement due from one side.
#[derive(Clone, Copy, Debug)]
struct PendingAck {
    ts: i64,
    up: bool,
    ack: u32,
}

/// Parameters the spawner chooses for a new flow.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub kind: Kind,
    pub app: App,
    pub net: Net,
    pub start_ns: i64,
    pub rtt_srv_ns: f64,
    pub rtt_sub_ns: f64,
    pub up_ttl: u8,
    pub down_ttl: u8,
    pub up_bps: f64,
    pub down_bps: f64,
    /// DNS: index of the server whose name is looked up; others: unused.
    pub name: u32,
    /// DNS: the answer address (4 or 16 bytes used by family).
    pub answer: [u8; 16],
    /// Scenario flows: the fixed shape (`None` for background traffic).
    pub script: Option<Script>,
}

/// A live flow.
#[derive(Debug)]
pub(crate) struct Session {
    net: Net,
    kind: Kind,
    app: App,
    phase: Phase,
    /// Time of the next own action (not counting pending ACKs).
    ts: i64,
    rtt_srv: f64,
    rtt_sub: f64,
    up_hop: Hop,
    down_hop: Hop,
    /// Next TCP sequence number per direction.
    up_seq: u32,
    down_seq: u32,
    up_bps: f64,
    down_bps: f64,
    exchanges_left: u32,
    xfer_up: bool,
    xfer_left: u64,
    xfer_segs: u32,
    pending_down: u64,
    acks: VecDeque<PendingAck>,
    close: Close,
    dead: bool,
    /// QUIC client/server connection IDs; DNS transaction id and ping id use `cid_client`.
    cid_client: u64,
    cid_server: u64,
    count: u32,
    name: u32,
    answer: [u8; 16],
    script: Option<Script>,
    /// Call: next packet time per direction (`[up, down]`), start of the current frame and
    /// frame counters.
    call_next: [i64; 2],
    call_frame: [i64; 2],
    call_seq: [u16; 2],
}

const TCP_SYN_OPTS_1460: [u8; 12] = [2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2];
const TCP_SYN_OPTS_1440: [u8; 12] = [2, 4, 0x05, 0xa0, 1, 3, 3, 7, 1, 1, 4, 2];
const QUIC_MAX: u64 = 1350;
const MIN_TAIL: u64 = 32;

impl Session {
    /// A new flow; `recycled` donates its ACK queue's allocation.
    pub(crate) fn new(spec: Spec, rng: &mut Rng, recycled: Option<Session>) -> Self {
        let mut acks = recycled.map(|s| s.acks).unwrap_or_default();
        acks.clear();
        let fl = if spec.net.v6 {
            rng.next_u32() & 0xf_ffff
        } else {
            0
        };
        let (phase, dead, close, exchanges_left, count) = match (spec.kind, spec.script) {
            (Kind::Tcp, Some(sc)) => (
                Phase::Syn(0),
                false,
                Close::Fin {
                    by_client: rng.chance(0.8),
                },
                sc.rounds.max(1),
                0,
            ),
            (Kind::Quic, Some(sc)) => (
                if sc.handshake {
                    Phase::QuicHs(0)
                } else {
                    Phase::Data
                },
                false,
                Close::Fin {
                    by_client: rng.chance(0.8),
                },
                sc.rounds.max(1),
                0,
            ),
            (Kind::Call, _) => (Phase::Data, false, Close::Silent, 0, 0),
            (Kind::Tcp, None) => {
                let x = rng.f64();
                let by_client = rng.chance(0.6);
                let close = if x < 0.92 {
                    Close::Fin { by_client }
                } else if x < 0.97 {
                    Close::Rst { by_client }
                } else {
                    Close::Silent
                };
                (
                    Phase::Syn(0),
                    rng.chance(0.01),
                    close,
                    exchanges(spec.app, rng),
                    0,
                )
            }
            (Kind::Quic, None) => {
                let close = if rng.chance(0.75) {
                    Close::Fin {
                        by_client: rng.chance(0.5),
                    }
                } else {
                    Close::Silent
                };
                (Phase::QuicHs(0), false, close, exchanges(spec.app, rng), 0)
            }
            (Kind::Dns, _) => (Phase::Query, rng.chance(0.01), Close::Silent, 0, 1),
            (Kind::Ntp, _) => (Phase::Query, rng.chance(0.02), Close::Silent, 0, 1),
            (Kind::Ping, _) => (
                Phase::Query,
                rng.chance(0.05),
                Close::Silent,
                0,
                1 + rng.below(4) as u32,
            ),
        };
        let mut session = Self {
            kind: spec.kind,
            app: spec.app,
            phase,
            ts: spec.start_ns,
            rtt_srv: spec.rtt_srv_ns,
            rtt_sub: spec.rtt_sub_ns,
            up_hop: Hop {
                ip_id: rng.next_u32() as u16,
                ttl: spec.up_ttl,
                flow_label: fl,
            },
            down_hop: Hop {
                ip_id: rng.next_u32() as u16,
                ttl: spec.down_ttl,
                flow_label: rng.next_u32() & 0xf_ffff,
            },
            up_seq: rng.next_u32(),
            down_seq: rng.next_u32(),
            up_bps: spec.up_bps,
            down_bps: spec.down_bps,
            exchanges_left,
            xfer_up: true,
            xfer_left: 0,
            xfer_segs: 0,
            pending_down: 0,
            acks,
            close,
            dead,
            cid_client: rng.next_u64(),
            cid_server: rng.next_u64(),
            count,
            name: spec.name,
            answer: spec.answer,
            net: spec.net,
            script: spec.script,
            call_next: [i64::MAX; 2],
            call_frame: [0; 2],
            call_seq: [0; 2],
        };
        if let Some(sc) = spec.script {
            match spec.kind {
                Kind::Quic if !sc.handshake => session.start_exchange(rng, spec.start_ns),
                Kind::Call => {
                    let down = spec.start_ns + rng.uniform(1e6, 19e6) as i64;
                    session.call_next = [spec.start_ns, down];
                    session.call_frame = [spec.start_ns, down];
                    session.call_seq = [rng.next_u32() as u16, rng.next_u32() as u16];
                }
                _ => {}
            }
        }
        session
    }

    /// The two ends of the flow.
    pub(crate) fn net(&self) -> &Net {
        &self.net
    }

    /// The two ends of the flow and the hop state of the direction `up` (or down), for a frame
    /// writer.
    fn path(&mut self, up: bool) -> (&Net, &mut Hop) {
        let hop = if up {
            &mut self.up_hop
        } else {
            &mut self.down_hop
        };
        (&self.net, hop)
    }

    /// Time of the next packet, or `None` when the flow has nothing more to send.
    #[inline]
    pub(crate) fn next_ts(&self) -> Option<i64> {
        let a = self.acks.front().map(|a| a.ts);
        if self.phase == Phase::Done {
            a
        } else {
            Some(a.map_or(self.ts, |a| a.min(self.ts)))
        }
    }

    /// Emit the next packet into `f`; returns its time and record length. Only call when
    /// [`Session::next_ts`] is `Some`.
    pub(crate) fn step(&mut self, rng: &mut Rng, f: &mut Frame, pool: &[u8]) -> (i64, usize) {
        if let Some(a) = self.acks.front().copied() {
            if self.phase == Phase::Done || a.ts <= self.ts {
                self.acks.pop_front();
                let len = match self.kind {
                    Kind::Tcp => {
                        let seq = if a.up { self.up_seq } else { self.down_seq };
                        let (net, hop) = self.path(a.up);
                        f.tcp(net, a.up, hop, seq, a.ack, ACK, window(a.up), &[], 0, a.ts)
                    }
                    _ => {
                        let n = 30 + rng.below(20) as usize;
                        self.quic_short(f, a.up, n, a.ts, pool)
                    }
                };
                return (a.ts, len);
            }
        }
        let t = self.ts;
        let len = match self.kind {
            Kind::Tcp => self.step_tcp(rng, f, pool),
            Kind::Quic => self.step_quic(rng, f, pool),
            Kind::Dns | Kind::Ntp | Kind::Ping => self.step_query(rng, f, pool),
            Kind::Call => self.step_call(rng, f, pool),
        };
        (t, len)
    }

    /// Payload bytes of the next data segment: full segments, and no runt tail below
    /// `MIN_TAIL` (so every segment can carry a TLS record header).
    fn next_segment(&self, mss: u64) -> u64 {
        let left = self.xfer_left;
        if left <= mss {
            left
        } else if left - mss < MIN_TAIL {
            left - MIN_TAIL
        } else {
            mss
        }
    }

    /// Bookkeeping after a data segment of `n` bytes; `seq_after` is the sender's next sequence
    /// number (what the receiver acknowledges).
    fn after_segment(&mut self, rng: &mut Rng, n: u64, seq_after: u32, mss: u64) {
        let t = self.ts;
        self.xfer_left -= n;
        self.xfer_segs += 1;
        let up = self.xfer_up;
        let ack_delay = if up { self.rtt_srv } else { self.rtt_sub };
        if self.xfer_segs % 2 == 0 || self.xfer_left == 0 {
            let ts = (t + ack_delay as i64).max(self.acks.back().map_or(i64::MIN, |a| a.ts));
            self.acks.push_back(PendingAck {
                ts,
                up: !up,
                ack: seq_after,
            });
        }
        if self.xfer_left > 0 {
            let bps = if up { self.up_bps } else { self.down_bps };
            let gap = (mss + 54) as f64 * 8e9 / bps;
            self.ts = t + (gap * rng.uniform(0.7, 1.3)) as i64;
        } else if up && self.pending_down > 0 {
            let think = rng.lognormal(15e6, 0.8, 1e6, 500e6);
            self.begin_xfer(false, self.pending_down);
            self.pending_down = 0;
            self.ts = t + (self.rtt_srv + think) as i64;
        } else {
            self.exchanges_left = self.exchanges_left.saturating_sub(1);
            if self.exchanges_left > 0 {
                let think = match (self.script, self.app) {
                    (Some(sc), _) => sc.think_ns * rng.uniform(0.8, 1.2),
                    (None, App::Web) => rng.exp(2e9),
                    (None, App::Video) => rng.uniform(1.5e9, 6e9),
                    (None, App::Upload) => rng.exp(1e9),
                    (None, App::Messaging) => rng.exp(4e9),
                };
                self.start_exchange(rng, t + (self.rtt_sub + think) as i64);
            } else {
                let last_ack = self.acks.back().map_or(t, |a| a.ts);
                let linger = if let Some(sc) = self.script {
                    rng.uniform(0.1, 1.0) * sc.linger_ns
                } else if rng.chance(0.3) {
                    rng.exp(15e9)
                } else {
                    rng.exp(0.5e9)
                };
                self.ts = last_ack.max(t) + linger as i64;
                self.phase = if self.close == Close::Silent {
                    Phase::Done
                } else {
                    Phase::Close(0)
                };
            }
        }
    }

    fn begin_xfer(&mut self, up: bool, bytes: u64) {
        self.xfer_up = up;
        self.xfer_left = bytes.max(MIN_TAIL);
        self.xfer_segs = 0;
    }

    /// Draw the next request/response sizes and start the request at `at`.
    fn start_exchange(&mut self, rng: &mut Rng, at: i64) {
        let (up, down) = if let Some(sc) = self.script {
            (sc.up as f64, sc.down as f64)
        } else {
            self.draw_exchange(rng)
        };
        self.begin_xfer(true, up as u64);
        self.pending_down = (down as u64).max(MIN_TAIL);
        self.phase = Phase::Data;
        self.ts = at;
    }

    /// Request/response sizes of the traffic model.
    fn draw_exchange(&self, rng: &mut Rng) -> (f64, f64) {
        // (median, sigma, least, most) of the request and of the response.
        let (up, down) = match self.app {
            App::Web => ((450.0, 0.7, 80.0, 16e3), (8e3, 1.3, 200.0, 20e6)),
            App::Video => ((600.0, 0.3, 200.0, 2000.0), (600e3, 0.5, 100e3, 8e6)),
            App::Upload => ((200e3, 1.2, 10e3, 60e6), (400.0, 0.5, 100.0, 2000.0)),
            App::Messaging => ((1500.0, 1.2, 60.0, 1e6), (6000.0, 1.3, 100.0, 3e6)),
        };
        let draw = |rng: &mut Rng, (median, sigma, lo, hi): (f64, f64, f64, f64)| {
            rng.lognormal(median, sigma, lo, hi)
        };
        (draw(rng, up), draw(rng, down))
    }
}

/// Exchanges (request/response rounds) on one connection.
fn exchanges(app: App, rng: &mut Rng) -> u32 {
    match app {
        App::Web => 1 + rng.geometric(1.0),
        App::Video => 3 + rng.geometric(5.0),
        App::Upload => 1 + rng.geometric(0.5),
        App::Messaging => 1 + rng.geometric(3.0),
    }
}

/// Advertised (scaled) TCP window: home side, server side.
#[inline]
fn window(up: bool) -> u16 {
    if up {
        501
    } else {
        1024
    }
}
