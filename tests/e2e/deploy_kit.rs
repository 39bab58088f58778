//! The deploy kit's files agree with each other: the container build context leaves out what
//! the image does not need, and the PodMonitor scrapes the port and labels the DaemonSet has.
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
