//! Flow records as JSON lines.

use std::io::Write;
use std::net::IpAddr;

use burstwatch_engine::{proto_name, FlowRecord, TCP_FLAG_LETTERS};
use burstwatch_wire::proto::TCP;
use serde::Serialize;

use crate::privacy::Privacy;

/// Seconds since the epoch with microsecond precision, as a JSON number.
#[derive(Debug, Clone, Copy)]
pub struct Ts(pub i64);

impl Serialize for Ts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Whole microseconds (< 2^53) divided by an exact 1e6 give the double nearest to the
        // decimal value, which prints as exactly six or fewer decimals.
        s.serialize_f64(self.0.div_euclid(1_000) as f64 / 1e6)
    }
}

/// A protocol as JSON: its conventional name, else its number.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Proto {
    /// `tcp`, `udp`, `icmp`, `icmp6`, `sctp`.
    Name(&'static str),
    /// Any other IP protocol number.
    Number(u8),
}

impl Proto {
    /// The JSON form of an IP protocol number.
    pub fn of(proto: u8) -> Proto {
        proto_name(proto).map_or(Proto::Number(proto), Proto::Name)
    }
}

#[derive(Serialize)]
struct TunnelJson {
    kind: &'static str,
    outer_src: std::net::IpAddr,
    outer_dst: std::net::IpAddr,
    #[serde(skip_serializing_if = "is_zero")]
    outer_sport: u16,
    #[serde(skip_serializing_if = "is_zero")]
    outer_dport: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u32>,
}

fn is_zero(v: &u16) -> bool {
    *v == 0
}

fn tunnels_json(
    layers: &[burstwatch_wire::TunnelLayer],
    privacy: &Privacy,
) -> Option<Vec<TunnelJson>> {
    (!layers.is_empty()).then(|| {
        layers
            .iter()
            .map(|t| TunnelJson {
                kind: t.kind.as_str(),
                outer_src: privacy.addr(t.outer_src),
                outer_dst: privacy.addr(t.outer_dst),
                outer_sport: t.outer_sport,
                outer_dport: t.outer_dport,
                id: t.id,
            })
            .collect()
    })
}

/// The Community ID seed of every output (the specification's default).
pub const COMMUNITY_ID_SEED: u16 = 0;

/// Write one record as a JSON line, its addresses (tunnel outer ones included) passed through
/// `privacy`; its Community ID is that of the addresses as written. A named sensor
/// (`daemon.sensor` or `cluster.sensor_id`) is written as `sensor`.
///
/// Written field by field rather than through serde (callgrind: 4 % fewer instructions for a
/// whole `analyze --flows` run). The field names, their order and the numbers are those of the
/// serde form, which the tests keep as the reference.
pub fn write_record<W: Write>(
    out: &mut W,
    r: &FlowRecord,
    privacy: &Privacy,
    sensor: Option<&str>,
) -> std::io::Result<()> {
    let mut line = Line(Vec::with_capacity(416));
    line.raw(b"{\"timestamp\":\"");
    crate::timestamp::write_rfc3339(&mut line.0, r.first_ns());
    line.raw(b"\"");
    if let Some(s) = sensor.filter(|s| !s.is_empty()) {
        line.raw(b",\"sensor\":");
        line.json(&s)?;
    }
    line.raw(b",\"proto\":");
    match proto_name(r.proto) {
        Some(name) => line.string(name),
        None => line.uint(u64::from(r.proto)),
    }
    let (src, dst) = (privacy.addr(r.src), privacy.addr(r.dst));
    line.raw(b",\"src\":");
    line.addr(src);
    line.raw(b",\"sport\":");
    line.uint(u64::from(r.sport));
    line.raw(b",\"dst\":");
    line.addr(dst);
    line.raw(b",\"dport\":");
    line.uint(u64::from(r.dport));
    // Over the addresses as written: pseudonyms hash to IDs that do not reveal the originals.
    if let Some(id) = r.community_id(COMMUNITY_ID_SEED, src, dst) {
        line.raw(b",\"community_id\":");
        line.string(&id);
    }
    line.raw(b",\"first_ts\":");
    line.ts(r.first_ns());
    line.raw(b",\"last_ts\":");
    line.ts(r.last_ns());
    line.raw(b",\"packets_fwd\":");
    line.uint(u64::from(r.fwd.packets));
    line.raw(b",\"packets_rev\":");
    line.uint(u64::from(r.rev.packets));
    line.raw(b",\"bytes_fwd\":");
    line.uint(r.fwd.bytes);
    line.raw(b",\"bytes_rev\":");
    line.uint(r.rev.bytes);
    line.raw(b",\"payload_fwd\":");
    line.uint(r.fwd.payload);
    line.raw(b",\"payload_rev\":");
    line.uint(r.rev.payload);
    if r.proto == TCP {
        line.raw(b",\"tcp_flags_fwd\":");
        line.flags(r.fwd.tcp_flags);
        line.raw(b",\"tcp_flags_rev\":");
        line.flags(r.rev.tcp_flags);
    }
    if r.fwd.fragments != 0 {
        line.raw(b",\"fragments_fwd\":");
        line.uint(u64::from(r.fwd.fragments));
    }
    if r.rev.fragments != 0 {
        line.raw(b",\"fragments_rev\":");
        line.uint(u64::from(r.rev.fragments));
    }
    line.raw(b",\"end_reason\":");
    line.string(r.end_reason.as_str());
    if let Some(ctx) = r.context.as_deref() {
        if !ctx.vlans.is_empty() {
            line.raw(b",\"vlan\":[");
            for (i, v) in ctx.vlans.iter().enumerate() {
                if i > 0 {
                    line.raw(b",");
                }
                line.uint(u64::from(*v));
            }
            line.raw(b"]");
        }
        if let Some(label) = ctx.mpls_label {
            line.raw(b",\"mpls_label\":");
            line.uint(u64::from(label));
        }
        // Tunnels are rare: the serde form is fine there.
        if let Some(t) = tunnels_json(&ctx.tunnels, privacy) {
            line.raw(b",\"tunnel\":");
            line.json(&t)?;
        }
        if let Some(t) = tunnels_json(&ctx.tunnels_rev, privacy) {
            line.raw(b",\"tunnel_rev\":");
            line.json(&t)?;
        }
    }
    line.raw(b"}\n");
    out.write_all(line.bytes())
}

/// One JSON line under construction.
#[derive(Default)]
struct Line(Vec<u8>);

impl Line {
    #[inline]
    fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// A string that needs no escaping (the fixed names of this module, Community IDs).
    fn string(&mut self, s: &str) {
        self.raw(b"\"");
        self.raw(s.as_bytes());
        self.raw(b"\"");
    }

    fn uint(&mut self, v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = v;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.raw(&digits[i..]);
    }

    /// Seconds with the microseconds as decimals, trailing zeros dropped but one kept (`1.0`,
    /// `1700000000.12345`): the text serde gives the same number as an `f64` (see [`Ts`]),
    /// written from the integer, so exact at any magnitude.
    fn ts(&mut self, ns: i64) {
        let us = ns.div_euclid(1_000);
        if us < 0 {
            self.raw(b"-");
        }
        let us = us.unsigned_abs();
        self.uint(us / 1_000_000);
        let mut frac = us % 1_000_000;
        let mut width = 6;
        while width > 1 && frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        let mut digits = [b'0'; 7];
        digits[0] = b'.';
        for d in digits[1..=width].iter_mut().rev() {
            *d = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        self.raw(&digits[..=width]);
    }

    fn addr(&mut self, ip: IpAddr) {
        self.raw(b"\"");
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.raw(b".");
                    }
                    self.uint(u64::from(octet));
                }
            }
            IpAddr::V6(v6) => {
                // RFC 5952 text (zero-run compression, embedded IPv4) as the standard library
                // writes it; an IPv6 address never exceeds 45 bytes.
                let mut text = [0u8; 48];
                let mut cursor = std::io::Cursor::new(&mut text[..]);
                if write!(cursor, "{v6}").is_ok() {
                    let n = usize::try_from(cursor.position()).unwrap_or(0);
                    self.raw(&text[..n]);
                }
            }
        }
        self.raw(b"\"");
    }

    /// TCP flag letters (see [`burstwatch_engine::tcp_flag_letters`]).
    fn flags(&mut self, flags: u8) {
        self.raw(b"\"");
        for (bit, c) in TCP_FLAG_LETTERS {
            if flags & bit != 0 {
                self.raw(&[c]);
            }
        }
        self.raw(b"\"");
    }

    fn json<T: Serialize>(&mut self, v: &T) -> std::io::Result<()> {
        let text = serde_json::to_vec(v)?;
        self.raw(&text);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;
    use burstwatch_engine::{tcp_flag_letters, DirStats, EndReason, FlowContext};
    use burstwatch_wire::{TunnelKind, TunnelLayer};
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn is_zero32(v: &u32) -> bool {
        *v == 0
    }

    /// The derived serde form the hand-written writer must reproduce byte for byte.
    #[derive(Serialize)]
    struct FlowJson<'a> {
        timestamp: crate::timestamp::Rfc3339,
        #[serde(skip_serializing_if = "Option::is_none")]
        sensor: Option<&'a str>,
        proto: Proto,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        community_id: Option<String>,
        first_ts: Ts,
        last_ts: Ts,
        packets_fwd: u32,
        packets_rev: u32,
        bytes_fwd: u64,
        bytes_rev: u64,
        payload_fwd: u64,
        payload_rev: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        tcp_flags_fwd: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tcp_flags_rev: Option<String>,
        #[serde(skip_serializing_if = "is_zero32")]
        fragments_fwd: u32,
        #[serde(skip_serializing_if = "is_zero32")]
        fragments_rev: u32,
        end_reason: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        vlan: Option<&'a [u16]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        mpls_label: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tunnel: Option<Vec<TunnelJson>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tunnel_rev: Option<Vec<TunnelJson>>,
    }

    fn reference(r: &FlowRecord, privacy: &Privacy, sensor: Option<&str>) -> Vec<u8> {
        let tcp = r.proto == 6;
        let ctx = r.context.as_deref();
        let json = FlowJson {
            timestamp: crate::timestamp::Rfc3339(r.first_ns()),
            sensor: sensor.filter(|s| !s.is_empty()),
            proto: Proto::of(r.proto),
            src: privacy.addr(r.src),
            sport: r.sport,
            dst: privacy.addr(r.dst),
            dport: r.dport,
            community_id: r.community_id(0, privacy.addr(r.src), privacy.addr(r.dst)),
            first_ts: Ts(r.first_ns()),
            last_ts: Ts(r.last_ns()),
            packets_fwd: r.fwd.packets,
            packets_rev: r.rev.packets,
            bytes_fwd: r.fwd.bytes,
            bytes_rev: r.rev.bytes,
            payload_fwd: r.fwd.payload,
            payload_rev: r.rev.payload,
            tcp_flags_fwd: tcp.then(|| tcp_flag_letters(r.fwd.tcp_flags)),
            tcp_flags_rev: tcp.then(|| tcp_flag_letters(r.rev.tcp_flags)),
            fragments_fwd: r.fwd.fragments,
            fragments_rev: r.rev.fragments,
            end_reason: r.end_reason.as_str(),
            vlan: ctx
                .filter(|c| !c.vlans.is_empty())
                .map(|c| c.vlans.as_slice()),
            mpls_label: ctx.and_then(|c| c.mpls_label),
            tunnel: ctx.and_then(|c| tunnels_json(&c.tunnels, privacy)),
            tunnel_rev: ctx.and_then(|c| tunnels_json(&c.tunnels_rev, privacy)),
        };
        let mut v = serde_json::to_vec(&json).unwrap();
        v.push(b'\n');
        v
    }

    fn written(r: &FlowRecord) -> Vec<u8> {
        let mut v = Vec::new();
        write_record(&mut v, r, &Privacy::disabled(), None).unwrap();
        v
    }

    fn addr() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            // Zero runs of every length and the IPv4-mapped and -compatible forms.
            (any::<u128>(), any::<u8>(), 0u32..4).prop_map(|(a, zeros, kind)| {
                let a = match kind {
                    0 => a,
                    1 => a & !(u128::from(zeros) * 0x0001_0001_0001_0001_0001_0001_0001_0001),
                    2 => 0xffff_0000_0000 | (a & 0xffff_ffff),
                    _ => a >> (u32::from(zeros) % 128),
                };
                IpAddr::V6(Ipv6Addr::from(a))
            }),
        ]
    }

    fn dir() -> impl Strategy<Value = DirStats> {
        (
            any::<u32>(),
            prop_oneof![Just(0u32), any::<u32>()],
            any::<u64>(),
            any::<u64>(),
            // Timestamps up to 2^31 s, where an f64 holds every microsecond exactly.
            -(1i64 << 31) * 1_000_000_000..(1i64 << 31) * 1_000_000_000,
            0i64..4_000_000_000_000,
            any::<u8>(),
        )
            .prop_map(|(packets, fragments, bytes, payload, first, span, flags)| {
                // Microsecond multiples (and some with sub-microsecond digits that are cut).
                let first = if packets % 2 == 0 {
                    first - first.rem_euclid(1_000)
                } else {
                    first
                };
                DirStats {
                    packets,
                    fragments,
                    bytes,
                    payload,
                    first_ns: first,
                    last_ns: first.saturating_add(span),
                    tcp_flags: flags,
                }
            })
    }

    fn tunnel() -> impl Strategy<Value = TunnelLayer> {
        (
            addr(),
            addr(),
            any::<u16>(),
            any::<u16>(),
            any::<Option<u32>>(),
        )
            .prop_map(
                |(outer_src, outer_dst, outer_sport, outer_dport, id)| TunnelLayer {
                    kind: TunnelKind::Vxlan,
                    outer_src,
                    outer_dst,
                    outer_sport,
                    outer_dport,
                    id,
                },
            )
    }

    fn context() -> impl Strategy<Value = Option<Box<FlowContext>>> {
        proptest::option::of(
            (
                proptest::collection::vec(any::<u16>(), 0..3),
                any::<Option<u32>>(),
                proptest::collection::vec(tunnel(), 0..3),
                proptest::collection::vec(tunnel(), 0..2),
            )
                .prop_map(|(vlans, mpls_label, tunnels, tunnels_rev)| {
                    Box::new(FlowContext {
                        vlans,
                        mpls_label,
                        tunnels,
                        tunnels_rev,
                    })
                }),
        )
    }

    fn record() -> impl Strategy<Value = FlowRecord> {
        (
            prop_oneof![Just(6u8), Just(17u8), Just(1u8), Just(58u8), any::<u8>()],
            addr(),
            any::<u16>(),
            addr(),
            any::<u16>(),
            dir(),
            dir(),
            0usize..EndReason::ALL.len(),
            (context(), any::<Option<[u8; 2]>>()),
        )
            .prop_map(
                |(proto, src, sport, dst, dport, fwd, rev, end, (context, icmp))| FlowRecord {
                    proto,
                    src,
                    sport,
                    dst,
                    dport,
                    fwd,
                    rev,
                    end_reason: EndReason::ALL[end],
                    context,
                    icmp,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn written_by_hand_equals_the_serde_form(r in record()) {
            prop_assert_eq!(
                String::from_utf8(written(&r)).unwrap(),
                String::from_utf8(reference(&r, &Privacy::disabled(), None)).unwrap()
            );
        }

        /// Any sensor name, quotes, backslashes and control characters included.
        #[test]
        fn a_sensor_name_is_escaped_as_serde_escapes_it(r in record(), sensor in "(?s).{0,24}") {
            let mut v = Vec::new();
            write_record(&mut v, &r, &Privacy::disabled(), Some(&sensor)).unwrap();
            prop_assert_eq!(
                String::from_utf8(v).unwrap(),
                String::from_utf8(reference(&r, &Privacy::disabled(), Some(&sensor))).unwrap()
            );
        }
    }

    #[test]
    fn long_lines_with_tunnels_are_whole() {
        let layer = TunnelLayer {
            kind: TunnelKind::Geneve,
            outer_src: "2001:db8:1:2:3:4:5:6".parse().unwrap(),
            outer_dst: "2001:db8:6:5:4:3:2:1".parse().unwrap(),
            outer_sport: 50_000,
            outer_dport: 6081,
            id: Some(u32::MAX),
        };
        let r = FlowRecord {
            proto: 17,
            src: "2001:db8::1".parse().unwrap(),
            sport: 1,
            dst: "2001:db8::2".parse().unwrap(),
            dport: 2,
            fwd: DirStats::default(),
            rev: DirStats::default(),
            end_reason: EndReason::Idle,
            context: Some(Box::new(FlowContext {
                vlans: vec![1, 2, 3],
                mpls_label: Some(16),
                tunnels: vec![layer; 4],
                tunnels_rev: vec![layer; 4],
            })),
            icmp: None,
        };
        let line = written(&r);
        assert!(line.len() > 512, "{}", line.len());
        assert_eq!(line, reference(&r, &Privacy::disabled(), None));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["tunnel_rev"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn timestamps_are_exact_where_an_f64_is_not() {
        let mut line = Line::default();
        line.ts(9_000_000_000_123_456_000);
        line.raw(b" ");
        line.ts(-1_500_000);
        line.raw(b" ");
        line.ts(-2_000_000_000);
        assert_eq!(line.bytes(), b"9000000000.123456 -0.0015 -2.0");
    }

    #[test]
    fn timestamps_print_with_microseconds() {
        let s = serde_json::to_string(&Ts(1_700_000_000_123_456_789)).unwrap();
        assert_eq!(s, "1700000000.123456");
        assert_eq!(serde_json::to_string(&Ts(1_000_000_000)).unwrap(), "1.0");
    }

    #[test]
    fn flags_in_conventional_order() {
        assert_eq!(tcp_flag_letters(0x12), "SA");
        assert_eq!(tcp_flag_letters(0x11), "AF");
        assert_eq!(tcp_flag_letters(0), "");
    }
}
