//! Per-exporter counters, bounded by a cap on the exporters that get a line of their own.

use std::collections::HashMap;
use std::net::IpAddr;

/// What one exporter (or all, or the ones over the cap) sent and what became of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExporterStats {
    /// Datagrams received.
    pub datagrams: u64,
    /// NetFlow v5 datagrams.
    pub netflow5: u64,
    /// NetFlow v9 datagrams.
    pub netflow9: u64,
    /// IPFIX messages.
    pub ipfix: u64,
    /// sFlow v5 datagrams.
    pub sflow: u64,
    /// Flow records turned into bins.
    pub records: u64,
    /// sFlow packet samples turned into bins.
    pub packet_samples: u64,
    /// Datagrams (or the rest of one) that did not parse, and sFlow samples the wire decoder
    /// refused.
    pub parse_errors: u64,
    /// Data sets whose template was unknown when they came (held by the parser, bounded, and
    /// replayed when the template arrives, or dropped).
    pub template_misses: u64,
    /// Held data sets replayed when their template came.
    pub replayed_sets: u64,
    /// Held data sets dropped (over the cap, or their replay failed).
    pub dropped_sets: u64,
    /// Template ids redefined with another layout.
    pub template_collisions: u64,
    /// Records without the fields needed (addresses or byte count).
    pub incomplete_records: u64,
    /// Records without a usable start/end time: binned at their arrival second.
    pub no_time: u64,
    /// Records whose times were far from their export time (more than a week): placed by
    /// the exporter's own clock, pinned to an arrival (see the collector's docs).
    pub own_clock: u64,
    /// Sampling rates of 0 seen (ignored: the next source of a rate applies).
    pub zero_rates: u64,
    /// The last sampling rate applied (1 = unsampled).
    pub last_rate: u32,
    /// Estimated bytes (sampled × rate).
    pub bytes: u64,
}

impl ExporterStats {
    /// Add another exporter's counts (the last rate is the larger one).
    pub fn add(&mut self, o: &ExporterStats) {
        self.datagrams += o.datagrams;
        self.netflow5 += o.netflow5;
        self.netflow9 += o.netflow9;
        self.ipfix += o.ipfix;
        self.sflow += o.sflow;
        self.records += o.records;
        self.packet_samples += o.packet_samples;
        self.parse_errors += o.parse_errors;
        self.template_misses += o.template_misses;
        self.replayed_sets += o.replayed_sets;
        self.dropped_sets += o.dropped_sets;
        self.template_collisions += o.template_collisions;
        self.incomplete_records += o.incomplete_records;
        self.no_time += o.no_time;
        self.own_clock += o.own_clock;
        self.zero_rates += o.zero_rates;
        self.last_rate = self.last_rate.max(o.last_rate);
        self.bytes = self.bytes.saturating_add(o.bytes);
    }
}

/// Counters per exporter address, at most `cap` of them; later exporters share `other`.
#[derive(Debug)]
pub struct Exporters {
    /// Looked up for every record: foldhash, not SipHash (the keys are bounded by `cap`).
    by_addr: foldhash::HashMap<IpAddr, ExporterStats>,
    other: ExporterStats,
    cap: usize,
}

impl Exporters {
    /// Counters for at most `cap` exporters.
    pub fn new(cap: usize) -> Self {
        Self {
            by_addr: foldhash::HashMap::default(),
            other: ExporterStats::default(),
            cap,
        }
    }

    /// The counters of `addr` (the shared line once the cap is reached).
    pub fn get_mut(&mut self, addr: IpAddr) -> &mut ExporterStats {
        if self.by_addr.len() < self.cap || self.by_addr.contains_key(&addr) {
            self.by_addr.entry(addr).or_default()
        } else {
            &mut self.other
        }
    }

    /// Each exporter with a line of its own, sorted by address, with `extra` (the parser's
    /// template counters of that address) added.
    pub fn each(&self, extra: &HashMap<IpAddr, ExporterStats>) -> Vec<(IpAddr, ExporterStats)> {
        let mut v: Vec<_> = self
            .by_addr
            .iter()
            .map(|(a, s)| {
                let mut s = *s;
                if let Some(e) = extra.get(a) {
                    s.add(e);
                }
                (*a, s)
            })
            .collect();
        v.sort_unstable_by_key(|(a, _)| *a);
        v
    }

    /// The exporters over the cap, together.
    pub fn other(&self) -> ExporterStats {
        self.other
    }

    /// Every exporter together, with `extra` (the parser's template counters) added.
    pub fn total(&self, extra: &HashMap<IpAddr, ExporterStats>) -> ExporterStats {
        let mut t = self.other;
        for e in extra.values() {
            t.add(e);
        }
        for s in self.by_addr.values() {
            t.add(s);
        }
        t
    }
}
