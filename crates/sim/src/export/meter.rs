//! A router's flow meter: packets in, unidirectional flow records out, with 1-in-N random
//! packet sampling, an active timeout (a long flow is reported every so often) and an idle
//! timeout.

use std::collections::HashMap;
use std::net::IpAddr;

use super::encode::Record;
use crate::rng::Rng;

/// A packet's unidirectional 5-tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol.
    pub proto: u8,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

#[derive(Clone, Copy, Debug)]
struct Acc {
    bytes: u64,
    packets: u64,
    start_ns: i64,
    last_ns: i64,
}

/// The flow cache of one exporter.
pub struct Meter {
    active_ns: i64,
    idle_ns: i64,
    sampling: u32,
    rng: Rng,
    flows: HashMap<FlowKey, Acc>,
    out: Vec<Record>,
    last_sweep_s: i64,
}

impl Meter {
    /// A meter with these timeouts (seconds) sampling 1 in `sampling` packets at random
    /// (seeded by `seed`).
    pub fn new(active_s: u32, idle_s: u32, sampling: u32, seed: u64) -> Self {
        Self {
            active_ns: i64::from(active_s.max(1)) * 1_000_000_000,
            idle_ns: i64::from(idle_s.max(1)) * 1_000_000_000,
            sampling: sampling.max(1),
            rng: Rng::new(seed, 0x6578_706f_7274),
            flows: HashMap::new(),
            out: Vec::new(),
            last_sweep_s: i64::MIN,
        }
    }

    /// Whether the sampler takes the next packet.
    pub fn sample(&mut self) -> bool {
        self.sampling == 1 || self.rng.next_u64() % u64::from(self.sampling) == 0
    }

    /// Count one packet already taken by [`Meter::sample`]. Records that time out come out of
    /// [`Meter::drain`].
    pub fn packet(&mut self, ts_ns: i64, key: FlowKey, ip_len: u32) {
        self.sweep(ts_ns);
        if let Some(a) = self.flows.get(&key) {
            if ts_ns - a.start_ns >= self.active_ns || ts_ns - a.last_ns >= self.idle_ns {
                let a = *a;
                self.flows.remove(&key);
                self.emit(key, a);
            }
        }
        let a = self.flows.entry(key).or_insert(Acc {
            bytes: 0,
            packets: 0,
            start_ns: ts_ns,
            last_ns: ts_ns,
        });
        a.bytes += u64::from(ip_len);
        a.packets += 1;
        a.last_ns = a.last_ns.max(ts_ns);
    }

    /// Once a second of packet time: export the flows past a timeout.
    pub fn sweep(&mut self, ts_ns: i64) {
        let s = ts_ns.div_euclid(1_000_000_000);
        if s <= self.last_sweep_s {
            return;
        }
        self.last_sweep_s = s;
        let (active, idle) = (self.active_ns, self.idle_ns);
        let mut due: Vec<(FlowKey, Acc)> = self
            .flows
            .iter()
            .filter(|(_, a)| ts_ns - a.start_ns >= active || ts_ns - a.last_ns >= idle)
            .map(|(k, a)| (*k, *a))
            .collect();
        // Hash order must not reach the output.
        due.sort_unstable_by_key(|(k, a)| (a.start_ns, *k));
        for (k, a) in due {
            self.flows.remove(&k);
            self.emit(k, a);
        }
    }

    /// End of input: export every flow.
    pub fn finish(&mut self) {
        let mut all: Vec<(FlowKey, Acc)> = self.flows.drain().collect();
        all.sort_unstable_by_key(|(k, a)| (a.start_ns, *k));
        for (k, a) in all {
            self.emit(k, a);
        }
    }

    /// The records exported since the last call.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Record> {
        self.out.drain(..)
    }

    fn emit(&mut self, k: FlowKey, a: Acc) {
        self.out.push(Record {
            src: k.src,
            dst: k.dst,
            proto: k.proto,
            sport: k.sport,
            dport: k.dport,
            bytes: a.bytes,
            packets: a.packets,
            start_ns: a.start_ns,
            end_ns: a.last_ns,
        });
    }
}
