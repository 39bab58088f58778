//! The population-wide half of the detector: endpoint prevalence, port usage, the hold, the
//! score and the alert.
//!
//! It is fed the [`Event`]s of every subscriber shard in one order (packet order; see
//! [`crate::shard`]), so its state and its alerts do not depend on how many shards there are.

use std::collections::VecDeque;

use ahash::RandomState;

use super::alert::{
    Alert, AlertKind, EarlyReason, EndpointInfo, RateThreshold, Severity, SharedPrevalence,
};
use super::burstlog::{BurstLog, BurstOutcome, BurstRecord};
use super::config::{DetectConfig, EndpointLists};
use super::event::{port_slot, Candidate, Event, EventKind, PORT_SLOTS};
use super::global::{Contact, Global, GlobalConfig, GlobalPrevalence, GlobalQuery, GlobalStats};
use super::pending::Pending;
use super::prevalence::{sec_of, EndpointState, ASN_NONE, ASN_UNKNOWN};
use super::subscribers::host_hash;
use super::{alert_id, score, DetectStats, Enrich, NS_PER_SEC};
use crate::key::{addr_ip, addr_to_ip, Addr};
use crate::lrumap::LruMap;

/// Entries of the prefix prevalence table for an endpoint table of `max_endpoints`.
pub fn prefix_cap(max_endpoints: usize) -> usize {
    (max_endpoints / 2).max(1)
}

/// Entries of the autonomous-system prevalence table for an endpoint table of `max_endpoints`
/// (about 80,000 ASes are announced; a sensor sees a fraction of them).
pub fn asn_cap(max_endpoints: usize) -> usize {
    (max_endpoints / 16).clamp(1, 65_536)
}

/// Endpoint prevalence, port usage, pending candidates and finished alerts.
pub struct Scorer {
    pub(crate) cfg: DetectConfig,
    pub(crate) endpoints: LruMap<Addr, EndpointState>,
    /// Prevalence of endpoint prefixes (key: the masked address), at most half as many.
    pub(crate) prefixes: LruMap<Addr, EndpointState>,
    /// Prevalence of the endpoints' autonomous systems (with an ASN database only).
    pub(crate) asns: LruMap<u32, EndpointState>,
    pub(crate) pending: Pending,
    out: VecDeque<Alert>,
    pub(crate) port_pairs: Vec<u32>,
    pub(crate) port_max: u32,
    pub(crate) start_ns: Option<i64>,
    pub(crate) now_ns: i64,
    finished: bool,
    /// Set by the shell when input ends because the process stops: candidates still on hold
    /// at [`EventKind::Finish`] are marked with it.
    finish_reason: Option<EarlyReason>,
    enrich: Option<Box<dyn Enrich>>,
    stats: DetectStats,
    /// Opt-in record of every segmented burst (forensic reports); `None` in the daemon.
    burst_log: Option<BurstLog>,
    /// Prevalence shared with other sensors (see [`super::global`]); `None`: local only.
    pub(crate) global: Option<Global>,
    /// 1-in-N sampling of the input where its packets do not say (1: none; see
    /// [`Scorer::set_sampling`]).
    sampling: u32,
}

impl Scorer {
    /// A scorer with these settings; `hash_seed` keys the endpoint table only.
    pub fn new(cfg: DetectConfig, hash_seed: u64) -> Self {
        let k = 3;
        let hasher =
            RandomState::with_seeds(hash_seed ^ k, hash_seed.rotate_left(9) ^ k, 0x5151, k);
        let k = 4;
        let prefix_hasher =
            RandomState::with_seeds(hash_seed ^ k, hash_seed.rotate_left(9) ^ k, 0x5151, k);
        let k = 5;
        let asn_hasher =
            RandomState::with_seeds(hash_seed ^ k, hash_seed.rotate_left(9) ^ k, 0x5151, k);
        Self {
            endpoints: LruMap::new(cfg.max_endpoints, hasher),
            prefixes: LruMap::new(prefix_cap(cfg.max_endpoints), prefix_hasher),
            asns: LruMap::new(asn_cap(cfg.max_endpoints), asn_hasher),
            cfg,
            pending: Pending::default(),
            out: VecDeque::new(),
            port_pairs: vec![0; PORT_SLOTS],
            port_max: 1,
            start_ns: None,
            now_ns: i64::MIN,
            finished: false,
            finish_reason: None,
            enrich: None,
            stats: DetectStats::default(),
            burst_log: None,
            global: None,
            sampling: 1,
        }
    }

    /// The input's bytes are 1-in-`rate` estimates even where its packets do not say so
    /// (`PacketMeta::sampling`, which flow export sets, is what normally tells): burst
    /// candidates must then pass the volume and rate gates by their lower bound
    /// ([`super::sampling`]). 1 (the default): only what the packets say.
    pub fn set_sampling(&mut self, rate: u32) {
        self.sampling = rate.max(1);
    }

    /// Share prevalence with other sensors: record contacts for the shell to publish, and ask
    /// before scoring (see [`super::global`]).
    pub fn enable_global(&mut self, cfg: GlobalConfig) {
        match self.global.as_mut() {
            Some(g) => g.cfg = cfg,
            None => self.global = Some(Global::new(cfg)),
        }
    }

    /// Move the contacts recorded since the last call to `out` (shared view only).
    pub fn drain_contacts(&mut self, out: &mut Vec<Contact>) {
        if let Some(g) = self.global.as_mut() {
            g.drain_contacts(out);
        }
    }

    /// Next question for the shared store, if any.
    pub fn poll_query(&mut self) -> Option<GlobalQuery> {
        self.global.as_mut()?.poll_query()
    }

    /// The shared store's answer to question `id`: its candidate is scored now (an id that no
    /// longer waits, because its deadline passed, is ignored).
    pub fn answer(&mut self, id: u64, answer: GlobalPrevalence) {
        let Some(w) = self.global.as_mut().and_then(|g| g.take(id)) else {
            return;
        };
        self.emit(w.cand, w.early, Some(Some(answer)));
    }

    /// Score every candidate still waiting for an answer with the local view alone (the
    /// store cannot answer, e.g. at the end of a run).
    pub fn give_up_waiting(&mut self) {
        let expired = self
            .global
            .as_mut()
            .map(|g| g.expired(self.now_ns, true))
            .unwrap_or_default();
        for w in expired {
            self.emit(w.cand, w.early, Some(None));
        }
    }

    /// Counters of the shared view (`None`: local only).
    pub fn global_stats(&self) -> Option<GlobalStats> {
        self.global.as_ref().map(|g| GlobalStats {
            waiting: g.waiting.len() as u64,
            ..g.stats
        })
    }

    /// Packet time of the scorer (the newest second it was told of, ns).
    pub fn now_ns(&self) -> i64 {
        self.now_ns
    }

    /// Use an ASN/country lookup for endpoint context and ASN/country lists.
    pub fn set_enrich(&mut self, enrich: Box<dyn Enrich>) {
        self.enrich = Some(enrich);
    }

    /// Input ends because the process stops (not because the data ended): the candidates
    /// still on hold at the finish are emitted marked with `reason`.
    pub fn set_finish_reason(&mut self, reason: EarlyReason) {
        self.finish_reason = Some(reason);
    }

    /// Candidates waiting for their hold.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Replace the lookup (a config reload; `None`: no enrichment).
    pub fn replace_enrich(&mut self, enrich: Option<Box<dyn Enrich>>) {
        self.enrich = enrich;
    }

    /// Replace thresholds; learned state is kept.
    pub fn set_config(&mut self, cfg: DetectConfig) {
        self.endpoints.set_cap(cfg.max_endpoints);
        self.prefixes.set_cap(prefix_cap(cfg.max_endpoints));
        self.asns.set_cap(asn_cap(cfg.max_endpoints));
        if (cfg.prevalence_prefix_v4, cfg.prevalence_prefix_v6)
            != (self.cfg.prevalence_prefix_v4, self.cfg.prevalence_prefix_v6)
        {
            // Counts under other prefix lengths do not carry over: count afresh.
            while let Some(i) = self.prefixes.oldest() {
                self.prefixes.remove(i);
            }
        }
        self.cfg = cfg;
    }

    /// Counters of this half (suppressions, alerts, endpoints and their evictions).
    pub fn stats(&self) -> DetectStats {
        let mut s = self.stats.clone();
        s.endpoints = self.endpoints.len();
        s.prefixes = self.prefixes.len();
        s.evicted = [0, 0, self.endpoints.evicted, self.prefixes.evicted];
        s
    }

    /// Keep every segmented burst with its gate outcome, at most `cap` undrained.
    pub fn record_bursts(&mut self, cap: usize) {
        self.burst_log = Some(BurstLog::new(cap));
    }

    /// Next burst record, if recording is on and one is ready.
    pub fn pop_burst(&mut self) -> Option<BurstRecord> {
        self.burst_log.as_mut()?.pop()
    }

    /// Burst records lost to a full queue.
    pub fn bursts_dropped(&self) -> u64 {
        self.burst_log.as_ref().map_or(0, |l| l.dropped)
    }

    /// Next alert, if any.
    #[inline]
    pub fn pop_alert(&mut self) -> Option<Alert> {
        self.out.pop_front()
    }

    /// Whether an alert is waiting for [`Scorer::pop_alert`].
    #[inline]
    pub fn has_alerts(&self) -> bool {
        !self.out.is_empty()
    }

    /// Take one event, in packet order.
    pub fn apply(&mut self, ev: Event) {
        match ev.0 {
            EventKind::Tick(ts) => {
                if ts <= self.now_ns {
                    return; // the same tick from another shard
                }
                self.start_ns.get_or_insert(ts);
                self.now_ns = ts;
                self.emit_due(false);
                self.expire_waiting();
                self.expire_idle();
            }
            EventKind::Finish(now) => {
                if self.finished {
                    return;
                }
                self.finished = true;
                self.now_ns = self.now_ns.max(now);
                self.emit_due(true);
            }
            EventKind::Touch {
                ext,
                home,
                host,
                ts,
                port_slot,
                samples,
            } => {
                if let Some(g) = self.global.as_mut() {
                    g.contact(home, ext, self.cfg.prevalence_prefix(&ext), ts);
                }
                let now_sec = sec_of(ts);
                let lookback = sec_of(self.cfg.lookback_ns);
                let (eidx, _) =
                    self.endpoints
                        .upsert(ext, || EndpointState::new(now_sec), |_, _| {});
                let endpoint = self.endpoints.get_mut(eidx);
                endpoint.touch(host, now_sec, lookback, samples);
                if endpoint.asn == ASN_UNKNOWN {
                    if let Some(e) = self.enrich.as_ref() {
                        // Once per endpoint (and again after a restart or a reload that
                        // brought a database).
                        endpoint.asn = e.lookup(addr_to_ip(ext)).0.unwrap_or(ASN_NONE);
                    }
                }
                let asn = endpoint.asn;
                if asn != ASN_UNKNOWN && asn != ASN_NONE {
                    let (aidx, _) =
                        self.asns
                            .upsert(asn, || EndpointState::new(now_sec), |_, _| {});
                    self.asns
                        .get_mut(aidx)
                        .touch(host, now_sec, lookback, samples);
                }
                let (pkey, _) = self.cfg.prevalence_prefix(&ext);
                let (pidx, _) =
                    self.prefixes
                        .upsert(pkey, || EndpointState::new(now_sec), |_, _| {});
                self.prefixes
                    .get_mut(pidx)
                    .touch(host, now_sec, lookback, samples);
                if let Some(slot) = port_slot.and_then(|s| self.port_pairs.get_mut(s as usize)) {
                    *slot = slot.saturating_add(1);
                    self.port_max = self.port_max.max(*slot);
                }
            }
            EventKind::Candidate(c) => self.pending.push(c),
            EventKind::Burst(rec) => {
                if let Some(log) = self.burst_log.as_mut() {
                    log.push(*rec);
                }
            }
        }
    }

    /// Candidates whose answer did not come in time: scored with the local view.
    fn expire_waiting(&mut self) {
        let now = self.now_ns;
        let expired = self
            .global
            .as_mut()
            .map(|g| g.expired(now, false))
            .unwrap_or_default();
        for w in expired {
            self.emit(w.cand, w.early, Some(None));
        }
    }

    fn expire_idle(&mut self) {
        let (now, lookback) = (sec_of(self.now_ns), sec_of(self.cfg.lookback_ns));
        for table in [&mut self.endpoints, &mut self.prefixes] {
            expire_table(table, now, lookback);
        }
        expire_table(&mut self.asns, now, lookback);
    }

    fn emit_due(&mut self, all: bool) {
        // In (emit time, start, subscriber, endpoint, kind) order: deterministic output.
        while let Some(c) = self.pending.pop_due(self.now_ns, all) {
            let early = if c.emit_at > self.now_ns {
                self.finish_reason
            } else {
                None
            };
            self.emit_or_ask(*c, early);
        }
    }

    /// Record the outcome of a burst candidate (beacon candidates are not bursts).
    fn log_candidate(&mut self, c: &Candidate, outcome: BurstOutcome, scored: Option<(f64, u64)>) {
        let (Some(f), Some(log)) = (c.burst.as_ref(), self.burst_log.as_mut()) else {
            return;
        };
        let mut rec =
            BurstRecord::new(addr_ip(c.home, c.v4), addr_ip(c.ext, c.v4), &f.acc, outcome);
        rec.score = scored.map(|s| s.0);
        rec.alert_id = scored
            .filter(|_| outcome == BurstOutcome::Alerted)
            .map(|s| s.1);
        log.push(rec);
    }

    /// A burst's sampling rate, the one it is gated at: the highest its own packets carry, or
    /// the one the caller set if higher (1: unsampled). `None` for beacons.
    fn burst_sampling(&self, c: &Candidate) -> Option<u32> {
        c.burst.as_ref().map(|f| f.acc.sampling.max(self.sampling))
    }

    /// Score a due candidate now, or (shared view) ask the store first.
    fn emit_or_ask(&mut self, c: Candidate, early: Option<EarlyReason>) {
        if c.kind == AlertKind::Burst
            && !super::sampling::passes(
                &self.cfg,
                c.totals.0,
                // Sampled input comes in one-second bins: the last second counts in full.
                c.end_ns
                    .saturating_sub(c.start_ns)
                    .saturating_add(NS_PER_SEC),
                self.burst_sampling(&c).unwrap_or(self.sampling),
                c.burst.as_ref().map_or(0.0, |f| f.acc.before.up_60s),
            )
        {
            self.stats.bursts_too_small += 1;
            self.stats.bursts_uncertain += 1;
            self.log_candidate(&c, BurstOutcome::TooSmall, None);
            return;
        }
        let Some(g) = self.global.as_mut() else {
            return self.emit(c, early, None);
        };
        let at = self.now_ns.min(c.emit_at);
        let prefix = self.cfg.prevalence_prefix(&c.ext);
        if let Err(c) = g.ask(c, early, prefix, (at, self.now_ns), self.cfg.lookback_ns) {
            self.emit(*c, early, Some(None));
        }
    }

    /// Decide a candidate. `global`: `None` local only; `Some(None)` shared view without an
    /// answer; `Some(Some(a))` with the store's answer.
    fn emit(
        &mut self,
        c: Candidate,
        emitted_early: Option<EarlyReason>,
        global: Option<Option<GlobalPrevalence>>,
    ) {
        // Prevalence as of the end of the hold (packet time may have moved on much further,
        // e.g. across a gap between rotated captures).
        let now_sec = sec_of(self.now_ns.min(c.emit_at));
        let lookback = sec_of(self.cfg.lookback_ns);
        let (prevalence, popular, unseen, first_contact, endpoint_asn) =
            match self.endpoints.find(&c.ext) {
                Some(i) => {
                    let e = self.endpoints.get(i);
                    let (n, p) = e.prevalence(now_sec, lookback);
                    let unseen = e.unseen(now_sec, lookback);
                    (n, p, unseen, e.first_contact(host_hash(&c.home)), e.asn)
                }
                None => (0, false, 0, None, ASN_UNKNOWN),
            };
        let asn_prevalence = self
            .asns
            .find(&endpoint_asn)
            .map(|i| self.asns.get(i).prevalence(now_sec, lookback));
        let (pkey, prefix_len) = self.cfg.prevalence_prefix(&c.ext);
        let (prefix_prevalence, prefix_popular, prefix_unseen) = match self.prefixes.find(&pkey) {
            Some(i) => {
                let p = self.prefixes.get(i);
                let (n, popular) = p.prevalence(now_sec, lookback);
                let hid = (
                    p.unseen(now_sec, lookback),
                    p.unseen_upper(now_sec, lookback),
                );
                (n, popular, hid)
            }
            None => (0, false, (0, 0)),
        };
        // Alerts show the estimate; the shared-infrastructure test takes its upper bound.
        let (prefix_unseen, prefix_unseen_upper) = prefix_unseen;
        let shared = global.map(|answer| SharedPrevalence {
            local_prevalence: prevalence,
            local_popular: popular,
            local_prefix_prevalence: prefix_prevalence,
            local_prefix_popular: prefix_popular,
            global: answer,
        });
        if global.flatten().is_some() {
            self.global.iter_mut().for_each(|g| g.stats.answered += 1);
        } else if global.is_some() {
            self.global.iter_mut().for_each(|g| g.stats.unanswered += 1);
        }
        // The store counts this sensor's contacts too; the larger count is the one to trust
        // (contacts not yet flushed are only here).
        let g = global.flatten().unwrap_or_default();
        let (prevalence, popular, prefix_prevalence, prefix_popular) = (
            prevalence.max(g.prevalence),
            popular || g.popular,
            prefix_prevalence.max(g.prefix_prevalence),
            prefix_popular || g.prefix_popular,
        );
        let dst = addr_ip(c.ext, c.v4);
        let (asn, country) = self.enrich.as_ref().map_or((None, None), |e| e.lookup(dst));
        let listed = |l: &EndpointLists| {
            l.prefixes.contains_bytes(&c.ext)
                || asn.is_some_and(|a| l.asns.contains(&a))
                || country
                    .as_ref()
                    .is_some_and(|cc| l.countries.iter().any(|x| x.eq_ignore_ascii_case(cc)))
        };
        if listed(&self.cfg.allow) {
            self.stats.suppressed_allowed += 1;
            self.log_candidate(&c, BurstOutcome::Allowed, None);
            return;
        }
        let watched = listed(&self.cfg.watch);
        // Under sampling, the subscribers sampling likely hid count too (0 unsampled).
        let common = popular || prevalence.saturating_add(unseen) > self.cfg.rare_max_hosts;
        let common_prefix = prefix_popular
            || prefix_prevalence.saturating_add(prefix_unseen_upper)
                > self.cfg.rare_prefix_max_hosts;
        if !watched && (common || common_prefix) {
            self.stats.suppressed_common += 1;
            self.log_candidate(&c, BurstOutcome::CommonEndpoint, None);
            return;
        }
        let elapsed = self
            .now_ns
            .saturating_sub(self.start_ns.unwrap_or(self.now_ns));
        let fill = (elapsed as f64 / self.cfg.lookback_ns.max(1) as f64).clamp(0.0, 1.0);
        let first_seen_ns = first_contact
            .map(|s| i64::from(s) * NS_PER_SEC)
            .unwrap_or(c.pair_first_seen_ns);
        let novelty_age_s =
            (c.start_ns.saturating_sub(first_seen_ns)).max(0) as f64 / NS_PER_SEC as f64;
        let slot = port_slot(c.proto_port.0, c.proto_port.1).map(|s| s as usize);
        let port_pairs = slot.map(|s| self.port_pairs[s]);
        let inputs = score::Inputs {
            kind: c.kind,
            burst: c.burst.as_ref().map(|f| &f.acc),
            beacon: c.beacon,
            beacon_facts: c.beacon_facts,
            baseline_bps: c.baseline_bytes.map(|b| b * 8.0),
            prevalence: prevalence.saturating_add(unseen),
            novelty_age_s,
            recurrence: c.recurrence,
            occurrence: c.occurrence,
            port_pairs,
            port_max: self.port_max,
            watched,
            lookback_fill: fill,
        };
        let (score, reasons) = score::score(&self.cfg, &inputs);
        let id = alert_id(c.kind, &c.home, &c.ext, c.start_ns);
        if score < self.cfg.alert_min_score {
            self.stats.suppressed_low_score += 1;
            self.log_candidate(&c, BurstOutcome::LowScore, Some((score, id)));
            return;
        }
        self.log_candidate(&c, BurstOutcome::Alerted, Some((score, id)));
        let severity = Severity::from_score(score, &self.cfg.severity_bands);
        let kind_i = usize::from(c.kind == AlertKind::Beacon);
        self.stats.alerts[kind_i][severity as usize] += 1;
        let src = addr_ip(c.home, c.v4);
        let (bytes_out, bytes_in, packets_out, packets_in) = c.totals;
        let (peak_bps, flows) = c
            .burst
            .as_ref()
            .map_or((0.0, 0), |f| (f.acc.peak_up as f64 * 8.0, f.acc.flows));
        self.out.push_back(Alert {
            id,
            kind: c.kind,
            src,
            dst,
            dst_port: c.proto_port.1,
            proto: c.proto_port.0,
            start_ns: c.start_ns,
            end_ns: c.end_ns,
            detected_ns: c.detected_ns,
            bytes_out,
            bytes_in,
            packets_out,
            packets_in,
            peak_bps,
            flows,
            connections: c.connections,
            occurrence: c.occurrence,
            score,
            severity,
            reasons,
            endpoint: EndpointInfo {
                prevalence,
                popular,
                prefix_len,
                prefix_prevalence,
                prefix_popular,
                unseen,
                prefix_unseen,
                rarity_certain: fill >= 1.0 && global.is_none_or(|a| a.is_some()),
                first_seen_ns: Some(first_seen_ns),
                asn,
                asn_prevalence: asn_prevalence.filter(|_| asn == Some(endpoint_asn)),
                as_org: self.enrich.as_ref().and_then(|e| e.as_org(dst)),
                country,
                watched,
                shared,
            },
            baseline_bps: c.baseline_bytes.map(|b| b * 8.0),
            rate_threshold: c.burst.as_ref().map(|f| RateThreshold {
                bps: f.acc.entry_bytes * 8.0,
                basis: f.acc.entry_basis,
            }),
            pair_before: c.burst.as_ref().map(|f| f.acc.before),
            emitted_early,
            sampling: self.burst_sampling(&c).unwrap_or(0),
        });
    }
}

/// Drop the entries nobody talked to within the look-back, oldest first.
fn expire_table<K: std::hash::Hash + Eq + Copy>(
    table: &mut LruMap<K, EndpointState>,
    now: u32,
    lookback: u32,
) {
    while let Some(idx) = table.oldest() {
        let (n, popular) = table.get(idx).prevalence(now, lookback);
        if n > 0 || popular {
            break;
        }
        table.remove(idx);
    }
}
