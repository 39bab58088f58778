//! One reader thread per `daemon.flow_listen` socket: flow-export datagrams (NetFlow v5/v9,
//! IPFIX, sFlow v5) received, stamped with the wall clock, turned into bins by a
//! `burstwatch_flowexport::Collector` and handed to the engine worker as synthetic packets,
//! as `analyze --input-kind flow-export` does with a capture of the same datagrams.

use std::net::UdpSocket;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use burstwatch_flowexport::{Collector, Config};
use burstwatch_wire::PacketMeta;

use super::capture::Batch;
use super::flow_stats::FlowThreadStats;
use super::shared::Shared;
use burstwatch_pipeline::decode::{Batcher, LIVE_BATCH};
use burstwatch_pipeline::flow_input::{split_bin, SourceTag};

/// How long a read waits, so the thread sees the stop flag and the watermark moves on.
const POLL: Duration = Duration::from_millis(200);
/// How often the thread's counters are published for the metrics.
const PUBLISH: Duration = Duration::from_millis(500);
/// Bins wait this long behind the newest datagram (as `analyze --flow-hold`'s default).
pub const HOLD_S: u32 = 75;

/// Bind every socket (before the switch of account: a port below 1024 needs root).
pub fn bind(addrs: &[std::net::SocketAddr]) -> anyhow::Result<Vec<UdpSocket>> {
    addrs
        .iter()
        .map(|a| {
            let s = UdpSocket::bind(a)
                .map_err(|e| anyhow::anyhow!("daemon.flow_listen: cannot bind udp://{a}: {e}"))?;
            s.set_read_timeout(Some(POLL))?;
            Ok(s)
        })
        .collect()
}

/// Receive until shutdown; then every held bin goes out.
pub fn run(socket: UdpSocket, slot: usize, tx: SyncSender<Batch>, shared: Arc<Shared>) {
    let cfg = Config {
        hold_s: HOLD_S,
        ..Config::default()
    };
    let Ok(mut collector) = Collector::with_templates(cfg, Arc::clone(&shared.flow_templates))
    else {
        return;
    };
    let local = socket.local_addr().ok();
    let listen = local.map_or_else(String::new, |a| format!("udp://{a}"));
    tracing::info!(listen = ?local, "receiving flow export");
    let mut published = std::time::Instant::now();
    let mut buf = vec![0u8; 65_536];
    let mut batcher = Batcher::new(LIVE_BATCH, None);
    let mut meta = PacketMeta::default();
    let mut idle_since_send = false;
    let mut tag = SourceTag::default();
    while !shared.stopping() {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let now = crate::export::now_ns();
                tag.see_kind(collector.push(now, from, &buf[..n]));
                idle_since_send = false;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // A quiet socket: the watermark still follows the clock.
                collector.advance(crate::export::now_ns());
                idle_since_send = true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "flow export socket failed");
                std::thread::sleep(POLL);
            }
        }
        let before = tag;
        if drain(
            &mut collector,
            &mut batcher,
            &mut meta,
            &tx,
            idle_since_send,
            &mut tag,
        )
        .is_err()
        {
            return;
        }
        if tag != before {
            if let Ok(mut t) = shared.flow_tag.lock() {
                t.merge(tag);
            }
        }
        if published.elapsed() >= PUBLISH {
            publish(
                &shared,
                slot,
                FlowThreadStats::read(&listen, &collector, &socket),
            );
            published = std::time::Instant::now();
        }
    }
    collector.finish();
    let _ = drain(&mut collector, &mut batcher, &mut meta, &tx, true, &mut tag);
    if let Ok(mut t) = shared.flow_tag.lock() {
        t.merge(tag);
    }
    publish(
        &shared,
        slot,
        FlowThreadStats::read(&listen, &collector, &socket),
    );
    let t = collector.total();
    tracing::info!(
        listen = ?local,
        datagrams = t.datagrams,
        records = t.records,
        packet_samples = t.packet_samples,
        parse_errors = t.parse_errors,
        template_misses = t.template_misses,
        "flow export stopped"
    );
}

/// Store this thread's counters where the metrics snapshot reads them.
fn publish(shared: &Shared, slot: usize, stats: FlowThreadStats) {
    if let Ok(mut v) = shared.flow_stats.lock() {
        if let Some(s) = v.get_mut(slot) {
            *s = stats;
        }
    }
}

/// Hand the released bins to the worker; a partial batch too when `flush`.
fn drain(
    collector: &mut Collector,
    batcher: &mut Batcher,
    meta: &mut PacketMeta,
    tx: &SyncSender<Batch>,
    flush: bool,
    tag: &mut SourceTag,
) -> Result<(), ()> {
    let mut gone = false;
    while let Some(bin) = collector.pop() {
        tag.see_rate(bin.volume.rate);
        split_bin(&bin, meta, &mut |ts, m| {
            if let Some(full) = batcher.push(ts, m) {
                gone |= tx.send(full).is_err();
            }
        });
        if gone {
            return Err(());
        }
    }
    if flush {
        if let Some(partial) = batcher.take() {
            tx.send(partial).map_err(|_| ())?;
        }
    }
    Ok(())
}
