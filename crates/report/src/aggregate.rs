//! Per-host and per-endpoint totals from flow records, in bounded memory.
//!
//! Only flows with exactly one side in the home networks count: that side is the host (the
//! subscriber), the other the endpoint. Each map holds at most its cap of entries; flows of
//! hosts or endpoints beyond it are counted in `dropped` and not aggregated. A host's top
//! endpoints are kept with the Space-Saving algorithm (Metwally, Agrawal, El Abbadi: "Efficient
//! computation of frequent and top-k elements in data streams", ICDT 2005) over
//! [`TOP_SLOTS`] counters, so a host talking to thousands of endpoints stays small.

use std::collections::HashMap;
use std::net::IpAddr;

/// Counters per host for the top-endpoint sketch.
pub const TOP_SLOTS: usize = 32;
/// Distinct hosts remembered per endpoint (prevalence is exact up to this).
pub const PREVALENCE_CAP: usize = 256;

/// Totals of one home host.
#[derive(Debug, Clone, Default)]
pub struct HostAgg {
    /// L3 bytes to external endpoints.
    pub bytes_up: u64,
    /// L3 bytes from external endpoints.
    pub bytes_down: u64,
    /// Packets to external endpoints.
    pub packets_up: u64,
    /// Packets from external endpoints.
    pub packets_down: u64,
    /// Flow records.
    pub flows: u64,
    /// Bursts segmented.
    pub bursts: u64,
    /// Alerts.
    pub alerts: u64,
    /// Space-Saving counters: (endpoint, bytes).
    top: Vec<(IpAddr, u64)>,
}

impl HostAgg {
    /// Count `bytes` towards `ep` in the top-endpoint sketch.
    fn note_endpoint(&mut self, ep: IpAddr, bytes: u64) {
        if let Some(slot) = self.top.iter_mut().find(|s| s.0 == ep) {
            slot.1 = slot.1.saturating_add(bytes);
        } else if self.top.len() < TOP_SLOTS {
            self.top.push((ep, bytes));
        } else if let Some(min) = self.top.iter_mut().min_by_key(|s| s.1) {
            // Space-Saving: the new item takes over the smallest counter and its count.
            *min = (ep, min.1.saturating_add(bytes));
        }
    }

    /// The `n` endpoints with the most bytes, most first (ties by address).
    pub fn top(&self, n: usize) -> Vec<(IpAddr, u64)> {
        let mut v = self.top.clone();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

/// Totals of one external endpoint.
#[derive(Debug, Clone, Default)]
pub struct EndpointAgg {
    /// Distinct home hosts, up to [`PREVALENCE_CAP`].
    pub hosts: Vec<IpAddr>,
    /// More hosts than the cap were seen.
    pub capped: bool,
    /// First packet (ns).
    pub first_ns: i64,
    /// Last packet (ns).
    pub last_ns: i64,
    /// L3 bytes from home hosts.
    pub bytes_up: u64,
    /// L3 bytes to home hosts.
    pub bytes_down: u64,
    /// Flow records.
    pub flows: u64,
}

/// One flow reduced to what the aggregates need, oriented host → endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Oriented {
    /// Home host.
    pub host: IpAddr,
    /// External endpoint.
    pub endpoint: IpAddr,
    /// Bytes host → endpoint.
    pub bytes_up: u64,
    /// Bytes endpoint → host.
    pub bytes_down: u64,
    /// Packets host → endpoint.
    pub packets_up: u64,
    /// Packets endpoint → host.
    pub packets_down: u64,
    /// First packet (ns).
    pub first_ns: i64,
    /// Last packet (ns).
    pub last_ns: i64,
}

/// Host and endpoint maps with caps.
#[derive(Debug)]
pub struct Aggregates {
    /// Per host.
    pub hosts: HashMap<IpAddr, HostAgg>,
    /// Per endpoint.
    pub endpoints: HashMap<IpAddr, EndpointAgg>,
    max_hosts: usize,
    max_endpoints: usize,
    /// Flow records not aggregated because a map was full.
    pub dropped: u64,
}

impl Aggregates {
    /// Empty maps holding at most `max_hosts` hosts and `max_endpoints` endpoints.
    pub fn new(max_hosts: usize, max_endpoints: usize) -> Self {
        Self {
            hosts: HashMap::new(),
            endpoints: HashMap::new(),
            max_hosts,
            max_endpoints,
            dropped: 0,
        }
    }

    /// Count one flow.
    pub fn add(&mut self, f: &Oriented) {
        let host_room = self.hosts.len() < self.max_hosts || self.hosts.contains_key(&f.host);
        let ep_room =
            self.endpoints.len() < self.max_endpoints || self.endpoints.contains_key(&f.endpoint);
        if !(host_room && ep_room) {
            self.dropped += 1;
            return;
        }
        let h = self.hosts.entry(f.host).or_default();
        h.bytes_up = h.bytes_up.saturating_add(f.bytes_up);
        h.bytes_down = h.bytes_down.saturating_add(f.bytes_down);
        h.packets_up = h.packets_up.saturating_add(f.packets_up);
        h.packets_down = h.packets_down.saturating_add(f.packets_down);
        h.flows += 1;
        h.note_endpoint(f.endpoint, f.bytes_up.saturating_add(f.bytes_down));
        let e = self.endpoints.entry(f.endpoint).or_insert(EndpointAgg {
            first_ns: f.first_ns,
            last_ns: f.last_ns,
            ..EndpointAgg::default()
        });
        e.first_ns = e.first_ns.min(f.first_ns);
        e.last_ns = e.last_ns.max(f.last_ns);
        e.bytes_up = e.bytes_up.saturating_add(f.bytes_up);
        e.bytes_down = e.bytes_down.saturating_add(f.bytes_down);
        e.flows += 1;
        if !e.hosts.contains(&f.host) {
            if e.hosts.len() < PREVALENCE_CAP {
                e.hosts.push(f.host);
            } else {
                e.capped = true;
            }
        }
    }

    /// Count a burst (any outcome) or an alert for a host that may have no flow yet.
    pub fn bump(&mut self, host: IpAddr, burst: bool) {
        if self.hosts.len() >= self.max_hosts && !self.hosts.contains_key(&host) {
            return;
        }
        let h = self.hosts.entry(host).or_default();
        if burst {
            h.bursts += 1;
        } else {
            h.alerts += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    fn flow(host: u32, ep: u32, up: u64) -> Oriented {
        Oriented {
            host: ip(host),
            endpoint: ip(ep),
            bytes_up: up,
            bytes_down: 1,
            packets_up: 1,
            packets_down: 1,
            first_ns: i64::from(ep),
            last_ns: i64::from(ep) + 5,
        }
    }

    #[test]
    fn space_saving_keeps_heavy_endpoints_among_many_light_ones() {
        let mut a = Aggregates::new(10, 10_000);
        for ep in 0..2_000 {
            a.add(&flow(1, 1_000 + ep, 10));
            if ep % 100 == 0 {
                a.add(&flow(1, 7, 5_000));
                a.add(&flow(1, 8, 3_000));
            }
        }
        let top = a.hosts[&ip(1)].top(5);
        assert_eq!(top[0].0, ip(7));
        assert_eq!(top[1].0, ip(8));
        assert!(top[0].1 >= 20 * 5_001);
        assert_eq!(a.hosts[&ip(1)].flows, 2_040);
    }

    #[test]
    fn endpoint_prevalence_and_caps() {
        let mut a = Aggregates::new(1_000, 2);
        for h in 0..300 {
            a.add(&flow(h, 9, 1));
        }
        a.add(&flow(1, 10, 1));
        a.add(&flow(1, 11, 1)); // third endpoint: over the cap
        assert_eq!(a.dropped, 1);
        let e = &a.endpoints[&ip(9)];
        assert_eq!(e.hosts.len(), PREVALENCE_CAP);
        assert!(e.capped);
        assert_eq!((e.first_ns, e.last_ns, e.flows), (9, 14, 300));
        assert!(!a.endpoints[&ip(10)].capped);
    }
}
