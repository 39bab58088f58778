//! The Alertmanager sink against a real Alertmanager: what it posts is accepted by the v2 API
//! and comes back with its labels, annotations and times; over https with basic auth, only
//! with the CA file and the password.

use std::time::Duration;

use burstwatch_exporter::sinks::{
    AlertEvent, AlertmanagerConfig, Auth, HttpClientConfig, HttpDelivery, Retry, Secret, Sinks,
    SinksConfig,
};
use burstwatch_tests::alertmanager::{Alertmanager, Web};

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
            alertmanager: vec![AlertmanagerConfig {
                http: HttpDelivery {
                    batch_wait: Duration::from_millis(50),
                    retry: Retry {
                        backoff_initial: Duration::from_millis(50),
                        ..Retry::default()
                    },
                    ..HttpDelivery::new(format!("http://{}", am.addr()), 1024)
                },
                ..AlertmanagerConfig::default()
            }],
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

#[test]
fn https_alertmanager_with_basic_auth_takes_alerts_only_with_the_ca_file_and_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    let web = Web::test(dir.path(), ip).unwrap_or_else(|e| panic!("{e}"));
    let am = Alertmanager::start_with(ip, Some(web.clone())).unwrap_or_else(|e| panic!("{e}"));
    let url = format!("https://{}", am.addr());
    let basic = Auth::Basic {
        username: web.user.clone(),
        password: Secret::new(web.password.clone()),
    };
    // One sink per case, each with its own counters: no CA file (the system's roots do not
    // know the test CA), the CA but no password, a wrong password, the CA and the password.
    let cases = [
        (None, Auth::None),
        (Some(web.ca.clone()), Auth::None),
        (
            Some(web.ca.clone()),
            Auth::Basic {
                username: web.user.clone(),
                password: Secret::new("wrong"),
            },
        ),
        (Some(web.ca.clone()), basic),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stats = rt.block_on(async {
        let cfg = SinksConfig {
            alertmanager: cases
                .iter()
                .map(|(ca_file, auth)| AlertmanagerConfig {
                    http: HttpDelivery {
                        client: HttpClientConfig {
                            ca_file: ca_file.clone(),
                            auth: auth.clone(),
                        },
                        batch_wait: Duration::from_millis(20),
                        retry: Retry {
                            max_retries: 1,
                            backoff_initial: Duration::from_millis(20),
                            ..Retry::default()
                        },
                        ..HttpDelivery::new(url.clone(), 1024)
                    },
                    ..AlertmanagerConfig::default()
                })
                .collect(),
            origin: vec![
                ("sensor".into(), "edge-7".into()),
                ("site".into(), "lab".into()),
            ],
            ..SinksConfig::default()
        };
        let sinks = Sinks::start(&cfg).await.unwrap();
        sinks.send(event(1, "burst", "high"));
        sinks.shutdown(Duration::from_secs(15)).await
    });
    let got: Vec<_> = stats
        .iter()
        .map(|s| (s.sent, s.failed, s.retries))
        .collect();
    // Unknown CA: retried (a TLS failure may be passing), then given up; 401: refused at once.
    assert_eq!(
        got,
        [(0, 1, 1), (0, 1, 0), (0, 1, 0), (1, 0, 0)],
        "{stats:?}\n{}",
        am.log()
    );
    let alerts = am.alerts().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["labels"]["sensor"], "edge-7");
    assert_eq!(alerts[0]["labels"]["site"], "lab");
    assert_eq!(alerts[0]["labels"]["severity"], "high");
}
