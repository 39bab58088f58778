//! Write a synthetic capture: `simulate OUT.pcap [SIZE_BYTES|-] [SUBSCRIBERS] [DURATION_SECS] [SEED]`.

use std::time::Instant;

use burstwatch_sim::{SimConfig, Simulator};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).filter(|s| s.as_str() != "-");
    let out = args.first().map_or("sim.pcap", String::as_str);
    let mut cfg = SimConfig {
        target_bytes: arg(1).and_then(|s| s.parse().ok()),
        ..SimConfig::default()
    };
    if let Some(v) = arg(2).and_then(|s| s.parse().ok()) {
        cfg.subscribers = v;
    }
    if let Some(v) = arg(3).and_then(|s| s.parse().ok()) {
        cfg.duration_secs = v;
    }
    if let Some(v) = arg(4).and_then(|s| s.parse().ok()) {
        cfg.seed = v;
    }
    let t0 = Instant::now();
    let s = Simulator::new(cfg).write_pcap(std::fs::File::create(out)?)?;
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "{} packets, {} bytes, {} flows, span {:.1} s, {:.1} s wall, {:.0} MB/s",
        s.packets,
        s.bytes,
        s.flows,
        (s.last_ts_ns - s.first_ts_ns) as f64 / 1e9,
        secs,
        s.bytes as f64 / 1e6 / secs
    );
    Ok(())
}
