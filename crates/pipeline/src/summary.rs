//! The human summary printed on standard error at the end of a run.

use std::io::Write;
use std::time::Duration;

use burstwatch_engine::{DetectStats, EndReason, FlowStats};
use burstwatch_exporter::transit;
use burstwatch_wire::DecodeErrorCounts;

/// Run totals gathered by the shell around the engine.
#[derive(Debug, Default)]
pub struct Summary {
    /// Input files named (after directory expansion).
    pub files: usize,
    /// Files (or file tails) that could not be read.
    pub input_errors: u64,
    /// Frames read from the inputs.
    pub frames: u64,
    /// Captured bytes of those frames.
    pub captured_bytes: u64,
    /// Bytes of input consumed (after decompression).
    pub bytes_read: u64,
    /// Frames dropped by `--filter`, `--since`/`--until` or `--host`/`--endpoint`.
    pub filtered: u64,
    /// Well-formed frames without IP (ARP, STP, ...).
    pub not_ip: u64,
    /// Undecodable frames by reason index.
    pub decode_errors: DecodeErrorCounts,
    /// Flow records written.
    pub records: u64,
    /// Flow-table counters.
    pub flow_stats: FlowStats,
    /// Detector counters.
    pub detect_stats: DetectStats,
    /// Alerts written.
    pub alerts: u64,
    /// The memory budget and the caps it gave.
    pub memory: Option<burstwatch_engine::memory::Plan>,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
}

impl Summary {
    /// A summary for a run over `files` inputs.
    pub fn new(files: usize) -> Self {
        Self {
            files,
            ..Self::default()
        }
    }

    /// Track the capture time span.
    #[inline]
    pub fn see_time(&mut self, ts: i64) {
        self.first_ns = Some(self.first_ns.map_or(ts, |f| f.min(ts)));
        self.last_ns = Some(self.last_ns.map_or(ts, |l| l.max(ts)));
    }

    /// The counters as a JSON object (for scripts and tests: `analyze --stats PATH`);
    /// `written_ns` (wall clock, ns since the epoch) is its `timestamp`.
    pub fn to_json(&self, wall: Duration, written_ns: i64) -> serde_json::Value {
        let fs = &self.flow_stats;
        let errors: serde_json::Map<String, serde_json::Value> = self
            .decode_errors
            .by_reason()
            .map(|(r, n)| (r.to_string(), n.into()))
            .collect();
        let ended: serde_json::Map<String, serde_json::Value> = EndReason::ALL
            .iter()
            .map(|r| (r.as_str().to_string(), fs.ended[r.index()].into()))
            .collect();
        // L3 bytes by direction (the transit share is computable from them).
        let ds = &self.detect_stats;
        let bytes = serde_json::json!({
            "up": ds.bytes_up,
            "down": ds.bytes_down,
            "internal": ds.bytes_internal,
            "transit": ds.bytes_transit,
        });
        let mut v = serde_json::json!({
            "timestamp": crate::timestamp::rfc3339(written_ns),
            "files": self.files,
            "input_errors": self.input_errors,
            "packets": self.frames,
            "captured_bytes": self.captured_bytes,
            "bytes_read": self.bytes_read,
            "filtered": self.filtered,
            "not_ip": self.not_ip,
            "decode_errors": errors,
            "ip_packets": fs.packets,
            "ip_bytes": fs.bytes,
            "flows_created": fs.flows_created,
            "flow_records": self.records,
            "flows_ended": ended,
            "fragments_attributed": fs.fragments_attributed,
            "fragments_orphaned": fs.fragments_orphaned,
            "fragment_map_evictions": fs.fragment_map_evictions,
            "out_of_order": fs.out_of_order,
            "alerts": self.alerts,
            "detect": {
                "packets_up": self.detect_stats.packets_up,
                "packets_down": self.detect_stats.packets_down,
                "packets_internal": self.detect_stats.packets_internal,
                "packets_transit": self.detect_stats.packets_transit,
                "bytes": bytes,
                "packets_not_unicast": self.detect_stats.packets_not_unicast,
                "bursts": self.detect_stats.bursts,
                "bursts_too_long": self.detect_stats.bursts_too_long,
                "bursts_too_small": self.detect_stats.bursts_too_small,
                "bursts_not_upstream": self.detect_stats.bursts_not_upstream,
                "suppressed_allowed": self.detect_stats.suppressed_allowed,
                "suppressed_common": self.detect_stats.suppressed_common,
                "suppressed_low_score": self.detect_stats.suppressed_low_score,
                "hosts": self.detect_stats.hosts,
                "pairs": self.detect_stats.pairs,
                "endpoints": self.detect_stats.endpoints,
                "evicted_hosts": self.detect_stats.evicted[0],
                "evicted_pairs": self.detect_stats.evicted[1],
                "evicted_endpoints": self.detect_stats.evicted[2],
                "prefixes": self.detect_stats.prefixes,
                "evicted_prefixes": self.detect_stats.evicted[3],
            },
            "memory": self.memory.map(|p| serde_json::json!({
                "budget_mib": p.budget_bytes >> 20,
                "estimated_mib": p.estimated_bytes().div_ceil(1 << 20),
                "workers": p.workers,
                "max_flows": p.caps.max_flows,
                "max_hosts": p.caps.max_hosts,
                "max_pairs": p.caps.max_pairs,
                "max_endpoints": p.caps.max_endpoints,
            })),
            "first_ts": self.first_ns.map(|t| t as f64 / 1e9),
            "last_ts": self.last_ns.map(|t| t as f64 / 1e9),
            "wall_seconds": wall.as_secs_f64(),
        });
        // Of bursts_too_small: sampled input whose estimate passed but whose lower bound did
        // not (outside the macro: its recursion limit).
        if let Some(d) = v.get_mut("detect").and_then(|d| d.as_object_mut()) {
            d.insert("bursts_uncertain".into(), ds.bursts_uncertain.into());
        }
        // Flow export's synthetic packets that skipped the flow table (no flow records read).
        if let Some(o) = v.as_object_mut() {
            o.insert("export_packets_without_flow".into(), fs.passed_by.into());
        }
        v
    }

    /// Print the summary.
    pub fn print<W: Write>(&self, w: &mut W, wall: Duration) {
        let secs = wall.as_secs_f64().max(1e-9);
        let errors = self.decode_errors.total();
        let by_reason: Vec<String> = self
            .decode_errors
            .by_reason()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let fs = &self.flow_stats;
        let ended: Vec<String> = EndReason::ALL
            .iter()
            .filter(|r| fs.ended[r.index()] > 0)
            .map(|r| format!("{} {}", r.as_str(), fs.ended[r.index()]))
            .collect();
        let _ = writeln!(
            w,
            "burstwatch: {} file(s), {} packets, {} bytes captured ({} of IP), {} flow records ({})",
            self.files,
            self.frames,
            self.captured_bytes,
            fs.bytes,
            self.records,
            if ended.is_empty() { "none".to_string() } else { ended.join(", ") },
        );
        let _ = writeln!(
            w,
            "burstwatch: {} IP packets in flows, {} not IP, {} filtered out, {} undecodable{}",
            fs.packets,
            self.not_ip,
            self.filtered,
            errors,
            if by_reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", by_reason.join(", "))
            },
        );
        if fs.fragments_attributed + fs.fragments_orphaned > 0 {
            let _ = writeln!(
                w,
                "burstwatch: later IP fragments: {} joined their flow, {} without a known first fragment",
                fs.fragments_attributed, fs.fragments_orphaned
            );
        }
        let ds = &self.detect_stats;
        let _ = writeln!(
            w,
            "burstwatch: scored {} upstream / {} downstream packets ({} internal, {} transit not scored); {} bursts ({} too long, {} too small, {} not upstream), {} to common endpoints, {} allow-listed, {} below the score threshold; {} alert(s)",
            ds.packets_up,
            ds.packets_down,
            ds.packets_internal,
            ds.packets_transit,
            ds.bursts,
            ds.bursts_too_long,
            ds.bursts_too_small,
            ds.bursts_not_upstream,
            ds.suppressed_common,
            ds.suppressed_allowed,
            ds.suppressed_low_score,
            self.alerts,
        );
        if ds.beacons_too_few > 0 {
            let (seen, needed) = ds.beacons_too_few_most;
            let _ = writeln!(
                w,
                "burstwatch: {} pair(s) with regular polls, too few for a beacon (most: {} of the {} their period needs)",
                ds.beacons_too_few, seen, needed
            );
        }
        self.print_transit(w);
        if let (Some(f), Some(l)) = (self.first_ns, self.last_ns) {
            let _ = writeln!(
                w,
                "burstwatch: capture time {} .. {} ({:.3} s)",
                utc(f),
                utc(l),
                (l - f) as f64 / 1e9
            );
        }
        let _ = writeln!(
            w,
            "burstwatch: wall time {:.3} s, {:.0} packets/s, {:.1} MB/s{}",
            secs,
            self.frames as f64 / secs,
            self.bytes_read as f64 / secs / 1e6,
            if self.input_errors > 0 {
                format!(", {} input error(s)", self.input_errors)
            } else {
                String::new()
            },
        );
    }
}

impl Summary {
    /// IP bytes the detector saw (every direction) and the share of them with neither side
    /// in the home networks.
    fn transit(&self) -> (u64, f64) {
        let ds = &self.detect_stats;
        let total = ds.bytes_up + ds.bytes_down + ds.bytes_internal + ds.bytes_transit;
        (total, transit::share(ds.bytes_transit, total))
    }

    fn print_transit<W: Write>(&self, w: &mut W) {
        let (total, share) = self.transit();
        if total > 0 {
            let _ = writeln!(
                w,
                "burstwatch: transit (neither side in the home networks, not scored): {:.1} % of {} IP bytes",
                share * 100.0,
                total
            );
        }
    }

    /// A warning when most IP bytes were transit: the home networks likely miss the
    /// subscribers.
    pub fn transit_warning(&self) -> Option<String> {
        let (total, share) = self.transit();
        (total > 0 && share > transit::HIGH_SHARE)
            .then(|| transit::advice(share, "detect.home_nets (or --home-net)"))
    }
}

/// Format ns since the epoch as an ISO 8601 UTC time with nanoseconds, e.g.
/// `2023-11-14T22:13:20.123456789Z`.
pub fn utc_ns(ns: i64) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(ts) => jiff::fmt::temporal::DateTimePrinter::new()
            .precision(Some(9))
            .timestamp_to_string(&ts),
        Err(_) => format!("{ns} ns"),
    }
}

/// Format ns since the epoch as an ISO 8601 UTC time with microseconds (truncated), e.g.
/// `2023-11-14T22:13:20.123456Z`.
pub fn utc(ns: i64) -> String {
    // Every i64 of nanoseconds (years 1677 to 2262) is a valid jiff timestamp.
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(ts) => jiff::fmt::temporal::DateTimePrinter::new()
            .precision(Some(6))
            .timestamp_to_string(&ts),
        Err(_) => format!("{ns} ns"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            utc(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456Z"
        );
        assert_eq!(utc(951_782_400_000_000_000), "2000-02-29T00:00:00.000000Z");
        assert_eq!(utc(-1_000), "1969-12-31T23:59:59.999999Z");
        assert_eq!(utc(i64::MIN), "1677-09-21T00:12:43.145224Z");
        assert_eq!(utc(i64::MAX), "2262-04-11T23:47:16.854775Z");
    }
}
