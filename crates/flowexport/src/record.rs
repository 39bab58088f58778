//! The fields of a NetFlow v9 or IPFIX data record that matter here, gathered from the
//! parser's typed field list into one flat record.

use std::net::IpAddr;

use netflow_parser::variable_versions::field_value::{DurationValue, FieldValue};
use netflow_parser::variable_versions::ipfix::lookup::{
    IANAIPFixField as Ie, IPFixField, ReverseInformationElement as Rev,
};
use netflow_parser::variable_versions::v9::lookup::V9Field as V9;

/// Seconds from the NTP epoch (1900) to the Unix epoch.
const NTP_UNIX_OFFSET_S: u64 = 2_208_988_800;

/// A field this crate reads, whatever the protocol called it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum F {
    Bytes,
    Packets,
    RevBytes,
    RevPackets,
    Proto,
    SrcPort,
    DstPort,
    Src,
    Dst,
    /// Start / end in ms of the exporter's uptime (v9 FIRST/LAST_SWITCHED, IPFIX 22/21).
    StartUptime,
    EndUptime,
    /// Start / end as absolute time (IPFIX 150–157), in ms since 1970.
    StartAbs,
    EndAbs,
    /// Start / end as microseconds before the export time (IPFIX 158/159).
    StartDeltaUs,
    EndDeltaUs,
    /// When the exporter's uptime began, ms since 1970 (IPFIX 160).
    SysInit,
    /// 1-in-N sampling (v9 34/50, IPFIX 34/50).
    Rate,
    /// IPFIX 305/306: N packets selected out of every N + M.
    PacketInterval,
    PacketSpace,
}

/// The field an IPFIX information element is, if one of ours.
pub(crate) fn ipfix_field(f: &IPFixField) -> Option<F> {
    Some(match f {
        IPFixField::IANA(ie) => match ie {
            Ie::OctetDeltaCount => F::Bytes,
            Ie::PacketDeltaCount => F::Packets,
            Ie::ProtocolIdentifier => F::Proto,
            Ie::SourceTransportPort => F::SrcPort,
            Ie::DestinationTransportPort => F::DstPort,
            Ie::SourceIpv4address | Ie::SourceIpv6address => F::Src,
            Ie::DestinationIpv4address | Ie::DestinationIpv6address => F::Dst,
            Ie::FlowStartSysUpTime => F::StartUptime,
            Ie::FlowEndSysUpTime => F::EndUptime,
            Ie::FlowStartSeconds
            | Ie::FlowStartMilliseconds
            | Ie::FlowStartMicroseconds
            | Ie::FlowStartNanoseconds => F::StartAbs,
            Ie::FlowEndSeconds
            | Ie::FlowEndMilliseconds
            | Ie::FlowEndMicroseconds
            | Ie::FlowEndNanoseconds => F::EndAbs,
            Ie::FlowStartDeltaMicroseconds => F::StartDeltaUs,
            Ie::FlowEndDeltaMicroseconds => F::EndDeltaUs,
            Ie::SystemInitTimeMilliseconds => F::SysInit,
            Ie::SamplingInterval | Ie::SamplerRandomInterval => F::Rate,
            Ie::SamplingPacketInterval => F::PacketInterval,
            Ie::SamplingPacketSpace => F::PacketSpace,
            _ => return None,
        },
        IPFixField::ReverseInformationElement(Rev::ReverseOctetDeltaCount) => F::RevBytes,
        IPFixField::ReverseInformationElement(Rev::ReversePacketDeltaCount) => F::RevPackets,
        _ => return None,
    })
}

/// The field a NetFlow v9 field type is, if one of ours.
pub(crate) fn v9_field(f: V9) -> Option<F> {
    Some(match f {
        V9::InBytes => F::Bytes,
        V9::InPkts => F::Packets,
        V9::Protocol => F::Proto,
        V9::L4SrcPort => F::SrcPort,
        V9::L4DstPort => F::DstPort,
        V9::Ipv4SrcAddr | V9::Ipv6SrcAddr => F::Src,
        V9::Ipv4DstAddr | V9::Ipv6DstAddr => F::Dst,
        V9::FirstSwitched => F::StartUptime,
        V9::LastSwitched => F::EndUptime,
        // IPFIX's time elements in a v9 template (nfdump's nfreplay sends 152/153).
        V9::FlowStartSeconds
        | V9::FlowStartMilliseconds
        | V9::FlowStartMicroseconds
        | V9::FlowStartNanoseconds => F::StartAbs,
        V9::FlowEndSeconds
        | V9::FlowEndMilliseconds
        | V9::FlowEndMicroseconds
        | V9::FlowEndNanoseconds => F::EndAbs,
        V9::FlowStartDeltaMicroseconds => F::StartDeltaUs,
        V9::FlowEndDeltaMicroseconds => F::EndDeltaUs,
        V9::SystemInitTimeMilliseconds => F::SysInit,
        V9::SamplingInterval | V9::FlowSamplerRandomInterval => F::Rate,
        _ => return None,
    })
}

/// A field's value in the forms [`Flat`] takes a value in: the parser's `as_u64` (or, for
/// absolute times, milliseconds since 1970), `as_u8`, `as_u16`, and an address.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Plain {
    pub number: Option<u64>,
    pub byte: Option<u8>,
    pub short: Option<u16>,
    pub addr: Option<IpAddr>,
}

/// One data record, flattened.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Flat {
    pub bytes: Option<u64>,
    pub packets: Option<u64>,
    pub rev_bytes: Option<u64>,
    pub rev_packets: Option<u64>,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub start_uptime_ms: Option<u64>,
    pub end_uptime_ms: Option<u64>,
    pub start_abs_ms: Option<u64>,
    pub end_abs_ms: Option<u64>,
    pub start_delta_us: Option<u64>,
    pub end_delta_us: Option<u64>,
    pub sys_init_ms: Option<u64>,
    /// A rate field was present (`Some(0)` is an error the caller counts).
    pub rate: Option<u64>,
    pub packet_interval: Option<u64>,
    pub packet_space: Option<u64>,
}

impl Flat {
    /// A record's fields, each named by `field` (those it does not know are skipped).
    pub(crate) fn of<'a, K: 'a>(
        rec: impl IntoIterator<Item = &'a (K, FieldValue)>,
        field: impl Fn(&K) -> Option<F>,
    ) -> Flat {
        let mut flat = Flat::default();
        for (k, v) in rec {
            if let Some(f) = field(k) {
                flat.set(f, v);
            }
        }
        flat
    }

    /// Take one field's value, as the parser made it.
    pub(crate) fn set(&mut self, f: F, v: &FieldValue) {
        let number = match f {
            F::StartAbs | F::EndAbs => abs_ms(v),
            _ => v.as_u64(),
        };
        self.set_plain(
            f,
            Plain {
                number,
                byte: v.as_u8(),
                short: v.as_u16(),
                addr: addr(v),
            },
        );
    }

    /// Take one field's value in its plain forms (read straight from its bytes by the IPFIX
    /// layouts, or taken from the parser's value by [`Flat::set`]).
    pub(crate) fn set_plain(&mut self, f: F, v: Plain) {
        match f {
            F::Proto => self.proto = v.byte.unwrap_or(0),
            F::SrcPort => self.sport = v.short.unwrap_or(0),
            F::DstPort => self.dport = v.short.unwrap_or(0),
            F::Src => self.src = v.addr,
            F::Dst => self.dst = v.addr,
            _ => self.set_number(f, v.number),
        }
    }

    /// A field held as a number.
    fn set_number(&mut self, f: F, v: Option<u64>) {
        let slot = match f {
            F::Bytes => &mut self.bytes,
            F::Packets => &mut self.packets,
            F::RevBytes => &mut self.rev_bytes,
            F::RevPackets => &mut self.rev_packets,
            F::StartUptime => &mut self.start_uptime_ms,
            F::EndUptime => &mut self.end_uptime_ms,
            F::StartAbs => &mut self.start_abs_ms,
            F::EndAbs => &mut self.end_abs_ms,
            F::StartDeltaUs => &mut self.start_delta_us,
            F::EndDeltaUs => &mut self.end_delta_us,
            F::SysInit => &mut self.sys_init_ms,
            F::Rate => &mut self.rate,
            F::PacketInterval => &mut self.packet_interval,
            F::PacketSpace => &mut self.packet_space,
            F::Proto | F::SrcPort | F::DstPort | F::Src | F::Dst => return,
        };
        *slot = v;
    }

    /// The sampling rate this record (or options record) states: `Some(0)` for a zero rate.
    pub(crate) fn stated_rate(&self) -> Option<u64> {
        if let Some(r) = self.rate {
            return Some(r);
        }
        let n = self.packet_interval?;
        if n == 0 {
            return Some(0);
        }
        // N selected of every N + M: each selected packet stands for (N + M) / N.
        Some((n.saturating_add(self.packet_space.unwrap_or(0))).div_ceil(n))
    }
}

fn addr(v: &FieldValue) -> Option<IpAddr> {
    match v {
        FieldValue::Ip4Addr(a) => Some(IpAddr::V4(*a)),
        FieldValue::Ip6Addr(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// An absolute timestamp field in ms since 1970 (NTP-format ones are counted from 1900).
fn abs_ms(v: &FieldValue) -> Option<u64> {
    match v {
        FieldValue::Duration(DurationValue::MicrosNtp { seconds, .. })
        | FieldValue::Duration(DurationValue::NanosNtp { seconds, .. }) => {
            let unix_s = u64::from(*seconds).checked_sub(NTP_UNIX_OFFSET_S)?;
            let ms = v.as_u64()? % 1000;
            Some(unix_s * 1000 + ms)
        }
        _ => v.as_u64(),
    }
}
