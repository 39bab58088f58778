//! Per (subscriber, endpoint) pair: one-second upstream/downstream bins, burst segmentation on
//! them, and the event series used for recurrence and beacon analysis.

use super::alert::{Connection, Connections};
use super::config::ThresholdBasis;
use super::exchange::Exchanges;
pub use super::exchange::EVENT_RING;
use super::ring::Ring;
use crate::NS_PER_SEC;

/// Slots in the burst-start ring.
pub const BURST_RING: usize = 8;
/// Distinct flow hashes remembered per burst (the count goes on beyond).
const FLOW_SET: usize = 16;
/// Destination ports tracked per burst.
const PORTS: usize = 4;

/// Bytes and packets each way, the four counters a pair keeps per second, in total, per
/// burst and per lead or tail second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Volume {
    /// Upstream bytes.
    pub up: u64,
    /// Downstream bytes.
    pub down: u64,
    /// Upstream packets.
    pub pk_up: u64,
    /// Downstream packets.
    pub pk_down: u64,
}

impl Volume {
    /// Count one packet of `bytes`, upstream or not.
    #[inline]
    pub fn count(&mut self, up: bool, bytes: u64) {
        if up {
            self.up += bytes;
            self.pk_up += 1;
        } else {
            self.down += bytes;
            self.pk_down += 1;
        }
    }

    /// Add another volume to this one.
    #[inline]
    pub fn add(&mut self, o: &Volume) {
        self.up += o.up;
        self.down += o.down;
        self.pk_up += o.pk_up;
        self.pk_down += o.pk_down;
    }

    /// Nothing counted.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.up == 0 && self.down == 0
    }
}

/// A burst in progress.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BurstAcc {
    /// First packet of the first hot second.
    pub start_ns: i64,
    /// Last packet of the last hot second.
    pub end_ns: i64,
    /// Second index of the last hot second.
    pub last_hot_sec: i64,
    /// Bytes and packets each way of the burst's seconds.
    #[serde(flatten)]
    pub vol: Volume,
    /// Bytes and packets of seconds after the last hot one (added if the burst goes on; a
    /// finished burst has none to keep).
    #[serde(skip)]
    pub(crate) pend: Volume,
    /// Highest one-second upstream byte count.
    pub peak_up: u64,
    /// Rate (bytes/s) a second needed to start the burst.
    pub entry_bytes: f64,
    /// The subscriber's baseline (p95 bytes/s) when the burst started, if warm.
    pub baseline_bytes: Option<f64>,
    /// What set `entry_bytes` (floor, baseline or uplink peak).
    #[serde(default)]
    pub entry_basis: ThresholdBasis,
    /// The pair's smoothed rates just before the burst.
    pub before: PairRates,
    /// The first second after the last hot one (the transfer's tail), added when the burst ends.
    pub(crate) tail: Lead,
    /// Distinct flows seen (hash set of the first few, then a count).
    pub(crate) flow_hashes: [u32; FLOW_SET],
    /// Distinct flows counted.
    pub flows: u32,
    /// Upstream bytes per (proto, port), the top few.
    pub(crate) ports: [(u8, u16, u64); PORTS],
    /// The first distinct flows' connections (for their Community IDs).
    #[serde(default)]
    pub connections: Connections,
    /// The highest 1-in-N sampling of the pair's packets when the burst ended (0 or 1:
    /// captured packets or unsampled export): the rate its volume is gated at.
    #[serde(default)]
    pub sampling: u32,
}

impl BurstAcc {
    /// Seconds of silence that end this burst: `base`, or for input sampled 1 in `sampling`
    /// the silence that the burst's own rate makes unlikely (see
    /// [`super::sampling::quiet_secs`]), at most the longest burst (`max_ns`).
    #[inline]
    pub fn quiet_secs(&self, base: i64, sampling: u32, max_ns: i64) -> i64 {
        if sampling <= 1 {
            return base;
        }
        let hot_secs = self.last_hot_sec - self.start_ns.div_euclid(NS_PER_SEC) + 1;
        let max_secs = max_ns / NS_PER_SEC;
        super::sampling::quiet_secs(base, self.vol.up, hot_secs, sampling, max_secs)
    }

    fn note_flow(&mut self, h: u32, conn: Connection) {
        let n = (self.flows as usize).min(FLOW_SET);
        if self.flow_hashes[..n].contains(&h) {
            return;
        }
        if n < FLOW_SET {
            self.flow_hashes[n] = h;
        }
        self.flows = self.flows.saturating_add(1).min(64);
        self.connections.push(conn);
    }

    fn note_port(&mut self, proto: u8, port: u16, bytes: u64) {
        if let Some(p) = self
            .ports
            .iter_mut()
            .find(|p| p.2 > 0 && p.0 == proto && p.1 == port)
        {
            p.2 += bytes;
        } else if let Some(p) = self.ports.iter_mut().min_by_key(|p| p.2) {
            if p.2 == 0 || bytes > p.2 {
                *p = (proto, port, bytes);
            }
        }
    }

    /// The (proto, port) that carried the most upstream bytes.
    pub fn main_port(&self) -> (u8, u16) {
        self.ports
            .iter()
            .max_by_key(|p| p.2)
            .map_or((0, 0), |p| (p.0, p.1))
    }
}

/// One closed second's counts, kept to extend a burst by its ramp-up second (before) or its
/// tail second (after): a transfer rarely starts and ends on a second boundary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lead {
    sec: i64,
    #[serde(flatten)]
    vol: Volume,
    /// First packet of the second (for a lead-in) or last packet (for a tail).
    edge_ns: i64,
}

/// A finished burst handed to the detector.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinishedBurst {
    /// The accumulated burst.
    pub acc: BurstAcc,
    /// It went on longer than the configured maximum (a sustained transfer).
    pub too_long: bool,
}

/// State of one pair (544 bytes a slab entry in the pair table; see `crate::memory`).
#[derive(Debug, Clone, PartialEq)]
pub struct PairState {
    /// Slot of the subscriber's state in the host map when last seen (checked before use).
    pub(crate) host_hint: u32,
    /// The detector's home-network generation under which this pair's key last matched a
    /// classified packet (see `Subscribers::count_packet`).
    pub(crate) home_epoch: u32,
    /// Second index of the open bin, `i64::MIN` when none.
    sec: i64,
    /// The open bin's bytes and packets.
    bin: Volume,
    bin_first_ns: i64,
    bin_last_ns: i64,
    /// Flows and the upstream port of the open bin, for a burst that starts with it (a burst
    /// in progress notes them directly).
    bin_flows: [u32; 4],
    bin_conns: [Connection; 4],
    bin_nflows: u8,
    bin_port: (u8, u16),
    /// What the open bin is judged against when it closes, taken from the subscriber when the
    /// bin opened (see [`PairState::set_bin_thresholds`]): the rate (bytes/s) that starts a
    /// burst, what set it, and the baseline (NaN: none).
    bin_entry: f64,
    bin_baseline: f64,
    bin_basis: ThresholdBasis,
    /// The burst in progress.
    pub burst: Option<Box<BurstAcc>>,
    /// When the pair was first seen (ns).
    pub first_seen_ns: i64,
    /// Last packet (ns).
    pub last_ns: i64,
    /// Bytes and packets since first seen.
    pub total: Volume,
    /// Silence-separated exchanges (beacon analysis).
    pub ex: Exchanges,
    /// Protocol and endpoint port of the latest upstream packet.
    pub last_proto: u8,
    /// Endpoint port of the latest upstream packet.
    pub last_port: u16,
    /// Connection of the latest upstream packet (a beacon alert's).
    pub last_conn: Connection,
    /// Start seconds of recent bursts, a ring.
    burst_starts: Ring<u32, BURST_RING>,
    /// Bursts alerted or not, this pair.
    pub bursts: u32,
    /// Beacon alerts of this pair.
    pub beacons: u32,
    /// When the last beacon alert was made (ns), `i64::MIN` if never.
    pub last_beacon_ns: i64,
    /// Whether the pair is in the detector's bursting list.
    pub in_bursting: bool,
    /// Exponentially weighted per-second rates (bytes/s) over ~10 s and ~60 s, `[up, down]`,
    /// as of the end of second `rates_sec`.
    rate10: [f32; 2],
    rate60: [f32; 2],
    rates_sec: i64,
    /// The last closed second that did not start a burst.
    lead: Lead,
    /// The highest 1-in-N sampling of the pair's packets (0: captured packets).
    sampling: u32,
    /// Seconds in which the pair carried sampled input, up to 3 (see
    /// [`note_sampled_sec`](Self::note_sampled_sec)).
    sampled_secs: u8,
}

/// The pair's smoothed rates, bytes per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PairRates {
    /// Upstream over ~10 s.
    pub up_10s: f64,
    /// Upstream over ~60 s.
    pub up_60s: f64,
    /// Downstream over ~10 s.
    pub down_10s: f64,
    /// Downstream over ~60 s.
    pub down_60s: f64,
}

impl Default for PairState {
    fn default() -> Self {
        Self::new(0)
    }
}

impl PairState {
    /// A pair first seen at `ts`.
    pub fn new(ts: i64) -> Self {
        Self {
            host_hint: u32::MAX,
            home_epoch: u32::MAX,
            sec: i64::MIN,
            bin: Volume::default(),
            bin_first_ns: 0,
            bin_last_ns: 0,
            bin_flows: [0; 4],
            bin_conns: [Connection::default(); 4],
            bin_nflows: 0,
            bin_port: (0, 0),
            bin_entry: f64::INFINITY,
            bin_baseline: f64::NAN,
            bin_basis: ThresholdBasis::Floor,
            burst: None,
            first_seen_ns: ts,
            last_ns: i64::MIN,
            total: Volume::default(),
            ex: Exchanges::default(),
            last_proto: 0,
            last_port: 0,
            last_conn: Connection::default(),
            burst_starts: Ring::default(),
            bursts: 0,
            beacons: 0,
            last_beacon_ns: i64::MIN,
            in_bursting: false,
            rate10: [0.0; 2],
            rate60: [0.0; 2],
            rates_sec: i64::MIN,
            lead: Lead::default(),
            sampling: 0,
            sampled_secs: 0,
        }
    }

    /// Note the 1-in-N sampling of a packet (0: captured): the pair keeps the highest.
    #[inline]
    pub fn note_sampling(&mut self, sampling: u32) {
        if sampling > self.sampling {
            self.sampling = sampling;
        }
    }

    /// Whether any of the pair's packets stood for flow export (a record's or a sample's
    /// estimate, sampling 1 or more): such input keeps no packet timing, so the pair's
    /// exchanges are not scored as beacons.
    #[inline]
    pub fn from_export(&self) -> bool {
        self.sampling > 0
    }

    /// Note a second in which the pair carried sampled input; whether it is one of its first
    /// three (endpoint prevalence counts a subscriber's sampled seconds up to three, to
    /// estimate the subscribers sampling hid: see `super::prevalence`).
    #[inline]
    pub fn note_sampled_sec(&mut self) -> bool {
        let counted = self.sampled_secs < 3;
        self.sampled_secs = self.sampled_secs.saturating_add(1).min(3);
        counted
    }

    /// Second index of the open bin, if any.
    pub fn open_sec(&self) -> Option<i64> {
        (self.sec != i64::MIN).then_some(self.sec)
    }

    /// Keep what the open bin will be judged against: the subscriber's burst entry rate and
    /// baseline as they stand when the bin opens, every second of the subscriber before the
    /// bin's closed and the bin's own not yet. Taken then, they do not depend on which packet
    /// of the next second closes the bin, nor on whether a packet or a sweep closes it, and a
    /// second never raises its own bar.
    #[inline]
    pub(crate) fn set_bin_thresholds(
        &mut self,
        entry: (f64, ThresholdBasis),
        baseline: Option<f64>,
    ) {
        self.bin_entry = entry.0;
        self.bin_basis = entry.1;
        self.bin_baseline = baseline.unwrap_or(f64::NAN);
    }

    /// What the open bin is judged against (see [`PairState::set_bin_thresholds`]); a bin
    /// opened without them starts no burst.
    #[inline]
    pub(crate) fn bin_thresholds(&self) -> ((f64, ThresholdBasis), Option<f64>) {
        let baseline = (!self.bin_baseline.is_nan()).then_some(self.bin_baseline);
        ((self.bin_entry, self.bin_basis), baseline)
    }

    /// Upstream bytes of the open bin (0 when none is open).
    #[inline]
    pub fn open_bin_up(&self) -> u64 {
        if self.sec == i64::MIN {
            0
        } else {
            self.bin.up
        }
    }

    /// Count one packet of connection `conn`. `exchange`: it carries payload that makes it part of an exchange
    /// (see [`super::exchange`]); `event_gap_ns` separates exchanges. Returns `true` when an
    /// exchange closed (the caller may then run the beacon analysis).
    #[inline]
    #[allow(clippy::too_many_arguments)] // the per-packet facts, passed flat to stay allocation-free
    pub fn add(
        &mut self,
        ts: i64,
        up: bool,
        bytes: u32,
        flow_hash: u32,
        conn: Connection,
        port: u16,
        exchange: bool,
        event_gap_ns: i64,
    ) -> bool {
        let proto = conn.proto;
        let b = u64::from(bytes);
        let event_closed = exchange && self.ex.add(ts, up, bytes, self.first_seen_ns, event_gap_ns);
        self.last_ns = self.last_ns.max(ts);
        if self.sec == i64::MIN {
            self.sec = ts.div_euclid(1_000_000_000);
            self.bin_first_ns = ts;
        }
        if self.bin.is_empty() {
            self.bin_first_ns = ts;
        }
        self.bin_last_ns = self.bin_last_ns.max(ts);
        if up {
            self.last_proto = proto;
            self.last_port = port;
            self.last_conn = conn;
        }
        self.bin.count(up, b);
        self.total.count(up, b);
        match self.burst.as_deref_mut() {
            Some(acc) => {
                acc.note_flow(flow_hash, conn);
                if up {
                    acc.note_port(proto, port, b);
                }
            }
            None => {
                let n = usize::from(self.bin_nflows);
                if n < self.bin_flows.len() && !self.bin_flows[..n].contains(&flow_hash) {
                    self.bin_flows[n] = flow_hash;
                    self.bin_conns[n] = conn;
                    self.bin_nflows += 1;
                }
                if up && self.bin_port == (0, 0) {
                    self.bin_port = (proto, port);
                }
            }
        }
        event_closed
    }

    /// Recent burst start seconds, oldest first.
    pub fn recent_burst_starts(&self) -> Vec<u32> {
        self.burst_starts.iter().collect()
    }

    /// Remember a burst's start (for recurrence).
    pub fn push_burst_start(&mut self, sec: u32) {
        self.burst_starts.push(sec);
        self.bursts = self.bursts.saturating_add(1);
    }

    /// Whether this pair's upstream bytes at `ts` are kept out of its subscriber's baseline:
    /// while it is in a burst (up to `max_ns` into it: a longer one is a sustained transfer,
    /// a call or a backup, which is ordinary activity), and for `hold_ns` after the start of
    /// its last burst that passed the subscriber's gates (a candidate). Otherwise a subscriber
    /// whose bursts go on at a slower pace, or that sends slower transfers between them, would
    /// teach its baseline that its bursts are normal, and its later, smaller bursts would stay
    /// under a threshold they raised themselves. (Bursts to popular endpoints are held out too:
    /// the engine's per-subscriber half does not know prevalence, see `Subscribers`.)
    #[inline]
    pub fn held_from_baseline(&self, ts: i64, max_ns: i64, hold_ns: i64) -> bool {
        if let Some(acc) = self.burst.as_deref() {
            if ts.saturating_sub(acc.start_ns) <= max_ns {
                return true;
            }
        }
        let Some(last) = self.burst_starts.last() else {
            return false;
        };
        i64::from(super::prevalence::sec_of(ts)) - i64::from(last)
            <= hold_ns.div_euclid(1_000_000_000)
    }

    /// Whether a bin is open and older than `now_sec` (so [`PairState::close_bin_before`] closes it).
    #[inline]
    pub fn bin_closes_before(&self, now_sec: i64) -> bool {
        self.sec != i64::MIN && self.sec < now_sec
    }

    /// Close the open bin if it is older than `now_sec`, feeding the burst state machine.
    /// `entry` is the bytes/s a second needs to start a burst and what set it. Returns a
    /// burst that ended.
    #[allow(clippy::too_many_arguments)] // thresholds passed flat: no allocation per bin
    pub fn close_bin_before(
        &mut self,
        now_sec: i64,
        entry: (f64, ThresholdBasis),
        baseline_bytes: Option<f64>,
        continue_ratio: f64,
        quiet_secs: i64,
        max_ns: i64,
    ) -> Option<FinishedBurst> {
        if !self.bin_closes_before(now_sec) {
            return None;
        }
        let (entry_bytes, entry_basis) = entry;
        let sec = self.sec;
        let vol = self.bin;
        let (up, down) = (vol.up, vol.down);
        let (first, last) = (self.bin_first_ns, self.bin_last_ns);
        let (flows, conns, nflows, port) = (
            self.bin_flows,
            self.bin_conns,
            self.bin_nflows,
            self.bin_port,
        );
        self.sec = i64::MIN;
        self.bin = Volume::default();
        self.bin_nflows = 0;
        self.bin_port = (0, 0);
        self.bin_last_ns = i64::MIN;
        let before = self.rates();
        self.fold_rates(sec, up, down);
        let upf = up as f64;
        let mut finished = None;
        match self.burst.as_deref_mut() {
            None => {
                if up > 0 && upf >= entry_bytes {
                    let mut acc = BurstAcc {
                        start_ns: first,
                        end_ns: last,
                        last_hot_sec: sec,
                        vol,
                        peak_up: up,
                        entry_bytes,
                        baseline_bytes,
                        entry_basis,
                        before,
                        ..BurstAcc::default()
                    };
                    let lead = self.lead;
                    // A ramp-up second (not just background: at least 5 % of the first hot one).
                    if lead.sec == sec - 1 && lead.vol.up * 20 >= up {
                        acc.start_ns = lead.edge_ns;
                        acc.vol.add(&lead.vol);
                    }
                    let n = usize::from(nflows);
                    for (&f, &c) in flows[..n].iter().zip(&conns[..n]) {
                        acc.note_flow(f, c);
                    }
                    acc.note_port(port.0, port.1, up);
                    self.burst = Some(Box::new(acc));
                } else {
                    self.lead = Lead {
                        sec,
                        vol,
                        edge_ns: first,
                    };
                }
            }
            Some(acc) => {
                if sec - acc.last_hot_sec > acc.quiet_secs(quiet_secs, self.sampling, max_ns) {
                    finished = self.finish_burst(max_ns);
                    // This bin may start a new burst.
                    if up > 0 && upf >= entry_bytes {
                        self.sec = sec;
                        self.bin = vol;
                        self.bin_first_ns = first;
                        self.bin_last_ns = last;
                        self.bin_flows = flows;
                        self.bin_conns = conns;
                        self.bin_nflows = nflows;
                        self.bin_port = port;
                        let again = self.close_bin_before(
                            now_sec,
                            entry,
                            baseline_bytes,
                            continue_ratio,
                            quiet_secs,
                            max_ns,
                        );
                        debug_assert!(again.is_none());
                    }
                } else if upf >= acc.entry_bytes * continue_ratio && up > 0 {
                    acc.vol.add(&vol);
                    let pend = std::mem::take(&mut acc.pend);
                    acc.vol.add(&pend);
                    acc.peak_up = acc.peak_up.max(up);
                    acc.last_hot_sec = sec;
                    acc.tail = Lead::default();
                    acc.end_ns = acc.end_ns.max(last);
                } else {
                    if sec == acc.last_hot_sec + 1 {
                        acc.tail = Lead {
                            sec,
                            vol,
                            edge_ns: last,
                        };
                    }
                    acc.pend.add(&vol);
                }
            }
        }
        finished
    }

    /// Fold a closed one-second bin into the 10 s / 60 s exponentially weighted rates
    /// (time constants 10 s and 60 s; skipped seconds count as zero).
    fn fold_rates(&mut self, sec: i64, up: u64, down: u64) {
        const A10: f64 = 0.904_837_418_035_959_6; // e^(-1/10)
        const A60: f64 = 0.983_471_453_821_617_2; // e^(-1/60)
        let gap = if self.rates_sec == i64::MIN {
            1
        } else {
            (sec - self.rates_sec).clamp(1, 10_000)
        };
        let decay = |r: f32, a: f64, x: u64| -> f32 {
            let kept = f64::from(r) * a.powi((gap - 1) as i32);
            (kept * a + (1.0 - a) * x as f64) as f32
        };
        self.rate10 = [
            decay(self.rate10[0], A10, up),
            decay(self.rate10[1], A10, down),
        ];
        self.rate60 = [
            decay(self.rate60[0], A60, up),
            decay(self.rate60[1], A60, down),
        ];
        self.rates_sec = sec;
    }

    /// Smoothed rates as of the last closed second.
    pub fn rates(&self) -> PairRates {
        PairRates {
            up_10s: f64::from(self.rate10[0]),
            up_60s: f64::from(self.rate60[0]),
            down_10s: f64::from(self.rate10[1]),
            down_60s: f64::from(self.rate60[1]),
        }
    }

    /// Whether the burst in progress has been quiet long enough at `now_sec` to be over
    /// (`quiet_secs`, or longer for sampled input: [`BurstAcc::quiet_secs`]).
    pub fn burst_is_over(&self, now_sec: i64, quiet_secs: i64, max_ns: i64) -> bool {
        self.burst.as_ref().is_some_and(|b| {
            now_sec - b.last_hot_sec > b.quiet_secs(quiet_secs, self.sampling, max_ns)
        })
    }

    /// End the burst in progress.
    pub fn finish_burst(&mut self, max_ns: i64) -> Option<FinishedBurst> {
        let mut acc = *self.burst.take()?;
        let t = acc.tail;
        if t.vol.up > 0 && t.vol.up * 20 >= acc.peak_up {
            acc.vol.add(&t.vol);
            acc.end_ns = acc.end_ns.max(t.edge_ns);
        }
        acc.sampling = self.sampling;
        let too_long = acc.end_ns.saturating_sub(acc.start_ns) > max_ns;
        Some(FinishedBurst { acc, too_long })
    }
}

#[cfg(test)]
mod tests;
