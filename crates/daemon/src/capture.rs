//! The capture threads' settings (how many per interface, their fanout group and steering) and
//! their first open; then one capture thread per interface (or per ring of a fanout group):
//! open (retrying with backoff), read, and hand packets to the engine worker, decoded and
//! batched by the same steps as a file read (`burstwatch_pipeline::decode`).

use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burstwatch_capture::{Fanout, LiveBackend, LiveCapture, LiveConfig, LiveStats};
use burstwatch_config::Backend;
use burstwatch_pipeline::decode::{Batcher, FrameDecoder, LIVE_BATCH};

use super::shared::{IfaceCounters, Shared};

pub use burstwatch_pipeline::decode::Batch;
/// At shutdown, packets the kernel already holds are still read for at most this long (after
/// the ring's block timeout).
const DRAIN: Duration = Duration::from_secs(1);
/// Longest pause between retries of an interface that is missing or down.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Run until shutdown: capture on `cfg.interface` (starting with `first` if it was opened
/// already), publishing counters in slot `slot`. Batches go out on `tx`; new ones reuse the
/// buffers the worker gives back on `spare` (no allocation per batch).
pub fn run(
    cfg: LiveConfig,
    first: Option<LiveCapture>,
    slot: usize,
    retry: Duration,
    (tx, spare): (SyncSender<Batch>, Receiver<Batch>),
    shared: Arc<Shared>,
) {
    let mut local = IfaceCounters {
        name: cfg.interface.clone(),
        ..IfaceCounters::default()
    };
    let mut backoff = retry;
    let mut opened = false;
    let mut decoder = FrameDecoder::default();
    // A partial batch is handed over as soon as the interface goes quiet.
    let mut batcher = Batcher::new(LIVE_BATCH, Some(spare));
    // Counters of captures closed earlier (libpcap's restart at zero on reopen).
    let (mut base_dropped, mut base_ifdropped) = (0u64, 0u64);
    let mut first = first;
    // At shutdown an AF_PACKET ring hands over its last, partly filled block only after the
    // block timeout: keep reading that long.
    let settle = match cfg.backend {
        LiveBackend::AfPacket => Duration::from_millis(u64::from(cfg.ring_block_timeout_ms)),
        LiveBackend::Pcap => Duration::ZERO,
    };
    while !shared.stopping() {
        let opened_now = match first.take() {
            Some(cap) => Ok(cap),
            None => LiveCapture::open(&cfg),
        };
        let mut cap = match opened_now {
            Ok(cap) => cap,
            Err(e) => {
                local.open_failures += 1;
                local.up = false;
                publish(&shared, slot, &local);
                tracing::warn!(error = %e, retry_in = ?backoff, "capture not open; retrying");
                sleep_unless_stopped(&shared, slot, backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        tracing::info!(interface = %cfg.interface, "capturing");
        if opened {
            local.reopens += 1;
        }
        opened = true;
        backoff = retry;
        local.up = true;
        publish(&shared, slot, &local);
        let mut last_publish = Instant::now();
        let mut since_check = 0u32;
        let mut unreadable_seen = 0u64;
        let mut stop_seen: Option<Instant> = None;
        loop {
            if shared.stopping() {
                // What the kernel already holds is still read (bounded: a flood never ends).
                let t0 = *stop_seen.get_or_insert_with(Instant::now);
                if t0.elapsed() >= settle + DRAIN {
                    break;
                }
            }
            match cap.next_packet() {
                Ok(Some(pkt)) => {
                    local.packets += 1;
                    local.captured_bytes += pkt.data.len() as u64;
                    local.wire_bytes += u64::from(pkt.wire_len);
                    if let Some(meta) = decoder.decode(&pkt, &mut local.undecoded) {
                        if let Some(full) = batcher.push(pkt.ts_ns, meta) {
                            if tx.send(full).is_err() {
                                return;
                            }
                        }
                    }
                    since_check += 1;
                }
                Ok(None) => {
                    if let Some(partial) = batcher.take() {
                        if tx.send(partial).is_err() {
                            return;
                        }
                    }
                    if stop_seen.is_some_and(|t0| t0.elapsed() >= settle) {
                        break;
                    }
                    since_check = 4096;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "capture failed; reopening");
                    local.up = false;
                    break;
                }
            }
            if since_check >= 4096 {
                since_check = 0;
                if last_publish.elapsed() >= Duration::from_secs(1) {
                    last_publish = Instant::now();
                    let s = cap.stats();
                    warn_unreadable(&cfg.interface, &s, &mut unreadable_seen);
                    local.dropped = base_dropped + s.dropped;
                    local.if_dropped = base_ifdropped + s.if_dropped;
                    publish(&shared, slot, &local);
                }
            }
        }
        let s = cap.stats();
        warn_unreadable(&cfg.interface, &s, &mut unreadable_seen);
        if s.unread > 0 {
            tracing::warn!(
                interface = %cfg.interface,
                unread = s.unread,
                "packets still in the capture ring when it closed were not read"
            );
        }
        base_dropped += s.dropped;
        base_ifdropped += s.if_dropped;
        local.dropped = base_dropped;
        local.if_dropped = base_ifdropped;
        publish(&shared, slot, &local);
        if !shared.stopping() {
            sleep_unless_stopped(&shared, slot, backoff);
        }
    }
    if let Some(rest) = batcher.take() {
        let _ = tx.send(rest);
    }
    local.up = false;
    publish(&shared, slot, &local);
    tracing::info!(
        interface = %cfg.interface,
        packets = local.packets,
        kernel_drops = local.dropped,
        "capture stopped"
    );
}

/// Log when the AF_PACKET ring held blocks that could not be walked (their packets are counted
/// as kernel drops).
fn warn_unreadable(interface: &str, s: &LiveStats, seen: &mut u64) {
    if s.unreadable > *seen {
        tracing::warn!(
            interface,
            lost = s.unreadable - *seen,
            "ring block with offsets outside the block; its remaining packets are counted as dropped"
        );
        *seen = s.unreadable;
    }
}

/// Publish the counters; this is also the thread's heartbeat.
fn publish(shared: &Shared, slot: usize, local: &IfaceCounters) {
    if let Ok(mut v) = shared.ifaces.lock() {
        if let Some(s) = v.get_mut(slot) {
            *s = local.clone();
            s.beat = Some(Instant::now());
        }
    }
}

/// Wait `d` (until shutdown), telling the watchdog about once a second that the thread waits.
fn sleep_unless_stopped(shared: &Shared, slot: usize, d: Duration) {
    let until = Instant::now() + d;
    let mut beat = Instant::now();
    while !shared.stopping() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
        if beat.elapsed() >= Duration::from_secs(1) {
            beat = Instant::now();
            shared.beat_capture(slot);
        }
    }
}

/// Capture threads per interface: `daemon.capture_threads`, else one per core up to the
/// worker count (one with the pcap backend, which cannot share an interface).
pub(crate) fn capture_threads(d: &burstwatch_config::DaemonSettings) -> usize {
    d.capture_threads.unwrap_or_else(|| match d.backend {
        Backend::Pcap => 1,
        Backend::AfPacket => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(d.workers)
            .max(1),
    })
}

/// The capture settings of every capture thread (`capture_threads` per interface, in interface
/// order), each with its capture if it opened now (the capture threads retry the others).
pub(crate) fn open_captures(
    d: &burstwatch_config::DaemonSettings,
    home_nets: &burstwatch_engine::PrefixSet,
) -> Vec<(LiveConfig, Option<LiveCapture>)> {
    let threads = capture_threads(d);
    let home: Vec<_> = home_nets.prefixes().iter().map(|p| p.network()).collect();
    // The steering program: each subscriber on one ring; too many home prefixes for one
    // program: the kernel's flow hash (each connection on one ring).
    let steer = match burstwatch_capture::tpacket::steer::program(&home) {
        Ok(_) => Some(home),
        Err(e) if threads > 1 => {
            tracing::warn!(error = %e, "capture threads steered by the kernel's flow hash instead");
            None
        }
        Err(_) => None,
    };
    let mut out = Vec::new();
    for (i, name) in d.interfaces.iter().enumerate() {
        // One fanout group per interface, distinct from other processes' groups.
        let group = (std::process::id() as u16)
            .wrapping_mul(64)
            .wrapping_add(i as u16);
        for t in 0..threads {
            let cfg = LiveConfig {
                interface: name.clone(),
                backend: match d.backend {
                    Backend::Pcap => LiveBackend::Pcap,
                    Backend::AfPacket => LiveBackend::AfPacket,
                },
                snaplen: d.snaplen,
                buffer_bytes: d.buffer_mib.saturating_mul(1 << 20),
                ring_block_bytes: d.ring_block_kib.saturating_mul(1024),
                ring_blocks: d.ring_blocks,
                ring_block_timeout_ms: d.ring_block_timeout_ms,
                promiscuous: d.promiscuous,
                immediate: d.immediate,
                filter: d.filter.clone(),
                poll_ms: 100,
                fanout: (threads > 1).then(|| Fanout {
                    group,
                    steer: steer.clone(),
                }),
            };
            let cap = LiveCapture::open(&cfg)
                .map_err(|e| {
                    tracing::warn!(interface = %name, thread = t, error = %e, "capture not open yet")
                })
                .ok();
            out.push((cfg, cap));
        }
    }
    out
}
