//! What happens as packet time moves on: bursts of silent pairs end, quiet exchanges close,
//! idle pairs expire, and the end of input finishes everything.

use super::Subscribers;
use crate::detect::beacon;
use crate::detect::event::{Event, EventKind};
use crate::detect::idle::IDLE_CLOSE_NS;
use crate::detect::pair::{self};
use crate::detect::NS_PER_SEC;
use crate::key::{addr_to_ip, Addr};

impl Subscribers {
    /// Move packet time forward: at a new second, end quiet bursts, tell the scorer (a tick)
    /// and drop idle pairs.
    #[inline]
    pub fn advance_to(&mut self, ts: i64, out: &mut Vec<Event>) {
        if ts <= self.now_ns {
            return;
        }
        self.now_ns = ts;
        let sec = ts.div_euclid(NS_PER_SEC);
        if sec != self.last_sweep_sec {
            self.new_second(sec, ts, out);
        }
    }

    pub(super) fn new_second(&mut self, sec: i64, ts: i64, out: &mut Vec<Event>) {
        self.last_sweep_sec = sec;
        // Seconds before the last whole one: a pair still sending has closed them itself.
        self.close_hot_bins(sec, sec.saturating_sub(1));
        self.sweep_bursts(sec, false, out);
        self.close_idle(ts, out);
        out.push(Event(EventKind::Tick(ts)));
        self.expire_idle();
    }

    /// End of input: finish every burst, close every open exchange (a beacon's last poll
    /// counts), then tell the scorer to emit everything.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let sec = self.now_ns.div_euclid(NS_PER_SEC).saturating_add(1);
        self.close_hot_bins(sec, sec);
        self.sweep_bursts(sec, true, out);
        self.close_exchanges(out);
        out.push(Event(EventKind::Finish(self.now_ns)));
    }

    /// Close the queued open exchanges that have been silent for [`IDLE_CLOSE_NS`] and run the
    /// beacon analysis on their pairs (see [`crate::detect::idle`]).
    pub(super) fn close_idle(&mut self, now: i64, out: &mut Vec<Event>) {
        while let Some(w) = self.idle.pop_due(now) {
            let Some(idx) = self.pairs.find(&w.key) else {
                continue;
            };
            let ex = &mut self.pairs.get_mut(idx).ex;
            if ex.open_start() != Some(w.start) {
                continue; // closed by the next exchange already
            }
            let quiet_since = ex.last_ns();
            if now.saturating_sub(quiet_since) < IDLE_CLOSE_NS {
                // Still talking: wait for its silence.
                self.idle.push(quiet_since, w.key, w.start);
                continue;
            }
            if ex.close() {
                let v4 = addr_to_ip(w.key.1).is_ipv4();
                self.check_beacon(idx, w.key, v4, now, out);
            }
        }
    }

    /// Close the open exchange of every pair that could be a beacon, run the beacon analysis
    /// on it, and count the pairs whose polls are regular but too few for a beacon.
    pub(super) fn close_exchanges(&mut self, out: &mut Vec<Event>) {
        if self.cfg.beacons_off() {
            return;
        }
        // With the open one, three exchanges at least give two intervals.
        let keys: Vec<(Addr, Addr)> = self
            .pairs
            .iter_lru()
            .filter(|(_, p)| p.ex.is_open() && p.ex.closed >= 2 && !p.from_export())
            .map(|(k, _)| *k)
            .collect();
        let now = self.now_ns;
        for key in keys {
            let Some(idx) = self.pairs.find(&key) else {
                continue;
            };
            if !self.pairs.get_mut(idx).ex.close() {
                continue;
            }
            let v4 = addr_to_ip(key.1).is_ipv4();
            if !self.check_beacon(idx, key, v4, now, out) {
                let pair = self.pairs.get(idx);
                let mut buf = [(0, 0); pair::EVENT_RING];
                let n = pair.ex.recent(&mut buf);
                if let Some(f) = beacon::analyze(&self.cfg, &buf[..n]) {
                    // At least half of what the period needs: fewer is no evidence at all.
                    if f.events < f.events_needed
                        && f.events * 2 >= f.events_needed
                        && f.regularity >= f.regularity_needed
                        && f.in_band >= beacon::IN_BAND
                        && pair.beacons == 0
                    {
                        self.stats.beacons_too_few = self.stats.beacons_too_few.saturating_add(1);
                        self.stats.beacons_too_few_most = self
                            .stats
                            .beacons_too_few_most
                            .max((f.events, f.events_needed));
                    }
                }
            }
        }
    }

    pub(super) fn sweep_bursts(&mut self, now_sec: i64, all: bool, out: &mut Vec<Event>) {
        let quiet = self.cfg.burst_quiet_ns / NS_PER_SEC;
        let (cont, max_ns) = (self.cfg.burst_continue_ratio, self.cfg.burst_max_ns);
        let mut i = 0;
        while i < self.bursting.len() {
            let (idx, key) = self.bursting[i];
            let valid = self.pairs.find(&key) == Some(idx);
            if !valid {
                self.bursting.swap_remove(i);
                continue;
            }
            let pair = self.pairs.get_mut(idx);
            let (entry, baseline) = pair.bin_thresholds();
            let mut done = pair.close_bin_before(now_sec, entry, baseline, cont, quiet, max_ns);
            if done.is_none() && (all || pair.burst_is_over(now_sec, quiet, max_ns)) {
                done = pair.finish_burst(max_ns);
            }
            let still = pair.burst.is_some();
            if let Some(f) = done {
                let snapshot = self.pairs.get(idx).clone();
                let v4 = addr_to_ip(key.1).is_ipv4();
                self.on_burst(key, v4, f, &snapshot, out);
            }
            if still && !all {
                i += 1;
            } else {
                self.pairs.get_mut(idx).in_bursting = false;
                self.bursting.swap_remove(i);
            }
        }
    }

    /// Close the hot open seconds of pairs that fell silent, those of seconds before `before`,
    /// as their next packet would have at `now_sec`: a second at the entry rate starts a burst,
    /// which the sweep then follows like any other.
    pub(super) fn close_hot_bins(&mut self, now_sec: i64, before: i64) {
        let quiet = self.cfg.burst_quiet_ns / NS_PER_SEC;
        let (cont, max_ns) = (self.cfg.burst_continue_ratio, self.cfg.burst_max_ns);
        while let Some(&(sec, idx, key)) = self.hot_bins.front() {
            if sec >= before {
                break;
            }
            self.hot_bins.pop_front();
            if self.pairs.find(&key) != Some(idx) {
                continue;
            }
            let pair = self.pairs.get(idx);
            if pair.open_sec() != Some(sec) || pair.burst.is_some() {
                continue; // closed by a later packet, or a burst the sweep follows
            }
            let pair = self.pairs.get_mut(idx);
            let (entry, baseline) = pair.bin_thresholds();
            // No burst was in progress, so none can end here.
            let ended = pair.close_bin_before(now_sec, entry, baseline, cont, quiet, max_ns);
            debug_assert!(ended.is_none());
            if pair.burst.is_some() && !pair.in_bursting {
                pair.in_bursting = true;
                self.bursting.push((idx, key));
            }
        }
    }

    pub(super) fn expire_idle(&mut self) {
        // Pairs idle for longer than the look-back carry nothing the detector still needs.
        let limit = self.cfg.lookback_ns.max(self.cfg.beacon_realert_ns);
        while let Some(idx) = self.pairs.oldest() {
            let p = self.pairs.get(idx);
            if p.burst.is_some() || self.now_ns.saturating_sub(p.last_ns) <= limit {
                break;
            }
            self.pairs.remove(idx);
        }
    }
}
