//! pmacct's `pmacctd`, an exporter burstwatch shares nothing with, reading a simulated
//! capture:
//! * sampling it 1 in N as an sFlow agent (`sfprobe`): `analyze --input-kind flow-export` of
//!   its datagrams reports the rate, takes about one packet in N, and its estimate of the
//!   capture's IP bytes (each sampled packet's IP length times N) falls within the sampling
//!   error of what packet mode counts;
//! * as a NetFlow v5, v9 or IPFIX probe (`nfprobe`), unsampled or 1 in N: every record is
//!   read and timed, the rate is the one pmacct announces (options data, or the v5 header),
//!   and the records' bytes times the rate are what packet mode counts (IPv4 only for v5),
//!   within the sampling error.

use std::process::Command;

use burstwatch_tests::{json_lines, run_ok};

use crate::flow_export::{analyze, draw, next, small_scenarios, Draw};
use crate::flow_softflowd::record_exporter;

/// IP packets and bytes of every flow packet mode finds in `pcap`, in all and of IPv4 only.
fn packet_mode_counts(pcap: &std::path::Path, d: &std::path::Path) -> [(u64, u64); 2] {
    let flows = d.join("flows.jsonl");
    run_ok(&[
        "analyze",
        pcap.to_str().unwrap(),
        "--quiet",
        "--alerts",
        "/dev/null",
        "--flows",
        flows.to_str().unwrap(),
    ]);
    let mut all = [(0u64, 0u64); 2];
    for r in json_lines(&std::fs::read(&flows).unwrap()) {
        let n = |k: &str| r[k].as_u64().unwrap();
        let v4 = r["src"].as_str().unwrap().contains('.');
        for (i, c) in all.iter_mut().enumerate() {
            if i == 0 || v4 {
                c.0 += n("packets_fwd") + n("packets_rev");
                c.1 += n("bytes_fwd") + n("bytes_rev");
            }
        }
    }
    all
}

/// pmacctd reading `pcap` with these `plugin` settings, exporting to a socket of the test's:
/// the recording of its datagrams and the port.
fn through_pmacct(
    pcap: &std::path::Path,
    plugin: &str,
    d: &std::path::Path,
) -> (std::path::PathBuf, String) {
    let conf = d.join("pmacctd.conf");
    let rec = d.join("export.pcap");
    // At the end of the file pmacctd stops its plugin; when the plugin exits first (a loaded
    // machine), the core reports the lost connection and exits with 1 after a complete export
    // (the byte counts below tell).
    let ended = Some("Shutting down on user request");
    let port = record_exporter(&rec, "pmacctd (Debian pmacct)", ended, |port| {
        std::fs::write(
            &conf,
            format!(
                "daemonize: false\npcap_savefile: {}\n{}\n",
                pcap.display(),
                plugin.replace("{port}", &port.to_string())
            ),
        )
        .unwrap();
        let mut cmd = Command::new("pmacctd");
        cmd.arg("-f").arg(&conf);
        cmd
    });
    (rec, port.to_string())
}

#[test]
fn pmacct_netflow_records_of_a_capture_count_its_bytes() {
    let Draw {
        mut rng,
        dir,
        pcap,
        seed,
        subs,
    } = draw();
    let d = dir.path();
    let (version, kind) =
        [(5, "netflow5"), (9, "netflow9"), (10, "ipfix")][next(&mut rng) as usize % 3];
    let rate = if next(&mut rng) % 2 == 0 {
        1
    } else {
        2 + next(&mut rng) % 29
    };
    eprintln!("pmacct: seed {seed}, {subs} subscribers, nfprobe v{version} 1:{rate}");
    small_scenarios(&pcap, &seed, &subs);
    let counts = packet_mode_counts(&pcap, d);
    // NetFlow v5 has no IPv6.
    let (packets, bytes) = counts[usize::from(version == 5)];

    let sampling = if rate > 1 {
        format!("\nsampling_rate: {rate}")
    } else {
        String::new()
    };
    let (rec, port) = through_pmacct(
        &pcap,
        &format!(
            "plugins: nfprobe\nnfprobe_receiver: 127.0.0.1:{{port}}\nnfprobe_version: {version}\n\
             nfprobe_timeouts: maxlife=10{sampling}"
        ),
        d,
    );
    let fx = analyze(&rec, d, &["--flow-port", &port, "--flows", "/dev/null"]);
    eprintln!("pmacct: {fx}");
    assert_eq!(fx["kinds"], serde_json::json!([kind]));
    let records = fx["records"].as_u64().unwrap();
    assert!(records > 100, "{records} records");
    for k in [
        "parse_errors",
        "template_misses",
        "no_time",
        "incomplete_records",
    ] {
        assert_eq!(fx[k], 0, "{k}");
    }
    assert_eq!(fx["max_sampling_rate"], rate);
    // Unsampled, the records count what packet mode counts (to 1 %: pmacct's flows end at its
    // own timeouts, and packets it cannot take are not counted); 1 in N, about packets / N of
    // them stand for the rest (four standard errors, as for sFlow above).
    let samples = packets as f64 / rate as f64;
    let tolerance = if rate == 1 {
        0.01
    } else {
        4.0 / samples.sqrt() + 0.01
    };
    let estimate = fx["estimated_bytes"].as_u64().unwrap() as f64;
    let error = (estimate - bytes as f64) / bytes as f64;
    eprintln!(
        "pmacct: {bytes} IP bytes in {packets} packets; records' estimate {estimate:.0} \
         ({:+.2} %, tolerance {:.2} %)",
        error * 100.0,
        tolerance * 100.0
    );
    assert!(error.abs() <= tolerance);
}

#[test]
fn pmacct_sflow_samples_of_a_capture_estimate_its_bytes() {
    let Draw {
        mut rng,
        dir,
        pcap,
        seed,
        subs,
    } = draw();
    let d = dir.path();
    let rate = 4 + next(&mut rng) % 37;
    eprintln!("pmacct: seed {seed}, {subs} subscribers, sFlow 1:{rate}");
    small_scenarios(&pcap, &seed, &subs);

    let [(packets, bytes), _] = packet_mode_counts(&pcap, d);
    let (rec, port) = through_pmacct(
        &pcap,
        &format!("plugins: sfprobe\nsfprobe_receiver: 127.0.0.1:{{port}}\nsampling_rate: {rate}"),
        d,
    );
    let fx = analyze(&rec, d, &["--flow-port", &port, "--flows", "/dev/null"]);
    eprintln!("pmacct: {fx}");
    assert_eq!(fx["kinds"], serde_json::json!(["sflow"]));
    assert_eq!(fx["parse_errors"], 0);
    assert_eq!(fx["max_sampling_rate"], rate);
    let samples = fx["packet_samples"].as_u64().unwrap();
    let expected = packets as f64 / rate as f64;
    assert!(
        (samples as f64 - expected).abs() <= 0.1 * expected,
        "{samples} samples of {packets} packets at 1:{rate}"
    );
    // The relative error of a 1-in-N estimate of a sum of packet sizes is about the sizes'
    // coefficient of variation (about 1 here: acknowledgements and full segments) over the
    // square root of the samples: four of those, and 1 % for the headers sFlow cuts.
    let estimate = fx["estimated_bytes"].as_u64().unwrap() as f64;
    let tolerance = 4.0 / (samples as f64).sqrt() + 0.01;
    let error = (estimate - bytes as f64) / bytes as f64;
    eprintln!(
        "pmacct: {bytes} IP bytes in {packets} packets; estimate {estimate:.0} from {samples} \
         samples ({:+.2} %, tolerance {:.2} %)",
        error * 100.0,
        tolerance * 100.0
    );
    assert!(error.abs() <= tolerance);
}
