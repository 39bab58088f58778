//! Datagram flows: QUIC connections, DNS/NTP/ping exchanges and RTP-like calls.

use super::payload::{dns_message, ntp_message};
use super::{Close, Kind, Phase, Session, CALL_FRAME_NS, QUIC_MAX};
use crate::frame::Frame;
use crate::rng::Rng;
use crate::world::POOL_MASK;

impl Session {
    /// One RTP-like packet of a call: each 20 ms frame of each direction is sent as packets of
    /// at most 1200 bytes of payload.
    pub(super) fn step_call(&mut self, rng: &mut Rng, f: &mut Frame, pool: &[u8]) -> usize {
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
        let n = n as usize;
        let b = udp_payload(f, self.net.v6, n, rng.next_u32() as usize, pool);
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
        let (net, hop) = self.path(up);
        let len = f.udp(net, up, hop, n, t);
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

    pub(super) fn step_quic(&mut self, rng: &mut Rng, f: &mut Frame, pool: &[u8]) -> usize {
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

    pub(super) fn step_query(&mut self, rng: &mut Rng, f: &mut Frame, pool: &[u8]) -> usize {
        let t = self.ts;
        let up = self.phase == Phase::Query;
        let len = match self.kind {
            Kind::Ping => {
                let id = self.cid_client as u16;
                let count = self.count as u16;
                let (net, hop) = self.path(up);
                f.echo(net, up, hop, id, count, t)
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
                let (net, hop) = self.path(up);
                f.udp(net, up, hop, n, t)
            }
            _ => {
                let o = Frame::l4(self.net.v6) + 8;
                ntp_message(&mut f.buf[o..o + 48], up, t, pool, self.cid_client as usize);
                let (net, hop) = self.path(up);
                f.udp(net, up, hop, 48, t)
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

    pub(super) fn quic_short(
        &mut self,
        f: &mut Frame,
        up: bool,
        n: usize,
        t: i64,
        pool: &[u8],
    ) -> usize {
        let b = udp_payload(f, self.net.v6, n, self.up_seq as usize ^ t as usize, pool);
        b[0] = 0x40 | (b[0] & 0x3f);
        let dcid = if up { self.cid_server } else { self.cid_client };
        b[1..9].copy_from_slice(&dcid.to_be_bytes());
        self.up_seq = self.up_seq.wrapping_add(0x9e37);
        let (net, hop) = self.path(up);
        f.udp(net, up, hop, n, t)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn quic_long(
        &mut self,
        f: &mut Frame,
        up: bool,
        ty: u8,
        first: bool,
        n: usize,
        t: i64,
        pool: &[u8],
    ) -> usize {
        let b = udp_payload(f, self.net.v6, n, self.down_seq as usize ^ t as usize, pool);
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
        let (net, hop) = self.path(up);
        f.udp(net, up, hop, n, t)
    }
}

/// The `n`-byte UDP payload of the frame in `f`, filled with pool bytes from the offset `r`
/// picks (masked to the pool).
fn udp_payload<'f>(f: &'f mut Frame, v6: bool, n: usize, r: usize, pool: &[u8]) -> &'f mut [u8] {
    let o = Frame::l4(v6) + 8;
    let b = &mut f.buf[o..o + n];
    let off = r & POOL_MASK;
    b.copy_from_slice(&pool[off..off + n]);
    b
}
