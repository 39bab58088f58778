//! The deploy kit against a real Prometheus: the library's exporter serves a changing synthetic
//! `StatsSnapshot`; Prometheus scrapes it every second with `deploy/prometheus/rules.yml`
//! loaded; every Grafana query and every rule expression must return data, the rules meant to
//! fire on this traffic must fire and the others must not, and `promtool check metrics` must
//! be clean on the live scrape.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use burstwatch_exporter::http::{self, Endpoints};
use burstwatch_exporter::metrics::Metrics;
use burstwatch_exporter::stats::{
    FlowExporterStats, FlowInterfaceStats, FlowSocketStats, InterfaceStats, OutputStats, SinkStats,
    StatsSnapshot,
};
use burstwatch_tests::prom::{self, check_deploy_queries};
use burstwatch_tests::repo;
use burstwatch_wire::{DecodeError, DecodeErrorCounts};

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Tick `t` (4 per second) of a daemon that sees 10 000 packets/s on eth0 (5 % lost in the
/// kernel), whose eth1 capture is down, whose flow table is 95 % full, whose worker 1 is a
/// minute behind, which raises a critical burst alert every second and whose Alertmanager
/// queue overflows.
fn snapshot(t: u64, now: i64) -> StatsSnapshot {
    let pk = 2_500 * t;
    let mut s = StatsSnapshot {
        interfaces: vec![
            InterfaceStats {
                name: "eth0".into(),
                up: true,
                packets: pk,
                captured_bytes: pk * 700,
                wire_bytes: pk * 700,
                kernel_drops: pk / 20,
                interface_drops: 0,
                open_failures: 0,
                reopens: 0,
            },
            InterfaceStats {
                name: "eth1".into(),
                up: false,
                open_failures: t / 4,
                ..InterfaceStats::default()
            },
        ],
        decode_errors: StatsSnapshot::decode_errors_from(&{
            let mut e = DecodeErrorCounts::default();
            e.count_n(&DecodeError::TruncatedIp, pk / 1000);
            e
        }),
        not_ip: pk / 100,
        filtered: 0,
        worker_newest_ns: vec![now - 300_000_000, now - 60_000_000_000],
        state_restored: true,
        snapshot_age_seconds: 42.0,
        sinks: vec![
            SinkStats {
                name: "file",
                sent: t / 4,
                ..SinkStats::default()
            },
            SinkStats {
                name: "alertmanager",
                sent: t / 8,
                overflow: t / 8,
                queued: 1024,
                ..SinkStats::default()
            },
        ],
        // Output files that write: the output rules have data and stay quiet.
        outputs: vec![
            OutputStats {
                name: "flows",
                ..OutputStats::default()
            },
            OutputStats {
                name: "alerts_file",
                ..OutputStats::default()
            },
        ],
        flow_exporters: vec![
            FlowExporterStats {
                exporter: "192.0.2.1".into(),
                datagrams: pk / 30,
                records: pk,
                template_misses: t / 4,
                sampling_rate: 1000,
                ..FlowExporterStats::default()
            },
            FlowExporterStats {
                exporter: "other".into(),
                datagrams: t,
                records: t * 20,
                parse_errors: t / 8,
                held_dropped: t / 16,
                sampling_rate: 1,
                ..FlowExporterStats::default()
            },
        ],
        flow_sockets: vec![FlowSocketStats {
            listen: "udp://0.0.0.0:2055".into(),
            kernel_drops: t / 8,
            late_bins: t / 4,
            late_behind_seconds: 30,
        }],
        flow_interfaces: vec![FlowInterfaceStats {
            agent: "192.0.2.1".into(),
            if_index: 3,
            speed_bps: 10_000_000_000,
            oper_up: true,
            octets: [pk * 700, pk * 300],
            packets: [pk, pk / 2],
            errors: [t / 64, 0],
            discards: [0, t / 32],
        }],
        flow_interfaces_known: 1,
        ..StatsSnapshot::default()
    };
    s.direction.packets = [pk * 6 / 10, pk * 3 / 10, pk / 20, pk / 20];
    s.direction.bytes = s.direction.packets.map(|p| p * 700);
    s.flows.capacity = 1_000_000;
    s.flows.active = 950_000;
    s.flows.created = pk / 10;
    s.flows.ended = [pk / 20, pk / 100, pk / 40, pk / 200, pk / 500, 0];
    s.detector.tracked = [1_000, 5_000, 4_000, 1_500];
    s.detector.capacity = [1_000_000, 2_000_000, 2_000_000, 1_000_000];
    s.detector.bursts = t / 2;
    s.detector.burst_outcomes = [t / 8, t / 8, 0, 0, t / 16, 0];
    s.detector.alerts[0][3] = t / 4;
    s.detector.alerts[1][1] = t / 8;
    s
}

/// The library's exporter on a free loopback port, fed a new snapshot every 250 ms.
struct SyntheticExporter {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SyntheticExporter {
    fn start() -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let metrics = Arc::new(Metrics::new(env!("CARGO_PKG_VERSION")).unwrap());
                let listener = http::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let m = Arc::clone(&metrics);
                let feeder = tokio::spawn(async move {
                    for t in 0u64.. {
                        let now = now_ns();
                        m.update(&snapshot(t, now), now);
                        if t % 4 == 0 {
                            m.observe_alert("burst", "critical", 0.55 + (t % 40) as f64 / 100.0);
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                });
                let ep = Endpoints {
                    metrics,
                    ready: Arc::new(AtomicBool::new(true)),
                };
                http::serve(listener, ep, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
                feeder.abort();
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for SyntheticExporter {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn dashboard_and_rules_return_data_from_a_real_prometheus() {
    let exporter = SyntheticExporter::start();
    let report = check_deploy_queries(exporter.addr, &repo(), Duration::from_secs(30), &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.failed.is_empty(),
        "queries without data or with errors:\n{:#?}",
        report.failed
    );
    // 32 dashboard queries and 15 rules.
    assert!(report.with_data.len() >= 47, "{:#?}", report.with_data);
    assert_eq!(
        report.lint, None,
        "promtool check metrics on the live scrape"
    );
    let mut firing = report.firing.clone();
    firing.sort();
    assert_eq!(
        firing,
        [
            "BurstwatchBurstAlert",
            "BurstwatchCaptureDrops",
            "BurstwatchCriticalAlert",
            "BurstwatchFlowTableNearFull",
            "BurstwatchInterfaceDown",
            "BurstwatchProcessingLag",
            "BurstwatchSinkOverflow",
        ]
    );
}

#[test]
fn prometheus_harness_reads_what_it_scrapes() {
    let exporter = SyntheticExporter::start();
    let p = prom::Prometheus::start(&[exporter.addr.to_string()], &[]).unwrap();
    let r = p
        .query_until_data(
            "burstwatch_flows_capacity{job=\"burstwatch\"}",
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].1, 1_000_000.0);
    assert_eq!(r[0].0["instance"], exporter.addr.to_string());
    let lag = p.query("max(burstwatch_processing_lag_seconds)").unwrap();
    assert!((59.0..70.0).contains(&lag[0].1), "{lag:?}");
    assert!(p.query("this is not promql").is_err());
    // The lint bites: a counter without `_total` is reported.
    let bad = "# HELP foo_count a\n# TYPE foo_count counter\nfoo_count 1\n";
    let lint = prom::promtool_check_metrics(bad).unwrap_err();
    assert!(lint.contains("_total"), "{lint}");
    let dir_gone = {
        let addr = p.addr();
        drop(p);
        prom::http_get(addr, "/-/ready").is_err()
    };
    assert!(dir_gone, "prometheus still answers after drop");
}
