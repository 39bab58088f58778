//! Records → table rows. Every address and alert id goes through [`AddrText`].

use std::net::IpAddr;

use burstwatch_engine::detect::BurstRecord;
use burstwatch_engine::{proto_name, tcp_flag_letters, Alert, FlowRecord};

use crate::aggregate::{EndpointAgg, HostAgg};
use crate::schema::REASON_NAMES;
use crate::table::Val;
use crate::timeline::Window;

/// How identifying values are written, e.g. pseudonymised: every address, and every alert id
/// (ids hash the address pair, so a pseudonymising map replaces them too).
pub trait OutputMap: Send {
    /// The address as written.
    fn addr(&self, ip: IpAddr) -> IpAddr;
    /// The alert id as written.
    fn alert_id(&self, id: u64) -> u64;
}

/// The one place where addresses and alert ids become text, for every table and the HTML
/// page; the identity unless an [`OutputMap`] is set.
#[derive(Default)]
pub struct AddrText {
    map: Option<Box<dyn OutputMap>>,
}

impl AddrText {
    /// Apply `map` to every address and alert id written from now on.
    pub fn set_map(&mut self, map: Box<dyn OutputMap>) {
        self.map = Some(map);
    }

    /// An address as written in the report.
    pub fn text(&self, ip: IpAddr) -> String {
        match &self.map {
            Some(m) => m.addr(ip).to_string(),
            None => ip.to_string(),
        }
    }

    /// An alert id as written in the report: 16 hex digits.
    pub fn id(&self, id: u64) -> String {
        id_text(self.map.as_ref().map_or(id, |m| m.alert_id(id)))
    }
}

/// Seconds (of a duration) with microsecond precision.
pub fn secs(ns: i64) -> f64 {
    ns.div_euclid(1_000) as f64 / 1e6
}

/// A timestamp cell: microseconds since the Unix epoch (UTC), the precision of the JSON
/// output (which prints the same instant as seconds).
fn ts(ns: i64) -> Val {
    Val::Ts(Some(ns.div_euclid(1_000)))
}

/// Protocol as text: its conventional name, else its number.
pub fn proto_text(proto: u8) -> String {
    proto_name(proto).map_or_else(|| proto.to_string(), str::to_string)
}

/// Alert id as 16 hex digits (unmapped: use [`AddrText::id`] for output).
fn id_text(id: u64) -> String {
    format!("{id:016x}")
}

fn s(v: String) -> Val {
    Val::S(Some(v))
}
fn u64v(v: u64) -> Val {
    Val::U64(Some(v))
}
fn f64v(v: f64) -> Val {
    Val::F64(Some(v))
}

/// A `flows` row.
pub fn flow_row(a: &AddrText, r: &FlowRecord) -> Vec<Val> {
    let tcp = r.proto == 6;
    let ctx = r.context.as_deref();
    let outer = ctx.and_then(|c| c.tunnels.first());
    vec![
        s(proto_text(r.proto)),
        s(a.text(r.src)),
        Val::U32(Some(u32::from(r.sport))),
        s(a.text(r.dst)),
        Val::U32(Some(u32::from(r.dport))),
        ts(r.first_ns()),
        ts(r.last_ns()),
        u64v(u64::from(r.fwd.packets)),
        u64v(u64::from(r.rev.packets)),
        u64v(r.fwd.bytes),
        u64v(r.rev.bytes),
        u64v(r.fwd.payload),
        u64v(r.rev.payload),
        Val::S(tcp.then(|| tcp_flag_letters(r.fwd.tcp_flags))),
        Val::S(tcp.then(|| tcp_flag_letters(r.rev.tcp_flags))),
        u64v(u64::from(r.fwd.fragments)),
        u64v(u64::from(r.rev.fragments)),
        s(r.end_reason.as_str().to_string()),
        Val::S(ctx.filter(|c| !c.vlans.is_empty()).map(|c| {
            c.vlans
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",")
        })),
        Val::U32(ctx.and_then(|c| c.mpls_label)),
        Val::S(ctx.filter(|c| !c.tunnels.is_empty()).map(|c| {
            c.tunnels
                .iter()
                .map(|t| t.kind.as_str())
                .collect::<Vec<_>>()
                .join("/")
        })),
        Val::S(outer.map(|t| a.text(t.outer_src))),
        Val::S(outer.map(|t| a.text(t.outer_dst))),
    ]
}

/// An `alerts` row.
pub fn alert_row(a: &AddrText, al: &Alert) -> Vec<Val> {
    let mut row = vec![
        s(a.id(al.id)),
        s(al.kind.as_str().to_string()),
        s(al.severity.as_str().to_string()),
        f64v(al.score),
        s(a.text(al.src)),
        s(a.text(al.dst)),
        Val::U32(Some(u32::from(al.dst_port))),
        s(proto_text(al.proto)),
        ts(al.start_ns),
        ts(al.end_ns),
        ts(al.detected_ns),
        u64v(al.bytes_out),
        u64v(al.bytes_in),
        u64v(al.packets_out),
        u64v(al.packets_in),
        f64v(al.peak_bps),
        u64v(u64::from(al.flows)),
        u64v(u64::from(al.occurrence)),
        Val::F64(al.baseline_bps),
        u64v(u64::from(al.endpoint.prevalence)),
        Val::B(Some(al.endpoint.popular)),
        Val::B(Some(al.endpoint.rarity_certain)),
        Val::Ts(al.endpoint.first_seen_ns.map(|ns| ns.div_euclid(1_000))),
        Val::U32(al.endpoint.asn),
        Val::S(al.endpoint.country.clone()),
        Val::B(Some(al.endpoint.watched)),
    ];
    for name in REASON_NAMES {
        let r = al.reasons.iter().find(|r| r.name == name);
        row.push(Val::F64(r.map(|r| r.value)));
        row.push(Val::F64(r.map(|r| r.contribution)));
    }
    let json: Vec<serde_json::Value> = al
        .reasons
        .iter()
        .map(|r| serde_json::json!({"name": r.name, "value": r.value, "contribution": r.contribution}))
        .collect();
    row.push(s(serde_json::Value::Array(json).to_string()));
    row
}

/// A `bursts` row.
pub fn burst_row(a: &AddrText, b: &BurstRecord) -> Vec<Val> {
    vec![
        s(a.text(b.src)),
        s(a.text(b.dst)),
        s(proto_text(b.proto)),
        Val::U32(Some(u32::from(b.dst_port))),
        ts(b.start_ns),
        ts(b.end_ns),
        u64v(b.bytes_up),
        u64v(b.bytes_down),
        u64v(b.packets_up),
        u64v(b.packets_down),
        f64v(b.peak_bps),
        f64v(b.entry_bps),
        Val::F64(b.baseline_bps),
        u64v(u64::from(b.flows)),
        s(b.outcome.as_str().to_string()),
        Val::F64(b.score),
        Val::S(b.alert_id.map(|id| a.id(id))),
    ]
}

/// A `hosts` row.
pub fn host_row(a: &AddrText, ip: IpAddr, h: &HostAgg) -> Vec<Val> {
    let mut row = vec![
        s(a.text(ip)),
        u64v(h.bytes_up),
        u64v(h.bytes_down),
        u64v(h.packets_up),
        u64v(h.packets_down),
        u64v(h.flows),
        u64v(h.bursts),
        u64v(h.alerts),
    ];
    let top = h.top(5);
    for i in 0..5 {
        let t = top.get(i);
        row.push(Val::S(t.map(|t| a.text(t.0))));
        row.push(Val::U64(t.map(|t| t.1)));
    }
    row
}

/// An `endpoints` row.
pub fn endpoint_row(a: &AddrText, ip: IpAddr, e: &EndpointAgg) -> Vec<Val> {
    vec![
        s(a.text(ip)),
        u64v(e.hosts.len() as u64),
        Val::B(Some(e.capped)),
        ts(e.first_ns),
        ts(e.last_ns),
        u64v(e.bytes_up),
        u64v(e.bytes_down),
        u64v(e.flows),
    ]
}

/// `timeline` rows of one window.
pub fn timeline_rows(a: &AddrText, alert: &Alert, w: &Window) -> Vec<Vec<Val>> {
    let (id, src, dst) = (a.id(alert.id), a.text(w.src), a.text(w.dst));
    w.seconds()
        .map(|(sec, b)| {
            vec![
                s(id.clone()),
                s(src.clone()),
                s(dst.clone()),
                Val::Ts(Some(sec.saturating_mul(1_000_000))),
                u64v(b[0]),
                u64v(b[1]),
                u64v(b[2]),
                u64v(b[3]),
                Val::B(Some(sec >= w.span.0 && sec <= w.span.1)),
            ]
        })
        .collect()
}
