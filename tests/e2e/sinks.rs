//! The daemon's alert sinks on real receivers: two real Alertmanagers (one plain, one https with
//! a CA file and basic auth) and a third URL where nothing listens, a webhook receiver that asks
//! for a bearer token, and syslog over UDP and TCP. Every reachable receiver gets every alert
//! with the `sensor` and `site` labels while the missing one is retried; the syslog lines are
//! RFC 5424. Runs the daemon on a veth between test namespaces (see `live.rs`); the receivers
//! listen on the management link's root-namespace end.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use burstwatch_tests::alertmanager::{Alertmanager, Web};
use burstwatch_tests::prom::{free_port, http_get};
use serde_json::Value;

use crate::live::{live_tests_enabled, replay, start_daemon, wait_for_log, Netns};
use crate::outputs::flows_and_bursts;

/// Requests a webhook receiver got: (headers in lower case, body).
type Requests = Arc<Mutex<Vec<(String, String)>>>;

/// A minimal HTTP/1.1 receiver: records each request, answers 200 when it carries
/// `Authorization: Bearer {token}`, 401 otherwise.
fn webhook_receiver(ip: IpAddr, token: &'static str) -> (SocketAddr, Requests) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Requests = Arc::default();
    let log = Arc::clone(&got);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut r = BufReader::new(conn.try_clone().unwrap());
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push_str(&line.to_ascii_lowercase());
                    }
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|n| n.trim().parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let ok = head.contains(&format!("authorization: bearer {token}\r\n"));
                    log.lock()
                        .unwrap()
                        .push((head, String::from_utf8_lossy(&body).into_owned()));
                    let status = if ok { "200 OK" } else { "401 Unauthorized" };
                    let _ = write!(conn, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                }
            });
        }
    });
    (addr, got)
}

/// Datagrams a UDP syslog receiver got.
fn udp_receiver(ip: IpAddr) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let sock = UdpSocket::bind((ip, 0)).unwrap();
    let addr = sock.local_addr().unwrap();
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&got);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = sock.recv(&mut buf) {
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    });
    (addr, got)
}

/// Messages a TCP syslog receiver got, unframed by octet counting (RFC 6587).
fn tcp_receiver(ip: IpAddr) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&got);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let mut r = BufReader::new(conn);
            loop {
                let mut len = Vec::new();
                if r.read_until(b' ', &mut len).unwrap_or(0) == 0 {
                    break;
                }
                let n: usize = std::str::from_utf8(&len[..len.len() - 1])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("not an octet count: {len:?}"));
                let mut msg = vec![0; n];
                r.read_exact(&mut msg).unwrap();
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&msg).into_owned());
            }
        }
    });
    (addr, got)
}

/// Check one RFC 5424 message: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`; returns MSG.
fn check_rfc5424(m: &str, facility: u16, app: &str, pid: u32) -> Value {
    let mut f = m.splitn(7, ' ');
    let mut next = || f.next().unwrap_or_else(|| panic!("too few fields: {m}"));
    let (pri_ver, ts, host, app_name, procid, msgid, rest) =
        (next(), next(), next(), next(), next(), next(), next());
    let pri: u16 = pri_ver
        .strip_prefix('<')
        .and_then(|p| p.strip_suffix(">1"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("PRI and VERSION: {m}"));
    assert_eq!(pri / 8, facility, "{m}");
    assert!((2..=5).contains(&(pri % 8)), "severity crit..notice: {m}");
    // 2026-01-01T00:00:00.000Z: RFC 3339, UTC, fraction of at most 6 digits.
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "{m}"
    );
    assert!(
        !host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic()),
        "{m}"
    );
    assert_eq!(app_name, app, "{m}");
    assert_eq!(procid, pid.to_string(), "{m}");
    assert_eq!(msgid, "burst", "{m}");
    let (sd, msg) = rest
        .split_once("] ")
        .unwrap_or_else(|| panic!("structured data: {m}"));
    assert!(
        sd.starts_with("[origin software=\"burstwatch\" swVersion=\""),
        "{m}"
    );
    serde_json::from_str(msg).unwrap_or_else(|e| panic!("MSG not JSON ({e}): {m}"))
}

fn metrics(addr: SocketAddr) -> String {
    http_get(addr, "/metrics").map(|r| r.1).unwrap_or_default()
}

fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// [`sample`] of a daemon named `edge-7`: every series carries that `sensor` label last.
fn sensor_sample(text: &str, series: &str) -> f64 {
    let (open, _) = series.rsplit_once('}').unwrap_or((series, ""));
    sample(text, &format!("{open},sensor=\"edge-7\"}}"))
}

/// Write a secret file readable by its owner only.
fn secret(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Run the daemon with `sinks` (config lines) on a burst replay until `done` holds of its
/// metrics; returns the daemon's pid and the metrics text.
fn run_daemon(
    net: &Netns,
    dir: &Path,
    sinks: &str,
    done: impl Fn(&str) -> bool,
) -> (u32, String, crate::live::Guard) {
    let traffic = dir.join("traffic.pcap");
    flows_and_bursts(&traffic, 2000, true);
    let addr = SocketAddr::from((net.mgmt_addr, free_port()));
    let cfg = dir.join("burstwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[flow]\nudp_idle_timeout_seconds = 1\n\n\
             [detect]\nlookback_seconds = 1\nalert_hold_seconds = 1\n\n\
             [daemon]\ninterfaces = [\"{}\"]\nfilter = \"not ip6 multicast\"\n\
             metrics_bind = \"{addr}\"\nalerts_file = \"alerts.jsonl\"\n{sinks}",
            net.cap_if
        ),
    )
    .unwrap();
    let log = dir.join("daemon.log");
    let daemon = start_daemon(net, &cfg, &log);
    wait_for_log(&log, "daemon started", Duration::from_secs(20));
    let pid = daemon.0.as_ref().unwrap().id();
    replay(net, &traffic, "1");
    let until = Instant::now() + Duration::from_secs(40);
    loop {
        let text = metrics(addr);
        if done(&text) {
            return (pid, text, daemon);
        }
        assert!(
            Instant::now() < until,
            "sinks did not deliver in time:\n{}\n{}",
            text.lines()
                .filter(|l| l.starts_with("burstwatch_sink_")
                    || l.starts_with("burstwatch_alerts_total"))
                .collect::<Vec<_>>()
                .join("\n"),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn every_alertmanager_webhook_and_syslog_get_every_alert_while_one_alertmanager_is_down() {
    if !live_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let net = Netns::new("k");
    // The management link's root-namespace end: what the daemon reaches from its namespace.
    let host = IpAddr::V4(Ipv4Addr::from(u32::from(net.mgmt_addr) - 1));
    let web = Web::test(dir.path(), host).unwrap_or_else(|e| panic!("{e}"));
    let am_plain = Alertmanager::start_with(host, None).unwrap_or_else(|e| panic!("{e}"));
    let am_tls =
        Alertmanager::start_with(host, Some(web.clone())).unwrap_or_else(|e| panic!("{e}"));
    let down = SocketAddr::new(host, free_port());
    let (hook, requests) = webhook_receiver(host, "t0ken");
    let (udp, datagrams) = udp_receiver(host);
    secret(
        &dir.path().join("am-password"),
        &format!("{}\n", web.password),
    );
    secret(&dir.path().join("hook-token"), "t0ken\n");
    let (plain, tls) = (
        format!("http://{}", am_plain.addr()),
        format!("https://{}", am_tls.addr()),
    );
    let sinks = format!(
        "alertmanager_url = [\"{plain}\", \"{tls}\", \"http://{down}\"]\n\
         sensor = \"edge-7\"\nsite = \"lab north\"\n\n\
         [daemon.alertmanager]\nca_file = \"{}\"\nusername = \"{}\"\npassword_file = \"am-password\"\n\n\
         [daemon.webhook]\nurl = \"http://{hook}/ingest?source=bw\"\ntoken_file = \"hook-token\"\n\n\
         [daemon.syslog]\naddress = \"udp://{udp}\"\nfacility = \"local3\"\napp_name = \"bwtest\"\n",
        web.ca.display(),
        web.user
    );
    let sent = |t: &str, sink: &str, target: &str| {
        sensor_sample(
            t,
            &format!("burstwatch_sink_alerts_sent_total{{sink=\"{sink}\",target=\"{target}\"}}"),
        )
    };
    let (pid, text, _daemon) = run_daemon(&net, dir.path(), &sinks, |t| {
        let alerts = sensor_sample(
            t,
            "burstwatch_alerts_total{kind=\"burst\",severity=\"critical\"}",
        ) + sensor_sample(
            t,
            "burstwatch_alerts_total{kind=\"burst\",severity=\"high\"}",
        ) + sensor_sample(
            t,
            "burstwatch_alerts_total{kind=\"burst\",severity=\"medium\"}",
        ) + sensor_sample(
            t,
            "burstwatch_alerts_total{kind=\"burst\",severity=\"low\"}",
        );
        alerts >= 1.0
            && sent(t, "alertmanager", &plain) == alerts
            && sent(t, "alertmanager", &tls) == alerts
            && sent(t, "webhook", &format!("http://{hook}/ingest")) == alerts
            && sent(t, "syslog", &format!("udp://{udp}")) == alerts
    });
    // The missing instance held up nobody: nothing delivered there, retries counted.
    let dead = format!("target=\"http://{down}\"");
    assert_eq!(sent(&text, "alertmanager", &format!("http://{down}")), 0.0);
    assert!(
        sensor_sample(
            &text,
            &format!("burstwatch_sink_retries_total{{sink=\"alertmanager\",{dead}}}")
        ) >= 1.0,
        "{text}"
    );
    let ids = |am: &Alertmanager| {
        let mut ids: Vec<String> = am
            .alerts()
            .unwrap()
            .iter()
            .map(|a| {
                assert_eq!(a["labels"]["sensor"], "edge-7", "{a:#}");
                assert_eq!(a["labels"]["site"], "lab north", "{a:#}");
                a["annotations"]["alert_id"].as_str().unwrap().to_string()
            })
            .collect();
        ids.sort();
        ids
    };
    let (ids_plain, ids_tls) = (ids(&am_plain), ids(&am_tls));
    assert!(!ids_plain.is_empty());
    assert_eq!(ids_plain, ids_tls, "both instances hold every alert");

    // The webhook: JSON arrays of the alert objects with sensor and site, the bearer token.
    let mut hook_ids = Vec::new();
    for (head, body) in requests.lock().unwrap().iter() {
        assert!(
            head.starts_with("post /ingest?source=bw http/1.1"),
            "{head}"
        );
        assert!(head.contains("content-type: application/json"), "{head}");
        let v: Value = serde_json::from_str(body).unwrap();
        for a in v.as_array().unwrap() {
            assert_eq!(
                (&a["sensor"], &a["site"]),
                (&"edge-7".into(), &"lab north".into())
            );
            assert_eq!(a["kind"], "burst");
            hook_ids.push(a["id"].as_str().unwrap().to_string());
        }
    }
    hook_ids.sort();
    assert_eq!(hook_ids, ids_plain);

    // Syslog over UDP: one RFC 5424 datagram per alert, local3, the daemon's pid.
    let mut syslog_ids: Vec<String> = datagrams
        .lock()
        .unwrap()
        .iter()
        .map(|m| {
            let msg = check_rfc5424(m, 19, "bwtest", pid);
            assert_eq!(msg["sensor"], "edge-7");
            msg["id"].as_str().unwrap().to_string()
        })
        .collect();
    syslog_ids.sort();
    assert_eq!(syslog_ids, ids_plain);
}

#[test]
fn syslog_over_tcp_is_octet_counted_rfc_5424() {
    if !live_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let net = Netns::new("y");
    let host = IpAddr::V4(Ipv4Addr::from(u32::from(net.mgmt_addr) - 1));
    let (tcp, messages) = tcp_receiver(host);
    let sinks = format!("[daemon.syslog]\naddress = \"tcp://{tcp}\"\n");
    let target = format!("tcp://{tcp}");
    let (pid, text, _daemon) = run_daemon(&net, dir.path(), &sinks, |t| {
        sample(
            t,
            &format!("burstwatch_sink_alerts_sent_total{{sink=\"syslog\",target=\"{target}\"}}"),
        ) >= 1.0
    });
    let sent = sample(
        &text,
        &format!("burstwatch_sink_alerts_sent_total{{sink=\"syslog\",target=\"{target}\"}}"),
    );
    // Delivered means written to the socket: wait for the receiver to have read them.
    let until = Instant::now() + Duration::from_secs(10);
    while (messages.lock().unwrap().len() as f64) < sent && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let messages = messages.lock().unwrap();
    assert_eq!(messages.len() as f64, sent);
    for m in messages.iter() {
        // Facility daemon (3), APP-NAME burstwatch by default.
        let msg = check_rfc5424(m, 3, "burstwatch", pid);
        assert_eq!(msg["kind"], "burst");
        assert!(msg["sensor"].as_str().is_some_and(|s| !s.is_empty()), "{m}");
    }
}
