//! What each flow-export thread publishes for the metrics: its exporters' counters and the
//! kernel's drops at its socket (the `drops` column of `/proc/net/udp`, found by the socket's
//! inode), merged by [`merge`] into the capped per-exporter series.

use std::collections::BTreeMap;
use std::net::{IpAddr, UdpSocket};

use burstwatch_exporter::stats::{
    FlowExporterStats, FlowInterfaceStats, FlowSocketStats, FLOW_EXPORTER_LABELS,
    FLOW_INTERFACE_LABELS,
};
use burstwatch_flowexport::{BinStats, Collector, ExporterStats, Interface};

/// One thread's counters.
#[derive(Debug, Clone, Default)]
pub struct FlowThreadStats {
    /// The socket's address, `udp://ADDR:PORT`.
    pub listen: String,
    /// Exporters with counters of their own.
    pub exporters: Vec<(IpAddr, ExporterStats)>,
    /// Exporters over the collector's cap.
    pub other: ExporterStats,
    /// Kernel drops at the socket.
    pub kernel_drops: u64,
    /// sFlow agents' interfaces with their latest counters.
    pub interfaces: Vec<Interface>,
    /// What its bins counted (late ones).
    pub bins: BinStats,
}

impl FlowThreadStats {
    /// The collector's counters now, and the socket's drops.
    pub fn read(listen: &str, collector: &Collector, socket: &UdpSocket) -> Self {
        Self {
            listen: listen.to_string(),
            exporters: collector.exporters(),
            other: collector.other_exporters(),
            kernel_drops: kernel_drops(socket).unwrap_or(0),
            interfaces: collector.interfaces(),
            bins: collector.bin_stats(),
        }
    }
}

/// The kernel's drop count of a UDP socket (Linux: `/proc/net/udp{,6}`, the line whose inode is
/// the socket's); `None` elsewhere or when not found.
pub fn kernel_drops(socket: &UdpSocket) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", socket.as_raw_fd()))
            .ok()?
            .ino()
            .to_string();
        for table in ["/proc/net/udp", "/proc/net/udp6"] {
            let Ok(text) = std::fs::read_to_string(table) else {
                continue;
            };
            if let Some(d) = drops_of(&text, &inode) {
                return Some(d);
            }
        }
        None
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        None
    }
}

/// The `drops` (last) column of the line of `/proc/net/udp` text whose inode (10th column) is
/// `inode`.
fn drops_of(text: &str, inode: &str) -> Option<u64> {
    text.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.get(9) == Some(&inode)).then(|| cols.last()?.parse().ok())?
    })
}

/// Every thread's sFlow interfaces (the latest report of each (agent, ifIndex) over all
/// threads) as series, the first [`FLOW_INTERFACE_LABELS`] by agent and ifIndex, and how many
/// are known.
pub fn interfaces(threads: &[FlowThreadStats]) -> (Vec<FlowInterfaceStats>, u64) {
    let mut latest: BTreeMap<(IpAddr, u32), &Interface> = BTreeMap::new();
    for i in threads.iter().flat_map(|t| &t.interfaces) {
        let slot = latest.entry((i.agent, i.if_index)).or_insert(i);
        if i.seen_ns > slot.seen_ns {
            *slot = i;
        }
    }
    let known = latest.len() as u64;
    let series = latest
        .values()
        .take(FLOW_INTERFACE_LABELS)
        .map(|i| {
            let c = &i.counters;
            FlowInterfaceStats {
                agent: i.agent.to_string(),
                if_index: i.if_index,
                speed_bps: c.speed_bps,
                oper_up: c.oper_up,
                octets: [c.in_octets, c.out_octets],
                packets: [c.in_packets, c.out_packets],
                errors: [c.in_errors, c.out_errors],
                discards: [c.in_discards, c.out_discards],
            }
        })
        .collect();
    (series, known)
}

/// Every thread's counters as metric series: exporters by address (the first
/// [`FLOW_EXPORTER_LABELS`] in address order), the rest and the collectors' own overflow as
/// `other`; sockets by address.
pub fn merge(threads: &[FlowThreadStats]) -> (Vec<FlowExporterStats>, Vec<FlowSocketStats>) {
    let mut by_addr: BTreeMap<IpAddr, ExporterStats> = BTreeMap::new();
    let mut other = ExporterStats::default();
    for t in threads {
        for (a, s) in &t.exporters {
            by_addr.entry(*a).or_default().add(s);
        }
        other.add(&t.other);
    }
    let series = |exporter: String, s: &ExporterStats| FlowExporterStats {
        exporter,
        datagrams: s.datagrams,
        records: s.records + s.packet_samples,
        parse_errors: s.parse_errors,
        template_misses: s.template_misses,
        held_dropped: s.dropped_sets,
        own_clock: s.own_clock,
        sampling_rate: s.last_rate,
    };
    let mut out = Vec::new();
    for (i, (a, s)) in by_addr.iter().enumerate() {
        if i < FLOW_EXPORTER_LABELS {
            out.push(series(a.to_string(), s));
        } else {
            other.add(s);
        }
    }
    if other != ExporterStats::default() {
        out.push(series("other".into(), &other));
    }
    let sockets = threads
        .iter()
        .map(|t| FlowSocketStats {
            listen: t.listen.clone(),
            kernel_drops: t.kernel_drops,
            late_bins: t.bins.late,
            late_behind_seconds: t.bins.late_behind_s,
        })
        .collect();
    (out, sockets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_read_by_inode() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                    1: 0100007F:0807 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4711 2 0000000000000000 0\n\
                    2: 0100007F:0808 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4712 2 0000000000000000 17\n";
        assert_eq!(drops_of(text, "4712"), Some(17));
        assert_eq!(drops_of(text, "4711"), Some(0));
        assert_eq!(drops_of(text, "9"), None);
        assert_eq!(drops_of("", "1"), None);
    }

    #[test]
    fn live_socket_has_a_drop_count() {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
        if cfg!(target_os = "linux") {
            assert_eq!(kernel_drops(&s), Some(0));
        }
    }

    #[test]
    fn exporters_over_the_cap_are_other() {
        let n = FLOW_EXPORTER_LABELS + 3;
        let one = ExporterStats {
            datagrams: 1,
            records: 2,
            packet_samples: 1,
            last_rate: 10,
            ..ExporterStats::default()
        };
        let threads: Vec<FlowThreadStats> = (0..2)
            .map(|k| FlowThreadStats {
                listen: format!("udp://127.0.0.1:{}", 2055 + k),
                exporters: (0..n)
                    .map(|i| (IpAddr::from([10, 0, (i / 256) as u8, i as u8]), one))
                    .collect(),
                other: ExporterStats {
                    datagrams: 5,
                    ..ExporterStats::default()
                },
                kernel_drops: k,
                bins: BinStats {
                    late: 3 * k,
                    late_behind_s: 40 + k,
                    ..BinStats::default()
                },
                ..FlowThreadStats::default()
            })
            .collect();
        let (ex, socks) = merge(&threads);
        assert_eq!(ex.len(), FLOW_EXPORTER_LABELS + 1);
        assert_eq!(ex[0].exporter, "10.0.0.0");
        assert_eq!((ex[0].datagrams, ex[0].records), (2, 6));
        let other = ex.last().expect("an other series");
        assert_eq!(other.exporter, "other");
        assert_eq!(other.datagrams, 3 * 2 + 2 * 5);
        assert_eq!(other.sampling_rate, 10);
        let total: u64 = ex.iter().map(|e| e.datagrams).sum();
        assert_eq!(total, 2 * n as u64 + 10);
        assert_eq!(socks.len(), 2);
        assert_eq!(socks[1].kernel_drops, 1);
        assert_eq!((socks[1].late_bins, socks[1].late_behind_seconds), (3, 41));
    }

    #[test]
    fn interfaces_take_each_agents_latest_report_and_are_capped() {
        use burstwatch_flowexport::IfCounters;
        let iface = |agent: [u8; 4], if_index: u32, seen_ns: i64, octets: u64| Interface {
            agent: agent.into(),
            if_index,
            seen_ns,
            counters: IfCounters {
                in_octets: octets,
                ..IfCounters::default()
            },
        };
        let a = FlowThreadStats {
            interfaces: vec![
                iface([192, 0, 2, 1], 1, 10, 100),
                iface([192, 0, 2, 1], 2, 10, 7),
            ],
            ..FlowThreadStats::default()
        };
        let b = FlowThreadStats {
            interfaces: vec![iface([192, 0, 2, 1], 1, 20, 150)],
            ..FlowThreadStats::default()
        };
        let (series, known) = interfaces(&[a.clone(), b]);
        assert_eq!(known, 2);
        assert_eq!(
            series
                .iter()
                .map(|s| (s.if_index, s.octets[0]))
                .collect::<Vec<_>>(),
            vec![(1, 150), (2, 7)]
        );
        let many = FlowThreadStats {
            interfaces: (0..FLOW_INTERFACE_LABELS as u32 + 3)
                .map(|i| iface([192, 0, 2, 2], i, 1, 1))
                .collect(),
            ..FlowThreadStats::default()
        };
        let (series, known) = interfaces(&[a, many]);
        assert_eq!(
            (series.len(), known),
            (FLOW_INTERFACE_LABELS, FLOW_INTERFACE_LABELS as u64 + 5)
        );
    }
}
