//! softflowd, an exporter burstwatch shares nothing with, turning a simulated capture into
//! NetFlow v9 or IPFIX (`softflowd -r`): `analyze --input-kind flow-export` of its datagrams
//! must give the flows packet mode gives, at the same times, and mostly the same bursts.
//!
//! softflowd reading a file stamps the headers with the wall clock and the records with the
//! capture's times on an uptime counted from its own start, so a capture more than a few weeks
//! old gives records whose times cannot be squared with their export: they are placed by the
//! exporter's own clock, pinned to the arrival of the first, and keep their intervals. The
//! bursts are therefore compared after one constant shift.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use burstwatch_tests::{json_lines, run_ok};

use crate::flow_export::{analyze, draw, next, run_seed, small_scenarios, Draw, DETECT};

/// Start of the simulator's captures (2026-01-01T00:00:00Z).
const SIM_START_S: u64 = 1_767_225_600;

/// Whether this machine's clock is more than eight days past the simulator's captures: their
/// records then look weeks from their export when an exporter stamps the headers with the
/// current time.
pub(crate) fn capture_is_weeks_old() -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    now > SIM_START_S + 8 * 86_400
}

/// A classic pcap of UDP datagrams from 127.0.0.1:`port + 1` to 127.0.0.1:`port`, each
/// stamped with its arrival (what tcpdump on the collector would write).
fn write_datagrams(path: &Path, port: u16, got: &[Arrived]) {
    let mut out = Vec::new();
    for w in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    for (at, d) in got {
        let udp_len = 8 + d.len();
        let ip_len = 20 + udp_len;
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        frame.extend_from_slice(&(ip_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        frame.extend_from_slice(&(port.wrapping_add(1)).to_be_bytes());
        frame.extend_from_slice(&port.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(d);
        let len = frame.len() as u32;
        for w in [at.as_secs() as u32, at.subsec_micros(), len, len] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&frame);
    }
    std::fs::write(path, out).unwrap();
}

/// A burst alert: subscriber, endpoint, start, bytes out, length (s), rate threshold (bit/s).
type Burst = (String, String, f64, u64, f64, f64);

/// softflowd's active timeout in these tests (`-t maxlife=10`), seconds.
const ACTIVE_TIMEOUT_S: f64 = 10.0;

/// A datagram and when it arrived (since 1970).
pub(crate) type Arrived = (Duration, Vec<u8>);

/// A collector of the test's own: a loopback UDP socket (its port) and the thread that takes
/// every datagram with its arrival until none has come for `quiet`.
/// Its socket has a large receive buffer (an exporter flushing its cache at the end of a file
/// sends faster than the default buffer takes), and the thread fails if the kernel dropped a
/// datagram for it all the same (`/proc/net/udp`): a recording is all that was sent.
pub(crate) fn collector(quiet: Duration) -> (u16, JoinHandle<Vec<Arrived>>) {
    use std::os::fd::AsRawFd;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let size: libc::c_int = 32 << 20;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: setsockopt on a socket this function owns, with a c_int value of its size.
        #[allow(unsafe_code)]
        let r = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        // SO_RCVBUFFORCE needs CAP_NET_ADMIN; SO_RCVBUF is capped at net.core.rmem_max.
        if r == 0 {
            break;
        }
    }
    let port = sock.local_addr().unwrap().port();
    let receiver = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65_536];
        let mut idle_since = Instant::now();
        while idle_since.elapsed() < quiet {
            if let Ok(n) = sock.recv(&mut buf) {
                let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                got.push((at, buf[..n].to_vec()));
                idle_since = Instant::now();
            }
        }
        let dropped = udp_drops(port);
        assert_eq!(
            dropped,
            0,
            "the test's collector on port {port} lost {dropped} datagrams (its socket buffer \
             overflowed); {} taken",
            got.len()
        );
        got
    });
    (port, receiver)
}

/// Datagrams the kernel dropped for the IPv4 UDP socket bound to `port` (the last column of
/// its line in `/proc/net/udp`; 0 if it is not there).
fn udp_drops(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.ends_with(&local))
        })
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

/// `softflowd -r capture` (NetFlow `version` 9 or 10, a 10 s active timeout, as recommended,
/// and the options in `extra`) exporting to a socket of the test's own, which takes every
/// datagram with its arrival: the recording (`softflowd.pcap` in `dir`, what tcpdump on the
/// collector would write) and the port it was sent to.
pub(crate) fn through_softflowd(
    capture: &Path,
    version: &str,
    extra: &[&str],
    dir: &Path,
) -> (PathBuf, u16) {
    let rec = dir.join("softflowd.pcap");
    let port = record_exporter(&rec, "softflowd (Debian softflowd)", None, |port| {
        let mut cmd = Command::new("softflowd");
        // -d: stay in the foreground.
        cmd.arg("-r")
            .arg(capture)
            .args(["-n", &format!("127.0.0.1:{port}"), "-v", version])
            .args(["-t", &format!("maxlife={ACTIVE_TIMEOUT_S}"), "-d"])
            .args(extra);
        cmd
    });
    (rec, port)
}

/// Run the exporter `exporter(port)` makes (`what` names its package) to completion, sending
/// to a [`collector`] on `port`; write what the collector took to `rec` (at least one
/// datagram). Returns the port. It must exit with success, or with a failure after it logged
/// `ended` (an exporter whose normal end races its own exit status).
pub(crate) fn record_exporter(
    rec: &Path,
    what: &str,
    ended: Option<&str>,
    exporter: impl FnOnce(u16) -> Command,
) -> u16 {
    let (port, receiver) = collector(Duration::from_secs(3));
    let out = exporter(port).stdin(Stdio::null()).output().expect(what);
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() || ended.is_some_and(|e| log.contains(e)),
        "{what}: {}\n{log}",
        out.status
    );
    let got = receiver.join().unwrap();
    assert!(!got.is_empty(), "no datagram from {what}");
    write_datagrams(rec, port, &got);
    port
}

/// The burst alerts of an alert file.
fn bursts(path: &Path) -> Vec<Burst> {
    json_lines(&std::fs::read(path).unwrap())
        .iter()
        .filter(|a| a["kind"] == "burst")
        .map(|a| {
            (
                a["src"].as_str().unwrap().to_string(),
                a["dst"].as_str().unwrap().to_string(),
                a["start_ts"].as_f64().unwrap(),
                a["bytes_out"].as_u64().unwrap(),
                a["end_ts"].as_f64().unwrap() - a["start_ts"].as_f64().unwrap(),
                a["rate_threshold"]["bps"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// First and last time (s) of a flow record, or of all the records of a 5-tuple.
type Span = (f64, f64);

/// First and last time of every flow record, and the packets counted both ways, by 5-tuple
/// (its two ends in order).
fn flow_times(path: &Path) -> BTreeMap<String, (Vec<Span>, u64)> {
    let mut out: BTreeMap<String, (Vec<Span>, u64)> = BTreeMap::new();
    for r in json_lines(&std::fs::read(path).unwrap()) {
        // Either way round: which side a mode calls the source depends on what it saw first.
        let mut ends = [
            format!("{}:{}", r["src"], r["sport"]),
            format!("{}:{}", r["dst"], r["dport"]),
        ];
        ends.sort();
        let key = format!("{} {} {}", r["proto"], ends[0], ends[1]);
        let t = |k: &str| r[k].as_f64().unwrap();
        let e = out.entry(key).or_default();
        e.0.push((t("first_ts"), t("last_ts")));
        e.1 += r["packets_fwd"].as_u64().unwrap() + r["packets_rev"].as_u64().unwrap();
    }
    out
}

/// Every 5-tuple of both modes is seen from the same first to the same last time in both
/// (its records' earliest start and latest end, however each mode split it), after one shift
/// of the clock, within two seconds (records are pro-rated over whole seconds): nothing is
/// piled up at the export instants. All but 1 % of them must be. Under 1-in-`sampling`
/// sampling a flow starts and ends at its first and last sampled packet, which only for a flow
/// of many packets is close to its own: only those of 200 × `sampling` packets or more count
/// (an injected upload is one), and two thirds of them must be. Returns the shift (s).
fn same_times(packet: &Path, flow: &Path, sampling: u64) -> f64 {
    let span = |v: &Vec<Span>| {
        v.iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &(f, l)| (a.min(f), b.max(l)))
    };
    let (min_packets, max_off, min_flows) = if sampling > 1 {
        (200 * sampling, 0.34, 1)
    } else {
        (0, 0.01, 10)
    };
    let (p, f) = (flow_times(packet), flow_times(flow));
    let both: Vec<(&String, (Span, Span))> = p
        .iter()
        .filter(|(_, (_, packets))| *packets >= min_packets)
        .filter_map(|(k, (pv, _))| Some((k, (span(pv), span(&f.get(k)?.0)))))
        .collect();
    assert!(
        both.len() >= min_flows,
        "{} flows in both modes",
        both.len()
    );
    let mut shifts: Vec<f64> = both.iter().map(|(_, (a, b))| b.0 - a.0).collect();
    shifts.sort_by(f64::total_cmp);
    let shift = shifts[shifts.len() / 2];
    let offs: Vec<_> = both
        .iter()
        .filter(|(_, (a, b))| (b.0 - shift - a.0).abs() > 2.0 || (b.1 - shift - a.1).abs() > 2.0)
        .map(|(k, (a, b))| format!("{k}: {a:?} / {:?}", (b.0 - shift, b.1 - shift)))
        .collect();
    let off = offs.len();
    eprintln!(
        "softflowd: {} flows in both modes, shift {shift:.3} s, {off} off by more than 2 s",
        both.len()
    );
    assert!(
        off as f64 <= max_off * both.len() as f64,
        "{off} of {} flows off:\n{}",
        both.len(),
        offs.join("\n")
    );
    shift
}

/// The simulated capture is months old: its records are placed by softflowd's own clock.
#[test]
fn softflowd_reading_a_capture_gives_the_bursts_packet_mode_finds() {
    softflowd_against_packet_mode(false);
}

/// The capture is moved (`editcap -t`) to end a minute or two before now: every record is
/// placed by the datagram's export time, at its own time, and the bursts come at packet
/// mode's times with no shift at all. softflowd reading a file sends all of its records
/// within milliseconds and not in time order (what it still holds at the end of the file
/// goes last), so the recording is read with a hold as long as the capture (`--flow-hold`,
/// as the summary advises when bins come late).
#[test]
fn softflowd_on_a_recent_capture_gives_the_bursts_at_packet_modes_times() {
    softflowd_against_packet_mode(true);
}

fn softflowd_against_packet_mode(recent: bool) {
    let Draw {
        mut rng,
        dir,
        pcap,
        seed,
        subs,
    } = draw();
    let d = dir.path();
    let version = if next(&mut rng) % 2 == 0 { "9" } else { "10" };
    eprintln!("softflowd: seed {seed}, {subs} subscribers, -v {version}, recent {recent}");
    if recent {
        let sim = d.join("sim.pcap");
        small_scenarios(&sim, &seed, &subs);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        // The simulator's 300 s from SIM_START_S, to end 60-180 s before now.
        let delta = now - SIM_START_S - 300 - 60 - next(&mut rng) % 120;
        let st = Command::new("editcap")
            .args(["-t", &delta.to_string()])
            .arg(&sim)
            .arg(&pcap)
            .status()
            .expect("editcap (Debian package wireshark-common, with tshark)");
        assert!(st.success());
    } else {
        small_scenarios(&pcap, &seed, &subs);
    }
    let cfg = d.join("detect.toml");
    std::fs::write(&cfg, DETECT).unwrap();
    let cfg = cfg.to_str().unwrap();

    let (rec, port) = through_softflowd(&pcap, version, &[], d);

    let flow_dir = d.join("flow");
    std::fs::create_dir(&flow_dir).unwrap();
    let fx_flows = flow_dir.join("flows.jsonl");
    let fx = analyze(
        &rec,
        &flow_dir,
        &[
            "--config",
            cfg,
            "--flow-port",
            &port.to_string(),
            "--flows",
            fx_flows.to_str().unwrap(),
            "--flow-hold",
            if recent { "900" } else { "75" },
        ],
    );
    eprintln!("softflowd: {fx}");
    let records = fx["records"].as_u64().unwrap();
    assert!(records > 100, "{records} records");
    assert_eq!(fx["parse_errors"], 0);
    assert_eq!(fx["template_misses"], 0);
    assert_eq!(fx["no_time"], 0);
    assert_eq!(
        fx["late_bins"], 0,
        "records placed before seconds already released"
    );
    if recent {
        assert_eq!(fx["own_clock"], 0, "every record by its export time");
    } else if capture_is_weeks_old() {
        assert_eq!(fx["own_clock"], records, "every record by its own clock");
    }
    let packet_alerts = d.join("packets.jsonl");
    let packet_flows = d.join("packet-flows.jsonl");
    run_ok(&[
        "analyze",
        pcap.to_str().unwrap(),
        "--config",
        cfg,
        "--quiet",
        "--flows",
        packet_flows.to_str().unwrap(),
        "--alerts",
        packet_alerts.to_str().unwrap(),
    ]);
    let shift = same_times(&packet_flows, &fx_flows, 1);
    if recent {
        assert!(
            shift.abs() <= 1.0,
            "records {shift:.3} s off their own times"
        );
    }
    let packet = bursts(&packet_alerts);
    let flow = bursts(&flow_dir.join("alerts.jsonl"));
    eprintln!(
        "softflowd: {} bursts in packet mode, {} from softflowd's records",
        packet.len(),
        flow.len()
    );
    // The same burst: same pair, starts within 2 s (a burst's start moves by a second or two
    // in flow mode: records pro-rated over whole seconds).
    let same_start =
        |p: &Burst, f: &Burst| p.0 == f.0 && p.1 == f.1 && (f.2 - shift - p.2).abs() <= 2.0;
    // One record can carry two bursts of a connection a few seconds apart, and flow mode then
    // raises one burst over both, from the first one's start: a packet-mode burst is also
    // found inside a flow-mode burst (±2 s) that starts with another packet-mode burst.
    let found_in = |p: &Burst, f: &Burst| {
        let (start, end) = (f.2 - shift, f.2 + f.4 - shift);
        same_start(p, f)
            || (p.0 == f.0
                && p.1 == f.1
                && start - 2.0 <= p.2
                && p.2 <= end + 2.0
                && packet.iter().any(|q| same_start(q, f)))
    };
    // The packet-mode bursts that softflowd's records must show: twice the lowered
    // `burst_min_bytes` (20,000) at least, and above their own rate threshold even when a
    // record spreads them over a whole active timeout. A short burst inside a longer flow is
    // spread so (a 41 kB burst of half a second becomes 33 kbit/s for 10 s), and one that
    // is above its bar only in its peak seconds is smoothed under it; packet mode raises
    // those, no 10 s record can.
    let visible = |b: &&Burst| b.3 >= 40_000 && b.3 as f64 * 8.0 / b.4.max(ACTIVE_TIMEOUT_S) >= b.5;
    assert!(
        packet.iter().filter(|b| b.3 >= 40_000).count() >= 2,
        "too few bursts to compare: {packet:?}"
    );
    let wanted: Vec<&Burst> = packet.iter().filter(visible).collect();
    let found = wanted
        .iter()
        .filter(|p| flow.iter().any(|f| found_in(p, f)))
        .count();
    assert!(
        !wanted.is_empty() && found * 10 >= wanted.len() * 8 && found >= wanted.len().min(2),
        "{found} of {} packet-mode bursts that 10 s records can show found from softflowd's \
         records (shift {shift:.0} s)\npacket mode: {packet:?}\nflow: {flow:?}",
        wanted.len()
    );
    // Every flow-mode burst of 40 kB or more stands for traffic packet mode saw as a burst:
    // most of them must be packet mode's.
    let from_flow: Vec<&Burst> = flow.iter().filter(|b| b.3 >= 40_000).collect();
    let known = from_flow
        .iter()
        .filter(|f| packet.iter().any(|p| same_start(p, f)))
        .count();
    assert!(
        known * 10 >= from_flow.len() * 6,
        "{known} of {} bursts of 40 kB or more from softflowd's records also in packet \
         mode (shift {shift:.0} s)\npacket mode: {packet:?}\nflow: {flow:?}",
        from_flow.len()
    );
}

/// What one upload through softflowd gave: the upload, `analyze`'s alerts and flow-export
/// figures, the clock shift, and a line saying what was run.
struct Through {
    burst: crate::real_captures::Injected,
    alerts: Vec<serde_json::Value>,
    fx: serde_json::Value,
    shift: f64,
    what: String,
}

/// The operator's view with a router in between: a short upload to an endpoint nobody else
/// talks to, of a rate drawn from `mbit` (Mbit/s) and a length from `secs` (s, at least 4 MB),
/// put into the busy benign real capture `capture` (`mergecap`), goes through softflowd as
/// IPFIX with a 10 s active timeout and the options `extra`; `analyze` reads the datagrams.
/// Checked on the way: no parse error, every record timed, none late, and every 5-tuple at the
/// time packet mode sees it (after the one shift of softflowd's clock; under sampling, `-s`,
/// those of many packets).
fn upload_through_softflowd(
    n: usize,
    capture: &str,
    rnd: &mut dyn FnMut() -> f64,
    (mbit, secs): ((f64, f64), (f64, f64)),
    extra: &[&str],
    dir: &Path,
) -> Through {
    use crate::real_captures::{span_of, upload_pcap, Injected};
    let private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
    let d = dir.join(n.to_string());
    std::fs::create_dir(&d).unwrap();
    let real = burstwatch_tests::corpus().join(capture);
    let (first, last) = span_of(&real);
    let secs = secs.0 + rnd() * (secs.1 - secs.0);
    let mbit = (mbit.0 + rnd() * (mbit.1 - mbit.0)).max(32.0 / secs);
    let start = (first + rnd() * (last - first - secs).max(1.0)).floor();
    let home = [192, 168, 200 + n as u8, 2 + (rnd() * 250.0) as u8];
    let ep = [198, 18, (rnd() * 255.0) as u8, 1 + (rnd() * 250.0) as u8];
    let upload = d.join("burst.pcap");
    let bytes = upload_pcap(&upload, start, home, ep, secs, mbit);
    let merged = d.join("merged.pcap");
    let st = Command::new("mergecap")
        .args(["-F", "pcap", "-w"])
        .arg(&merged)
        .arg(&real)
        .arg(&upload)
        .status()
        .expect("mergecap (Debian package wireshark-common, with tshark)");
    assert!(st.success());
    let what = format!(
        "{capture}: {mbit:.1} Mbit/s for {secs:.1} s from {start:.0}, softflowd {}",
        extra.join(" ")
    );
    eprintln!("softflowd: {what}");

    let mut home_nets = Vec::new();
    for h in private {
        home_nets.extend(["--home-net", h]);
    }
    let packet_flows = d.join("packet-flows.jsonl");
    let mut args = vec![
        "analyze",
        merged.to_str().unwrap(),
        "--quiet",
        "--alerts",
        "/dev/null",
        "--flows",
        packet_flows.to_str().unwrap(),
    ];
    args.extend(&home_nets);
    run_ok(&args);

    let (rec, port) = through_softflowd(&merged, "10", extra, &d);
    let flow_flows = d.join("flow-flows.jsonl");
    let port = port.to_string();
    let mut args = vec![
        "--flow-port",
        &port,
        "--flows",
        flow_flows.to_str().unwrap(),
    ];
    args.extend(&home_nets);
    let fx = analyze(&rec, &d, &args);
    assert_eq!(fx["parse_errors"], 0, "{what}: {fx}");
    assert_eq!(fx["no_time"], 0, "{what}: {fx}");
    assert_eq!(fx["late_bins"], 0, "{what}: {fx}");
    let sampling = match extra.iter().position(|&a| a == "-s") {
        Some(i) => extra[i + 1].parse().unwrap(),
        None => 1,
    };
    let shift = same_times(&packet_flows, &flow_flows, sampling);
    Through {
        burst: Injected {
            home,
            ep,
            start,
            bytes,
        },
        alerts: json_lines(&std::fs::read(d.join("alerts.jsonl")).unwrap()),
        fx,
        shift,
        what,
    }
}

/// The real captures the uploads are put into.
const REAL: [&str; 3] = [
    "traffic/teams.pcap",
    "traffic/netflix.pcap",
    "traffic/whatsapp_login_call.pcap",
];

/// An upload (8-100 Mbit/s, 3-20 s) in real traffic through softflowd, unsampled, each capture
/// with a drawn way of writing its records: uniflows or RFC 5103 biflows (`-b`), and times as
/// uptime or as absolute seconds, milli-, micro- or nanoseconds (`-A`, IEs 150-157). From the
/// records, the upload is found with its volume to 2 %, within 2 s of the time packet mode
/// finds it, and it is the only alert.
#[test]
fn a_burst_in_real_traffic_through_softflowd_is_found_and_is_the_only_alert() {
    let mut rng = run_seed();
    let mut rnd = move || (next(&mut rng) >> 11) as f64 / (1u64 << 53) as f64;
    let dir = tempfile::tempdir().unwrap();
    for (n, capture) in REAL.iter().enumerate() {
        let mut extra = Vec::new();
        if rnd() < 0.5 {
            extra.push("-b");
        }
        let times = ["", "sec", "milli", "micro", "nano"][(rnd() * 5.0) as usize % 5];
        if !times.is_empty() {
            extra.extend(["-A", times]);
        }
        let t = upload_through_softflowd(
            n,
            capture,
            &mut rnd,
            ((8.0, 100.0), (3.0, 20.0)),
            &extra,
            dir.path(),
        );
        t.burst
            .is_the_only_alert(&t.alerts, t.shift, 2.0, 0.02, &t.what);
    }
}

/// The same through softflowd sampling 1 in N packets (`-s N`, N drawn 2-30), at 20-100
/// Mbit/s for 5-20 s: burstwatch takes the rate from softflowd's options data, and the upload
/// is the only alert, within 2 s, its bytes estimated within the sampling error (four
/// standard errors of N-fold sampling of its packets, plus 1 %).
#[test]
fn a_burst_in_real_traffic_through_sampling_softflowd_is_found_with_its_estimated_volume() {
    let mut rng = run_seed();
    let mut rnd = move || (next(&mut rng) >> 11) as f64 / (1u64 << 53) as f64;
    let dir = tempfile::tempdir().unwrap();
    for (n, capture) in REAL.iter().enumerate() {
        let rate = 2 + (rnd() * 29.0) as u64;
        let rate_arg = rate.to_string();
        let t = upload_through_softflowd(
            n,
            capture,
            &mut rnd,
            ((20.0, 100.0), (5.0, 20.0)),
            &["-s", &rate_arg],
            dir.path(),
        );
        assert_eq!(t.fx["max_sampling_rate"], rate, "{}: {}", t.what, t.fx);
        // 1,500-byte packets; samples of them about packets / N.
        let samples = t.burst.bytes as f64 / 1500.0 / rate as f64;
        let tol = 4.0 / samples.sqrt() + 0.01;
        eprintln!(
            "softflowd: 1 in {rate}, about {samples:.0} samples of the upload, bytes within {:.1} %",
            tol * 100.0
        );
        if let Some(a) = t.alerts.first() {
            let est = a["bytes_out"].as_f64().unwrap_or(0.0);
            eprintln!(
                "softflowd: alert estimate {est:.0} bytes, {:+.2} % of those sent",
                (est / t.burst.bytes as f64 - 1.0) * 100.0
            );
        }
        t.burst
            .is_the_only_alert(&t.alerts, t.shift, 2.0, tol, &t.what);
    }
}
