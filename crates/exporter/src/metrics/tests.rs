#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use super::*;
use crate::stats::{InterfaceStats, OutputStats, SinkStats};

/// The value of one sample line (`name{labels} value`) in the text format.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{series} not in\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn build_info_and_process_families() {
    let m = Metrics::with_build(&BuildInfo {
        version: "1.2.3",
        commit: "0123456789ab-dirty",
        features: "report",
        rustc: "1.95.0",
    })
    .unwrap();
    let t = m.render().unwrap();
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_build_info{commit="0123456789ab-dirty",features="report",rustc="1.95.0",version="1.2.3"}"#
        ),
        1.0
    );
    if cfg!(target_os = "linux") {
        assert!(sample(&t, "process_resident_memory_bytes") > 0.0);
        assert!(sample(&t, "process_open_fds") >= 3.0);
        assert!(sample(&t, "process_max_fds") > 0.0);
        assert!(sample(&t, "process_threads") >= 1.0);
        // Since the epoch, and not in the future.
        let start = sample(&t, "process_start_time_seconds");
        assert!(start > 1.6e9, "{start}");
        assert!(sample(&t, "process_cpu_seconds_total") >= 0.0);
    }
}

fn snap(packets: u64, drops: u64) -> StatsSnapshot {
    let mut s = StatsSnapshot {
        interfaces: vec![InterfaceStats {
            name: "eth1".into(),
            up: true,
            packets,
            captured_bytes: packets * 256,
            wire_bytes: packets * 1500,
            kernel_drops: drops,
            ..InterfaceStats::default()
        }],
        capture_threads: vec![crate::stats::CaptureThreadStats {
            interface: "eth1".into(),
            thread: 0,
            packets,
            kernel_drops: drops,
        }],
        worker_newest_ns: vec![1_000_000_000_000, 0],
        sinks: vec![SinkStats {
            name: "file",
            sent: packets / 2,
            ..SinkStats::default()
        }],
        outputs: vec![OutputStats {
            name: "flows",
            dropped: drops,
            failing: drops > 1,
        }],
        flow_exporters: vec![crate::stats::FlowExporterStats {
            exporter: "192.0.2.1".into(),
            records: packets,
            sampling_rate: 100,
            ..Default::default()
        }],
        flow_sockets: vec![crate::stats::FlowSocketStats {
            listen: "udp://0.0.0.0:2055".into(),
            kernel_drops: drops,
            ..Default::default()
        }],
        flow_interfaces: vec![crate::stats::FlowInterfaceStats {
            agent: "192.0.2.9".into(),
            if_index: 1,
            octets: [packets * 100, packets * 50],
            ..Default::default()
        }],
        flow_interfaces_known: 1,
        ..StatsSnapshot::default()
    };
    s.direction.packets = [packets, 2, 3, 4];
    s.detector.alerts[1][3] = packets;
    s.decode_errors = vec![("truncated_ip", drops)];
    s
}

#[test]
fn sflow_interfaces_have_their_counters_and_a_device_reset_keeps_them_monotonic() {
    let m = Metrics::new("1").unwrap();
    let mut s = snap(100, 5);
    s.flow_interfaces = vec![crate::stats::FlowInterfaceStats {
        agent: "192.0.2.9".into(),
        if_index: 7,
        speed_bps: 10_000_000_000,
        oper_up: true,
        octets: [5_000, 9_000],
        packets: [50, 90],
        errors: [1, 0],
        discards: [0, 2],
    }];
    s.flow_interfaces_known = 300;
    m.update(&s, 1_002_500_000_000);
    let t = m.render().unwrap();
    let get = |name: &str, dir: &str| {
        sample(
            &t,
            &format!(
                "burstwatch_sflow_interface_{name}_total{{agent=\"192.0.2.9\",direction=\"{dir}\",if_index=\"7\"}}"
            ),
        )
    };
    assert_eq!(
        (get("octets", "in"), get("octets", "out")),
        (5_000.0, 9_000.0)
    );
    assert_eq!((get("packets", "in"), get("errors", "in")), (50.0, 1.0));
    assert_eq!(get("discards", "out"), 2.0);
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_sflow_interface_speed_bps{agent="192.0.2.9",if_index="7"}"#
        ),
        1e10
    );
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_sflow_interface_up{agent="192.0.2.9",if_index="7"}"#
        ),
        1.0
    );
    assert_eq!(sample(&t, "burstwatch_sflow_interfaces"), 300.0);
    // The agent restarted: its counters start again from zero; ours go on.
    s.flow_interfaces[0].octets = [1_000, 0];
    m.update(&s, 1_003_000_000_000);
    let t = m.render().unwrap();
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_sflow_interface_octets_total{agent="192.0.2.9",direction="in",if_index="7"}"#
        ),
        6_000.0
    );
}

#[test]
fn each_capture_thread_has_its_packets_and_drops() {
    let m = Metrics::new("1").unwrap();
    let mut s = snap(100, 5);
    s.capture_threads = (0..2)
        .map(|t| crate::stats::CaptureThreadStats {
            interface: "eth1".into(),
            thread: t,
            packets: 40 + u64::from(t) * 20,
            kernel_drops: u64::from(t) * 5,
        })
        .collect();
    m.update(&s, 1_002_500_000_000);
    let t = m.render().unwrap();
    let th = |name: &str, thread: u32| {
        sample(
            &t,
            &format!(
                "burstwatch_capture_thread_{name}_total{{interface=\"eth1\",thread=\"{thread}\"}}"
            ),
        )
    };
    assert_eq!((th("packets", 0), th("packets", 1)), (40.0, 60.0));
    assert_eq!((th("drops", 0), th("drops", 1)), (0.0, 5.0));
}

#[test]
fn a_named_sensor_labels_every_series_and_an_unnamed_one_none() {
    let named = Metrics::for_sensor(&BuildInfo::UNKNOWN, Some("pop-fra-1")).unwrap();
    named.update(&snap(100, 5), 1_002_500_000_000);
    let t = named.render().unwrap();
    let samples: Vec<&str> = t.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(samples.len() > 50, "{t}");
    for l in &samples {
        assert!(l.contains("sensor=\"pop-fra-1\""), "{l}");
        assert_eq!(l.matches("sensor=").count(), 1, "{l}");
    }
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_interface_packets_total{interface="eth1",sensor="pop-fra-1"}"#
        ),
        100.0
    );
    for sensor in [None, Some("")] {
        let t = Metrics::for_sensor(&BuildInfo::UNKNOWN, sensor)
            .unwrap()
            .render()
            .unwrap();
        assert!(!t.contains("sensor="), "{t}");
    }
}

#[test]
fn counters_follow_totals_and_never_go_backwards() {
    let m = Metrics::new("9.9.9").unwrap();
    m.update(&snap(100, 5), 1_002_500_000_000);
    let t = m.render().unwrap();
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_interface_packets_total{interface="eth1"}"#
        ),
        100.0
    );
    assert_eq!(
        sample(&t, r#"burstwatch_packets_total{direction="up"}"#),
        100.0
    );
    assert_eq!(
        sample(&t, r#"burstwatch_processing_lag_seconds{worker="0"}"#),
        2.5
    );
    assert_eq!(
        sample(&t, r#"burstwatch_processing_lag_seconds{worker="1"}"#),
        0.0
    );
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_alerts_total{kind="beacon",severity="critical"}"#
        ),
        100.0
    );
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_build_info{commit="unknown",features="",rustc="unknown",version="9.9.9"}"#
        ),
        1.0
    );
    // Captured length and on-wire length are two series.
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_interface_captured_bytes_total{interface="eth1"}"#
        ),
        100.0 * 256.0
    );
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_interface_wire_bytes_total{interface="eth1"}"#
        ),
        100.0 * 1500.0
    );
    // A worker restarted: its totals begin again at 40.
    m.update(&snap(40, 1), 1_003_000_000_000);
    let t = m.render().unwrap();
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_interface_packets_total{interface="eth1"}"#
        ),
        140.0
    );
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_capture_drops_total{interface="eth1",where="kernel"}"#
        ),
        6.0
    );
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_decode_errors_total{reason="truncated_ip"}"#
        ),
        6.0
    );
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_sink_alerts_sent_total{sink="file",target=""}"#
        ),
        70.0
    );
    assert_eq!(
        sample(&t, r#"burstwatch_output_dropped_total{output="flows"}"#),
        6.0
    );
    assert_eq!(
        sample(&t, r#"burstwatch_output_failing{output="flows"}"#),
        0.0
    );
    m.update(&snap(50, 1), 1_003_000_000_000);
    let t = m.render().unwrap();
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_interface_packets_total{interface="eth1"}"#
        ),
        150.0
    );
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_capture_drops_total{interface="eth1",where="kernel"}"#
        ),
        6.0
    );
}

#[test]
fn fixed_series_exist_before_any_update() {
    let t = Metrics::new("1").unwrap().render().unwrap();
    for r in DecodeError::ALL_REASONS {
        assert_eq!(
            sample(
                &t,
                &format!("burstwatch_decode_errors_total{{reason=\"{r}\"}}")
            ),
            0.0
        );
    }
    assert_eq!(
        sample(&t, r#"burstwatch_flows_ended_total{reason="end_of_input"}"#),
        0.0
    );
    assert_eq!(
        sample(&t, r#"burstwatch_alert_score_count{kind="burst"}"#),
        0.0
    );
    assert_eq!(sample(&t, "burstwatch_config_last_reload_successful"), 1.0);
}

#[test]
fn scores_and_reloads() {
    let m = Metrics::new("1").unwrap();
    m.observe_alert("burst", "high", 0.45);
    m.observe_alert("burst", "high", 0.95);
    m.observe_alert("burst", "high", f64::NAN);
    m.config_reload(false);
    let t = m.render().unwrap();
    assert_eq!(
        sample(
            &t,
            r#"burstwatch_alert_score_bucket{kind="burst",le="0.5"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&t, r#"burstwatch_alert_score_count{kind="burst"}"#),
        2.0
    );
    assert_eq!(
        sample(&t, r#"burstwatch_config_reloads_total{result="error"}"#),
        1.0
    );
    assert_eq!(sample(&t, "burstwatch_config_last_reload_successful"), 0.0);
}

#[test]
fn metrics_md_lists_every_family_with_its_type() {
    let m = Metrics::new("1").unwrap();
    // With a shared store ([cluster]) its families join the registry.
    crate::cluster_metrics::ClusterMetrics::register(m.registry(), "s").unwrap();
    m.update(&snap(1, 1), 0);
    let served: std::collections::BTreeSet<(String, String)> = m
        .render()
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let documented: std::collections::BTreeSet<(String, String)> = include_str!("../../METRICS.md")
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cols.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let ours = name.starts_with("burstwatch_")
                || (cfg!(target_os = "linux") && name.starts_with("process_"));
            if !ours {
                return None;
            }
            Some((name.to_string(), cols.get(2)?.to_string()))
        })
        .collect();
    assert_eq!(served, documented);
}

#[test]
fn unknown_decode_reasons_are_not_labels() {
    let m = Metrics::new("1").unwrap();
    let s = StatsSnapshot {
        decode_errors: vec![("10.0.0.1", 3)],
        ..StatsSnapshot::default()
    };
    m.update(&s, 0);
    assert!(!m.render().unwrap().contains("10.0.0.1"));
}
