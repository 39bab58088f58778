//! One flow (TCP connection, QUIC connection, DNS/NTP exchange, ping sequence) as a state
//! machine that emits its packets one at a time in non-decreasing time order.
//!
//! Timing is as seen at the ISP vantage point: a packet from the home reaches the server and its
//! answer comes back after the server-side round trip (`rtt_srv`); a packet from the server
//! reaches the home and its answer comes back after the access round trip (`rtt_sub`).

use std::collections::VecDeque;

use crate::frame::{Frame, Hop, Net, ACK, FIN, PSH, RST, SYN};
use crate::rng::Rng;
use crate::world::POOL_MASK;

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
                        let hop = if a.up {
                            &mut self.up_hop
                        } else {
                            &mut self.down_hop
                        };
                        f.tcp(
                            &self.net,
                            a.up,
                            hop,
                            seq,
                            a.ack,
                            ACK,
                            window(a.up),
                            &[],
                            0,
                            a.ts,
                        )
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

    /// One RTP-like packet of a call: each 20 ms frame of each direction is sent as packets of
    /// at most 1200 bytes of payload.
    fn step_call(&mut self, rng: &mut Rng, f: &mut Frame, pool: &[u8]) -> usize {
        let sc = self.script.unwrap_or_default();
        let d = usize::from(self.call_next[1] < self.call_next[0]);
        let up = d == 0;
        let t = self.call_next[d];
        let rem = if up {
            &mut self.xfer_left
        } else {
            &mut self.pending_down
        };
        if *rem == 0 {
            let mean = if up { sc.up } else { sc.down };
            *rem = ((mean as f64) * rng.uniform(0.75, 1.25)).max(60.0) as u64;
        }
        let n = if *rem <= 1200 + 60 { *rem } else { 1200 };
        *rem -= n;
        let last = *rem == 0;
        let o = Frame::l4(self.net.v6) + 8;
        let n = n as usize;
        let b = &mut f.buf[o..o + n];
        let off = (rng.next_u32() as usize) & POOL_MASK;
        b.copy_from_slice(&pool[off..off + n]);
        // RTP header: version 2, dynamic payload type (marker on a frame's last packet).
        let seq = self.call_seq[d];
        self.call_seq[d] = seq.wrapping_add(1);
        let ssrc = if up { self.cid_client } else { self.cid_server } as u32;
        let rtp_ts = ((self.call_frame[d] / 1_000_000) as u32).wrapping_mul(90);
        b[0] = 0x80;
        b[1] = 96 | if last { 0x80 } else { 0 };
        b[2..4].copy_from_slice(&seq.to_be_bytes());
        b[4..8].copy_from_slice(&rtp_ts.to_be_bytes());
        b[8..12].copy_from_slice(&ssrc.to_be_bytes());
        let hop = if up {
            &mut self.up_hop
        } else {
            &mut self.down_hop
        };
        let len = f.udp(&self.net, up, hop, n, t);
        self.call_next[d] = if last {
            self.call_frame[d] += CALL_FRAME_NS;
            let next = self.call_frame[d] + rng.uniform(0.0, 2e6) as i64;
            if next > sc.call_end_ns {
                i64::MAX
            } else {
                next
            }
        } else {
            t + rng.uniform(30e3, 150e3) as i64
        };
        let next = self.call_next[0].min(self.call_next[1]);
        if next == i64::MAX {
            self.phase = Phase::Done;
        } else {
            self.ts = next;
        }
        len
    }

    fn step_tcp(&mut self, rng: &mut Rng, f: &mut Frame, pool: &[u8]) -> usize {
        let t = self.ts;
        let opts: &[u8] = if self.net.v6 {
            &TCP_SYN_OPTS_1440
        } else {
            &TCP_SYN_OPTS_1460
        };
        match self.phase {
            Phase::Syn(n) => {
                let seq = self.up_seq;
                let len = f.tcp(
                    &self.net,
                    true,
                    &mut self.up_hop,
                    seq,
                    0,
                    SYN,
                    64240,
                    opts,
                    0,
                    t,
                );
                if self.dead {
                    // Retransmitted SYNs at +1 s and +3 s, then give up.
                    if n < 2 {
                        self.phase = Phase::Syn(n + 1);
                        self.ts = t + (1_000_000_000 << n);
                    } else {
                        self.phase = Phase::Done;
                    }
                } else {
                    self.up_seq = seq.wrapping_add(1);
                    self.phase = Phase::SynAck;
                    self.ts = t + self.rtt_srv as i64;
                }
                len
            }
            Phase::SynAck => {
                let (seq, ack) = (self.down_seq, self.up_seq);
                let len = f.tcp(
                    &self.net,
                    false,
                    &mut self.down_hop,
                    seq,
                    ack,
                    SYN | ACK,
                    65160,
                    opts,
                    0,
                    t,
                );
                self.down_seq = seq.wrapping_add(1);
                self.phase = Phase::HsAck;
                self.ts = t + self.rtt_sub as i64;
                len
            }
            Phase::HsAck => {
                let len = f.tcp(
                    &self.net,
                    true,
                    &mut self.up_hop,
                    self.up_seq,
                    self.down_seq,
                    ACK,
                    window(true),
                    &[],
                    0,
                    t,
                );
                let at = t + rng.uniform(20e3, 400e3) as i64;
                self.start_exchange(rng, at);
                len
            }
            Phase::Data => {
                let mss = if self.net.v6 { 1440 } else { 1460 };
                let n = self.next_segment(mss);
                let up = self.xfer_up;
                let last = n == self.xfer_left;
                let o = Frame::l4(self.net.v6) + 20;
                tls_payload(&mut f.buf[o..o + n as usize], pool, rng.next_u32() as usize);
                let (seq, ack) = if up {
                    (self.up_seq, self.down_seq)
                } else {
                    (self.down_seq, self.up_seq)
                };
                let flags = if last { ACK | PSH } else { ACK };
                let hop = if up {
                    &mut self.up_hop
                } else {
                    &mut self.down_hop
                };
                let len = f.tcp(
                    &self.net,
                    up,
                    hop,
                    seq,
                    ack,
                    flags,
                    window(up),
                    &[],
                    n as usize,
                    t,
                );
                let seq = seq.wrapping_add(n as u32);
                if up {
                    self.up_seq = seq;
                } else {
                    self.down_seq = seq;
                }
                self.after_segment(rng, n, seq, mss);
                len
            }
            Phase::Close(k) => self.tcp_close(rng, f, k),
            Phase::QuicHs(_) | Phase::Query | Phase::Reply | Phase::Done => {
                unreachable!("not a TCP phase")
            }
        }
    }

    fn tcp_close(&mut self, _rng: &mut Rng, f: &mut Frame, k: u8) -> usize {
        let t = self.ts;
        match self.close {
            Close::Rst { by_client } => {
                let up = by_client;
                let (seq, ack) = if up {
                    (self.up_seq, self.down_seq)
                } else {
                    (self.down_seq, self.up_seq)
                };
                let hop = if up {
                    &mut self.up_hop
                } else {
                    &mut self.down_hop
                };
                self.phase = Phase::Done;
                f.tcp(&self.net, up, hop, seq, ack, RST | ACK, 0, &[], 0, t)
            }
            Close::Fin { by_client } => {
                // k = 0: closer's FIN; 1: the other side's FIN; 2: closer's final ACK.
                let up = if k == 1 { !by_client } else { by_client };
                let flags = if k == 2 { ACK } else { FIN | ACK };
                let (seq, ack) = if up {
                    (self.up_seq, self.down_seq)
                } else {
                    (self.down_seq, self.up_seq)
                };
                let hop = if up {
                    &mut self.up_hop
                } else {
                    &mut self.down_hop
                };
                let len = f.tcp(&self.net, up, hop, seq, ack, flags, window(up), &[], 0, t);
                if k < 2 {
                    if up {
                        self.up_seq = seq.wrapping_add(1);
                    } else {
                        self.down_seq = seq.wrapping_add(1);
                    }
                    self.phase = Phase::Close(k + 1);
                    let rtt = if up { self.rtt_srv } else { self.rtt_sub };
                    self.ts = t + rtt as i64;
                } else {
                    self.phase = Phase::Done;
                }
                len
            }
            Close::Silent => unreachable!("silent close emits nothing"),
        }
    }

    fn step_quic(&mut self, rng: &mut Rng, f: &mut Frame, pool: &[u8]) -> usize {
        let t = self.ts;
        match self.phase {
            Phase::QuicHs(k) => {
                // Client Initial, server Initial, server Handshake, client Handshake.
                let (up, ty, size) = match k {
                    0 => (true, 0u8, 1250),
                    1 => (false, 0, 1250),
                    2 => (false, 2, 900 + rng.below(350) as usize),
                    _ => (true, 2, 80 + rng.below(80) as usize),
                };
                let len = self.quic_long(f, up, ty, k == 0, size, t, pool);
                match k {
                    0 => self.ts = t + self.rtt_srv as i64,
                    1 => self.ts = t + rng.uniform(20e3, 300e3) as i64,
                    2 => self.ts = t + self.rtt_sub as i64,
                    _ => {
                        let at = t + rng.uniform(20e3, 400e3) as i64;
                        self.start_exchange(rng, at);
                        return len;
                    }
                }
                self.phase = Phase::QuicHs(k + 1);
                len
            }
            Phase::Data => {
                let n = self.next_segment(QUIC_MAX);
                let up = self.xfer_up;
                let len = self.quic_short(f, up, n as usize, t, pool);
                self.after_segment(rng, n, 0, QUIC_MAX);
                len
            }
            Phase::Close(_) => {
                let up = matches!(self.close, Close::Fin { by_client: true });
                self.phase = Phase::Done;
                self.quic_short(f, up, 40 + rng.below(20) as usize, t, pool)
            }
            _ => unreachable!("not a QUIC phase"),
        }
    }

    fn step_query(&mut self, rng: &mut Rng, f: &mut Frame, pool: &[u8]) -> usize {
        let t = self.ts;
        let up = self.phase == Phase::Query;
        let len = match self.kind {
            Kind::Ping => {
                let id = self.cid_client as u16;
                let hop = if up {
                    &mut self.up_hop
                } else {
                    &mut self.down_hop
                };
                f.echo(&self.net, up, hop, id, self.count as u16, t)
            }
            Kind::Dns => {
                let o = Frame::l4(self.net.v6) + 8;
                let n = dns_message(
                    &mut f.buf[o..],
                    self.cid_client as u16,
                    !up,
                    self.name,
                    self.net.v6,
                    &self.answer,
                    rng.below(3600) as u32 + 60,
                );
                let hop = if up {
                    &mut self.up_hop
                } else {
                    &mut self.down_hop
                };
                f.udp(&self.net, up, hop, n, t)
            }
            _ => {
                let o = Frame::l4(self.net.v6) + 8;
                ntp_message(&mut f.buf[o..o + 48], up, t, pool, self.cid_client as usize);
                let hop = if up {
                    &mut self.up_hop
                } else {
                    &mut self.down_hop
                };
                f.udp(&self.net, up, hop, 48, t)
            }
        };
        if up && !self.dead {
            self.phase = Phase::Reply;
            self.ts = t + self.rtt_srv as i64;
        } else {
            self.count -= 1;
            if self.count == 0 {
                self.phase = Phase::Done;
            } else {
                // Next echo one second after the previous request.
                self.phase = Phase::Query;
                self.ts = if up {
                    t + 1_000_000_000
                } else {
                    t - self.rtt_srv as i64 + 1_000_000_000
                };
            }
        }
        len
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
        match self.app {
            App::Web => (
                rng.lognormal(450.0, 0.7, 80.0, 16e3),
                rng.lognormal(8e3, 1.3, 200.0, 20e6),
            ),
            App::Video => (
                rng.lognormal(600.0, 0.3, 200.0, 2000.0),
                rng.lognormal(600e3, 0.5, 100e3, 8e6),
            ),
            App::Upload => (
                rng.lognormal(200e3, 1.2, 10e3, 60e6),
                rng.lognormal(400.0, 0.5, 100.0, 2000.0),
            ),
            App::Messaging => (
                rng.lognormal(1500.0, 1.2, 60.0, 1e6),
                rng.lognormal(6000.0, 1.3, 100.0, 3e6),
            ),
        }
    }

    fn quic_short(&mut self, f: &mut Frame, up: bool, n: usize, t: i64, pool: &[u8]) -> usize {
        let o = Frame::l4(self.net.v6) + 8;
        let b = &mut f.buf[o..o + n];
        let off = (self.up_seq as usize ^ t as usize) & POOL_MASK;
        b.copy_from_slice(&pool[off..off + n]);
        b[0] = 0x40 | (b[0] & 0x3f);
        let dcid = if up { self.cid_server } else { self.cid_client };
        b[1..9].copy_from_slice(&dcid.to_be_bytes());
        self.up_seq = self.up_seq.wrapping_add(0x9e37);
        let hop = if up {
            &mut self.up_hop
        } else {
            &mut self.down_hop
        };
        f.udp(&self.net, up, hop, n, t)
    }

    #[allow(clippy::too_many_arguments)]
    fn quic_long(
        &mut self,
        f: &mut Frame,
        up: bool,
        ty: u8,
        first: bool,
        n: usize,
        t: i64,
        pool: &[u8],
    ) -> usize {
        let o = Frame::l4(self.net.v6) + 8;
        let b = &mut f.buf[o..o + n];
        let off = (self.down_seq as usize ^ t as usize) & POOL_MASK;
        b.copy_from_slice(&pool[off..off + n]);
        b[0] = 0xc0 | (ty << 4) | 0x03;
        b[1..5].copy_from_slice(&1u32.to_be_bytes());
        // The first client Initial goes to a random DCID (here: the server CID bits flipped).
        let dcid = if first {
            !self.cid_server
        } else if up {
            self.cid_server
        } else {
            self.cid_client
        };
        let scid = if up { self.cid_client } else { self.cid_server };
        b[5] = 8;
        b[6..14].copy_from_slice(&dcid.to_be_bytes());
        b[14] = 8;
        b[15..23].copy_from_slice(&scid.to_be_bytes());
        let mut i = 23;
        if ty == 0 {
            b[i] = 0; // token length
            i += 1;
        }
        let rest = (n - i - 2) as u16;
        b[i..i + 2].copy_from_slice(&(0x4000 | rest).to_be_bytes());
        self.down_seq = self.down_seq.wrapping_add(0x7f4a);
        let hop = if up {
            &mut self.up_hop
        } else {
            &mut self.down_hop
        };
        f.udp(&self.net, up, hop, n, t)
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

/// Fill `b` with one TLS 1.2/1.3 application-data record (opaque bytes from the pool), or with
/// plain pool bytes when too short for a record header.
#[inline]
fn tls_payload(b: &mut [u8], pool: &[u8], r: usize) {
    let n = b.len();
    let off = r & POOL_MASK;
    b.copy_from_slice(&pool[off..off + n]);
    if n > 5 {
        b[0] = 0x17;
        b[1] = 3;
        b[2] = 3;
        b[3..5].copy_from_slice(&((n - 5) as u16).to_be_bytes());
    }
}

/// Write a DNS query or answer for the name of server `name` into `b`; returns its length.
fn dns_message(
    b: &mut [u8],
    txid: u16,
    response: bool,
    name: u32,
    v6: bool,
    answer: &[u8; 16],
    ttl: u32,
) -> usize {
    const PREFIX: [&[u8]; 6] = [b"www", b"cdn", b"api", b"img", b"static", b"edge"];
    const DOMAIN: [&[u8]; 3] = [b"example", b"example", b"example"];
    const TLD: [&[u8]; 3] = [b"com", b"net", b"org"];
    b[0..2].copy_from_slice(&txid.to_be_bytes());
    b[2..4].copy_from_slice(&(if response { 0x8180u16 } else { 0x0100 }).to_be_bytes());
    b[4..12].copy_from_slice(&[0, 1, 0, u8::from(response), 0, 0, 0, 0]);
    let mut i = 12;
    // First label: prefix + decimal server number.
    let p = PREFIX[(name % 6) as usize];
    let mut digits = [0u8; 10];
    let mut nd = 0;
    let mut v = name;
    loop {
        digits[nd] = b'0' + (v % 10) as u8;
        nd += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    b[i] = (p.len() + nd) as u8;
    b[i + 1..i + 1 + p.len()].copy_from_slice(p);
    i += 1 + p.len();
    for d in digits[..nd].iter().rev() {
        b[i] = *d;
        i += 1;
    }
    for label in [DOMAIN[(name % 3) as usize], TLD[(name % 3) as usize]] {
        b[i] = label.len() as u8;
        b[i + 1..i + 1 + label.len()].copy_from_slice(label);
        i += 1 + label.len();
    }
    b[i] = 0;
    i += 1;
    let qtype: u16 = if v6 { 28 } else { 1 };
    b[i..i + 2].copy_from_slice(&qtype.to_be_bytes());
    b[i + 2..i + 4].copy_from_slice(&1u16.to_be_bytes());
    i += 4;
    if response {
        let rdlen = if v6 { 16 } else { 4 };
        b[i..i + 2].copy_from_slice(&0xc00cu16.to_be_bytes());
        b[i + 2..i + 4].copy_from_slice(&qtype.to_be_bytes());
        b[i + 4..i + 6].copy_from_slice(&1u16.to_be_bytes());
        b[i + 6..i + 10].copy_from_slice(&ttl.to_be_bytes());
        b[i + 10..i + 12].copy_from_slice(&(rdlen as u16).to_be_bytes());
        b[i + 12..i + 12 + rdlen].copy_from_slice(&answer[..rdlen]);
        i += 12 + rdlen;
    }
    i
}

/// Write a 48-byte NTPv4 client (`up`) or server packet.
fn ntp_message(b: &mut [u8], up: bool, ts_ns: i64, pool: &[u8], r: usize) {
    b.fill(0);
    b[0] = if up { 0x23 } else { 0x24 };
    let ntp_secs = (ts_ns.div_euclid(1_000_000_000) + 2_208_988_800) as u32;
    let frac = ((ts_ns.rem_euclid(1_000_000_000) as u64) << 32) / 1_000_000_000;
    let stamp = (u64::from(ntp_secs) << 32) | frac;
    if up {
        b[2] = 6; // poll
        b[3] = 0xe9; // precision
    } else {
        b[1] = 2; // stratum
        b[2] = 6;
        b[3] = 0xe9;
        b[4..12].copy_from_slice(&[0, 0, 0, 0x20, 0, 0, 0, 0x30]);
        let off = r & POOL_MASK;
        b[12..16].copy_from_slice(&pool[off..off + 4]); // reference id
        let refts = stamp - (64u64 << 32);
        b[16..24].copy_from_slice(&refts.to_be_bytes());
        b[32..40].copy_from_slice(&stamp.to_be_bytes()); // receive
    }
    b[40..48].copy_from_slice(&stamp.to_be_bytes()); // transmit
}
