//! Opt-in record of every burst the detector segmented, with the outcome of its gates.
//!
//! Off by default (the daemon pays one `Option` check per finished burst). A forensic shell
//! turns it on with [`Detector::record_bursts`](super::Detector::record_bursts) and drains it
//! with [`Detector::pop_burst`](super::Detector::pop_burst) as it drains alerts. The queue is
//! bounded: a record that finds it full is counted in [`BurstLog::dropped`] instead.

use std::collections::VecDeque;
use std::net::IpAddr;

use super::pair::BurstAcc;

/// What became of a segmented burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BurstOutcome {
    /// Scored and alerted.
    Alerted,
    /// Went on longer than `burst_max_seconds` (a sustained transfer).
    TooLong,
    /// Moved fewer than `burst_min_bytes` upstream.
    TooSmall,
    /// Less than `burst_min_upstream_ratio` of its bytes went upstream.
    NotUpstream,
    /// The endpoint is on the allow list.
    Allowed,
    /// The endpoint is common (too many subscribers talk to it) and not watched.
    CommonEndpoint,
    /// Scored below `alert_min_score`.
    LowScore,
}

impl BurstOutcome {
    /// Every outcome, in a stable order.
    pub const ALL: [BurstOutcome; 7] = [
        BurstOutcome::Alerted,
        BurstOutcome::TooLong,
        BurstOutcome::TooSmall,
        BurstOutcome::NotUpstream,
        BurstOutcome::Allowed,
        BurstOutcome::CommonEndpoint,
        BurstOutcome::LowScore,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            BurstOutcome::Alerted => "alerted",
            BurstOutcome::TooLong => "too_long",
            BurstOutcome::TooSmall => "too_small",
            BurstOutcome::NotUpstream => "not_upstream",
            BurstOutcome::Allowed => "allowed",
            BurstOutcome::CommonEndpoint => "common_endpoint",
            BurstOutcome::LowScore => "low_score",
        }
    }
}

/// One segmented burst of a (subscriber, endpoint) pair.
#[derive(Debug, Clone, PartialEq)]
pub struct BurstRecord {
    /// Subscriber (home) address.
    pub src: IpAddr,
    /// Endpoint (external) address.
    pub dst: IpAddr,
    /// IP protocol of the port that carried most upstream bytes (0 if none).
    pub proto: u8,
    /// That endpoint port.
    pub dst_port: u16,
    /// First packet of the burst (ns since the epoch).
    pub start_ns: i64,
    /// Last packet of the burst (ns since the epoch).
    pub end_ns: i64,
    /// Bytes subscriber -> endpoint during the burst (L3).
    pub bytes_up: u64,
    /// Bytes endpoint -> subscriber during the burst (L3).
    pub bytes_down: u64,
    /// Packets subscriber -> endpoint.
    pub packets_up: u64,
    /// Packets endpoint -> subscriber.
    pub packets_down: u64,
    /// Highest one-second upstream rate, bit/s.
    pub peak_bps: f64,
    /// Upstream rate a second needed to start the burst, bit/s.
    pub entry_bps: f64,
    /// The subscriber's baseline (p95 upstream bit/s) when the burst started, if warm.
    pub baseline_bps: Option<f64>,
    /// Distinct transport connections involved (capped at 64).
    pub flows: u32,
    /// What the gates decided.
    pub outcome: BurstOutcome,
    /// The score, when the burst got as far as scoring.
    pub score: Option<f64>,
    /// The alert's id, when it alerted.
    pub alert_id: Option<u64>,
}

impl BurstRecord {
    pub(crate) fn new(src: IpAddr, dst: IpAddr, acc: &BurstAcc, outcome: BurstOutcome) -> Self {
        let (proto, dst_port) = acc.main_port();
        Self {
            src,
            dst,
            proto,
            dst_port,
            start_ns: acc.start_ns,
            end_ns: acc.end_ns,
            bytes_up: acc.vol.up,
            bytes_down: acc.vol.down,
            packets_up: acc.vol.pk_up,
            packets_down: acc.vol.pk_down,
            peak_bps: acc.peak_up as f64 * 8.0,
            entry_bps: acc.entry_bytes * 8.0,
            baseline_bps: acc.baseline_bytes.map(|b| b * 8.0),
            flows: acc.flows,
            outcome,
            score: None,
            alert_id: None,
        }
    }
}

/// The bounded queue of burst records.
#[derive(Debug, Clone, Default)]
pub struct BurstLog {
    cap: usize,
    queue: VecDeque<BurstRecord>,
    /// Records lost because the queue was full (the shell did not drain it).
    pub dropped: u64,
}

impl BurstLog {
    /// A queue holding at most `cap` undrained records.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            queue: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Queue one record, or count it as dropped when full.
    pub fn push(&mut self, rec: BurstRecord) {
        if self.queue.len() < self.cap {
            self.queue.push_back(rec);
        } else {
            self.dropped += 1;
        }
    }

    /// Oldest undrained record.
    pub fn pop(&mut self) -> Option<BurstRecord> {
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_queue_counts_drops() {
        let acc = BurstAcc::default();
        let ip = IpAddr::from([10, 0, 0, 1]);
        let mut log = BurstLog::new(2);
        for _ in 0..5 {
            log.push(BurstRecord::new(ip, ip, &acc, BurstOutcome::TooSmall));
        }
        assert_eq!(log.dropped, 3);
        assert!(log.pop().is_some());
        assert!(log.pop().is_some());
        assert!(log.pop().is_none());
    }

    #[test]
    fn outcome_names_are_distinct() {
        let mut names: Vec<_> = BurstOutcome::ALL.iter().map(|o| o.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BurstOutcome::ALL.len());
    }
}
