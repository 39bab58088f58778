//! Flow-table settings (validated by the config crate; plain numbers here).

/// Flow-table limits and timeouts. All durations are in nanoseconds of *packet time*.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowConfig {
    /// Idle timeout for TCP flows.
    pub tcp_idle_ns: i64,
    /// Idle timeout for UDP flows.
    pub udp_idle_ns: i64,
    /// Idle timeout for ICMP and ICMPv6 flows.
    pub icmp_idle_ns: i64,
    /// Idle timeout for flows of any other protocol (SCTP, ESP, GRE, ...).
    pub other_idle_ns: i64,
    /// A flow older than this is exported (reason `active`) and counting restarts in a new record.
    pub active_timeout_ns: i64,
    /// After FIN both ways or an RST, trailing packets within this grace still join the flow.
    pub tcp_close_grace_ns: i64,
    /// Hard cap on concurrent flows; at the cap the least recently seen flow is evicted.
    /// The default is the share of the default memory budget ([`crate::memory`]).
    pub max_flows: usize,
    /// Cap on remembered first fragments (for attributing later fragments to their flow).
    pub max_fragments: usize,
    /// How long a first fragment's ports are remembered.
    pub fragment_timeout_ns: i64,
    /// Whether flow export's synthetic packets (those that carry a sampling rate, see
    /// [`burstwatch_wire::PacketMeta::sampling`]) go through the flow table too. Off where
    /// nothing reads the flow records: the detector then counts them alone, with the flow hash
    /// the table would have given them, so alerts are the same either way; the table makes no
    /// records of them and counts them as passed by. Not a configuration key: `analyze` and the
    /// daemon set it from whether flow records are written.
    pub export_flows: bool,
}

/// Nanoseconds in one second.
pub const NS_PER_SEC: i64 = 1_000_000_000;

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            tcp_idle_ns: 300 * NS_PER_SEC,
            udp_idle_ns: 60 * NS_PER_SEC,
            icmp_idle_ns: 60 * NS_PER_SEC,
            other_idle_ns: 60 * NS_PER_SEC,
            active_timeout_ns: 1800 * NS_PER_SEC,
            tcp_close_grace_ns: 5 * NS_PER_SEC,
            max_flows: crate::memory::Caps::default().max_flows,
            max_fragments: crate::memory::DEFAULT_FRAGMENTS,
            fragment_timeout_ns: 30 * NS_PER_SEC,
            export_flows: true,
        }
    }
}
