//! Turning a finished burst or a run of exchanges into an [`Event`] for the scorer (or a
//! counted rejection).

use super::Subscribers;
use crate::detect::alert::Connections;
use crate::detect::beacon;
use crate::detect::burstlog::{BurstOutcome, BurstRecord};
use crate::detect::event::{Candidate, Event, EventKind};
use crate::detect::pair::{self, FinishedBurst, PairState};
use crate::detect::prevalence::sec_of;
use crate::detect::AlertKind;
use crate::key::{addr_ip, Addr};

impl Subscribers {
    pub(super) fn reject(
        &mut self,
        key: (Addr, Addr),
        v4: bool,
        f: &FinishedBurst,
        outcome: BurstOutcome,
        out: &mut Vec<Event>,
    ) {
        if self.record_bursts {
            let rec = BurstRecord::new(addr_ip(key.0, v4), addr_ip(key.1, v4), &f.acc, outcome);
            out.push(Event(EventKind::Burst(Box::new(rec))));
        }
    }

    pub(super) fn on_burst(
        &mut self,
        key: (Addr, Addr),
        v4: bool,
        f: FinishedBurst,
        pair: &PairState,
        out: &mut Vec<Event>,
    ) {
        self.stats.bursts += 1;
        let acc = &f.acc;
        if f.too_long {
            self.stats.bursts_too_long += 1;
            self.reject(key, v4, &f, BurstOutcome::TooLong, out);
            return;
        }
        if acc.vol.up < self.cfg.burst_min_bytes {
            self.stats.bursts_too_small += 1;
            self.reject(key, v4, &f, BurstOutcome::TooSmall, out);
            return;
        }
        let total = (acc.vol.up + acc.vol.down).max(1) as f64;
        if (acc.vol.up as f64) / total < self.cfg.burst_min_upstream_ratio {
            self.stats.bursts_not_upstream += 1;
            self.reject(key, v4, &f, BurstOutcome::NotUpstream, out);
            return;
        }
        let start_sec = sec_of(acc.start_ns);
        let mut starts = pair.recent_burst_starts();
        starts.push(start_sec);
        let recurrence = crate::detect::score::recurrence(&starts);
        let occurrence = pair.bursts.saturating_add(1);
        if let Some(idx) = self.pairs.find(&key) {
            self.pairs.get_mut(idx).push_burst_start(start_sec);
        }
        out.push(Event(EventKind::Candidate(Box::new(Candidate {
            emit_at: acc.end_ns.saturating_add(self.cfg.alert_hold_ns),
            kind: AlertKind::Burst,
            home: key.0,
            ext: key.1,
            v4,
            detected_ns: self.now_ns.max(acc.end_ns),
            start_ns: acc.start_ns,
            end_ns: acc.end_ns,
            totals: (acc.vol.up, acc.vol.down, acc.vol.pk_up, acc.vol.pk_down),
            proto_port: acc.main_port(),
            baseline_bytes: acc.baseline_bytes,
            pair_first_seen_ns: pair.first_seen_ns,
            occurrence,
            recurrence,
            beacon: None,
            beacon_facts: None,
            connections: f.acc.connections,
            burst: Some(f),
        }))));
    }

    /// Run the beacon analysis on the pair's recent exchanges; push a candidate and return
    /// `true` when they make a beacon.
    pub(super) fn check_beacon(
        &mut self,
        pidx: u32,
        key: (Addr, Addr),
        v4: bool,
        ts: i64,
        out: &mut Vec<Event>,
    ) -> bool {
        let cfg = &self.cfg;
        let pair = self.pairs.get(pidx);
        if pair.from_export()
            || pair.ex.closed < cfg.beacon_min_events.min(6)
            || (pair.last_beacon_ns != i64::MIN
                && ts.saturating_sub(pair.last_beacon_ns) < cfg.beacon_realert_ns)
        {
            return false;
        }
        let mut buf = [(0, 0); pair::EVENT_RING];
        let n = pair.ex.recent(&mut buf);
        let Some(facts) = beacon::analyze(cfg, &buf[..n]) else {
            return false;
        };
        if !facts.is_beacon(cfg) {
            return false;
        }
        let beacon_port = (pair.last_proto, pair.last_port);
        let beacon_conn = Connections::one(pair.last_conn);
        let start_ns = pair.first_seen_ns + i64::from(buf[0].0) * 10_000_000;
        let (first_seen, totals) = (
            pair.first_seen_ns,
            (
                pair.total.up,
                pair.total.down,
                pair.total.pk_up,
                pair.total.pk_down,
            ),
        );
        let hold = self.cfg.alert_hold_ns;
        let p = self.pairs.get_mut(pidx);
        p.last_beacon_ns = ts;
        p.beacons = p.beacons.saturating_add(1);
        let occurrence = p.beacons;
        out.push(Event(EventKind::Candidate(Box::new(Candidate {
            emit_at: ts.saturating_add(hold),
            kind: AlertKind::Beacon,
            home: key.0,
            ext: key.1,
            v4,
            detected_ns: ts,
            start_ns,
            end_ns: ts,
            totals,
            proto_port: beacon_port,
            burst: None,
            beacon: Some((
                facts.regularity,
                facts.interval_s,
                facts.median_bytes,
                facts.events,
            )),
            beacon_facts: Some(facts),
            connections: beacon_conn,
            pair_first_seen_ns: first_seen,
            occurrence,
            recurrence: 0.0,
            baseline_bytes: None,
        }))));
        true
    }
}
