//! The deploy kit's files agree with each other: the container build context leaves out what
//! the image does not need, the PodMonitor scrapes the port and labels the DaemonSet has, and the
//! NetworkPolicy admits only Prometheus, on that port (every manifest parsed by python3-yaml).
//! Every dashboard query parses (promtool) and names only documented metric families.
//! (The rules are unit-tested by `promtool test rules deploy/prometheus/rules.test.yml` in CI and
//! evaluated against a real Prometheus in `prometheus.rs`.)

use burstwatch_tests::repo;

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Patterns of an ignore file (comments and blank lines left out).
fn patterns(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn container_build_context_leaves_out_build_output_and_keeps_the_sources() {
    let ignore = read(".containerignore");
    let pats = patterns(&ignore);
    for needed in ["target/", ".git/", "fuzz/"] {
        assert!(pats.contains(&needed), ".containerignore lacks {needed}");
    }
    // docker reads .dockerignore: the same file.
    assert_eq!(read(".dockerignore"), ignore);
    // Everything the Containerfile copies from the context stays in it.
    let containerfile = read("deploy/container/Containerfile");
    let copied: Vec<&str> = containerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from="))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert!(copied.contains(&"."), "{copied:?}");
    for src in copied.iter().filter(|s| **s != ".") {
        assert!(repo().join(src).exists(), "COPY {src}: missing");
        let top = src.split('/').next().unwrap_or(src);
        assert!(
            !pats.iter().any(|p| p.trim_end_matches('/') == top),
            "COPY {src} is excluded by .containerignore"
        );
    }
    // The workspace needs every member's manifest: none of them is left out.
    for member in ["crates/", "tests/", "config/", "Cargo.toml", "Cargo.lock"] {
        assert!(
            !pats
                .iter()
                .any(|p| p.trim_end_matches('/') == member.trim_end_matches('/')),
            "{member} excluded"
        );
    }
}

#[test]
fn pod_monitor_scrapes_the_daemonset_port_and_names_the_job_burstwatch() {
    let ds = read("deploy/k8s/daemonset.yaml");
    let pm = read("deploy/k8s/podmonitor.yaml");
    let value = |text: &str, key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix(key))
            .map(|v| v.trim().trim_matches('"').to_string())
            .collect()
    };
    // The port the PodMonitor names is a named container port of the DaemonSet.
    let port = value(&pm, "port:");
    assert_eq!(port, ["metrics"], "{pm}");
    assert!(
        value(&ds, "name:").contains(&port[0]),
        "no port named {}",
        port[0]
    );
    // jobLabel is a pod label whose value is the job the rules and dashboard default to.
    let job_label = value(&pm, "jobLabel:");
    assert_eq!(job_label.len(), 1);
    let pod_label = value(&ds, &format!("{}:", job_label[0]));
    assert!(pod_label.iter().all(|v| v == "burstwatch"), "{pod_label:?}");
    assert!(!pod_label.is_empty());
    // Same namespace.
    assert!(value(&pm, "namespace:")
        .iter()
        .all(|n| value(&ds, "namespace:").contains(n)));
    // The dashboard selects on its job variable, defaulting to burstwatch.
    let dash = read("deploy/grafana/burstwatch.json");
    assert!(
        !dash.contains("job=\\\"burstwatch\\\""),
        "a query pins the job"
    );
    assert!(dash.contains("job=\\\"$job\\\""));
}

/// Every document of every `deploy/k8s/*.yaml` (file, document), read by a real YAML parser
/// (python3-yaml) and handed over as JSON.
fn k8s_documents() -> Vec<(String, serde_json::Value)> {
    let script = r#"
import glob, json, sys, yaml
out = []
for f in sorted(glob.glob("deploy/k8s/*.yaml")):
    with open(f) as fh:
        out += [[f, d] for d in yaml.safe_load_all(fh) if d is not None]
json.dump(out, sys.stdout)
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .current_dir(repo())
        .output()
        .expect("run python3 (with python3-yaml)");
    assert!(
        out.status.success(),
        "a manifest does not parse as YAML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<(String, serde_json::Value)> = serde_json::from_slice(&out.stdout).unwrap();
    for (file, d) in &docs {
        for key in ["apiVersion", "kind"] {
            assert!(
                d[key].as_str().is_some_and(|s| !s.is_empty()),
                "{file}: no {key}"
            );
        }
        assert!(
            d["metadata"]["name"].is_string(),
            "{file}: no metadata.name"
        );
    }
    docs
}

#[test]
fn network_policy_lets_only_prometheus_reach_the_daemonset_metrics_port() {
    let docs = k8s_documents();
    let of_kind = |kind: &str| -> Vec<&serde_json::Value> {
        docs.iter()
            .filter(|(_, d)| d["kind"] == kind)
            .map(|(_, d)| d)
            .collect()
    };
    let (ds, np, cm) = match (
        &of_kind("DaemonSet")[..],
        &of_kind("NetworkPolicy")[..],
        &of_kind("ConfigMap")[..],
    ) {
        ([ds], [np], [cm]) => (*ds, *np, *cm),
        _ => panic!("one DaemonSet, one NetworkPolicy and one ConfigMap expected"),
    };
    // The DaemonSet's metrics port, the one its annotation and its config name.
    let pod = &ds["spec"]["template"];
    let port = pod["spec"]["containers"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a container port named metrics")["containerPort"]
        .as_u64()
        .unwrap();
    assert_eq!(
        pod["metadata"]["annotations"]["prometheus.io/port"],
        port.to_string()
    );
    let toml = cm["data"]["burstwatch.toml"].as_str().unwrap();
    assert!(
        toml.contains(&format!("metrics_bind = \"0.0.0.0:{port}\"")),
        "{toml}"
    );
    // The policy: the DaemonSet's namespace and pods, ingress only as listed.
    assert_eq!(np["metadata"]["namespace"], ds["metadata"]["namespace"]);
    let selected = np["spec"]["podSelector"]["matchLabels"]
        .as_object()
        .unwrap();
    assert!(
        !selected.is_empty(),
        "an empty podSelector selects every pod"
    );
    for (k, v) in selected {
        assert_eq!(&pod["metadata"]["labels"][k], v, "pod label {k}");
    }
    assert!(np["spec"]["policyTypes"]
        .as_array()
        .unwrap()
        .contains(&"Ingress".into()));
    let rules = np["spec"]["ingress"].as_array().unwrap();
    assert!(!rules.is_empty());
    for rule in rules {
        // Only the metrics port...
        let ports = rule["ports"].as_array().expect("ports listed");
        assert!(!ports.is_empty());
        for p in ports {
            assert_eq!(p["protocol"], "TCP");
            assert_eq!(p["port"].as_u64(), Some(port), "{p}");
        }
        // ... and only from pods chosen by namespace and pod labels together.
        let from = rule["from"].as_array().expect("from listed");
        assert!(!from.is_empty());
        for peer in from {
            for sel in ["namespaceSelector", "podSelector"] {
                let labels = peer[sel]["matchLabels"].as_object();
                assert!(labels.is_some_and(|l| !l.is_empty()), "{sel} in {peer}");
            }
            assert!(peer.get("ipBlock").is_none(), "{peer}");
        }
    }
    // Everywhere else the exporter stays on loopback.
    assert_eq!(burstwatch_exporter::http::DEFAULT_BIND, "127.0.0.1:9811");
    assert!(read("config/burstwatch.toml").contains("\nmetrics_bind = \"127.0.0.1:9811\"\n"));
}

#[test]
fn every_dashboard_query_parses_and_names_documented_metrics() {
    let dash: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/burstwatch.json")).unwrap();
    let metrics_md = read("crates/exporter/METRICS.md");
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(exprs.len() > 20, "{} queries", exprs.len());
    let mut rules = String::from("groups:\n- name: dashboard\n  rules:\n");
    for (i, e) in exprs.iter().enumerate() {
        // Grafana's variables as Prometheus would see them once substituted.
        let e = e
            .replace("$job", "burstwatch")
            .replace("$instance", ".*")
            .replace("$__rate_interval", "1m");
        rules += &format!(
            "  - record: dashboard:q{i}\n    expr: {}\n",
            serde_json::to_string(&e).unwrap()
        );
        // Every family a query names is one the exporter serves (METRICS.md lists them all,
        // checked against the registry by the exporter's tests).
        for name in e
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("burstwatch_"))
        {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| metrics_md.contains(&format!("`{f}`")))
                .unwrap_or(name);
            assert!(
                metrics_md.contains(&format!("`{family}`")),
                "dashboard query names {name}, which METRICS.md does not list: {e}"
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard.rules.yml");
    std::fs::write(&file, rules).unwrap();
    let out = std::process::Command::new(burstwatch_tests::prom::promtool_bin())
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
