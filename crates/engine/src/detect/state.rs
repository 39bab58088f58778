//! Learned state that outlives a process: subscriber baselines, endpoint prevalence (with
//! first contacts), destination-port usage and the start of learning.
//!
//! Pairs and bursts in progress are not kept: they describe the last few minutes, which a
//! restart interrupts anyway. The state is plain data (serde); the shell decides where it
//! lives. Addresses are written in text form so a state file can be read by people and tools.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::local::HostState;
use super::prevalence::EndpointState;
use super::{Detector, Local, Scorer};
use crate::key::{addr_bytes, addr_ip};

/// Format version; a file with another version is not restored.
pub const STATE_VERSION: u32 = 1;

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
    /// New pairs per destination port: `(slot, count)`, slot = port (TCP) or 65536 + port (UDP).
    ports: Vec<(u32, u32)>,
}

impl LearnedState {
    /// Subscribers and endpoints held.
    pub fn sizes(&self) -> (usize, usize) {
        (self.hosts.len(), self.endpoints.len())
    }
}

impl LearnedState {
    /// What a scorer and its subscriber shards have learned so far.
    pub fn collect(scorer: &Scorer, locals: &[&Local]) -> Self {
        LearnedState {
            version: STATE_VERSION,
            now_ns: scorer.now_ns,
            start_ns: scorer.start_ns,
            hosts: locals
                .iter()
                .flat_map(|l| l.hosts.iter_lru())
                .map(|(k, v)| {
                    // The second in progress is not carried over.
                    let mut v = v.clone();
                    v.bin_up = 0;
                    (addr_ip(*k, true), v)
                })
                .collect(),
            endpoints: scorer
                .endpoints
                .iter_lru()
                .map(|(k, v)| (addr_ip(*k, true), v.clone()))
                .collect(),
            ports: scorer
                .port_pairs
                .iter()
                .enumerate()
                .filter(|(_, &n)| n > 0)
                .map(|(i, &n)| (i as u32, n))
                .collect(),
        }
    }

    /// Hand the state to a scorer and its subscriber shards (at start, before any packet);
    /// `shard_of` names the shard that owns a subscriber. Entries beyond the configured caps
    /// are dropped oldest first; a state of another version is refused.
    pub fn restore_into(
        self,
        scorer: &mut Scorer,
        locals: &mut [&mut Local],
        shard_of: impl Fn(IpAddr) -> usize,
    ) -> Result<(), StateError> {
        if self.version != STATE_VERSION {
            return Err(StateError::Version(self.version));
        }
        scorer.start_ns = self.start_ns;
        for (ip, mut h) in self.hosts {
            let Some(local) = locals.get_mut(shard_of(ip)) else {
                continue;
            };
            h.bin_up = 0;
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
        Ok(())
    }
}

impl Detector {
    /// What the detector has learned so far.
    pub fn learned_state(&self) -> LearnedState {
        LearnedState::collect(&self.scorer, &[&self.local])
    }

    /// Take over learned state (at start, before any packet). Entries beyond the configured
    /// caps are dropped oldest first; a state of another version is refused.
    pub fn restore(&mut self, s: LearnedState) -> Result<(), StateError> {
        s.restore_into(&mut self.scorer, &mut [&mut self.local], |_| 0)
    }
}

/// Why a state was not restored.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Written by an incompatible version.
    #[error("state format version {0} is not {STATE_VERSION}")]
    Version(u32),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;
    use crate::detect::DetectConfig;

    const S: i64 = 1_000_000_000;

    fn feed(d: &mut Detector, from_s: i64, to_s: i64) {
        let ext: IpAddr = "198.18.7.7".parse().unwrap();
        for t in from_s..to_s {
            for h in 1..=5u8 {
                let home = IpAddr::from([10, 0, 0, h]);
                d.ingest(t * S, home, ext, 40000, 443, 6, 600 + u32::from(h) * 10, 7);
                d.ingest(t * S + 1000, ext, home, 443, 40000, 6, 1500, 7);
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
            let i = d.local.hosts.find(&key).unwrap();
            d.local
                .hosts
                .get(i)
                .baseline_bytes(d.local.cfg.baseline_warmup_seconds)
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
        let text = r#"{"version":1,"now_ns":0,"start_ns":null,"hosts":[],
            "endpoints":[["198.18.0.1",{"members":[[1,2,3],[0,0,0],[0,0,0],[0,0,0],[0,0,0],[0,0,0],[0,0,0],[0,0,0]],
            "len":200,"popular_until":0,"first_sec":5}]],"ports":[[999999,3]]}"#;
        let s: LearnedState = serde_json::from_str(text).unwrap();
        d.restore(s).unwrap();
        let _ = d.learned_state();
        {
            d.ingest(
                10 * S,
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
}
