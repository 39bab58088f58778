//! Flow records as JSON lines.

use std::io::Write;

use burstwatch_engine::{proto_name, tcp_flag_letters, FlowRecord};
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

#[derive(Serialize)]
struct FlowJson<'a> {
    proto: Proto,
    src: std::net::IpAddr,
    sport: u16,
    dst: std::net::IpAddr,
    dport: u16,
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

fn is_zero32(v: &u32) -> bool {
    *v == 0
}

/// Write one record as a JSON line, its addresses (tunnel outer ones included) passed through
/// `privacy`.
pub fn write_record<W: Write>(
    out: &mut W,
    r: &FlowRecord,
    privacy: &Privacy,
) -> std::io::Result<()> {
    let tcp = r.proto == 6;
    let ctx = r.context.as_deref();
    let json = FlowJson {
        proto: Proto::of(r.proto),
        src: privacy.addr(r.src),
        sport: r.sport,
        dst: privacy.addr(r.dst),
        dport: r.dport,
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
    serde_json::to_writer(&mut *out, &json)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

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
