//! TCP connections: handshake, data segments with delayed ACKs, and the close.

use super::payload::tls_payload;
use super::{window, Close, Phase, Session, TCP_SYN_OPTS_1440, TCP_SYN_OPTS_1460};
use crate::frame::{Frame, ACK, FIN, PSH, RST, SYN};
use crate::rng::Rng;

impl Session {
    pub(super) fn step_tcp(&mut self, rng: &mut Rng, f: &mut Frame, pool: &[u8]) -> usize {
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
                let (seq, ack) = self.seq_ack(up);
                let flags = if last { ACK | PSH } else { ACK };
                let (net, hop) = self.path(up);
                let len = f.tcp(
                    net,
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
                self.set_seq(up, seq);
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
                let (seq, ack) = self.seq_ack(up);
                self.phase = Phase::Done;
                let (net, hop) = self.path(up);
                f.tcp(net, up, hop, seq, ack, RST | ACK, 0, &[], 0, t)
            }
            Close::Fin { by_client } => {
                // k = 0: closer's FIN; 1: the other side's FIN; 2: closer's final ACK.
                let up = if k == 1 { !by_client } else { by_client };
                let flags = if k == 2 { ACK } else { FIN | ACK };
                let (seq, ack) = self.seq_ack(up);
                let (net, hop) = self.path(up);
                let len = f.tcp(net, up, hop, seq, ack, flags, window(up), &[], 0, t);
                if k < 2 {
                    self.set_seq(up, seq.wrapping_add(1));
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

    /// (sequence, acknowledgement) numbers of the next segment sent up (or down).
    fn seq_ack(&self, up: bool) -> (u32, u32) {
        if up {
            (self.up_seq, self.down_seq)
        } else {
            (self.down_seq, self.up_seq)
        }
    }

    /// The next sequence number of the direction `up` (or down).
    fn set_seq(&mut self, up: bool, seq: u32) {
        if up {
            self.up_seq = seq;
        } else {
            self.down_seq = seq;
        }
    }
}
