//! Learned state that outlives a process: subscriber baselines, endpoint prevalence (with
//! first contacts), destination-port usage, the start of learning, and the candidates still
//! on hold (so that a burst or beacon found before a crash is still alerted after the restart).
//!
//! Pairs and bursts in progress are not kept: they describe the last few seconds, which a
//! restart interrupts anyway. The state is plain data (serde); the shell decides where it
//! lives and how often it is taken. Addresses are written in text form so a state file can be
//! read by people and tools.
//!
//! A candidate restored from a snapshot may already have been emitted by the process that
//! took the snapshot (between the snapshot and a crash): delivery is at least once, and the
//! alert's id (a hash of kind, pair and start time) is the same both times.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::event::Candidate;
use super::prevalence::{EndpointState, ASN_NONE, ASN_UNKNOWN};
use super::subscribers::HostState;
use super::{Detector, Scorer, Subscribers};
use crate::key::{addr_bytes, addr_to_ip};

/// Format version; a file with another version is not restored. 2: subscriber hashes are
/// SipHash-1-3 with a fixed key (1 used ahash), and candidates on hold are kept. 3: endpoint
/// prefixes are kept too (a version 2 file is still read: its prefixes are counted again from
/// its endpoints).
pub const STATE_VERSION: u32 = 3;

/// The oldest format version still restored.
pub const STATE_VERSION_MIN: u32 = 2;

/// Most candidates on hold taken over from a snapshot (a state file is bounded input).
pub const MAX_PENDING: usize = 100_000;

/// A snapshot of what the detector has learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// Packet time of the snapshot (ns since the epoch).
    pub now_ns: i64,
    /// Packet time learning started (the look-back warm-up counts from here).
    pub start_ns: Option<i64>,
    /// Subscribers, least recently seen first.
    hosts: Vec<(IpAddr, HostState)>,
    /// Endpoints, least recently seen first.
    endpoints: Vec<(IpAddr, EndpointState)>,
    /// Endpoint prefixes (their network address), least recently seen first.
    #[serde(default)]
    prefixes: Vec<(IpAddr, EndpointState)>,
    /// New pairs per destination port: `(slot, count)`, slot = port (TCP) or 65536 + port (UDP).
    ports: Vec<(u32, u32)>,
    /// Bursts and beacons waiting for their hold, in arrival order.
    #[serde(default)]
    pending: Vec<Candidate>,
}

/// The subscriber baselines of one shard, taken on its own thread for a snapshot
/// ([`LearnedState::from_parts`]).
#[derive(Debug, Clone, Default)]
pub struct HostsPart(Vec<(IpAddr, HostState)>);

impl HostsPart {
    /// The subscribers `local` holds, least recently seen first.
    pub fn of(local: &Subscribers) -> Self {
        HostsPart(
            local
                .hosts
                .iter_lru()
                .map(|(k, v)| {
                    // The second in progress is not carried over.
                    let mut v = v.clone();
                    v.bin_up = 0;
                    v.bin_held = 0;
                    (addr_to_ip(*k), v)
                })
                .collect(),
        )
    }
}

impl LearnedState {
    /// Subscribers and endpoints held.
    pub fn sizes(&self) -> (usize, usize) {
        (self.hosts.len(), self.endpoints.len())
    }

    /// Candidates on hold in the snapshot.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

impl LearnedState {
    /// What a scorer and its subscriber shards have learned so far.
    pub fn collect(scorer: &Scorer, locals: &[&Subscribers]) -> Self {
        Self::from_parts(scorer, locals.iter().map(|l| HostsPart::of(l)).collect())
    }

    /// What a scorer has learned, with the subscriber baselines its shards sent.
    pub fn from_parts(scorer: &Scorer, parts: Vec<HostsPart>) -> Self {
        LearnedState {
            version: STATE_VERSION,
            now_ns: scorer.now_ns,
            start_ns: scorer.start_ns,
            hosts: parts.into_iter().flat_map(|p| p.0).collect(),
            endpoints: scorer
                .endpoints
                .iter_lru()
                .map(|(k, v)| (addr_to_ip(*k), v.clone()))
                .collect(),
            prefixes: scorer
                .prefixes
                .iter_lru()
                .map(|(k, v)| (addr_to_ip(*k), v.clone()))
                .collect(),
            ports: scorer
                .port_pairs
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(|(i, &n)| (i as u32, n))
                .collect(),
            // Candidates waiting for the shared store's answer are on hold too: asked again
            // after a restart.
            pending: scorer
                .pending
                .sorted()
                .into_iter()
                .chain(
                    scorer
                        .global
                        .iter()
                        .flat_map(|g| g.waiting.iter().map(|w| &w.cand)),
                )
                .cloned()
                .collect(),
        }
    }

    /// Hand the state to a scorer and its subscriber shards (at start, before any packet);
    /// `shard_of` names the shard that owns a subscriber. Entries beyond the configured caps
    /// are dropped oldest first; a state of another version is refused.
    pub fn restore_into(
        self,
        scorer: &mut Scorer,
        locals: &mut [&mut Subscribers],
        shard_of: impl Fn(IpAddr) -> usize,
    ) -> Result<(), StateError> {
        if !(STATE_VERSION_MIN..=STATE_VERSION).contains(&self.version) {
            return Err(StateError::Version(self.version));
        }
        let lookback = super::prevalence::sec_of(scorer.cfg.lookback_ns);
        if self.version < 3 {
            // No prefixes in the file: count them from the endpoints' subscribers.
            for (ip, e) in &self.endpoints {
                let (key, _) = scorer.cfg.prevalence_prefix(&addr_bytes(*ip));
                let (idx, _) =
                    scorer
                        .prefixes
                        .upsert(key, || EndpointState::new(e.first_sec), |_, _| {});
                let p = scorer.prefixes.get_mut(idx);
                for (host, last, samples) in e.members() {
                    p.touch(host, last, lookback, samples);
                }
            }
        }
        // Autonomous systems are not kept: counted again from the endpoints' subscribers.
        for (_, e) in &self.endpoints {
            if e.asn == ASN_UNKNOWN || e.asn == ASN_NONE {
                continue;
            }
            let (idx, _) = scorer
                .asns
                .upsert(e.asn, || EndpointState::new(e.first_sec), |_, _| {});
            let a = scorer.asns.get_mut(idx);
            for (host, last, samples) in e.members() {
                a.touch(host, last, lookback, samples);
            }
        }
        for (ip, mut e) in self.prefixes {
            e.sanitize();
            // Stored under the prefix length of the process that wrote it; keyed again here.
            let (key, _) = scorer.cfg.prevalence_prefix(&addr_bytes(ip));
            let (idx, _) = scorer
                .prefixes
                .upsert(key, EndpointState::default, |_, _| {});
            *scorer.prefixes.get_mut(idx) = e;
        }
        scorer.start_ns = self.start_ns;
        for (ip, mut h) in self.hosts {
            let Some(local) = locals.get_mut(shard_of(ip)) else {
                continue;
            };
            h.bin_up = 0;
            h.bin_held = 0;
            let (idx, _) = local
                .hosts
                .upsert(addr_bytes(ip), HostState::default, |_, _| {});
            *local.hosts.get_mut(idx) = h;
        }
        for (ip, mut e) in self.endpoints {
            e.sanitize();
            let (idx, _) =
                scorer
                    .endpoints
                    .upsert(addr_bytes(ip), EndpointState::default, |_, _| {});
            *scorer.endpoints.get_mut(idx) = e;
        }
        for (slot, n) in self.ports {
            if let Some(p) = scorer.port_pairs.get_mut(slot as usize) {
                *p = n;
                scorer.port_max = scorer.port_max.max(n);
            }
        }
        // Candidates on hold at the snapshot: they are decided when packet time passes their
        // hold, as if the process had not stopped.
        let room = MAX_PENDING.saturating_sub(scorer.pending.len());
        for c in self.pending.into_iter().take(room) {
            scorer.pending.push(Box::new(c.sanitized()));
        }
        Ok(())
    }
}

impl Detector {
    /// What the detector has learned so far.
    pub fn learned_state(&self) -> LearnedState {
        LearnedState::collect(&self.scorer, &[&self.subscribers])
    }

    /// Take over learned state (at start, before any packet). Entries beyond the configured
    /// caps are dropped oldest first; a state of another version is refused.
    pub fn restore(&mut self, s: LearnedState) -> Result<(), StateError> {
        s.restore_into(&mut self.scorer, &mut [&mut self.subscribers], |_| 0)
    }
}

/// Why a state was not restored.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Written by an incompatible version.
    #[error("state format version {0} is not {STATE_VERSION_MIN} to {STATE_VERSION}")]
    Version(u32),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;
    use crate::detect::{DetectConfig, EarlyReason};

    const NS_PER_SEC: i64 = 1_000_000_000;

    fn feed(d: &mut Detector, from_s: i64, to_s: i64) {
        let ext: IpAddr = "198.18.7.7".parse().unwrap();
        for t in from_s..to_s {
            for h in 1..=5u8 {
                let home = IpAddr::from([10, 0, 0, h]);
                d.ingest(
                    t * NS_PER_SEC,
                    home,
                    ext,
                    40000,
                    443,
                    6,
                    600 + u32::from(h) * 10,
                    7,
                );
                d.ingest(t * NS_PER_SEC + 1000, ext, home, 443, 40000, 6, 1500, 7);
            }
        }
    }

    #[test]
    fn restored_state_equals_the_saved_one_and_survives_json() {
        let mut a = Detector::new(DetectConfig::default(), 1);
        feed(&mut a, 1_700_000_000, 1_700_000_400);
        let saved = a.learned_state();
        assert_eq!(saved.sizes(), (5, 1));
        let text = serde_json::to_string(&saved).unwrap();
        let back: LearnedState = serde_json::from_str(&text).unwrap();
        let mut b = Detector::new(DetectConfig::default(), 99);
        b.restore(back).unwrap();
        let again = b.learned_state();
        assert_eq!(again.hosts, saved.hosts, "baselines restored in LRU order");
        assert_eq!(
            again.endpoints, saved.endpoints,
            "prevalence and first contacts restored"
        );
        assert_eq!(again.ports, saved.ports);
        assert_eq!(again.start_ns, saved.start_ns);
        // The restored baselines are warm: same trusted p95 as before the restart.
        let key = addr_bytes("10.0.0.3".parse().unwrap());
        let p95 = |d: &Detector| {
            let i = d.subscribers.hosts.find(&key).unwrap();
            d.subscribers
                .hosts
                .get(i)
                .baseline_bytes(d.subscribers.cfg.baseline_warmup_seconds)
        };
        assert!(p95(&a).is_some());
        assert_eq!(p95(&a), p95(&b));
    }

    #[test]
    fn hostile_state_is_refused_or_repaired() {
        let mut d = Detector::new(DetectConfig::default(), 1);
        let mut s = d.learned_state();
        s.version = 7;
        assert!(d.restore(s).is_err());
        // A member count beyond the set is clamped, not trusted.
        let text = r#"{"version":2,"now_ns":0,"start_ns":null,"hosts":[],
            "endpoints":[["198.18.0.1",{"members":[[1,2,3],[0,0,0],[0,0,0],[0,0,0],[0,0,0],[0,0,0],[0,0,0],[0,0,0]],
            "len":200,"popular_until":0,"first_sec":5}]],"ports":[[999999,3]]}"#;
        let s: LearnedState = serde_json::from_str(text).unwrap();
        d.restore(s).unwrap();
        let _ = d.learned_state();
        {
            d.ingest(
                10 * NS_PER_SEC,
                "10.0.0.1".parse().unwrap(),
                "198.18.0.1".parse().unwrap(),
                1,
                2,
                17,
                100,
                1,
            );
        }
    }

    /// A 6 MB upload in 5 s from 10.0.0.9 to a rare endpoint, then quiet until `to_s`.
    fn burst(d: &mut Detector, from_s: i64, to_s: i64) {
        let (home, ext): (IpAddr, IpAddr) =
            ("10.0.0.9".parse().unwrap(), "198.18.9.9".parse().unwrap());
        for t in from_s..from_s + 5 {
            for k in 0..800 {
                d.ingest(
                    t * NS_PER_SEC + k * 1_000_000,
                    home,
                    ext,
                    40001,
                    443,
                    6,
                    1500,
                    9,
                );
            }
        }
        d.advance_to(to_s * NS_PER_SEC);
    }

    #[test]
    fn a_candidate_on_hold_survives_a_snapshot_and_is_alerted_after_the_restart() {
        let t0 = 1_700_000_000;
        let mut a = Detector::new(DetectConfig::default(), 1);
        feed(&mut a, t0, t0 + 400);
        burst(&mut a, t0 + 400, t0 + 420);
        assert!(a.pop_alert().is_none(), "still on hold (60 s)");
        let saved = a.learned_state();
        assert_eq!(saved.pending_len(), 1, "the burst waits in the snapshot");
        let text = serde_json::to_string(&saved).unwrap();
        // Another process: the snapshot restored, packet time goes on past the hold.
        let mut b = Detector::new(DetectConfig::default(), 77);
        b.restore(serde_json::from_str(&text).unwrap()).unwrap();
        b.advance_to((t0 + 500) * NS_PER_SEC);
        let alert = b.pop_alert().expect("the restored candidate is alerted");
        a.advance_to((t0 + 500) * NS_PER_SEC);
        let same = a.pop_alert().unwrap();
        assert_eq!(alert, same, "the same alert as without the restart");
        assert_eq!(alert.emitted_early, None);
    }

    #[test]
    fn a_shutdown_emits_held_candidates_marked_early() {
        let t0 = 1_700_000_000;
        let mut a = Detector::new(DetectConfig::default(), 1);
        feed(&mut a, t0, t0 + 400);
        burst(&mut a, t0 + 400, t0 + 420);
        a.set_finish_reason(EarlyReason::Shutdown);
        a.finish();
        let alert = a.pop_alert().expect("emitted at the shutdown");
        assert_eq!(alert.emitted_early, Some(EarlyReason::Shutdown));
        assert!(a.learned_state().pending_len() == 0);
        // At the end of a capture (no reason set) the same alert is not marked.
        let mut b = Detector::new(DetectConfig::default(), 1);
        feed(&mut b, t0, t0 + 400);
        burst(&mut b, t0 + 400, t0 + 420);
        b.finish();
        assert_eq!(b.pop_alert().unwrap().emitted_early, None);
    }
}
