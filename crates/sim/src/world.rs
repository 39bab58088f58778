//! The static world of one simulation: subscribers, servers, infrastructure addresses and the
//! payload byte pool. Everything comes from documentation/reserved ranges:
//!
//! | who | IPv4 | IPv6 |
//! |---|---|---|
//! | subscribers (3 of 4) | 10.0.0.0/8 | fd00::/8 (one /56 each) |
//! | subscribers (1 of 4) | 100.64.0.0/10 | fd00::/8 |
//! | servers | 198.51.100.0/24, 203.0.113.0/24, then 198.18.0.0/16 | 2001:db8:100::/40 |
//! | DNS resolvers | 192.0.2.53, 192.0.2.54 | 2001:db8:53::53, 2001:db8:53::54 |
//! | NTP servers | 192.0.2.123, 192.0.2.124 | 2001:db8:123::123, 2001:db8:123::124 |
//!
//! 198.19.0.0/16 and the rest of 2001:db8::/32 are left free for scenario endpoints (each in a
//! /24 or /48 of its own, so that its prefix is as rare as its address).

use crate::rng::{Rng, Weighted};

/// One subscriber (a home line).
#[derive(Clone, Debug)]
pub(crate) struct Subscriber {
    pub v4: [u8; 4],
    pub v6: [u8; 16],
    /// Line rates, bits per second.
    pub down_bps: f64,
    pub up_bps: f64,
    /// Round-trip time between the vantage point and the home, ns.
    pub access_rtt_ns: f64,
    /// Next ephemeral source port.
    pub next_port: u16,
    /// Initial TTL of the home's OS (64 or 128).
    pub ttl: u8,
}

/// One external server.
#[derive(Clone, Debug)]
pub(crate) struct Server {
    pub v4: [u8; 4],
    pub v6: [u8; 16],
    /// Round-trip time between the vantage point and the server, ns.
    pub rtt_ns: f64,
    /// Hop count already spent when its packets reach the vantage point.
    pub ttl: u8,
}

pub(crate) const RESOLVERS_V4: [[u8; 4]; 2] = [[192, 0, 2, 53], [192, 0, 2, 54]];
pub(crate) const NTP_V4: [[u8; 4]; 2] = [[192, 0, 2, 123], [192, 0, 2, 124]];

/// IPv6 address `2001:db8:<a>::<b>`.
pub(crate) const fn doc_v6(a: u16, b: u16) -> [u8; 16] {
    let mut x = [0u8; 16];
    x[0] = 0x20;
    x[1] = 0x01;
    x[2] = 0x0d;
    x[3] = 0xb8;
    x[4] = (a >> 8) as u8;
    x[5] = a as u8;
    x[14] = (b >> 8) as u8;
    x[15] = b as u8;
    x
}

pub(crate) const RESOLVERS_V6: [[u8; 16]; 2] = [doc_v6(0x53, 0x53), doc_v6(0x53, 0x54)];
pub(crate) const NTP_V6: [[u8; 16]; 2] = [doc_v6(0x123, 0x123), doc_v6(0x123, 0x124)];

/// Size of the payload pool (a power of two), plus slack so any `MAX_FRAME` slice fits.
pub(crate) const POOL_MASK: usize = (1 << 16) - 1;

/// The world: who exists, and how often each is chosen.
pub(crate) struct World {
    pub subs: Vec<Subscriber>,
    pub servers: Vec<Server>,
    /// Subscriber choice by activity level.
    pub sub_pick: Weighted,
    /// Activity level of each subscriber (its weight in `sub_pick`).
    pub activity: Vec<f64>,
    /// Server choice by popularity rank (Zipf); rank -> server index through `rank_to_server`.
    pub popularity: Weighted,
    pub rank_to_server: Vec<u32>,
    /// Server index -> popularity rank (the inverse of `rank_to_server`).
    pub server_rank: Vec<u32>,
    /// Random bytes that payloads are cut from.
    pub pool: Vec<u8>,
}

/// Host `j` in a block-structured range: /24 block `j / 254` scattered by an odd multiplier
/// over `2^bits_blocks` blocks, host 1..=254.
fn scatter_v4(base: u32, bits_blocks: u32, j: u32, salt: u32) -> [u8; 4] {
    let nblocks = 1u32 << bits_blocks;
    let block = ((j / 254).wrapping_mul(0x9E37_79B1 | 1).wrapping_add(salt)) & (nblocks - 1);
    (base + (block << 8) + 1 + j % 254).to_be_bytes()
}

/// Derive a locally administered unicast MAC from an address.
pub(crate) fn mac_for(ip: &[u8; 16], v6: bool) -> [u8; 6] {
    if v6 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in ip {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        let x = h.to_be_bytes();
        [0x06, x[0], x[1], x[2], x[3], x[4]]
    } else {
        [0x02, 0x00, ip[0], ip[1], ip[2], ip[3]]
    }
}

impl World {
    pub(crate) fn new(seed: u64, subscribers: u32, servers: u32) -> Self {
        let mut rng = Rng::new(seed, 1);
        let salt = rng.next_u32();
        let ula_global = rng.next_u64().to_be_bytes();
        const PLANS: [(f64, f64, f64); 5] = [
            // (weight, down Mbit/s, up Mbit/s)
            (0.15, 50.0, 10.0),
            (0.30, 100.0, 20.0),
            (0.30, 250.0, 50.0),
            (0.15, 500.0, 100.0),
            (0.10, 1000.0, 200.0),
        ];
        let plan_pick = Weighted::new(PLANS.iter().map(|p| p.0));
        let mut subs = Vec::with_capacity(subscribers as usize);
        let mut activity = Vec::with_capacity(subscribers as usize);
        for i in 0..subscribers {
            let v4 = if i % 4 == 3 {
                scatter_v4(0x6440_0000, 14, (i / 4) % (16384 * 254), salt)
            } else {
                scatter_v4(0x0a00_0000, 16, (i / 4 * 3 + i % 4) % (65536 * 254), salt)
            };
            let mut v6 = [0u8; 16];
            v6[0] = 0xfd;
            v6[1..3].copy_from_slice(&ula_global[..2]);
            v6[3..7].copy_from_slice(&i.to_be_bytes());
            v6[8..16].copy_from_slice(&rng.next_u64().to_be_bytes());
            let plan = PLANS[plan_pick.sample(&mut rng)];
            subs.push(Subscriber {
                v4,
                v6,
                down_bps: plan.1 * 1e6,
                up_bps: plan.2 * 1e6,
                access_rtt_ns: rng.lognormal(4e6, 0.6, 0.5e6, 40e6),
                next_port: 32768 + rng.below(28232) as u16,
                ttl: if rng.chance(0.3) { 128 } else { 64 },
            });
            activity.push(rng.lognormal(1.0, 1.0, 0.02, 50.0));
        }
        let nserv = servers.max(1);
        let mut srv = Vec::with_capacity(nserv as usize);
        for k in 0..nserv {
            let v4 = if k < 254 {
                [198, 51, 100, 1 + k as u8]
            } else if k < 508 {
                [203, 0, 113, 1 + (k - 254) as u8]
            } else {
                scatter_v4(0xc612_0000, 8, (k - 508) % (256 * 254), salt)
            };
            let mut v6 = doc_v6(0x100 + (k >> 16) as u16, 1);
            v6[6..8].copy_from_slice(&(k as u16).to_be_bytes());
            srv.push(Server {
                v4,
                v6,
                rtt_ns: rng.lognormal(25e6, 0.7, 1e6, 300e6),
                ttl: [64u8, 128, 255][rng.below(3) as usize] - 8 - rng.below(16) as u8,
            });
        }
        // Popularity rank -> server: a seeded shuffle so rank does not follow the address.
        let mut rank_to_server: Vec<u32> = (0..nserv).collect();
        for i in (1..rank_to_server.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            rank_to_server.swap(i, j);
        }
        let mut pool = vec![0u8; POOL_MASK + 1 + 2048];
        for c in pool.chunks_mut(8) {
            let x = rng.next_u64().to_le_bytes();
            c.copy_from_slice(&x[..c.len()]);
        }
        let mut server_rank = vec![0u32; rank_to_server.len()];
        for (rank, &k) in rank_to_server.iter().enumerate() {
            server_rank[k as usize] = rank as u32;
        }
        Self {
            subs,
            servers: srv,
            sub_pick: Weighted::new(activity.iter().copied()),
            activity,
            server_rank,
            popularity: Weighted::zipf(nserv as usize, 1.0),
            rank_to_server,
            pool,
        }
    }

    /// A server by Zipf popularity, optionally only among the `top` most popular.
    pub(crate) fn pick_server(&self, rng: &mut Rng, top: Option<usize>) -> u32 {
        let rank = match top {
            Some(t) => rng.below(t.min(self.rank_to_server.len()) as u64) as usize,
            None => self.popularity.sample(rng),
        };
        self.rank_to_server[rank]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_in_range() {
        let w = World::new(3, 5000, 3000);
        let mut v4: Vec<_> = w.subs.iter().map(|s| s.v4).collect();
        v4.sort_unstable();
        v4.dedup();
        assert_eq!(v4.len(), 5000);
        assert!(w
            .subs
            .iter()
            .all(|s| s.v4[0] == 10 || (s.v4[0] == 100 && s.v4[1] & 0xc0 == 64)));
        assert!(w.subs.iter().all(|s| s.v6[0] == 0xfd));
        let mut sv: Vec<_> = w.servers.iter().map(|s| s.v4).collect();
        sv.sort_unstable();
        sv.dedup();
        assert_eq!(sv.len(), 3000);
        assert!(w
            .servers
            .iter()
            .all(|s| matches!(s.v4, [198, 51, 100, _] | [203, 0, 113, _])
                || (s.v4[0] == 198 && s.v4[1] == 18)));
        let mut s6: Vec<_> = w.servers.iter().map(|s| s.v6).collect();
        s6.sort_unstable();
        s6.dedup();
        assert_eq!(s6.len(), 3000);
    }
}
