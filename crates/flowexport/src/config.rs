//! Settings of a [`crate::Collector`].

use std::collections::HashMap;
use std::net::IpAddr;

/// Settings of a collector: sampling rates, how long bins wait, and the caps.
#[derive(Debug, Clone)]
pub struct Config {
    /// Sampling rate per exporter address: wins over anything the exporter says.
    pub exporter_rates: HashMap<IpAddr, u32>,
    /// Sampling rate when neither the configuration, the record, options data nor a v5 header
    /// gives one (1: unsampled).
    pub default_rate: u32,
    /// How long a second is held after the newest arrival before it goes to the engine: flow
    /// records arrive up to the exporter's active timeout after their first second. Seconds
    /// reached by a record after their release go to the next second to release (counted
    /// late).
    pub hold_s: u32,
    /// Longest record span spread over bins; a longer record is spread over its last
    /// `max_span_s` seconds (counted).
    pub max_span_s: u32,
    /// Most (key, second) entries held before the oldest seconds go out early (counted): a
    /// held record counts the seconds it has still to give, a held second's sampled packets
    /// of one key one. A record is held once, as one span of about 100 bytes.
    pub max_bin_entries: usize,
    /// Most exporters with counters of their own; the others share one line (counted).
    pub max_exporters: usize,
    /// Most template sources (exporter, observation domain / source id) kept by the
    /// NetFlow v9/IPFIX parser; the least recently used is dropped beyond.
    pub max_template_sources: usize,
    /// Templates kept per source.
    pub templates_per_source: usize,
    /// Data sets held per source while their template is unknown (in all, across template ids).
    pub held_sets_per_source: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            exporter_rates: HashMap::new(),
            default_rate: 1,
            hold_s: 75,
            max_span_s: 1800,
            max_bin_entries: 1 << 20,
            max_exporters: 256,
            max_template_sources: 256,
            templates_per_source: 128,
            held_sets_per_source: 64,
        }
    }
}
