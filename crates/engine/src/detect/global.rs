//! Prevalence shared with other sensors: the narrow, sans-IO interface between the
//! [`Scorer`](super::Scorer) and a shell that talks to a shared store.
//!
//! With [`Scorer::enable_global`](super::Scorer::enable_global) on, the scorer
//!
//! 1. records every contact it counts (a subscriber talked to an endpoint, and so to its
//!    prevalence prefix) as a [`Contact`], which the shell drains with
//!    [`Scorer::drain_contacts`](super::Scorer::drain_contacts) and publishes;
//! 2. when a candidate's hold passes, asks a [`GlobalQuery`] (pulled with
//!    [`Scorer::poll_query`](super::Scorer::poll_query)) instead of scoring at once; the
//!    candidate waits for the shell's [`GlobalPrevalence`]
//!    ([`Scorer::answer`](super::Scorer::answer)) or until packet time reaches the hold's end
//!    plus `answer_wait_ns`, then it is scored: with the larger of the local and the global
//!    counts when answered, with the local view alone and `rarity_certain = false` when not.
//!
//! Nothing here does IO or reads the clock; the shell decides how contacts travel and when
//! answers come (a batch run answers before it feeds the next packet, a live daemon when the
//! store replies). Both buffers are bounded, with counted drops.

use std::collections::VecDeque;

use super::event::Candidate;
use super::EarlyReason;
use crate::key::Addr;

/// Contacts kept for the shell between two drains, at most (more are dropped and counted).
pub const MAX_CONTACTS: usize = 1 << 20;
/// Candidates waiting for an answer, at most (more are scored at once with the local view).
pub const MAX_WAITING: usize = 1 << 16;

/// Settings of the shared view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalConfig {
    /// How long (packet time, ns) a candidate whose hold passed waits for its answer.
    pub answer_wait_ns: i64,
}

/// One contact to publish: `subscriber` talked to `endpoint` at `ts_ns` (packet time).
/// Addresses are in key form (16 bytes, IPv4 as `::ffff:a.b.c.d`); the shell pseudonymises
/// them before anything leaves the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contact {
    /// The subscriber (home) address.
    pub subscriber: [u8; 16],
    /// The endpoint address.
    pub endpoint: [u8; 16],
    /// The endpoint's prevalence prefix (masked address) ...
    pub prefix: [u8; 16],
    /// ... and its length.
    pub prefix_len: u8,
    /// Packet time of the contact (ns since the epoch).
    pub ts_ns: i64,
}

/// A question for the shared store: how many distinct subscribers, over every sensor, talked
/// to `endpoint` (and to any address of `prefix`) between `since_ns` and `at_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalQuery {
    /// Answer with this id ([`Scorer::answer`](super::Scorer::answer)).
    pub id: u64,
    /// The endpoint (key form).
    pub endpoint: [u8; 16],
    /// Its prevalence prefix (masked, key form) ...
    pub prefix: [u8; 16],
    /// ... and its length.
    pub prefix_len: u8,
    /// Packet time the prevalence is asked for (the end of the hold).
    pub at_ns: i64,
    /// Start of the look-back.
    pub since_ns: i64,
}

/// What the shared store knows of an endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GlobalPrevalence {
    /// Distinct subscribers of the endpoint within the look-back, over every sensor (capped
    /// like the local count; `popular` says when the cap was passed).
    pub prevalence: u32,
    /// More subscribers than the shared set keeps.
    pub popular: bool,
    /// Distinct subscribers of its prefix.
    pub prefix_prevalence: u32,
    /// More subscribers of the prefix than the shared set keeps.
    pub prefix_popular: bool,
    /// Sensors that saw the endpoint within the look-back.
    pub sensors: u32,
}

/// Counters of the shared view, kept by the scorer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GlobalStats {
    /// Contacts handed to the shell.
    pub contacts: u64,
    /// Contacts dropped because the shell had not drained them.
    pub contacts_dropped: u64,
    /// Questions asked.
    pub queries: u64,
    /// Candidates scored with an answer.
    pub answered: u64,
    /// Candidates scored with the local view alone (no answer in time, or too many waiting).
    pub unanswered: u64,
    /// Candidates waiting now.
    pub waiting: u64,
}

/// A candidate whose hold passed, waiting for its answer.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    pub id: u64,
    pub deadline_ns: i64,
    pub early: Option<EarlyReason>,
    pub cand: Candidate,
}

/// The scorer's side of the shared view.
#[derive(Debug)]
pub(crate) struct Global {
    pub cfg: GlobalConfig,
    contacts: Vec<Contact>,
    queries: VecDeque<GlobalQuery>,
    pub waiting: VecDeque<Waiting>,
    next_id: u64,
    pub stats: GlobalStats,
}

impl Global {
    pub fn new(cfg: GlobalConfig) -> Self {
        Self {
            cfg,
            contacts: Vec::new(),
            queries: VecDeque::new(),
            waiting: VecDeque::new(),
            next_id: 1,
            stats: GlobalStats::default(),
        }
    }

    /// Keep a contact for the shell (bounded).
    #[inline]
    pub fn contact(&mut self, subscriber: Addr, endpoint: Addr, prefix: (Addr, u8), ts_ns: i64) {
        if self.contacts.len() >= MAX_CONTACTS {
            self.stats.contacts_dropped += 1;
            return;
        }
        self.stats.contacts += 1;
        self.contacts.push(Contact {
            subscriber,
            endpoint,
            prefix: prefix.0,
            prefix_len: prefix.1,
            ts_ns,
        });
    }

    pub fn drain_contacts(&mut self, out: &mut Vec<Contact>) {
        out.append(&mut self.contacts);
    }

    /// Put a due candidate on hold for its answer (asked at packet time `now_ns`: it waits
    /// `answer_wait_ns` from then, however late its hold ended); `Err` gives it back when too
    /// many wait.
    pub fn ask(
        &mut self,
        cand: Candidate,
        early: Option<EarlyReason>,
        prefix: (Addr, u8),
        (at_ns, now_ns): (i64, i64),
        lookback_ns: i64,
    ) -> Result<(), Box<Candidate>> {
        if self.waiting.len() >= MAX_WAITING {
            return Err(Box::new(cand));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.stats.queries += 1;
        self.queries.push_back(GlobalQuery {
            id,
            endpoint: cand.ext,
            prefix: prefix.0,
            prefix_len: prefix.1,
            at_ns,
            since_ns: at_ns.saturating_sub(lookback_ns),
        });
        self.waiting.push_back(Waiting {
            id,
            deadline_ns: now_ns
                .max(cand.emit_at)
                .saturating_add(self.cfg.answer_wait_ns),
            early,
            cand,
        });
        Ok(())
    }

    pub fn poll_query(&mut self) -> Option<GlobalQuery> {
        self.queries.pop_front()
    }

    /// The waiting candidate with this id, if it still waits.
    pub fn take(&mut self, id: u64) -> Option<Waiting> {
        let i = self.waiting.iter().position(|w| w.id == id)?;
        self.waiting.remove(i)
    }

    /// Waiting candidates whose deadline passed at `now` (all of them with `all`), oldest
    /// first; their questions are withdrawn.
    pub fn expired(&mut self, now: i64, all: bool) -> Vec<Waiting> {
        let mut out = Vec::new();
        let mut keep = VecDeque::with_capacity(self.waiting.len());
        for w in self.waiting.drain(..) {
            if all || w.deadline_ns <= now {
                out.push(w);
            } else {
                keep.push_back(w);
            }
        }
        self.waiting = keep;
        if !out.is_empty() {
            self.queries.retain(|q| out.iter().all(|w| w.id != q.id));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_bounded_and_counted() {
        let mut g = Global::new(GlobalConfig { answer_wait_ns: 0 });
        for i in 0..(MAX_CONTACTS + 5) {
            g.contact([1; 16], [2; 16], ([2; 16], 24), i as i64);
        }
        assert_eq!(g.stats.contacts, MAX_CONTACTS as u64);
        assert_eq!(g.stats.contacts_dropped, 5);
        let mut out = Vec::new();
        g.drain_contacts(&mut out);
        assert_eq!(out.len(), MAX_CONTACTS);
        g.contact([1; 16], [2; 16], ([2; 16], 24), 0);
        assert_eq!(g.stats.contacts_dropped, 5, "room again after a drain");
    }
}
