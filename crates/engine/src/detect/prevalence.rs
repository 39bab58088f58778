//! Endpoint prevalence: how many distinct subscribers talked to an endpoint within the
//! look-back, in bounded memory.
//!
//! Each endpoint keeps an exact set of up to [`SET_SIZE`] subscribers (a 32-bit hash of the
//! address, first and last contact second). A subscriber whose last contact fell out of the
//! look-back no longer counts and its slot is reused. When more subscribers than the set holds
//! are active at once, the endpoint is "popular" until the look-back passes without overflow:
//! its exact count is no longer needed, because rarity is only ever asked of endpoints with a
//! handful of subscribers.
//!
//! The same state counts the subscribers of an endpoint *prefix* (all addresses of a /24 or
//! /48 together; see `DetectConfig::prevalence_prefix`), kept by the scorer beside the
//! addresses': shared infrastructure spreads its subscribers over many addresses. With an ASN
//! database it also counts the subscribers of each autonomous system (shown in alerts, not a
//! gate: a rare server rented in a large cloud is what a controller often is).
//!
//! Sampled input (flow export at 1 in N) sees only some of an endpoint's subscribers: one who
//! sent a few hundred packets to it is sampled with a chance of a few tenths at 1:1000, so
//! shared infrastructure looks rare. Each member therefore also counts the sampled seconds it
//! was seen in (1, 2, 3 or more; 0 when seen unsampled, fully observed), and
//! [`EndpointState::unseen`] estimates the subscribers that were not sampled at all with the
//! bias-corrected Chao1 estimator, `f1 (f1 − 1) / (2 (f2 + 1))` from the members seen in
//! exactly one (`f1`) and two (`f2`) sampled seconds (A. Chao, "Nonparametric estimation of the
//! number of classes in a population", Scand. J. Statistics 11, 1984; the bias-corrected form
//! in Chao, "Species estimation and applications", Encyclopedia of Statistical Sciences, 2005).
//! Many subscribers seen once each, as a popular service's look through a sampler, estimate
//! many more; a bursting subscriber, seen in many seconds, adds nothing.

/// Exact distinct subscribers tracked per endpoint.
pub const SET_SIZE: usize = 8;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Member {
    host: u32,
    first_sec: u32,
    last_sec: u32,
}

/// Prevalence state of one endpoint (136 bytes in the endpoint table; see `crate::memory`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EndpointState {
    members: [Member; SET_SIZE],
    len: u8,
    /// Until this second the endpoint counts as popular (overflowed set), 0 if never.
    popular_until: u32,
    /// First second any subscriber talked to it.
    pub first_sec: u32,
    /// Per member (two bits each, member `i` at bits `2i..2i+2`): the sampled seconds it was
    /// seen in, 1 to 3 (3: three or more), or 0 when it was seen unsampled (fully observed).
    #[serde(default)]
    samples: u16,
    /// Autonomous system of the endpoint: [`ASN_UNKNOWN`] until looked up, [`ASN_NONE`] when
    /// the database has none (or none is loaded); unused for prefixes and ASNs.
    #[serde(default, skip_serializing_if = "asn_unknown")]
    pub asn: u32,
}

/// [`EndpointState::asn`] not looked up yet.
pub const ASN_UNKNOWN: u32 = 0;
/// [`EndpointState::asn`] looked up, and the database has no AS for the address.
pub const ASN_NONE: u32 = u32::MAX;

fn asn_unknown(asn: &u32) -> bool {
    *asn == ASN_UNKNOWN
}

/// Seconds since the epoch as u32 (valid until 2106; saturates).
pub fn sec_of(ns: i64) -> u32 {
    u32::try_from(ns.div_euclid(1_000_000_000)).unwrap_or(if ns < 0 { 0 } else { u32::MAX })
}

impl EndpointState {
    /// A new endpoint first seen at `now_sec`.
    pub fn new(now_sec: u32) -> Self {
        Self {
            first_sec: now_sec,
            ..Self::default()
        }
    }

    fn samples_of(&self, i: usize) -> u8 {
        ((self.samples >> (2 * i)) & 3) as u8
    }

    fn set_samples(&mut self, i: usize, v: u8) {
        let shift = 2 * i;
        self.samples = (self.samples & !(3 << shift)) | (u16::from(v.min(3)) << shift);
    }

    /// Record a contact by `host` (a hash of its address) at `now_sec`: `samples` is 0 for a
    /// contact seen unsampled, else the sampled seconds it adds (see the module's docs).
    pub fn touch(&mut self, host: u32, now_sec: u32, lookback_sec: u32, samples: u8) {
        let n = usize::from(self.len).min(SET_SIZE);
        if let Some(i) = self.members[..n].iter().position(|m| m.host == host) {
            self.members[i].last_sec = now_sec;
            let had = self.samples_of(i);
            let now = if samples == 0 || had == 0 {
                0
            } else {
                had.saturating_add(samples)
            };
            self.set_samples(i, now);
            return;
        }
        let fresh = Member {
            host,
            first_sec: now_sec,
            last_sec: now_sec,
        };
        if n < SET_SIZE {
            self.members[n] = fresh;
            self.set_samples(n, samples);
            self.len = n as u8 + 1;
            return;
        }
        // Reuse the slot of the member idle the longest, if it left the look-back.
        let (i, oldest) = self
            .members
            .iter()
            .enumerate()
            .min_by_key(|(_, m)| m.last_sec)
            .map(|(i, m)| (i, *m))
            .unwrap_or((0, Member::default()));
        if now_sec.saturating_sub(oldest.last_sec) > lookback_sec {
            self.members[i] = fresh;
            self.set_samples(i, samples);
        } else {
            self.popular_until = now_sec.saturating_add(lookback_sec);
        }
    }

    /// Distinct subscribers within the look-back (at most [`SET_SIZE`]) and whether the endpoint
    /// is popular (more than the set holds were active within the look-back).
    pub fn prevalence(&self, now_sec: u32, lookback_sec: u32) -> (u32, bool) {
        let n = self.members[..usize::from(self.len)]
            .iter()
            .filter(|m| now_sec.saturating_sub(m.last_sec) <= lookback_sec)
            .count() as u32;
        (n, self.popular_until > now_sec)
    }

    /// Subscribers within the look-back that sampling likely hid: the bias-corrected Chao1
    /// estimate `f1 (f1 − 1) / (2 (f2 + 1))`, rounded up, from the members seen in exactly one
    /// and two sampled seconds (0 when every member was seen unsampled).
    pub fn unseen(&self, now_sec: u32, lookback_sec: u32) -> u32 {
        let (f1, f2) = self.singletons(now_sec, lookback_sec);
        (f1 * f1.saturating_sub(1)).div_ceil(2 * (f2 + 1))
    }

    /// The same estimate plus one standard error, rounded up: the subscribers sampling may
    /// well have hid. Chao1 is a lower bound of the population (Chao 1984), and with few
    /// members seen twice it is a loose one; this is what a prefix's shared-infrastructure
    /// test takes. The variance of the bias-corrected estimator is
    /// `f1(f1−1)/(2(f2+1)) + f1(2f1−1)²/(4(f2+1)²) + f1²f2(f1−1)²/(4(f2+1)⁴)` (Chao 2005).
    pub fn unseen_upper(&self, now_sec: u32, lookback_sec: u32) -> u32 {
        let (f1, f2) = self.singletons(now_sec, lookback_sec);
        let (f1, f2) = (f64::from(f1), f64::from(f2) + 1.0);
        let f0 = f1 * (f1 - 1.0) / (2.0 * f2);
        let var = f0
            + f1 * (2.0 * f1 - 1.0).powi(2) / (4.0 * f2 * f2)
            + f1 * f1 * (f2 - 1.0) * (f1 - 1.0).powi(2) / (4.0 * f2.powi(4));
        // At most SET_SIZE members are counted, so this stays small.
        (f0 + var.max(0.0).sqrt()).ceil() as u32
    }

    /// Members within the look-back seen in exactly one and exactly two sampled seconds.
    fn singletons(&self, now_sec: u32, lookback_sec: u32) -> (u32, u32) {
        let (mut f1, mut f2) = (0u32, 0u32);
        for (i, m) in self.members[..usize::from(self.len).min(SET_SIZE)]
            .iter()
            .enumerate()
        {
            if now_sec.saturating_sub(m.last_sec) > lookback_sec {
                continue;
            }
            match self.samples_of(i) {
                1 => f1 += 1,
                2 => f2 += 1,
                _ => {}
            }
        }
        (f1, f2)
    }

    /// Repair a state read from a file: the member count never exceeds the set.
    pub(crate) fn sanitize(&mut self) {
        self.len = self.len.min(SET_SIZE as u8);
    }

    /// The members (subscriber hash, last contact second, sampled seconds as
    /// [`touch`](Self::touch) takes them), to count them again elsewhere.
    pub(crate) fn members(&self) -> impl Iterator<Item = (u32, u32, u8)> + '_ {
        self.members[..usize::from(self.len).min(SET_SIZE)]
            .iter()
            .enumerate()
            .map(|(i, m)| (m.host, m.last_sec, self.samples_of(i)))
    }

    /// When `host` first talked to the endpoint, if it is in the set.
    pub fn first_contact(&self, host: u32) -> Option<u32> {
        self.members[..usize::from(self.len)]
            .iter()
            .find(|m| m.host == host)
            .map(|m| m.first_sec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_hosts_within_lookback() {
        let mut e = EndpointState::new(1000);
        e.touch(1, 1000, 600, 0);
        e.touch(1, 1010, 600, 0);
        e.touch(2, 1020, 600, 0);
        assert_eq!(e.prevalence(1030, 600), (2, false));
        // Host 1 last seen at 1010: out of a 600 s look-back at 1611.
        assert_eq!(e.prevalence(1611, 600), (1, false));
        assert_eq!(e.first_contact(1), Some(1000));
        assert_eq!(e.first_contact(3), None);
    }

    #[test]
    fn overflow_marks_popular_and_recovers() {
        let mut e = EndpointState::new(0);
        for h in 0..20 {
            e.touch(h, 100 + h, 600, 0);
        }
        let (n, popular) = e.prevalence(130, 600);
        assert_eq!(n, SET_SIZE as u32);
        assert!(popular);
        // Long after everyone left, it is no longer popular and slots are reused.
        assert_eq!(e.prevalence(2000, 600), (0, false));
        e.touch(99, 2000, 600, 0);
        assert_eq!(e.prevalence(2000, 600), (1, false));
    }

    #[test]
    fn sampled_singletons_estimate_unseen_subscribers() {
        let mut e = EndpointState::new(0);
        // A bursting subscriber seen in many sampled seconds, and four seen once each.
        for s in 0..10 {
            e.touch(1, 100 + s, 600, 1);
        }
        for h in 2..6 {
            e.touch(h, 120, 600, 1);
        }
        assert_eq!(e.prevalence(130, 600), (5, false));
        // f1 = 4, f2 = 0: 4 x 3 / 2; upper: 6 + sqrt(6 + 4 x 49 / 4) = 6 + 7.42.
        assert_eq!(e.unseen(130, 600), 6);
        assert_eq!(e.unseen_upper(130, 600), 14);
        // Two of them seen again: f1 = 2, f2 = 2: 2 x 1 / 6, rounded up.
        e.touch(2, 125, 600, 1);
        e.touch(3, 125, 600, 1);
        assert_eq!(e.unseen(130, 600), 1);
        // The upper bound: 1/3 + sd, sd^2 = 1/3 + 2 x 9 / 36 + 4 x 2 x 1 / (4 x 81) = 0.858.
        assert_eq!(e.unseen_upper(130, 600), 2);
        // Out of the look-back they count no more.
        assert_eq!(e.unseen(800, 600), 0);
        assert_eq!(e.unseen_upper(800, 600), 0);
        // Unsampled contacts are fully observed: nothing unseen.
        let mut u = EndpointState::new(0);
        for h in 1..6 {
            u.touch(h, 100, 600, 0);
        }
        assert_eq!(u.unseen(100, 600), 0);
        // A member once seen unsampled stays observed; counts saturate at three.
        u.touch(1, 101, 600, 1);
        assert_eq!(u.samples_of(0), 0);
        let mut v = EndpointState::new(0);
        v.touch(7, 100, 600, 2);
        v.touch(7, 101, 600, 2);
        assert_eq!(v.samples_of(0), 3);
        assert_eq!(v.members().next(), Some((7, 101, 3)));
    }

    #[test]
    #[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
    fn sample_counts_survive_the_state_file_and_old_files_read_as_observed() {
        let mut e = EndpointState::new(0);
        for h in 1..6 {
            e.touch(h, 100, 600, 1);
        }
        e.touch(9, 100, 600, 2);
        let text = serde_json::to_string(&e).unwrap();
        let back: EndpointState = serde_json::from_str(&text).unwrap();
        assert_eq!(back.unseen(100, 600), e.unseen(100, 600));
        assert_eq!(e.unseen(100, 600), 5);
        assert_eq!(
            back.members().collect::<Vec<_>>(),
            e.members().collect::<Vec<_>>()
        );
        // A file written before sample counts existed: every member fully observed.
        let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
        if let Some(o) = old.as_object_mut() {
            assert!(o.remove("samples").is_some());
        }
        let old: EndpointState = serde_json::from_value(old).unwrap();
        assert_eq!(old.prevalence(100, 600), (6, false));
        assert_eq!(old.unseen(100, 600), 0);
    }
}
