//! What the engine's integration tests share.
#![allow(dead_code)] // each test file uses its own part

use burstwatch_engine::{Alert, DetectConfig, FlowConfig};
use burstwatch_wire::PacketMeta;

/// A small deterministic generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform in 0..n (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Run `packets` through `n` host shards (flow table settings `flow`) and one scorer, handing
/// events over every `batch` packets, as the threaded shells do: the alerts, the flow records
/// (debug text, sorted) and the detector's counters.
pub fn sharded(
    packets: &[(i64, PacketMeta)],
    n: usize,
    batch: usize,
    flow: FlowConfig,
) -> (Vec<Alert>, Vec<String>, burstwatch_engine::DetectStats) {
    use burstwatch_engine::shard::{merge_into, Router, Shard};
    use burstwatch_engine::Scorer;
    let cfg = DetectConfig::default();
    let mut router = Router::new(n, cfg.home_nets.clone());
    let mut shards: Vec<Shard> = (0..n)
        .map(|i| Shard::new(i, flow.clone(), cfg.clone(), 5 + i as u64))
        .collect();
    let mut scorer = Scorer::new(cfg, 77);
    let (mut alerts, mut records) = (Vec::new(), Vec::new());
    let mut hand_over = |shards: &mut Vec<Shard>, scorer: &mut Scorer| {
        let mut parts: Vec<_> = shards.iter_mut().map(|s| s.take_events()).collect();
        merge_into(&mut parts, scorer);
        for s in shards.iter_mut() {
            while let Some(r) = s.pop_record() {
                records.push(format!("{:?}", r));
            }
        }
        while let Some(a) = scorer.pop_alert() {
            alerts.push(a);
        }
    };
    for (i, (ts, meta)) in packets.iter().enumerate() {
        let r = router.route(*ts, meta);
        if let Some(t) = r.tick {
            for s in shards.iter_mut() {
                s.tick(r.seq, t);
            }
        }
        shards[r.shard].packet(r.seq, *ts, r.now, meta);
        if (i + 1) % batch == 0 {
            hand_over(&mut shards, &mut scorer);
        }
    }
    let fin = router.finish();
    for s in shards.iter_mut() {
        s.finish(fin.seq, fin.now);
    }
    hand_over(&mut shards, &mut scorer);
    let mut stats = scorer.stats();
    for s in &shards {
        stats.add(&s.subscribers().stats());
    }
    records.sort();
    (alerts, records, stats)
}
