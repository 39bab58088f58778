//! Detection accuracy on the simulator's labelled traffic, five seeds (one with 20 000
//! subscribers), default thresholds for all: recall >= 0.98 of injected burst events,
//! precision >= 0.95 with every decoy kind present, every beacon scenario reported as `beacon`.
//! The numbers come from `burstwatch eval`, the same command an analyst runs.

use burstwatch_tests::run_ok;

struct Case {
    seed: &'static str,
    subscribers: &'static str,
    duration: &'static str,
    activity: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        seed: "1",
        subscribers: "2000",
        duration: "1200",
        activity: None,
    },
    Case {
        seed: "2",
        subscribers: "2000",
        duration: "1200",
        activity: None,
    },
    Case {
        seed: "3",
        subscribers: "2000",
        duration: "1200",
        activity: None,
    },
    Case {
        seed: "4",
        subscribers: "2000",
        duration: "1200",
        activity: None,
    },
    // A large population: lower per-subscriber activity keeps the file a few GB.
    Case {
        seed: "5",
        subscribers: "20000",
        duration: "900",
        activity: Some("0.0004"),
    },
];

#[test]
fn five_seeds_meet_recall_and_precision_targets() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    for c in CASES {
        let pcap = dir.path().join(format!("s{}.pcap", c.seed));
        let truth = dir.path().join(format!("s{}.truth.json", c.seed));
        let alerts = dir.path().join(format!("s{}.alerts.jsonl", c.seed));
        let mut args = vec![
            "simulate",
            "-q",
            "-o",
            pcap.to_str().unwrap(),
            "--seed",
            c.seed,
            "--subscribers",
            c.subscribers,
            "--duration",
            c.duration,
        ];
        if let Some(a) = c.activity {
            args.extend_from_slice(&["--activity-rate", a]);
        }
        run_ok(&args);
        run_ok(&[
            "analyze",
            "-q",
            pcap.to_str().unwrap(),
            "--flows",
            "/dev/null",
            "--alerts",
            alerts.to_str().unwrap(),
        ]);
        // The capture is several GB: free the disk before the next seed.
        std::fs::remove_file(&pcap).unwrap();
        let out = run_ok(&[
            "eval",
            "--truth",
            truth.to_str().unwrap(),
            "--alerts",
            alerts.to_str().unwrap(),
            "--json",
            "-",
        ]);
        let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let recall = e["recall"].as_f64().unwrap();
        let precision = e["alerts"]["precision"].as_f64().unwrap();
        let rows = e["rows"].as_array().unwrap();
        // Every decoy kind is present.
        for decoy in [
            "decoy_upload_popular",
            "decoy_video_call",
            "decoy_cdn_download",
            "decoy_new_popular",
            "decoy_periodic_popular",
        ] {
            assert!(
                rows.iter()
                    .any(|r| r["label"] == decoy && r["scenarios"].as_u64() > Some(0)),
                "seed {}: no {decoy}",
                c.seed
            );
        }
        for r in rows.iter().filter(|r| r["expect"] == "burst") {
            assert!(
                r["recall"].as_f64().unwrap() >= 0.98,
                "seed {}: {} recall {}",
                c.seed,
                r["label"],
                r["recall"]
            );
        }
        for r in rows.iter().filter(|r| r["expect"] == "beacon") {
            assert_eq!(
                r["detected"], r["scenarios"],
                "seed {}: beacon scenarios missed: {}",
                c.seed, r
            );
        }
        report.push(format!(
            "seed {} ({} subscribers): recall {recall:.3} precision {precision:.3} alerts {}",
            c.seed, c.subscribers, e["alerts"]["total"]
        ));
        assert!(recall >= 0.98, "seed {}: recall {recall}", c.seed);
        assert!(
            precision >= 0.95,
            "seed {}: precision {precision}: {}",
            c.seed,
            e["false_positives"]
        );
    }
    eprintln!("{}", report.join("\n"));
}
