//! sFlow counter samples: the generic interface counters (sFlow format 0,1, the RFC 2863
//! ifTable an agent reports every polling interval) of each agent's interfaces, latest value
//! per (agent, ifIndex), for interface metrics beside the flow data.

use std::collections::BTreeMap;
use std::net::IpAddr;

use sflow_parser::models::core::CounterData;
use sflow_parser::models::CounterRecord;

/// Interfaces kept at most (every agent together); new ones beyond it are counted, not kept.
pub const MAX_INTERFACES: usize = 4096;

/// One interface's counters as its agent last reported them (the agent's own running totals).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IfCounters {
    /// ifSpeed, bits per second.
    pub speed_bps: u64,
    /// Operationally up (ifStatus bit 1).
    pub oper_up: bool,
    /// ifInOctets.
    pub in_octets: u64,
    /// ifOutOctets.
    pub out_octets: u64,
    /// Unicast, multicast and broadcast packets received.
    pub in_packets: u64,
    /// Unicast, multicast and broadcast packets sent.
    pub out_packets: u64,
    /// ifInErrors.
    pub in_errors: u64,
    /// ifOutErrors.
    pub out_errors: u64,
    /// ifInDiscards.
    pub in_discards: u64,
    /// ifOutDiscards.
    pub out_discards: u64,
}

/// One interface of one agent, with its latest counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Interface {
    /// The agent's address (from the datagram header).
    pub agent: IpAddr,
    /// ifIndex.
    pub if_index: u32,
    /// Arrival time of the datagram that carried these counters, ns.
    pub seen_ns: i64,
    /// The counters.
    #[serde(flatten)]
    pub counters: IfCounters,
}

/// The generic interface counters in one counter sample's records, as (ifIndex, counters).
pub(crate) fn generic(records: &[CounterRecord]) -> impl Iterator<Item = (u32, IfCounters)> + '_ {
    records.iter().filter_map(|r| match &r.counter_data {
        CounterData::GenericInterface(g) => Some((
            g.if_index,
            IfCounters {
                speed_bps: g.if_speed,
                oper_up: g.if_status & 2 != 0,
                in_octets: g.if_in_octets,
                out_octets: g.if_out_octets,
                in_packets: u64::from(g.if_in_ucast_pkts)
                    + u64::from(g.if_in_multicast_pkts)
                    + u64::from(g.if_in_broadcast_pkts),
                out_packets: u64::from(g.if_out_ucast_pkts)
                    + u64::from(g.if_out_multicast_pkts)
                    + u64::from(g.if_out_broadcast_pkts),
                in_errors: u64::from(g.if_in_errors),
                out_errors: u64::from(g.if_out_errors),
                in_discards: u64::from(g.if_in_discards),
                out_discards: u64::from(g.if_out_discards),
            },
        )),
        _ => None,
    })
}

/// The latest counters per (agent, ifIndex), bounded.
#[derive(Debug, Default)]
pub(crate) struct Interfaces {
    map: BTreeMap<(IpAddr, u32), (i64, IfCounters)>,
    /// Counter samples of interfaces beyond [`MAX_INTERFACES`].
    pub dropped: u64,
}

impl Interfaces {
    /// Keep `c` as the latest of (agent, if_index), seen at `now_ns`.
    pub fn update(&mut self, agent: IpAddr, if_index: u32, now_ns: i64, c: IfCounters) {
        let n = self.map.len();
        match self.map.get_mut(&(agent, if_index)) {
            Some(slot) => *slot = (now_ns, c),
            None if n < MAX_INTERFACES => {
                self.map.insert((agent, if_index), (now_ns, c));
            }
            None => self.dropped += 1,
        }
    }

    /// Every interface, sorted by agent and ifIndex.
    pub fn list(&self) -> Vec<Interface> {
        self.map
            .iter()
            .map(|(&(agent, if_index), &(seen_ns, counters))| Interface {
                agent,
                if_index,
                seen_ns,
                counters,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_counters_are_kept_and_the_table_is_bounded() {
        let mut t = Interfaces::default();
        let a: IpAddr = [192, 0, 2, 1].into();
        let c = |o: u64| IfCounters {
            in_octets: o,
            ..IfCounters::default()
        };
        t.update(a, 7, 1, c(10));
        t.update(a, 7, 2, c(20));
        t.update(a, 3, 2, c(5));
        let l = t.list();
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].if_index, l[1].if_index), (3, 7));
        assert_eq!((l[1].seen_ns, l[1].counters.in_octets), (2, 20));
        for i in 0..MAX_INTERFACES as u32 + 5 {
            t.update([192, 0, 2, 2].into(), i, 3, c(1));
        }
        assert_eq!((t.list().len(), t.dropped), (MAX_INTERFACES, 7));
        // Known interfaces still update at the cap.
        t.update(a, 7, 4, c(30));
        assert!(t
            .list()
            .iter()
            .any(|i| i.if_index == 7 && i.counters.in_octets == 30));
    }
}
