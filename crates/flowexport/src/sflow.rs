//! sFlow v5 (sflow.org, "sFlow Version 5"): flow samples become sampled packets, their
//! headers decoded by the same wire decoder that reads captures.

use std::collections::VecDeque;
use std::net::IpAddr;

use burstwatch_wire::{decode, Decoded, LinkType, PacketMeta};
use sflow_parser::models::core::{Address, FlowData};
use sflow_parser::models::record_flows::HeaderProtocol;
use sflow_parser::models::FlowRecord;
use sflow_parser::{parse_datagram, SampleData};

use crate::bins::Key;
use crate::interfaces::{self, IfCounters};

/// One sampled packet: its directional 5-tuple, IP length and the sampling rate it was
/// taken at (0 when the agent said 0).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sampled {
    pub key: Key,
    pub ip_len: u32,
    pub rate: u32,
}

/// What decoding one datagram counted.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Outcome {
    pub errors: u64,
    pub zero_rates: u64,
}

/// Decode one sFlow v5 datagram: its flow samples' packets into `out`, the generic interface
/// counters of its counter samples into `ifs` as (agent, ifIndex, counters) (both appended).
pub(crate) fn decode_datagram(
    datagram: &[u8],
    out: &mut VecDeque<Sampled>,
    ifs: &mut Vec<(IpAddr, u32, IfCounters)>,
) -> Outcome {
    let mut res = Outcome::default();
    let dgram = match parse_datagram(datagram) {
        Ok(d) => d,
        Err(_) => {
            res.errors += 1;
            return res;
        }
    };
    let mut meta = PacketMeta::default();
    let agent = match dgram.agent_address {
        Address::IPv4(a) => Some(IpAddr::V4(a)),
        Address::IPv6(a) => Some(IpAddr::V6(a)),
        Address::Unknown => None,
    };
    for sample in &dgram.samples {
        let (rate, records) = match &sample.sample_data {
            SampleData::FlowSample(s) => (s.sampling_rate, &s.flow_records),
            SampleData::FlowSampleExpanded(s) => (s.sampling_rate, &s.flow_records),
            SampleData::CountersSample(s) => {
                if let Some(a) = agent {
                    ifs.extend(interfaces::generic(&s.counters).map(|(i, c)| (a, i, c)));
                }
                continue;
            }
            SampleData::CountersSampleExpanded(s) => {
                if let Some(a) = agent {
                    ifs.extend(interfaces::generic(&s.counters).map(|(i, c)| (a, i, c)));
                }
                continue;
            }
            _ => continue,
        };
        if rate == 0 {
            res.zero_rates += 1;
        }
        match packet(records, &mut meta) {
            Ok(Some((key, ip_len))) => out.push_back(Sampled { key, ip_len, rate }),
            Ok(None) => {}
            Err(()) => res.errors += 1,
        }
    }
    res
}

/// The sampled packet of one flow sample: from its raw header if it has one, else from its
/// sampled IPv4/IPv6 record. `Ok(None)`: not IP (or no packet record at all).
fn packet(records: &[FlowRecord], meta: &mut PacketMeta) -> Result<Option<(Key, u32)>, ()> {
    for r in records {
        if let FlowData::SampledHeader(h) = &r.flow_data {
            let link = match h.protocol {
                HeaderProtocol::EthernetIso88023 => LinkType::ETHERNET,
                HeaderProtocol::Ipv4 | HeaderProtocol::Ipv6 => LinkType::RAW,
                _ => return Err(()),
            };
            meta.clear();
            return match decode(link, &h.header, meta) {
                Ok(Decoded::Ip) => Ok(Some((
                    Key {
                        src: meta.src,
                        dst: meta.dst,
                        proto: meta.proto,
                        sport: meta.sport,
                        dport: meta.dport,
                    },
                    meta.ip_len,
                ))),
                Ok(Decoded::NotIp) => Ok(None),
                Err(_) => Err(()),
            };
        }
    }
    for r in records {
        let (src, dst, proto, sport, dport, len) = match &r.flow_data {
            FlowData::SampledIpv4(s) => (
                IpAddr::V4(s.src_ip),
                IpAddr::V4(s.dst_ip),
                s.protocol,
                s.src_port,
                s.dst_port,
                s.length,
            ),
            FlowData::SampledIpv6(s) => (
                IpAddr::V6(s.src_ip),
                IpAddr::V6(s.dst_ip),
                s.protocol,
                s.src_port,
                s.dst_port,
                s.length,
            ),
            _ => continue,
        };
        let key = Key {
            src,
            dst,
            proto: u8::try_from(proto).map_err(|_| ())?,
            sport: u16::try_from(sport).unwrap_or(0),
            dport: u16::try_from(dport).unwrap_or(0),
        };
        return Ok(Some((key, len)));
    }
    Ok(None)
}
