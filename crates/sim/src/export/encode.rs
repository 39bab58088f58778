//! Encoders of export datagrams: NetFlow v5, NetFlow v9 (RFC 3954), IPFIX (RFC 7011) and
//! sFlow v5 (sflow.org). Each writes one whole datagram into a buffer; the caller decides
//! what goes into which datagram.

use std::net::IpAddr;

/// One unidirectional flow record to export (counts as metered: sampled packets only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol.
    pub proto: u8,
    /// Source port (0 without ports).
    pub sport: u16,
    /// Destination port (0 without ports).
    pub dport: u16,
    /// IP bytes counted.
    pub bytes: u64,
    /// Packets counted.
    pub packets: u64,
    /// First packet, ns since 1970.
    pub start_ns: i64,
    /// Last packet, ns since 1970.
    pub end_ns: i64,
}

/// What every datagram header of one exporter says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Export instant, ns since 1970.
    pub export_ns: i64,
    /// When the exporter booted (its uptime counts from here), ns since 1970.
    pub boot_ns: i64,
    /// Sequence number (v5/IPFIX: records sent before; v9/sFlow: datagrams sent before).
    pub sequence: u32,
    /// Observation domain (IPFIX), source id (v9), engine id (v5), sub-agent (sFlow).
    pub domain: u32,
    /// 1-in-N packet sampling (1: unsampled).
    pub sampling: u32,
}

impl Header {
    fn uptime_ms(&self, t_ns: i64) -> u32 {
        // NetFlow uptime is a u32 of ms that wraps; the truncation is the wire format's.
        ((t_ns - self.boot_ns).max(0) / 1_000_000) as u32
    }
    fn export_secs(&self) -> u32 {
        u32::try_from(self.export_ns.div_euclid(1_000_000_000)).unwrap_or(0)
    }
}

/// Data template ids: IPv4 and IPv6 records; the options template with the sampling rate.
pub const TEMPLATE_V4: u16 = 256;
/// The IPv6 record template.
pub const TEMPLATE_V6: u16 = 257;
/// The options template (sampling).
pub const TEMPLATE_OPTIONS: u16 = 258;

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}
fn put_ip(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}
fn set16(out: &mut [u8], at: usize, v: u16) {
    out[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
fn len16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}
fn sat32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Most records in one NetFlow v5 datagram.
pub const V5_MAX_RECORDS: usize = 30;

/// A NetFlow v5 datagram of up to 30 IPv4 records (others are left out: v5 has no IPv6).
/// Byte and packet counts above 2^32 - 1 are cut to it, as a v5 exporter's 32-bit counters do.
pub fn netflow5(h: &Header, records: &[Record], out: &mut Vec<u8>) {
    out.clear();
    let recs: Vec<&Record> = records
        .iter()
        .filter(|r| r.src.is_ipv4() && r.dst.is_ipv4())
        .take(V5_MAX_RECORDS)
        .collect();
    put16(out, 5);
    put16(out, len16(recs.len()));
    put32(out, h.uptime_ms(h.export_ns));
    put32(out, h.export_secs());
    put32(
        out,
        u32::try_from(h.export_ns.rem_euclid(1_000_000_000)).unwrap_or(0),
    );
    put32(out, h.sequence);
    out.push(0); // engine type
    out.push((h.domain & 0xff) as u8);
    // Mode 1 (deterministic 1-in-N) in the top two bits when sampled.
    let mode: u16 = if h.sampling > 1 { 0x4000 } else { 0 };
    put16(out, mode | (h.sampling.min(0x3FFF) as u16 & 0x3FFF));
    for r in recs {
        put_ip(out, r.src);
        put_ip(out, r.dst);
        put32(out, 0); // next hop
        put16(out, 1); // input
        put16(out, 2); // output
        put32(out, sat32(r.packets));
        put32(out, sat32(r.bytes));
        put32(out, h.uptime_ms(r.start_ns));
        put32(out, h.uptime_ms(r.end_ns));
        put16(out, r.sport);
        put16(out, r.dport);
        out.push(0);
        out.push(0); // tcp flags
        out.push(r.proto);
        out.push(0); // tos
        put32(out, 0); // AS numbers
        out.push(0);
        out.push(0); // masks
        put16(out, 0);
    }
}

/// (field id, length) of the v9 and IPFIX record templates: the same fields but for the times
/// (v9: first/last switched as uptime milliseconds; IPFIX: flowStart/EndMilliseconds).
fn template_fields(ipfix: bool, v6: bool) -> [(u16, u16); 9] {
    let (s, d, l) = if v6 { (27, 28, 16) } else { (8, 12, 4) };
    let (first, last) = if ipfix {
        ((152, 8), (153, 8))
    } else {
        ((22, 4), (21, 4))
    };
    [
        (s, l),
        (d, l),
        (7, 2),
        (11, 2),
        (4, 1),
        (1, 8),
        (2, 8),
        first,
        last,
    ]
}

/// The body of a template set: the IPv4 and the IPv6 record template.
fn record_templates(out: &mut Vec<u8>, ipfix: bool) {
    for (id, v6) in [(TEMPLATE_V4, false), (TEMPLATE_V6, true)] {
        put16(out, id);
        put16(out, 9);
        for (f, l) in template_fields(ipfix, v6) {
            put16(out, f);
            put16(out, l);
        }
    }
}

/// The fields of a v9 or IPFIX data record before its times, in template order.
fn put_key_and_counts(out: &mut Vec<u8>, r: &Record) {
    put_ip(out, r.src);
    put_ip(out, r.dst);
    put16(out, r.sport);
    put16(out, r.dport);
    out.push(r.proto);
    put64(out, r.bytes);
    put64(out, r.packets);
}

/// Bytes of one data record (v9 or IPFIX: the same lengths but for the times).
pub fn record_len(ipfix: bool, v6: bool) -> usize {
    template_fields(ipfix, v6)
        .iter()
        .map(|&(_, l)| usize::from(l))
        .sum()
}

/// Append a set/flowset `id` whose body `body` writes, padded to 4 bytes.
fn set(out: &mut Vec<u8>, id: u16, body: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    put16(out, id);
    put16(out, 0);
    body(out);
    while (out.len() - at) % 4 != 0 {
        out.push(0);
    }
    let n = len16(out.len() - at);
    set16(out, at + 2, n);
}

fn data_sets(
    out: &mut Vec<u8>,
    records: &[Record],
    mut one: impl FnMut(&mut Vec<u8>, &Record),
) -> usize {
    let mut n = 0;
    for v6 in [false, true] {
        let recs: Vec<&Record> = records.iter().filter(|r| r.src.is_ipv6() == v6).collect();
        if recs.is_empty() {
            continue;
        }
        n += recs.len();
        let id = if v6 { TEMPLATE_V6 } else { TEMPLATE_V4 };
        set(out, id, |out| {
            for r in recs {
                one(out, r);
            }
        });
    }
    n
}

/// A NetFlow v9 datagram: the templates (and, when sampled, an options template and its data
/// with the sampling interval, field 34) if `templates`, then the records.
pub fn netflow9(h: &Header, records: &[Record], templates: bool, out: &mut Vec<u8>) {
    out.clear();
    put16(out, 9);
    put16(out, 0); // count, set below
    put32(out, h.uptime_ms(h.export_ns));
    put32(out, h.export_secs());
    put32(out, h.sequence);
    put32(out, h.domain);
    let mut count = 0usize;
    if templates {
        set(out, 0, |out| record_templates(out, false));
        count += 2;
        if h.sampling > 1 {
            set(out, 1, |out| {
                put16(out, TEMPLATE_OPTIONS);
                put16(out, 4); // scope length: one (type, length)
                put16(out, 4); // option length: one (type, length)
                put16(out, 1); // scope: system
                put16(out, 4);
                put16(out, 34); // SAMPLING_INTERVAL
                put16(out, 4);
            });
            set(out, TEMPLATE_OPTIONS, |out| {
                put32(out, h.domain);
                put32(out, h.sampling);
            });
            count += 2;
        }
    }
    count += data_sets(out, records, |out, r| {
        put_key_and_counts(out, r);
        put32(out, h.uptime_ms(r.start_ns));
        put32(out, h.uptime_ms(r.end_ns));
    });
    set16(out, 2, len16(count));
}

/// An IPFIX message: the templates (and, when sampled, an options template scoped to the
/// observation domain with samplingPacketInterval 1 and samplingPacketSpace N - 1, IEs 305
/// and 306, and its data) if `templates`, then the records.
pub fn ipfix(h: &Header, records: &[Record], templates: bool, out: &mut Vec<u8>) {
    out.clear();
    put16(out, 10);
    put16(out, 0); // length, set below
    put32(out, h.export_secs());
    put32(out, h.sequence);
    put32(out, h.domain);
    if templates {
        set(out, 2, |out| record_templates(out, true));
        if h.sampling > 1 {
            set(out, 3, |out| {
                put16(out, TEMPLATE_OPTIONS);
                put16(out, 3); // fields
                put16(out, 1); // scope fields
                for (f, l) in [(149u16, 4u16), (305, 4), (306, 4)] {
                    put16(out, f);
                    put16(out, l);
                }
            });
            set(out, TEMPLATE_OPTIONS, |out| {
                put32(out, h.domain);
                put32(out, 1);
                put32(out, h.sampling - 1);
            });
        }
    }
    let ms = |t: i64| u64::try_from(t.div_euclid(1_000_000)).unwrap_or(0);
    data_sets(out, records, |out, r| {
        put_key_and_counts(out, r);
        put64(out, ms(r.start_ns));
        put64(out, ms(r.end_ns));
    });
    let n = len16(out.len());
    set16(out, 2, n);
}

/// One sampled packet for sFlow: the first bytes of its Ethernet frame and its whole length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketSample {
    /// The frame's first bytes (at most 128 are sent).
    pub header: Vec<u8>,
    /// The frame's length on the wire without FCS.
    pub frame_len: u32,
    /// Packets seen by the sampler so far (sample pool).
    pub pool: u32,
}

/// Bytes of the sampled header kept per packet.
pub const SFLOW_HEADER_BYTES: usize = 128;

/// An sFlow v5 datagram from agent `agent` (IPv4) with one flow sample (a sampled Ethernet
/// header record, format 1) per packet sample.
pub fn sflow(h: &Header, agent: [u8; 4], samples: &[PacketSample], out: &mut Vec<u8>) {
    out.clear();
    put32(out, 5);
    put32(out, 1); // agent address type: IPv4
    out.extend_from_slice(&agent);
    put32(out, h.domain); // sub-agent id
    put32(out, h.sequence);
    put32(out, h.uptime_ms(h.export_ns));
    put32(out, u32::try_from(samples.len()).unwrap_or(0));
    for (i, s) in samples.iter().enumerate() {
        let hdr = &s.header[..s.header.len().min(SFLOW_HEADER_BYTES)];
        let pad = (4 - hdr.len() % 4) % 4;
        let rec_len = 16 + hdr.len() + pad;
        put32(out, 1); // enterprise 0, format 1: flow sample
        put32(out, sat32((32 + 8 + rec_len) as u64));
        put32(out, h.sequence.wrapping_mul(64).wrapping_add(i as u32));
        put32(out, 1); // source id: ifIndex 1
        put32(out, h.sampling);
        put32(out, s.pool);
        put32(out, 0); // drops
        put32(out, 1); // input
        put32(out, 2); // output
        put32(out, 1); // one flow record
        put32(out, 1); // enterprise 0, format 1: sampled header
        put32(out, sat32(rec_len as u64));
        put32(out, 1); // header protocol: Ethernet
        put32(out, s.frame_len + 4); // frame length with FCS
        put32(out, 4); // stripped: the FCS
        put32(out, sat32(hdr.len() as u64));
        out.extend_from_slice(hdr);
        out.extend(std::iter::repeat_n(0u8, pad));
    }
}
