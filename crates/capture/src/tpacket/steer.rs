//! The fanout steering program: a classic BPF program the kernel runs for every packet of a
//! `PACKET_FANOUT_CBPF` group to choose the ring (capture thread) that gets it.
//!
//! It hashes the *home-side* address: the source if it alone lies in a home prefix, the
//! destination if it alone does, else both (XOR, so that both directions of a transit or
//! home-to-home conversation still meet, as in the engine's router). Both directions of a subscriber's traffic therefore land on one
//! ring, and every packet of a subscriber is read by one thread in the order the kernel saw it.
//! The kernel takes the program's return value modulo the number of rings in the group.
//!
//! Loads are relative to the network header (`SKF_NET_OFF`) and the EtherType comes from the
//! socket buffer (`SKF_AD_PROTOCOL`), so the program is the same for every link type and for
//! packets in both directions (the kernel runs it before the link header is pushed back for
//! received frames, after it for sent ones). Non-IP packets all go to the first ring.
//!
//! 802.1Q/802.1ad tags the kernel left in the frame (it takes only the outermost one off) are
//! skipped, up to two of them: the IP header then starts four or eight bytes after the network
//! header, and the address loads are indexed by that offset. Without this, a subscriber whose
//! frames arrive with different tag stacks (Q-in-Q on one path, single-tagged on another)
//! would be split over rings.

use std::net::IpAddr;

/// A home prefix: network address and length in bits of its family.
pub type HomePrefix = (IpAddr, u8);

/// `BPF_LD | BPF_H | BPF_ABS`
const LD_H_ABS: u16 = 0x28;
/// `BPF_LD | BPF_W | BPF_IND`: load the word at X + k.
const LD_W_IND: u16 = 0x40;
/// `BPF_LDX | BPF_W | BPF_IMM`
const LDX_IMM: u16 = 0x01;
/// `BPF_LDX | BPF_MEM`
const LDX_MEM: u16 = 0x61;
/// `BPF_ST`: M[k] = A
const ST: u16 = 0x02;
/// `BPF_STX`: M[k] = X
const STX: u16 = 0x03;
/// `BPF_LD | BPF_MEM`: A = M[k]
const LD_MEM: u16 = 0x60;
/// `BPF_ALU | BPF_AND | BPF_K`
const AND_K: u16 = 0x54;
/// `BPF_ALU | BPF_MUL | BPF_K`
const MUL_K: u16 = 0x24;
/// `BPF_ALU | BPF_RSH | BPF_K`
const RSH_K: u16 = 0x74;
/// `BPF_ALU | BPF_XOR | BPF_X`
const XOR_X: u16 = 0xac;
/// `BPF_MISC | BPF_TAX`
const TAX: u16 = 0x07;
/// `BPF_JMP | BPF_JEQ | BPF_K`
const JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JA`
const JA: u16 = 0x05;
/// `BPF_RET | BPF_A`
const RET_A: u16 = 0x16;
/// `BPF_RET | BPF_K`
const RET_K: u16 = 0x06;

/// Offset of loads relative to the network header (`SKF_NET_OFF`).
const NET: u32 = (-0x10_0000i32) as u32;
/// The socket buffer's protocol (EtherType, host order): `SKF_AD_OFF + SKF_AD_PROTOCOL`.
const AD_PROTOCOL: u32 = (-0x1000i32) as u32;

/// Home prefixes per family beyond which no program is built (jumps in classic BPF reach at
/// most 255 instructions ahead).
pub const MAX_PREFIXES: usize = 24;

/// Why no steering program could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SteerError {
    /// More home prefixes of one family than a program can test.
    #[error(
        "{0} home prefixes of one address family; fanout steering handles at most {MAX_PREFIXES}"
    )]
    TooManyPrefixes(usize),
}

/// One instruction as `struct sock_filter` wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Operation.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Constant operand.
    pub k: u32,
}

/// Jump targets before they are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Next,
    At(usize),
}

struct Asm {
    code: Vec<(u16, Label, Label, u32)>,
    labels: Vec<Option<usize>>,
}

impl Asm {
    fn new() -> Self {
        Self {
            code: Vec::new(),
            labels: Vec::new(),
        }
    }

    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len());
    }

    fn op(&mut self, code: u16, k: u32) {
        self.code.push((code, Label::Next, Label::Next, k));
    }

    /// Jump to `to` if A equals `k`, else fall through.
    fn jeq(&mut self, k: u32, to: usize) {
        self.code.push((JEQ_K, Label::At(to), Label::Next, k));
    }

    /// Fall through if A equals `k`, else jump to `to`.
    fn jne(&mut self, k: u32, to: usize) {
        self.code.push((JEQ_K, Label::Next, Label::At(to), k));
    }

    /// Jump to `to` unconditionally (32-bit offset).
    fn ja(&mut self, to: usize) {
        self.code.push((JA, Label::At(to), Label::Next, 0));
    }

    fn finish(self) -> Option<Vec<Insn>> {
        let mut out = Vec::with_capacity(self.code.len());
        for (i, &(code, jt, jf, k)) in self.code.iter().enumerate() {
            let rel = |l: Label| -> Option<u32> {
                match l {
                    Label::Next => Some(0),
                    Label::At(id) => {
                        let at = (*self.labels.get(id)?)?;
                        u32::try_from(at.checked_sub(i + 1)?).ok()
                    }
                }
            };
            let insn = if code == JA {
                Insn {
                    code,
                    jt: 0,
                    jf: 0,
                    k: rel(jt)?,
                }
            } else {
                Insn {
                    code,
                    jt: u8::try_from(rel(jt)?).ok()?,
                    jf: u8::try_from(rel(jf)?).ok()?,
                    k,
                }
            };
            out.push(insn);
        }
        Some(out)
    }
}

/// `(offset, mask, value)` of each 32-bit word a prefix constrains, offsets from the address.
fn words(&(ip, len): &HomePrefix) -> Vec<(u32, u32, u32)> {
    let bytes: Vec<u8> = match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let mut out = Vec::new();
    for (w, chunk) in bytes.chunks_exact(4).enumerate() {
        let from = (w as u32) * 32;
        let bits = u32::from(len).saturating_sub(from).min(32);
        if bits == 0 {
            break;
        }
        let mask = if bits == 32 {
            u32::MAX
        } else {
            !(u32::MAX >> bits)
        };
        let v = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        out.push((from / 8, mask, v & mask));
    }
    out
}

/// Scratch slot holding the IP header's offset from the network header (tags skipped).
const M_IP: u32 = 1;
/// Scratch slot of the running XOR in [`xor_words`].
const M_XOR: u32 = 2;
/// Scratch slot of the source side's key on a transit packet.
const M_SRC: u32 = 0;

/// Load into A the XOR of the `n` words at offset `at` of the IP header (X is clobbered and
/// left holding something else than the IP header's offset).
fn xor_words(a: &mut Asm, at: u32, n: u32) {
    a.op(LDX_MEM, M_IP);
    a.op(LD_W_IND, NET.wrapping_add(at));
    for w in 1..n {
        a.op(ST, M_XOR);
        a.op(LDX_MEM, M_IP);
        a.op(LD_W_IND, NET.wrapping_add(at + 4 * w));
        a.op(LDX_MEM, M_XOR);
        a.op(XOR_X, 0);
    }
}

/// The block for one family, entered with X holding the IP header's offset from the network
/// header: `src`/`dst` are the address offsets in the IP header, `n` the address length in
/// words; jumps to `hash` with the key in A.
fn family(a: &mut Asm, nets: &[&HomePrefix], src: u32, dst: u32, n: u32, hash: usize) {
    let (src_home, dst_home, both) = (a.label(), a.label(), a.label());
    a.op(STX, M_IP);
    // Source at home? Then the destination decides between the source alone and both sides
    // (two home sides hash like none, as the engine's router does). Otherwise the destination
    // alone, or neither.
    any_prefix(a, nets, src, src_home);
    any_prefix(a, nets, dst, dst_home);
    a.ja(both);
    a.bind(src_home);
    any_prefix(a, nets, dst, both);
    xor_words(a, src, n);
    a.ja(hash);
    a.bind(dst_home);
    xor_words(a, dst, n);
    a.ja(hash);
    // No home side or two: both addresses, symmetrically.
    a.bind(both);
    xor_words(a, src, n);
    a.op(ST, M_SRC);
    xor_words(a, dst, n);
    a.op(TAX, 0);
    a.op(LD_MEM, M_SRC);
    a.op(XOR_X, 0);
    a.ja(hash);
}

/// Jump to `to` if the address at offset `addr` of the IP header lies in one of `nets`, else
/// fall through. X holds the IP header's offset and keeps it: only loads, masks and jumps.
fn any_prefix(a: &mut Asm, nets: &[&HomePrefix], addr: u32, to: usize) {
    for net in nets {
        // Every word must match; the last test is followed by a long jump, so that
        // conditional jumps stay short however many prefixes there are.
        let next = a.label();
        for (off, mask, value) in words(net) {
            a.op(LD_W_IND, NET.wrapping_add(addr + off));
            if mask != u32::MAX {
                a.op(AND_K, mask);
            }
            a.jne(value, next);
        }
        a.ja(to);
        a.bind(next);
    }
}

/// The steering program for these home prefixes.
pub fn program(home: &[HomePrefix]) -> Result<Vec<Insn>, SteerError> {
    let v4: Vec<&HomePrefix> = home.iter().filter(|n| n.0.is_ipv4()).collect();
    let v6: Vec<&HomePrefix> = home.iter().filter(|n| n.0.is_ipv6()).collect();
    let most = v4.len().max(v6.len());
    if most > MAX_PREFIXES {
        return Err(SteerError::TooManyPrefixes(most));
    }
    let mut a = Asm::new();
    let (ip4, ip6, hash) = (a.label(), a.label(), a.label());
    // The EtherType, then up to two tags left in the frame: each holds the next EtherType two
    // bytes in, and moves the IP header four bytes on.
    a.op(LD_H_ABS, AD_PROTOCOL);
    for tags in 0..=2u32 {
        let (v4_at, v6_at) = (a.label(), a.label());
        a.jeq(0x0800, v4_at);
        a.jeq(0x86dd, v6_at);
        let tagged = (tags < 2).then(|| {
            let l = a.label();
            a.jeq(0x8100, l);
            a.jeq(0x88a8, l);
            l
        });
        a.op(RET_K, 0);
        a.bind(v4_at);
        a.op(LDX_IMM, 4 * tags);
        a.ja(ip4);
        a.bind(v6_at);
        a.op(LDX_IMM, 4 * tags);
        a.ja(ip6);
        if let Some(l) = tagged {
            a.bind(l);
            a.op(LD_H_ABS, NET.wrapping_add(4 * tags + 2));
        }
    }
    a.bind(ip4);
    family(&mut a, &v4, 12, 16, 1, hash);
    a.bind(ip6);
    family(&mut a, &v6, 8, 24, 4, hash);
    // A = key * golden ratio, then fold the high half in (the kernel keeps `A % rings`).
    a.bind(hash);
    a.op(MUL_K, 0x9e37_79b1);
    a.op(TAX, 0);
    a.op(RSH_K, 16);
    a.op(XOR_X, 0);
    a.op(RET_A, 0);
    a.finish().ok_or(SteerError::TooManyPrefixes(most))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    /// A packet as the kernel presents it to the program: EtherType and network header.
    struct Pkt {
        proto: u16,
        net: Vec<u8>,
    }

    /// Runs the subset of classic BPF the program uses, with the kernel's semantics for the
    /// two special loads; `None` where the kernel would end the program with 0 (a load out of
    /// bounds) or the program is malformed.
    fn run(prog: &[Insn], p: &Pkt) -> Option<u32> {
        let (mut a, mut x) = (0u32, 0u32);
        // Scratch memory: `None` until written (the kernel's checker refuses reads before).
        let mut mem = [None::<u32>; 16];
        let word = |off: u32| -> Option<u32> {
            let off = off.wrapping_sub(NET) as usize;
            let b = p.net.get(off..off.checked_add(4)?)?;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = prog.get(pc)?;
            pc += 1;
            match i.code {
                LD_H_ABS if i.k == AD_PROTOCOL => a = u32::from(p.proto),
                LD_H_ABS => {
                    let off = i.k.wrapping_sub(NET) as usize;
                    let b = p.net.get(off..off + 2)?;
                    a = u32::from(u16::from_be_bytes([b[0], b[1]]));
                }
                LD_W_IND => a = word(i.k.wrapping_add(x))?,
                LDX_IMM => x = i.k,
                LDX_MEM => x = (*mem.get(i.k as usize)?)?,
                LD_MEM => a = (*mem.get(i.k as usize)?)?,
                ST => *mem.get_mut(i.k as usize)? = Some(a),
                STX => *mem.get_mut(i.k as usize)? = Some(x),
                AND_K => a &= i.k,
                MUL_K => a = a.wrapping_mul(i.k),
                RSH_K => a >>= i.k,
                XOR_X => a ^= x,
                TAX => x = a,
                JA => pc += i.k as usize,
                JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                RET_A => return Some(a),
                RET_K => return Some(i.k),
                _ => return None,
            }
        }
        None
    }

    fn pkt(src: &str, dst: &str) -> Pkt {
        let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        match (s, d) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut net = vec![0x45u8; 20];
                net[12..16].copy_from_slice(&s.octets());
                net[16..20].copy_from_slice(&d.octets());
                Pkt { proto: 0x0800, net }
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut net = vec![0x60u8; 40];
                net[8..24].copy_from_slice(&s.octets());
                net[24..40].copy_from_slice(&d.octets());
                Pkt { proto: 0x86dd, net }
            }
            _ => unreachable!(),
        }
    }

    fn net(s: &str) -> HomePrefix {
        let (ip, len) = s.split_once('/').unwrap();
        (ip.parse().unwrap(), len.parse().unwrap())
    }

    fn home() -> Vec<HomePrefix> {
        [
            "10.0.0.0/8",
            "100.64.0.0/10",
            "192.168.0.0/16",
            "fd00::/8",
            "2001:db8:1::/48",
        ]
        .iter()
        .map(|s| net(s))
        .collect()
    }

    #[test]
    fn both_directions_of_a_subscriber_get_one_value_and_subscribers_spread() {
        let prog = program(&home()).unwrap();
        let mut rings = [0u32; 4];
        for i in 0..400u32 {
            let sub = format!("10.{}.{}.{}", i % 7, i / 7 % 256, i % 251);
            let ep = format!("198.18.{}.{}", i % 13, i % 97);
            let up = run(&prog, &pkt(&sub, &ep)).unwrap();
            let down = run(&prog, &pkt(&ep, &sub)).unwrap();
            assert_eq!(up, down, "{sub} <-> {ep}");
            // The endpoint does not matter, only the subscriber.
            let other = run(&prog, &pkt(&sub, "203.0.113.7")).unwrap();
            assert_eq!(up, other, "{sub}");
            rings[(up % 4) as usize] += 1;
        }
        // 400 subscribers over 4 rings: each gets a fair share.
        assert!(rings.iter().all(|&n| n > 60), "{rings:?}");
    }

    #[test]
    fn ipv6_prefixes_longer_than_a_word_and_transit_are_steered_symmetrically() {
        let prog = program(&home()).unwrap();
        let a = run(&prog, &pkt("2001:db8:1:5::9", "2001:db8:ff::1")).unwrap();
        let b = run(&prog, &pkt("2001:db8:ff::2", "2001:db8:1:5::9")).unwrap();
        assert_eq!(a, b);
        // 2001:db8:2::/48 is not home: a transit pair hashes both sides, in either direction.
        let t1 = run(&prog, &pkt("2001:db8:2::1", "2001:db8:ff::1")).unwrap();
        let t2 = run(&prog, &pkt("2001:db8:ff::1", "2001:db8:2::1")).unwrap();
        assert_eq!(t1, t2);
        let t3 = run(&prog, &pkt("203.0.113.1", "198.51.100.2")).unwrap();
        let t4 = run(&prog, &pkt("198.51.100.2", "203.0.113.1")).unwrap();
        assert_eq!(t3, t4);
        // The /10 is matched on its bits: 100.127/16 is inside, 100.128/16 is not.
        let inside = run(&prog, &pkt("100.127.0.1", "198.18.0.1")).unwrap();
        assert_eq!(
            inside,
            run(&prog, &pkt("100.127.0.1", "198.18.9.9")).unwrap()
        );
    }

    /// `p` as the kernel shows it with `tags` 802.1Q/802.1ad tags still in the frame (the
    /// outermost one it took off is not among them).
    fn tagged(p: &Pkt, tags: &[u16]) -> Pkt {
        let mut net = Vec::new();
        let mut types: Vec<u16> = tags.iter().skip(1).copied().collect();
        types.push(p.proto);
        for (i, next) in types.iter().enumerate() {
            net.extend_from_slice(&(100 + i as u16).to_be_bytes()); // TCI
            net.extend_from_slice(&next.to_be_bytes());
        }
        net.extend_from_slice(&p.net);
        Pkt {
            proto: tags.first().copied().unwrap_or(p.proto),
            net,
        }
    }

    /// A subscriber's frames go to one ring whatever tag stack they carry (none, one or two
    /// tags left in the frame, 802.1Q or 802.1ad), in both directions.
    #[test]
    fn tags_left_in_the_frame_do_not_move_a_subscriber() {
        let prog = program(&home()).unwrap();
        for (sub, ep) in [
            ("192.168.1.100", "192.168.1.200"), // two home sides
            ("10.9.8.7", "198.18.3.4"),
            ("fd00::5", "2001:db8:ff::1"),
            ("203.0.113.1", "198.51.100.2"),
        ] {
            let plain = run(&prog, &pkt(sub, ep)).unwrap();
            assert_eq!(run(&prog, &pkt(ep, sub)), Some(plain), "{sub} <-> {ep}");
            for stack in [&[0x8100][..], &[0x88a8, 0x8100], &[0x8100, 0x8100]] {
                for p in [pkt(sub, ep), pkt(ep, sub)] {
                    assert_eq!(
                        run(&prog, &tagged(&p, stack)),
                        Some(plain),
                        "{sub} {stack:x?}"
                    );
                }
            }
        }
        // Three tags left in the frame: not looked into (first ring), and never a bad load.
        let deep = tagged(&pkt("10.0.0.1", "198.18.0.1"), &[0x8100, 0x8100, 0x8100]);
        assert_eq!(run(&prog, &deep), Some(0));
        // A tag with nothing after it ends the program.
        let cut = Pkt {
            proto: 0x8100,
            net: vec![0, 1],
        };
        assert_eq!(run(&prog, &cut), None);
    }

    #[test]
    fn non_ip_goes_to_the_first_ring_and_short_headers_end_the_program() {
        let prog = program(&home()).unwrap();
        let arp = Pkt {
            proto: 0x0806,
            net: vec![0; 28],
        };
        assert_eq!(run(&prog, &arp), Some(0));
        let short = Pkt {
            proto: 0x0800,
            net: vec![0x45; 10],
        };
        assert_eq!(run(&prog, &short), None);
    }

    #[test]
    fn no_home_prefix_and_too_many_prefixes() {
        // Without home prefixes every pair is transit: still symmetric.
        let prog = program(&[]).unwrap();
        assert_eq!(
            run(&prog, &pkt("10.0.0.1", "198.18.0.1")),
            run(&prog, &pkt("198.18.0.1", "10.0.0.1"))
        );
        let many: Vec<HomePrefix> = (0..=MAX_PREFIXES)
            .map(|i| net(&format!("10.{i}.0.0/16")))
            .collect();
        assert!(matches!(
            program(&many),
            Err(SteerError::TooManyPrefixes(_))
        ));
        // The most a program may hold (IPv6 prefixes of four words each) still assembles.
        let most: Vec<HomePrefix> = (0..MAX_PREFIXES)
            .map(|i| net(&format!("2001:db8:{i:x}::/127")))
            .chain((0..MAX_PREFIXES).map(|i| net(&format!("10.{i}.0.0/16"))))
            .collect();
        let prog = program(&most).unwrap();
        let a = run(&prog, &pkt("2001:db8:17::1", "2001:db8:ffff::1")).unwrap();
        let b = run(&prog, &pkt("2001:db8:ffff::2", "2001:db8:17::1")).unwrap();
        assert_eq!(a, b);
    }
}
