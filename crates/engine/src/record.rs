//! Flow records: what the flow table hands out when a flow ends.

use std::net::IpAddr;

use burstwatch_wire::proto::{ICMP, ICMPV6, SCTP, TCP, UDP};
use burstwatch_wire::TunnelLayer;

/// Why a flow record was exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndReason {
    /// No packet for the protocol's idle timeout.
    Idle,
    /// The flow reached the active timeout; a new record continues it.
    Active,
    /// TCP FIN seen in both directions (plus the close grace).
    Fin,
    /// TCP RST seen (plus the close grace).
    Rst,
    /// Evicted at the flow-table cap (least recently seen first).
    Evicted,
    /// Still open when the input ended.
    EndOfInput,
}

impl EndReason {
    /// Every reason, in a stable order.
    pub const ALL: [EndReason; 6] = [
        EndReason::Idle,
        EndReason::Active,
        EndReason::Fin,
        EndReason::Rst,
        EndReason::Evicted,
        EndReason::EndOfInput,
    ];

    /// Stable snake_case name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::Active => "active",
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::Evicted => "evicted",
            EndReason::EndOfInput => "end_of_input",
        }
    }

    /// Index into [`EndReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Counters of one direction of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirStats {
    /// Packets (frames), including later IP fragments.
    pub packets: u32,
    /// Of `packets`, how many were later IP fragments (offset > 0) attributed to this flow.
    pub fragments: u32,
    /// L3 bytes: sum of on-wire IP lengths (IPFIX octetDeltaCount).
    pub bytes: u64,
    /// Transport payload bytes.
    pub payload: u64,
    /// Capture time of the first packet, ns since the epoch (0 when `packets == 0`).
    pub first_ns: i64,
    /// Capture time of the last packet, ns since the epoch (0 when `packets == 0`).
    pub last_ns: i64,
    /// OR of the TCP flags seen.
    pub tcp_flags: u8,
}

impl DirStats {
    /// Count one packet.
    #[inline]
    pub(crate) fn add(
        &mut self,
        ts_ns: i64,
        ip_len: u32,
        payload: u32,
        flags: u8,
        later_frag: bool,
    ) {
        if self.packets == 0 {
            self.first_ns = ts_ns;
            self.last_ns = ts_ns;
        } else {
            self.first_ns = self.first_ns.min(ts_ns);
            self.last_ns = self.last_ns.max(ts_ns);
        }
        self.packets = self.packets.saturating_add(1);
        self.fragments = self.fragments.saturating_add(u32::from(later_frag));
        self.bytes = self.bytes.saturating_add(u64::from(ip_len));
        self.payload = self.payload.saturating_add(u64::from(payload));
        self.tcp_flags |= flags;
    }
}

/// Tunnel and VLAN context of a flow, taken from its first packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FlowContext {
    /// VLAN ids, outermost first.
    pub vlans: Vec<u16>,
    /// Top MPLS label, if the first packet had a label stack.
    pub mpls_label: Option<u32>,
    /// Tunnel layers stripped from the initiator's packets, outermost first.
    pub tunnels: Vec<TunnelLayer>,
    /// Tunnel layers of the responder's packets, when they differ from `tunnels` (UDP tunnels
    /// usually pick a different outer source port per direction).
    pub tunnels_rev: Vec<TunnelLayer>,
}

/// One finished (or cut) flow. `src` is the initiator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRecord {
    /// IP protocol number.
    pub proto: u8,
    /// Initiator address.
    pub src: IpAddr,
    /// Initiator port (0 where none).
    pub sport: u16,
    /// Responder address.
    pub dst: IpAddr,
    /// Responder port (0 where none).
    pub dport: u16,
    /// Initiator-to-responder counters.
    pub fwd: DirStats,
    /// Responder-to-initiator counters.
    pub rev: DirStats,
    /// Why the record was exported.
    pub end_reason: EndReason,
    /// VLAN/MPLS/tunnel context, when the first packet had any.
    pub context: Option<Box<FlowContext>>,
    /// ICMP/ICMPv6: type and code of the flow's first packet (sent by `src`), when captured.
    pub icmp: Option<[u8; 2]>,
}

impl FlowRecord {
    /// The flow's Community ID (see [`crate::community_id`]) with `src` and `dst` as given
    /// (the record's addresses, or what an output shows in their place).
    pub fn community_id(&self, seed: u16, src: IpAddr, dst: IpAddr) -> Option<String> {
        let ports = match self.proto {
            ICMP | ICMPV6 => self.icmp.map(|[t, c]| (u16::from(t), u16::from(c))),
            _ => Some((self.sport, self.dport)),
        };
        crate::community_id::community_id(seed, src, dst, self.proto, ports)
    }

    /// First packet time of the flow (ns since the epoch).
    pub fn first_ns(&self) -> i64 {
        match (self.fwd.packets, self.rev.packets) {
            (0, _) => self.rev.first_ns,
            (_, 0) => self.fwd.first_ns,
            _ => self.fwd.first_ns.min(self.rev.first_ns),
        }
    }

    /// Last packet time of the flow (ns since the epoch).
    pub fn last_ns(&self) -> i64 {
        self.fwd.last_ns.max(self.rev.last_ns)
    }

    /// Total packets both ways.
    pub fn packets(&self) -> u64 {
        u64::from(self.fwd.packets) + u64::from(self.rev.packets)
    }

    /// Total L3 bytes both ways.
    pub fn bytes(&self) -> u64 {
        self.fwd.bytes + self.rev.bytes
    }
}

/// TCP flag bits and their letters, in the order flow records show them (`SAFRPUEC`).
pub const TCP_FLAG_LETTERS: [(u8, u8); 8] = [
    (0x02, b'S'),
    (0x10, b'A'),
    (0x01, b'F'),
    (0x04, b'R'),
    (0x08, b'P'),
    (0x20, b'U'),
    (0x40, b'E'),
    (0x80, b'C'),
];

/// TCP flags as letters in [`TCP_FLAG_LETTERS`] order, e.g. `"SA"`: the form flow records show
/// them in (JSON lines, reports).
pub fn tcp_flag_letters(flags: u8) -> String {
    TCP_FLAG_LETTERS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, c)| char::from(*c))
        .collect()
}

/// Conventional protocol name for JSON output, if there is one.
pub fn proto_name(proto: u8) -> Option<&'static str> {
    match proto {
        ICMP => Some("icmp"),
        TCP => Some("tcp"),
        UDP => Some("udp"),
        ICMPV6 => Some("icmp6"),
        SCTP => Some("sctp"),
        _ => None,
    }
}
