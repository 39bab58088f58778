//! pmacct's `pmacctd`, an sFlow agent burstwatch shares nothing with, reading a simulated
//! capture and sampling it 1 in N (`sfprobe`): `analyze --input-kind flow-export` of its
//! datagrams reports the rate, takes about one packet in N, and its estimate of the capture's
//! IP bytes (each sampled packet's IP length times N) falls within the sampling error of what
//! packet mode counts.

use std::process::Command;

use burstwatch_tests::{json_lines, run_ok};

use crate::flow_export::{analyze, next, run_seed, small_scenarios};
use crate::flow_softflowd::record_exporter;

#[test]
fn pmacct_sflow_samples_of_a_capture_estimate_its_bytes() {
    let mut rng = run_seed();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pcap = d.join("traffic.pcap");
    let seed = (next(&mut rng) % 1000).to_string();
    let subs = (60 + next(&mut rng) % 40).to_string();
    let rate = 4 + next(&mut rng) % 37;
    eprintln!("pmacct: seed {seed}, {subs} subscribers, sFlow 1:{rate}");
    small_scenarios(&pcap, &seed, &subs);

    // What packet mode counts: IP packets and bytes of every flow.
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
    let (mut packets, mut bytes) = (0u64, 0u64);
    for r in json_lines(&std::fs::read(&flows).unwrap()) {
        let n = |k: &str| r[k].as_u64().unwrap();
        packets += n("packets_fwd") + n("packets_rev");
        bytes += n("bytes_fwd") + n("bytes_rev");
    }

    let conf = d.join("pmacctd.conf");
    let rec = d.join("sflow.pcap");
    let port = record_exporter(&rec, "pmacctd (Debian pmacct)", |port| {
        std::fs::write(
            &conf,
            format!(
                "daemonize: false\npcap_savefile: {}\nplugins: sfprobe\n\
                 sfprobe_receiver: 127.0.0.1:{port}\nsampling_rate: {rate}\n",
                pcap.display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new("pmacctd");
        cmd.arg("-f").arg(&conf);
        cmd
    });

    let port = port.to_string();
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
