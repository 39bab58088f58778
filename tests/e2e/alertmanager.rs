//! The Alertmanager sink against a real Alertmanager: what it posts is accepted by the v2 API
//! and comes back with its labels, annotations and times.

use std::time::Duration;

use burstwatch_daemon::sinks::{AlertEvent, AlertmanagerConfig, Sinks, SinksConfig};
use burstwatch_tests::alertmanager::Alertmanager;

fn event(i: u32, kind: &'static str, severity: &'static str) -> AlertEvent {
    let start = 1_700_000_000_000_000_000 + i64::from(i) * 60_000_000_000;
    AlertEvent {
        json_line: format!("{{\"id\":\"a{i}\",\"kind\":\"{kind}\"}}"),
        id: format!("a{i}"),
        kind,
        severity,
        score: 0.5 + f64::from(i) / 10.0,
        src: format!("10.0.0.{i}"),
        dst: "203.0.113.5:443".into(),
        starts_at_unix_ns: start,
        ends_at_unix_ns: start + 20_000_000_000,
        summary: format!("{kind} from 10.0.0.{i}"),
    }
}

#[test]
fn alerts_reach_a_real_alertmanager() {
    let am = Alertmanager::start().unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stats = rt.block_on(async {
        let cfg = SinksConfig {
            alertmanager: Some(AlertmanagerConfig {
                url: format!("http://{}", am.addr()),
                batch_wait: Duration::from_millis(50),
                backoff_initial: Duration::from_millis(50),
                ..AlertmanagerConfig::default()
            }),
            ..SinksConfig::default()
        };
        let sinks = Sinks::start(&cfg).await.unwrap();
        sinks.send(event(1, "burst", "critical"));
        sinks.send(event(2, "beacon", "medium"));
        sinks.shutdown(Duration::from_secs(15)).await
    });
    assert_eq!(
        (stats[0].sent, stats[0].failed, stats[0].retries),
        (2, 0, 0),
        "{stats:?}\n{}",
        am.log()
    );
    let mut alerts = am.alerts().unwrap();
    alerts.sort_by_key(|a| a["annotations"]["alert_id"].as_str().unwrap().to_string());
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a["labels"]["alertname"], "BurstwatchBurst");
    assert_eq!(a["labels"]["severity"], "critical");
    assert_eq!(a["labels"]["src"], "10.0.0.1");
    assert_eq!(a["annotations"]["summary"], "burst from 10.0.0.1");
    assert_eq!(a["status"]["state"], "active", "{a:#}");
    assert!(
        a["startsAt"]
            .as_str()
            .unwrap()
            .starts_with("2023-11-14T22:14:20"),
        "{a:#}"
    );
    assert_eq!(alerts[1]["labels"]["alertname"], "BurstwatchBeacon");
    assert_eq!(alerts[1]["labels"]["kind"], "beacon");
}
