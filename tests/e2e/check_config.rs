//! `burstwatch check-config` refuses (exit 2, file, line and key) everything the daemon would
//! then fail on, the daemon refuses the same at start (exit 2, which the systemd unit does not
//! restart on), and the shipped config and unit agree with the docs (as shipped, no interface:
//! a warning, an error with `--strict`, and the daemon does not start).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use burstwatch_tests::{bin, repo, run, write_test_key};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `check-config` on `body` written to `dir/c.toml`.
fn check(dir: &Path, body: &str, extra: &[&str]) -> Output {
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, body).unwrap();
    let mut args = vec!["check-config", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

/// The daemon on `cfg`, killed if it has not exited within `limit`; its exit code and log.
fn daemon_exit(cfg: &Path, limit: Duration) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("daemon.log");
    let mut child = Command::new(bin())
        .args(["daemon", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let until = Instant::now() + limit;
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (code, std::fs::read_to_string(&log).unwrap_or_default())
}

#[test]
fn check_config_and_the_daemon_refuse_what_would_fail_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = repo().join("tests/data");
    std::fs::create_dir(d.join("out")).unwrap();
    let ok_daemon = "[daemon]\ninterfaces = [\"lo\"]\nmetrics_bind = \"127.0.0.1:19811\"\n";
    // (config body, key, line, what the message says)
    let cases: Vec<(String, &str, usize, &str)> = vec![
        (
            format!("{ok_daemon}filter = \"tcp port\"\n"),
            "daemon.filter",
            4,
            "cannot compile",
        ),
        (
            "[daemon]\ninterfaces = [\"eth0/1\"]\n".into(),
            "daemon.interfaces",
            2,
            "not an interface name",
        ),
        (
            format!("{ok_daemon}alertmanager_url = \"http://alertmanager:99999\"\n"),
            "daemon.alertmanager_url",
            4,
            "not a URL",
        ),
        (
            format!("{ok_daemon}alertmanager_url = \"http://exa mple:9093\"\n"),
            "daemon.alertmanager_url",
            4,
            "not a URL",
        ),
        (
            format!("{ok_daemon}flows_file = \"out\"\n"),
            "daemon.flows_file",
            4,
            "is a directory",
        ),
        (
            format!("{ok_daemon}alerts_file = \"no-such-dir/alerts.jsonl\"\n"),
            "daemon.alerts_file",
            4,
            "No such file",
        ),
        (
            format!("{ok_daemon}state_file = \"no-such-dir/state.json\"\n"),
            "daemon.state_file",
            4,
            "could not be saved",
        ),
        (
            format!(
                "{ok_daemon}[enrich]\nasn_database = \"{}\"\n",
                data.join("no-such.mmdb").display()
            ),
            "enrich.asn_database",
            5,
            "cannot read ASN database",
        ),
        (
            // A country database given as the ASN one: read, but of the wrong layout.
            format!(
                "{ok_daemon}[enrich]\nasn_database = \"{}\"\n",
                data.join("test-country.mmdb").display()
            ),
            "enrich.asn_database",
            5,
            "",
        ),
        (
            format!("{ok_daemon}[enrich]\ncountry_database = \"/dev/zero\"\n"),
            "enrich.country_database",
            5,
            "not a regular file",
        ),
        (
            format!("{ok_daemon}[privacy]\nkey_file = \"/dev/zero\"\n"),
            "privacy.key_file",
            5,
            "not a regular file",
        ),
        (
            format!("{ok_daemon}user = \"no-such-user-burstwatch\"\n"),
            "daemon.user",
            4,
            "",
        ),
    ];
    for (body, key, line, what) in &cases {
        let out = check(d, body, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}\n{err}");
        let at = if *line > 0 {
            format!("c.toml:{line}: {key}: ")
        } else {
            format!("c.toml: {key}: ")
        };
        assert!(err.contains(&at), "{body}\nexpected {at:?} in:\n{err}");
        assert!(err.contains(what), "{body}\nexpected {what:?} in:\n{err}");
    }
    // The daemon refuses the same at start, at once and with exit 2, where it used to retry a
    // bad filter for ever or give up with exit 1 after opening the captures.
    for (body, key, ..) in cases
        .iter()
        .filter(|c| ["daemon.filter", "daemon.flows_file", "enrich.asn_database"].contains(&c.1))
    {
        let cfg = d.join("daemon.toml");
        std::fs::write(&cfg, body).unwrap();
        let (code, log) = daemon_exit(&cfg, Duration::from_secs(20));
        assert_eq!(code, Some(2), "{body}\n{log}");
        assert!(log.contains(key), "{body}\n{log}");
    }

    // Everything present and valid: exit 0.
    write_test_key(&d.join("key"));
    let good = format!(
        "{ok_daemon}filter = \"tcp port 443\"\nflows_file = \"out/flows.jsonl\"\n\
         alerts_file = \"alerts.jsonl\"\nstate_file = \"state.json\"\n\
         alertmanager_url = \"http://127.0.0.1:9093\"\n\
         [enrich]\nasn_database = \"{}\"\ncountry_database = \"{}\"\n\
         [privacy]\nkey_file = \"key\"\n",
        data.join("test-asn.mmdb").display(),
        data.join("test-country.mmdb").display()
    );
    let out = check(d, &good, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok (1 interface(s)"));
    // check-config creates nothing.
    assert!(!d.join("out/flows.jsonl").exists() && !d.join("alerts.jsonl").exists());
}

#[test]
fn an_interface_missing_now_is_a_warning_and_an_error_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let body = "[daemon]\ninterfaces = [\"lo\", \"bwnosuchif0\"]\n";
    let out = check(dir.path(), body, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: ") && err.contains("c.toml:2: daemon.interfaces: \"bwnosuchif0\""),
        "{err}"
    );
    assert!(err.contains("retries it"), "{err}");
    let out = check(dir.path(), body, &["--strict"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn flow_export_without_a_state_file_is_warned_of() {
    let dir = tempfile::tempdir().unwrap();
    let body = "[daemon]\nflow_listen = [\"udp://127.0.0.1:2055\"]\n";
    let out = check(dir.path(), body, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: ")
            && err.contains("c.toml:2: daemon.flow_listen: no daemon.state_file")
            && err.contains("template misses"),
        "{err}"
    );
    // With a state file the templates are kept: no warning.
    let body = format!("{body}state_file = \"state.bin\"\n");
    let out = check(dir.path(), &body, &["--strict"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("flow_listen"), "{err}");
}

#[test]
fn the_shipped_config_checks_as_documented_and_the_unit_does_not_restart_loop_on_it() {
    let shipped = repo().join("config/burstwatch.toml");
    let body = std::fs::read_to_string(&shipped).unwrap();
    // As shipped it names no interface: check-config says so, with the line to edit.
    let line = body
        .lines()
        .position(|l| l.starts_with("interfaces = []"))
        .expect("the shipped config's interfaces line")
        + 1;
    // The file is valid as installed (a fresh package's `check-config` passes), with a warning;
    // `--strict`, the check before a start, refuses it.
    let at = format!("burstwatch.toml:{line}: daemon.interfaces: no interface");
    let out = run(&["check-config", shipped.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.starts_with("burstwatch: warning: ") && err.contains(&at),
        "{err}"
    );
    let out = run(&["check-config", "--strict", shipped.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&at), "{err}");
    // The daemon refuses to start on it, with exit 2, which the unit does not restart on.
    let (code, log) = daemon_exit(&shipped, Duration::from_secs(20));
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains(&at), "{log}");
    let unit = std::fs::read_to_string(repo().join("deploy/systemd/burstwatch.service")).unwrap();
    assert!(
        unit.lines()
            .any(|l| l.trim() == "RestartPreventExitStatus=2"),
        "the unit would restart-loop on a config error"
    );
    // The same without the key at all (no line to name).
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), "[daemon]\n", &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("warning: "), "{err}");
    assert!(
        err.contains("c.toml: daemon.interfaces: no interface"),
        "{err}"
    );
    assert_eq!(
        check(dir.path(), "[daemon]\n", &["--strict"]).status.code(),
        Some(2)
    );
    let (code, log) = daemon_exit(&dir.path().join("c.toml"), Duration::from_secs(20));
    assert_eq!(code, Some(2), "{log}");
    // With an interface named (the one edit the README asks for) it is valid as it stands.
    let edited = body.replace("interfaces = []", "interfaces = [\"lo\"]");
    let out = check(dir.path(), &edited, &["--strict"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn config_values_that_would_silently_do_nothing_are_refused_by_check_config() {
    let dir = tempfile::tempdir().unwrap();
    for (body, key) in [
        (
            "[flow]\ntcp_idle_timeout_seconds = 1e-12\n",
            "flow.tcp_idle_timeout_seconds",
        ),
        ("[daemon]\nretry_seconds = 604800\n", "daemon.retry_seconds"),
        (
            "[detect.weights]\nrate_jump = 0\nvolume = 0\nasymmetry = 0\nrarity = 0\n\
             novelty = 0\nrecurrence = 0\nport_rarity = 0\nwatchlist = 0\n",
            "detect.weights",
        ),
    ] {
        let out = check(dir.path(), body, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}\n{err}");
        assert!(err.contains(&format!("c.toml:2: {key}: ")), "{body}\n{err}");
    }
    // A config path that never ends is refused, not read until memory runs out.
    let started = Instant::now();
    let out = run(&["check-config", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn check_config_checks_the_sinks_ca_and_secret_files_and_urls() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok_daemon = "[daemon]\ninterfaces = [\"lo\"]\nmetrics_bind = \"127.0.0.1:19811\"\n\
                     alertmanager_url = [\"https://127.0.0.1:9093\", \"http://127.0.0.1:9094\"]\n";
    std::fs::write(d.join("not-a-cert.pem"), "hello\n").unwrap();
    std::fs::write(d.join("token"), "s3cr3t-t0ken\n").unwrap();
    std::fs::set_permissions(d.join("token"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let (ca, _, _) = burstwatch_tests::alertmanager::make_certs(d, [127, 0, 0, 1].into()).unwrap();
    // (config body, key, line, what the message says)
    let cases: Vec<(String, &str, usize, &str)> = vec![
        (
            format!("{ok_daemon}[daemon.alertmanager]\nca_file = \"not-a-cert.pem\"\n"),
            "daemon.alertmanager.ca_file",
            6,
            "no certificate",
        ),
        (
            format!("{ok_daemon}[daemon.alertmanager]\nca_file = \"missing.pem\"\n"),
            "daemon.alertmanager.ca_file",
            6,
            "missing.pem",
        ),
        (
            format!(
                "{ok_daemon}[daemon.alertmanager]\nusername = \"bw\"\npassword_file = \"nope\"\n"
            ),
            "daemon.alertmanager.password_file",
            7,
            "No such file",
        ),
        (
            format!("{ok_daemon}[daemon.webhook]\nurl = \"https://u:p@siem.example/in\"\n"),
            "daemon.webhook.url",
            6,
            "credentials",
        ),
        (
            format!("{ok_daemon}[daemon.webhook]\nurl = \"https://siem.example/in\"\ntoken_file = \"/dev/null\"\n"),
            "daemon.webhook.token_file",
            7,
            "empty",
        ),
        (
            format!("{ok_daemon}[daemon.syslog]\naddress = \"tcp://loghost\"\n"),
            "daemon.syslog.address",
            6,
            "port",
        ),
        (
            format!("{ok_daemon}[daemon.syslog]\naddress = \"unix://{}\"\n", d.join("token").display()),
            "daemon.syslog.address",
            6,
            "not a socket",
        ),
    ];
    for (body, key, line, what) in &cases {
        let out = check(d, body, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}\n{err}");
        let at = format!("c.toml:{line}: {key}: ");
        assert!(err.contains(&at), "{body}\nexpected {at:?} in:\n{err}");
        assert!(err.contains(what), "{body}\nexpected {what:?} in:\n{err}");
    }
    // All valid: exit 0; a secret every user can read is a warning (an error with --strict),
    // and no secret is ever printed.
    let good = format!(
        "{ok_daemon}sensor = \"edge-1\"\nsite = \"lab\"\n\
         [daemon.alertmanager]\nca_file = \"{}\"\ntoken_file = \"token\"\n\
         [daemon.webhook]\nurl = \"http://127.0.0.1:8080/in\"\ntoken_file = \"token\"\n\
         [daemon.syslog]\naddress = \"udp://127.0.0.1:514\"\nfacility = \"local0\"\n",
        ca.display()
    );
    let out = check(d, &good, &["--strict"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    std::fs::set_permissions(d.join("token"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = check(d, &good, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("daemon.alertmanager.token_file: ") && err.contains("readable by every user"),
        "{err}"
    );
    assert!(!err.contains("s3cr3t"), "{err}");
    assert_eq!(check(d, &good, &["--strict"]).status.code(), Some(2));
}

#[test]
fn check_config_checks_the_shared_stores_certificate_and_secret_files() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ca, cert, key) =
        burstwatch_tests::alertmanager::make_certs(d, [127, 0, 0, 1].into()).unwrap();
    write_test_key(&d.join("cluster.key"));
    std::fs::write(d.join("not-a-cert.pem"), "hello\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let daemon = "[daemon]\ninterfaces = [\"lo\"]\nmetrics_bind = \"127.0.0.1:19812\"\n\
                  sensor = \"edge-1\"\n";
    let store = |extra: &str| {
        format!(
            "{daemon}[cluster]\nredis_url = \"rediss://127.0.0.1:6380\"\n\
             key_file = \"cluster.key\"\nca_file = \"{}\"\n{extra}",
            ca.display()
        )
    };
    // (extra lines, key, line, what the message says)
    let cases = [
        (
            format!(
                "client_cert_file = \"not-a-cert.pem\"\nclient_key_file = \"{}\"\n",
                key.display()
            ),
            "cluster.client_cert_file",
            9,
            "no PEM certificate",
        ),
        (
            format!(
                "client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
                cert.display(),
                cert.display()
            ),
            "cluster.client_cert_file",
            9,
            "no PEM private key",
        ),
        (
            format!(
                "client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
                cert.display(),
                d.join("ca.key").display()
            ),
            "cluster.client_cert_file",
            9,
            "not the key of the certificate",
        ),
        (
            format!("client_cert_file = \"{}\"\n", cert.display()),
            "cluster.client_cert_file",
            9,
            "needs its key",
        ),
        (
            "password_file = \"missing\"\n".to_string(),
            "cluster.password_file",
            9,
            "missing",
        ),
    ];
    for (extra, k, line, what) in &cases {
        let body = store(extra);
        let out = check(d, &body, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}\n{err}");
        let at = format!("c.toml:{line}: {k}: ");
        assert!(err.contains(&at), "{body}\nexpected {at:?} in:\n{err}");
        assert!(err.contains(what), "{body}\nexpected {what:?} in:\n{err}");
    }
    let good = store(&format!(
        "client_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    let out = check(d, &good, &["--strict"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A client key every user can read is a warning (an error with --strict).
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = check(d, &good, &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("cluster.client_key_file: ") && err.contains("readable by every user"),
        "{err}"
    );
    assert!(!err.contains("PRIVATE KEY"), "{err}");
    assert_eq!(check(d, &good, &["--strict"]).status.code(), Some(2));
}
