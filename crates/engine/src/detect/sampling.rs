//! The sampling gate: what a burst's volume is at least, when it was estimated from 1-in-N
//! samples (flow export from a sampling router).
//!
//! A 1-in-N estimate multiplies what was sampled by N, so a handful of samples at 1:1000 looks
//! like megabytes. How many samples an estimate rests on follows from its bytes: every sampled
//! packet is at most [`SAMPLE_MAX_BYTES`], so an estimate of `B` bytes at 1-in-N rests on at
//! least `k = B / (N × 1500)` full-size samples (exactly that many when the packets are
//! full-size, as bulk uploads are; more when they are smaller). This is also the variance
//! bound of the Horvitz–Thompson estimate under 1-in-N sampling:
//! `Var(B̂) = (N − 1) Σ sᵢ² ≤ (N − 1) × 1500 × B`, a relative standard error of at most
//! `1/√k`.
//!
//! The count of samples is Poisson; its lower confidence limit at two sigma (one-sided
//! 97.7 %) is Garwood's exact limit, computed with Byar's approximation
//! (`k (1 − 1/(9k) − z/(3√k))³`; Breslow & Day, *Statistical Methods in Cancer Research* II,
//! 1987; always a little below the exact limit: 3 % at k = 3, under 1 % from k = 5 on). The
//! burst's volume is at least
//! its estimate times that limit over `k`: [`lower_bound`]. A burst from sampled input is a
//! candidate only if that lower bound, less what the pair was already sending (its mean
//! upstream rate over the minute before the burst, times the burst's seconds), passes the
//! volume gate (`burst_min_bytes`) and, spread over the burst's duration, the rate floor
//! (`burst_rate_floor_bps`): [`passes`]. Sampling turns a steady flow (a video call, a backup)
//! into clusters of samples separated by empty seconds, which the burst segmentation would
//! otherwise take for bursts; a real burst stands out from what its pair did before.
//!
//! The same clusters would also cut a steady flow into pieces short enough to pass for bursts
//! (the first piece of a video call has no history to weigh it against). So a burst of
//! sampled input ends only after a silence that its own rate makes unlikely: at `r` estimated
//! bytes/s a 1-in-N stream yields at least `λ = r / (N × 1500)` samples a second, and `G`
//! silent seconds happen with chance `e^(−λG)`. Such a silence could start after any of the
//! burst's `H` seconds so far, so the burst ends after `G = ln(H / p) / λ` quiet seconds with
//! `p` = [`SPLIT_CHANCE`] (a Bonferroni bound: the chance of a silence that long anywhere in
//! the burst stays below `p`), never fewer than `burst_quiet`, at most the longest burst
//! ([`quiet_secs`]). At 1:1000 a five-second 20 Mbit/s burst ends after 6 quiet seconds (3 by
//! default), a 2 Mbit/s video call only after 46 once it has run 2 s and after a minute once
//! it has run 20 s: it stays one piece, longer than any burst.
//!
//! The rule needs about five full-size samples for 2 MB at 1:1000 (k = 5: at least 1.6
//! samples' worth, 2.4 MB of the 7.5 MB estimate): one to three samples (the false bursts of
//! sampling noise) do not pass up to 1:2000. Unsampled input (N = 1) is never gated.

use super::config::DetectConfig;

/// Largest packet (bytes) counted as one sample when the samples behind an estimate are
/// counted from its bytes: the Ethernet MTU (subscriber uplinks carry no jumbo frames).
pub const SAMPLE_MAX_BYTES: f64 = 1500.0;

/// Sigmas of the one-sided lower confidence limit (97.7 %).
pub const Z: f64 = 2.0;

/// Chance that a sampled stream is silent, at its own estimated rate, for as long as it takes
/// to end a burst of sampled input (see [`quiet_secs`]).
pub const SPLIT_CHANCE: f64 = 0.001;

/// Seconds of silence that end a burst of 1-in-`rate` sampled input with `up_bytes`
/// estimated upstream bytes over `hot_secs` seconds: the silence that has chance
/// [`SPLIT_CHANCE`] / `hot_secs` at its rate of full-size samples, at least `base` and at most
/// `max_secs` (`base` unsampled).
pub fn quiet_secs(base: i64, up_bytes: u64, hot_secs: i64, rate: u32, max_secs: i64) -> i64 {
    if rate <= 1 {
        return base;
    }
    let per_sec = up_bytes as f64 / hot_secs.max(1) as f64;
    let samples_per_sec = per_sec / (f64::from(rate) * SAMPLE_MAX_BYTES);
    let upper = max_secs.max(base);
    if samples_per_sec.is_nan() || samples_per_sec <= 0.0 {
        return upper;
    }
    let g = (hot_secs.max(1) as f64 / SPLIT_CHANCE).ln() / samples_per_sec;
    if g >= upper as f64 {
        upper
    } else {
        (g.ceil() as i64).max(base)
    }
}

/// Full-size samples that an estimate of `bytes` at 1-in-`rate` sampling rests on, at least.
pub fn samples_behind(bytes: u64, rate: u32) -> f64 {
    bytes as f64 / (f64::from(rate.max(1)) * SAMPLE_MAX_BYTES)
}

/// Lower confidence limit (`z` sigmas, one-sided) of the mean of a Poisson count observed as
/// `k`: Byar's approximation to Garwood's exact limit (0 for k = 0; never below 0).
pub fn poisson_lower(k: f64, z: f64) -> f64 {
    if k.is_nan() || k <= 0.0 || k.is_infinite() {
        return 0.0;
    }
    let t = 1.0 - 1.0 / (9.0 * k) - z / (3.0 * k.sqrt());
    if t <= 0.0 {
        0.0
    } else {
        k * t * t * t
    }
}

/// The share of an estimate of `bytes` at 1-in-`rate` that is certain at two sigma, 0..1
/// (1 unsampled): the alert's `confidence`.
pub fn confidence(bytes: u64, rate: u32) -> f64 {
    if rate <= 1 {
        return 1.0;
    }
    let k = samples_behind(bytes, rate);
    if k <= 0.0 {
        return 0.0;
    }
    (poisson_lower(k, Z) / k).clamp(0.0, 1.0)
}

/// What an estimate of `bytes` at 1-in-`rate` sampling is at least, at two sigma (the
/// estimate itself when unsampled).
pub fn lower_bound(bytes: u64, rate: u32) -> u64 {
    if rate <= 1 {
        return bytes;
    }
    (bytes as f64 * confidence(bytes, rate)) as u64
}

/// Whether a burst of `up` estimated upstream bytes over `duration_ns`, at 1-in-`rate`
/// sampling, passes the volume and rate gates by its lower bound, less what the pair was
/// already sending (`before_bps`: its mean upstream bytes/s over the minute before the burst,
/// times the burst's seconds). Always, unsampled.
pub fn passes(cfg: &DetectConfig, up: u64, duration_ns: i64, rate: u32, before_bps: f64) -> bool {
    if rate <= 1 {
        return true;
    }
    let secs = (duration_ns as f64 / 1e9).max(1.0);
    let ongoing = if before_bps.is_finite() {
        before_bps.max(0.0) * secs
    } else {
        0.0
    };
    let excess = lower_bound(up, rate) as f64 - ongoing;
    excess >= cfg.burst_min_bytes as f64 && excess * 8.0 / secs >= cfg.burst_rate_floor_bps
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;
    const NS_PER_SEC: i64 = 1_000_000_000;

    #[test]
    fn a_sampled_burst_ends_after_a_silence_unlikely_at_its_rate() {
        let q = |bytes: u64, secs: i64, rate: u32| quiet_secs(3, bytes, secs, rate, 60);
        // Unsampled: the configured quiet time.
        assert_eq!(q(10 * MB, 5, 1), 3);
        assert_eq!(q(10 * MB, 5, 0), 3);
        // 20 Mbit/s for 5 s at 1:1000: 1.67 samples/s; 0.1 % / 5 chance of 5.1 s without one.
        assert_eq!(q(12_500_000, 5, 1000), 6);
        // 200 Mbit/s: the configured quiet time is the longer.
        assert_eq!(q(125 * MB, 5, 1000), 3);
        // 2 Mbit/s at 1:1000 for 20 s: 0.17 samples/s, 41.4 s for 0.1 %, 59.4 s for 0.1 % / 20.
        assert_eq!(q(5 * MB, 20, 1000), 60);
        assert_eq!(quiet_secs(3, 5 * MB, 20, 1000, 120), 60);
        // The same rate for 2 s: 45.6 s.
        assert_eq!(q(MB / 2, 2, 1000), 46);
        // Slower still, or longer, or nothing upstream: the longest burst.
        assert_eq!(q(25 * MB, 100, 1000), 60);
        assert_eq!(q(MB, 100, 1000), 60);
        assert_eq!(q(0, 5, 1000), 60);
        // At 1:10 the 2 Mbit/s stream has 17 samples/s: the configured time.
        assert_eq!(q(25 * MB, 100, 10), 3);
        // The chance the rule is built on: one silence that long in any of the burst's
        // seconds has chance SPLIT_CHANCE at most.
        let g = q(12_500_000, 5, 1000) as f64;
        assert!(5.0 * (-(12_500_000.0 / 5.0 / 1.5e6) * g).exp() < SPLIT_CHANCE);
    }

    /// Garwood's exact one-sided 97.725 % lower limits (the λ with P(X ≥ k | λ) = 2.275 %).
    #[test]
    fn byar_is_just_below_the_exact_limit() {
        for (k, exact) in [
            (3.0, 0.5963),
            (5.0, 1.5829),
            (10.0, 4.7192),
            (50.0, 36.8798),
        ] {
            let got = poisson_lower(k, Z);
            assert!(
                got <= exact && (exact - got) / exact < 0.03,
                "k {k}: {got} vs {exact}"
            );
        }
        assert_eq!(poisson_lower(0.0, Z), 0.0);
        assert_eq!(poisson_lower(f64::NAN, Z), 0.0);
        assert_eq!(poisson_lower(0.2, Z), 0.0);
    }

    #[test]
    fn unsampled_input_is_never_gated() {
        let cfg = DetectConfig::default();
        assert!(passes(&cfg, 0, 0, 1, 0.0));
        assert!(passes(&cfg, 0, 0, 0, 0.0));
        assert_eq!(lower_bound(12_345, 1), 12_345);
        assert_eq!(confidence(1, 1), 1.0);
    }

    /// A few samples at 1:N look like megabytes: never a burst, whatever N and the packet
    /// sizes (full-size or smaller packets).
    #[test]
    fn a_handful_of_samples_is_not_a_burst() {
        let cfg = DetectConfig::default();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..2000 {
            xorshift(&mut x);
            // Two samples up to 1:5000, three up to 1:2000 (three samples at 1:5000 are at
            // least 4.3 MB: a transfer that large is then the likelier explanation).
            let samples = 1 + (x >> 20) % 3;
            let rate = 200 + (x % if samples == 3 { 1800 } else { 4800 }) as u32;
            let size = 40 + (x >> 32) % 1461;
            let up = samples * size * u64::from(rate);
            let dur = (1 + (x >> 40) % 10) as i64 * NS_PER_SEC;
            assert!(
                !passes(&cfg, up, dur, rate, 0.0),
                "{samples} × {size} B at 1:{rate}"
            );
        }
    }

    /// Many samples: a burst, at any sampling rate, once the estimate is a few times the gate.
    #[test]
    fn many_samples_are_a_burst() {
        let cfg = DetectConfig::default();
        for rate in [2, 10, 100, 1000, 4000] {
            // 40 full-size samples, and at least 3 × the volume gate.
            let up = (40 * 1500 * u64::from(rate)).max(6 * MB);
            assert!(passes(&cfg, up, 5 * NS_PER_SEC, rate, 0.0), "1:{rate}");
        }
        // 20 Mbit/s for 5 s at 1:1000: 12.5 MB from about 8 samples, at least 5.4 MB.
        assert!(passes(&cfg, 12_500_000, 5 * NS_PER_SEC, 1000, 0.0));
        assert!(lower_bound(12_500_000, 1000) > 5 * MB);
    }

    #[test]
    fn the_rate_gate_takes_the_lower_bound_over_the_duration() {
        let cfg = DetectConfig::default();
        // 10 MB at 1:100 over 60 s: lower bound 7.7 MB, 1.03 Mbit/s: passes.
        assert!(passes(&cfg, 10 * MB, 60 * NS_PER_SEC, 100, 0.0));
        // ... over 70 s it is below the 1 Mbit/s floor.
        assert!(!passes(&cfg, 10 * MB, 70 * NS_PER_SEC, 100, 0.0));
        // Unsampled, the duration is not this gate's business.
        assert!(passes(&cfg, 10 * MB, 600 * NS_PER_SEC, 1, 1e9));
    }

    /// A pair that was already sending (a video call, a backup) at 1:1000 shows "bursts" where
    /// its samples cluster: only the volume above its ongoing rate counts.
    #[test]
    fn the_pairs_ongoing_rate_is_taken_off() {
        let cfg = DetectConfig::default();
        // 8 samples (12 MB) in 10 s from a pair that sent 250 kB/s before: 5.1 MB at least,
        // 2.5 MB of it ongoing, 2.6 MB above: passes; at 400 kB/s before it does not.
        assert!(passes(&cfg, 12 * MB, 10 * NS_PER_SEC, 1000, 0.0));
        assert!(passes(&cfg, 12 * MB, 10 * NS_PER_SEC, 1000, 250_000.0));
        assert!(!passes(&cfg, 12 * MB, 10 * NS_PER_SEC, 1000, 400_000.0));
        // A non-finite rate is taken as none.
        assert!(passes(&cfg, 12 * MB, 10 * NS_PER_SEC, 1000, f64::NAN));
    }

    /// Through the detector: samples of full-size packets at 1:N, one synthetic packet each
    /// (as flow export hands them over), every `gap_ms`, from a subscriber to a rare endpoint.
    fn alerts(rate: u32, gate: u32, samples: u32, gap_ms: i64) -> (usize, u64) {
        use crate::detect::Detector;
        use std::net::IpAddr;
        let mut d = Detector::new(DetectConfig::default(), 7);
        d.set_sampling(gate);
        let (src, dst): (IpAddr, IpAddr) =
            (IpAddr::from([10, 0, 0, 1]), IpAddr::from([198, 19, 7, 7]));
        let t0 = 1_767_225_600 * NS_PER_SEC;
        for i in 0..i64::from(samples) {
            d.ingest(
                t0 + i * gap_ms * 1_000_000,
                src,
                dst,
                40_000,
                443,
                6,
                1500 * rate,
                1,
            );
        }
        d.finish();
        let mut n = 0;
        while d.pop_alert().is_some() {
            n += 1;
        }
        (n, d.stats().bursts_uncertain)
    }

    /// A sample of a subscriber's upload to a rare endpoint: a 1500-byte packet at 1:`rate`
    /// as one synthetic packet, tagged with the sampling rate `tag` (0: none).
    fn burst_sample(rate: u32, tag: u32) -> burstwatch_wire::PacketMeta {
        burstwatch_wire::PacketMeta {
            src: [10, 0, 0, 1].into(),
            dst: [198, 19, 7, 7].into(),
            proto: 17,
            sport: 40_000,
            dport: 443,
            ip_len: 1500 * rate,
            payload_len: 1500 * rate - 28,
            sampling: tag,
            ..burstwatch_wire::PacketMeta::default()
        }
    }

    /// End the input and count the alerts.
    fn drain(e: &mut crate::Engine) -> usize {
        e.finish();
        let mut n = 0;
        while e.pop_alert().is_some() {
            n += 1;
        }
        n
    }

    /// The same through the engine, with the sampling rate on each synthetic packet
    /// (`PacketMeta::sampling`, as flow export sets it) instead of set on the scorer.
    fn alerts_tagged(rate: u32, tag: u32, samples: u32, gap_ms: i64) -> (usize, u64) {
        let mut e = crate::Engine::new(crate::FlowConfig::default(), DetectConfig::default(), 7);
        let meta = burst_sample(rate, tag);
        let t0 = 1_767_225_600 * NS_PER_SEC;
        for i in 0..i64::from(samples) {
            e.ingest(t0 + i * gap_ms * 1_000_000, &meta);
        }
        (drain(&mut e), e.detector().stats().bursts_uncertain)
    }

    /// Through the engine: `others` subscribers each send a small flow to the endpoint prefix
    /// of a rare endpoint, sampled in `secs` seconds each (one sampled packet per second), in
    /// the minute before one subscriber sends it a burst; all tagged with `tag`. The alerts,
    /// and the bursts suppressed as to a common endpoint. The burst's samples stand for
    /// 1500-byte packets at 1:`rate`.
    fn prefix_alerts(rate: u32, tag: u32, others: u8, secs: i64) -> (usize, u64) {
        prefix_alerts_each(rate, tag, &vec![secs; usize::from(others)])
    }

    /// [`prefix_alerts`] with each other subscriber seen in its own number of seconds.
    fn prefix_alerts_each(rate: u32, tag: u32, secs_each: &[i64]) -> (usize, u64) {
        let mut e = crate::Engine::new(crate::FlowConfig::default(), DetectConfig::default(), 7);
        let t0 = 1_767_225_600 * NS_PER_SEC;
        let mut at = t0 - 60 * NS_PER_SEC;
        for (h, &secs) in (0u8..).zip(secs_each) {
            let meta = burstwatch_wire::PacketMeta {
                src: [10, 0, 1, h].into(),
                dst: [198, 19, 7, 100 + h].into(),
                proto: 6,
                sport: 50_000,
                ip_len: 1200,
                payload_len: 1160,
                ..burst_sample(1, tag)
            };
            for s in 0..secs {
                e.ingest(at + s * NS_PER_SEC, &meta);
            }
            at += 5 * NS_PER_SEC;
        }
        let burst = burst_sample(rate, tag);
        for i in 0..40 {
            e.ingest(t0 + i * 200_000_000, &burst);
        }
        (drain(&mut e), e.detector().stats().suppressed_common)
    }

    #[test]
    fn a_burst_alert_carries_the_rate_of_its_own_samples() {
        let mut x = 0x6a09_e667_f3bc_c908_u64;
        for _ in 0..8 {
            xorshift(&mut x);
            let rate = 100 + (x % 1901) as u32;
            let mut e =
                crate::Engine::new(crate::FlowConfig::default(), DetectConfig::default(), 7);
            // An unsampled exporter's and a 1:rate exporter's bursts, interleaved.
            let plain = burst_sample(rate, 1);
            let sampled = burstwatch_wire::PacketMeta {
                src: [10, 0, 0, 2].into(),
                dst: [198, 19, 8, 8].into(),
                ..burst_sample(rate, rate)
            };
            let t0 = 1_767_225_600 * NS_PER_SEC;
            for i in 0..40 {
                e.ingest(t0 + i * 200_000_000, &plain);
                e.ingest(t0 + i * 200_000_000 + 1000, &sampled);
            }
            e.finish();
            let mut got = Vec::new();
            while let Some(a) = e.pop_alert() {
                got.push((a.dst, a.sampling));
            }
            got.sort();
            assert_eq!(
                got,
                vec![(plain.dst, 1), (sampled.dst, rate)],
                "1:1 and 1:{rate}"
            );
        }
    }

    /// One step of Marsaglia's xorshift64: randomised test parameters, reproducible.
    fn xorshift(x: &mut u64) {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
    }

    #[test]
    fn subscribers_sampled_once_count_for_those_sampling_hid() {
        let cfg = DetectConfig::default();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..12 {
            xorshift(&mut x);
            let rate = 100 + (x % 1901) as u32;
            // Seen in the prefix: the burster and 4-6 others, within `rare_prefix_max_hosts`
            // (7); with f1 = 4-6 singletons Chao1 adds 6-15 unseen.
            let others = 4 + (x >> 20) as u8 % 3;
            assert!(u32::from(others) < cfg.rare_prefix_max_hosts);
            // Unsampled (fully observed), the prefix is rare: an alert.
            assert_eq!(
                prefix_alerts(rate, 0, others, 1),
                (1, 0),
                "{others} unsampled"
            );
            // Each seen in one sampled second: Chao1 estimates at least as many again unseen.
            assert_eq!(
                prefix_alerts(rate, rate, others, 1),
                (0, 1),
                "{others} once at 1:{rate}"
            );
            // Each seen in three sampled seconds: sampling hid nobody, the prefix is rare.
            assert_eq!(
                prefix_alerts(rate, rate, others, 3),
                (1, 0),
                "{others} thrice at 1:{rate}"
            );
        }
    }

    #[test]
    fn a_prefix_is_common_when_the_subscribers_sampling_may_have_hid_pass_its_limit() {
        let mut x = 0x3c6e_f372_fe94_f82b_u64;
        for _ in 0..8 {
            xorshift(&mut x);
            let rate = 100 + (x % 1901) as u32;
            // The burster and four others in the prefix: two seen in one sampled second, two
            // in three. Chao1 estimates 1 unseen (6, within the limit of 7); with its standard
            // error 2.3, up to 4 (9): shared infrastructure, no alert.
            assert_eq!(
                prefix_alerts_each(rate, rate, &[1, 1, 3, 3]),
                (0, 1),
                "1:{rate}"
            );
            // One of them seen once: 0 estimated, at most 1 (6): rare.
            assert_eq!(
                prefix_alerts_each(rate, rate, &[1, 3, 3, 3]),
                (1, 0),
                "1:{rate}"
            );
            // Unsampled, the same contacts are counted as they are: rare.
            assert_eq!(
                prefix_alerts_each(rate, 0, &[1, 1, 3, 3]),
                (1, 0),
                "1:{rate}"
            );
        }
    }

    #[test]
    fn the_detector_gates_sampled_bursts_only() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20 {
            xorshift(&mut x);
            let rate = 1000 + (x % 1001) as u32;
            let few = 2 + (x >> 16) as u32 % 2;
            // A few samples, a second apart, look like 3-9 MB: a burst unsampled, none sampled.
            assert_eq!(
                alerts(rate, 1, few, 1000),
                (1, 0),
                "{few} at 1:{rate}, ungated"
            );
            assert_eq!(alerts(rate, rate, few, 1000), (0, 1), "{few} at 1:{rate}");
            assert_eq!(alerts_tagged(rate, 0, few, 1000), (1, 0), "{few} untagged");
            assert_eq!(
                alerts_tagged(rate, rate, few, 1000),
                (0, 1),
                "{few} tagged 1:{rate}"
            );
            // Many samples within a few seconds: a burst either way.
            let many = 20 + (x >> 32) as u32 % 40;
            assert_eq!(alerts(rate, rate, many, 200), (1, 0), "{many} at 1:{rate}");
            assert_eq!(
                alerts_tagged(rate, rate, many, 200),
                (1, 0),
                "{many} tagged"
            );
        }
    }

    #[test]
    fn confidence_grows_with_the_samples() {
        let mut last = 0.0;
        for k in [1u64, 2, 5, 10, 100, 10_000] {
            let c = confidence(k * 1500 * 1000, 1000);
            assert!(c >= last && (0.0..1.0).contains(&c), "k {k}: {c}");
            last = c;
        }
        assert!(last > 0.97);
    }
}
