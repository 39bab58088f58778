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

/// Receive buffer asked for each socket: routers send in bursts (a cache flush at the active
/// timeout), and the default buffer (about 200 KB) holds only about 150 full datagrams.
pub const SOCKET_BUFFER: usize = 32 << 20;

/// Bind every socket (before the switch of account: a port below 1024 needs root, and so does
/// a receive buffer above `net.core.rmem_max`).
pub fn bind(addrs: &[std::net::SocketAddr]) -> anyhow::Result<Vec<UdpSocket>> {
    addrs
        .iter()
        .map(|a| {
            let s = UdpSocket::bind(a)
                .map_err(|e| anyhow::anyhow!("daemon.flow_listen: cannot bind udp://{a}: {e}"))?;
            s.set_read_timeout(Some(POLL))?;
            let got = grow_buffer(&s);
            if got < SOCKET_BUFFER {
                tracing::warn!(listen = %format!("udp://{a}"), bytes = got, wanted = SOCKET_BUFFER,
                    "flow-export socket receive buffer smaller than wanted: bursts of datagrams \
                     may be dropped by the kernel (burstwatch_flow_export_socket_drops_total); \
                     raise net.core.rmem_max or start the daemon as root");
            } else {
                tracing::debug!(listen = %format!("udp://{a}"), bytes = got, "flow-export socket receive buffer");
            }
            Ok(s)
        })
        .collect()
}

/// Ask for [`SOCKET_BUFFER`] (past `net.core.rmem_max` when privileged, else up to it); the
/// size the kernel gave (it counts its bookkeeping too: twice what was asked).
fn grow_buffer(s: &UdpSocket) -> usize {
    use rustix::net::sockopt;
    if sockopt::set_socket_recv_buffer_size_force(s, SOCKET_BUFFER).is_err() {
        let _ = sockopt::set_socket_recv_buffer_size(s, SOCKET_BUFFER);
    }
    sockopt::socket_recv_buffer_size(s).unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_get_the_largest_receive_buffer_allowed() {
        let sockets = bind(&[([127, 0, 0, 1], 0).into()]).unwrap_or_default();
        let Some(s) = sockets.first() else {
            panic!("cannot bind a loopback socket");
        };
        let got = rustix::net::sockopt::socket_recv_buffer_size(s).unwrap_or(0);
        // Unprivileged, the kernel caps the request at net.core.rmem_max (and doubles it).
        let max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        let privileged = rustix::process::geteuid().is_root();
        let floor = if privileged {
            SOCKET_BUFFER
        } else {
            SOCKET_BUFFER.min(max)
        };
        assert!(
            got >= floor,
            "receive buffer {got}, expected at least {floor}"
        );
    }
}
