//! `analyze --report` end to end (needs the `report` feature): a simulator capture with a
//! burst and a beacon alert, the tables read back with polars and checked against the JSON
//! outputs of the same run, and `report.html` rendered by a headless Chromium.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use burstwatch_tests::{json_lines, run_ok};
use polars::prelude::*;

/// Simulator settings with at least one burst and one beacon alert (the smallest population
/// and span the simulator injects scenarios into; about 1 GB, shared by the tests below).
const SIM: [&str; 6] = ["--seed", "1", "--subscribers", "40", "--duration", "300"];

/// The simulator capture, written once per test process (into cargo's scratch directory for
/// integration tests, overwritten by the next run).
pub fn simulated() -> &'static Path {
    static CAPTURE: OnceLock<PathBuf> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let pcap = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-sim.pcap");
        let mut args = vec!["simulate", "-q", "-o", pcap.to_str().unwrap()];
        args.extend(SIM);
        run_ok(&args);
        pcap
    })
}

/// What one `analyze --report` run wrote.
pub struct Run {
    /// The alert JSON lines.
    pub alerts: Vec<serde_json::Value>,
    /// Flow records written to `--flows`.
    pub flows: usize,
    /// The report directory.
    pub report: PathBuf,
}

/// `analyze PCAP --alerts --flows --report DIR/report-FORMAT --report-format FORMAT`.
pub fn analyze(pcap: &Path, dir: &Path, format: &str) -> Run {
    let report = dir.join(format!("report-{format}"));
    let alerts = dir.join(format!("alerts-{format}.jsonl"));
    let flows = dir.join(format!("flows-{format}.jsonl"));
    run_ok(&[
        "analyze",
        pcap.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
        "--flows",
        flows.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--report-format",
        format,
    ]);
    Run {
        alerts: json_lines(&std::fs::read(alerts).unwrap()),
        flows: json_lines(&std::fs::read(flows).unwrap()).len(),
        report,
    }
}

/// One table of a Parquet report.
pub fn parquet(dir: &Path, table: &str) -> DataFrame {
    let f = std::fs::File::open(dir.join(format!("{table}.parquet"))).unwrap();
    ParquetReader::new(f).finish().unwrap()
}

/// A text column, nulls as empty strings.
pub fn strs(df: &DataFrame, col: &str) -> Vec<String> {
    let c = df.column(col).unwrap().str().unwrap();
    (0..c.len())
        .map(|i| c.get(i).unwrap_or_default().to_string())
        .collect()
}

/// A timestamp column (`timestamp[us, tz=UTC]`) as seconds since the epoch, nulls as NaN.
pub fn secs(df: &DataFrame, col: &str) -> Vec<f64> {
    let c = df.column(col).unwrap();
    assert_eq!(
        c.dtype(),
        &DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
        "{col}"
    );
    let us = c.cast(&DataType::Int64).unwrap();
    let us = us.i64().unwrap();
    (0..us.len())
        .map(|i| us.get(i).map_or(f64::NAN, |v| v as f64 / 1e6))
        .collect()
}

/// A UInt64 column, nulls as 0.
pub fn u64s(df: &DataFrame, col: &str) -> Vec<u64> {
    let c = df.column(col).unwrap().u64().unwrap();
    (0..c.len()).map(|i| c.get(i).unwrap_or(0)).collect()
}

/// Every table of a report.
pub const TABLES: [&str; 6] = [
    "flows",
    "alerts",
    "bursts",
    "hosts",
    "endpoints",
    "timeline",
];

#[test]
fn report_tables_agree_with_the_json_outputs_of_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = simulated();
    let r = analyze(pcap, dir.path(), "parquet");
    let kinds: BTreeSet<&str> = r
        .alerts
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains("burst") && kinds.contains("beacon"),
        "want both kinds: {kinds:?}"
    );

    assert_eq!(parquet(&r.report, "flows").height(), r.flows);

    // Alerts: the same ids, sorted by score.
    let alerts = parquet(&r.report, "alerts");
    let ids: BTreeSet<String> = strs(&alerts, "id").into_iter().collect();
    let json_ids: BTreeSet<String> = r
        .alerts
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, json_ids);
    let scores: Vec<f64> = alerts
        .column("score")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // Bursts: every burst alert is an `alerted` burst with its id; nothing else is.
    let bursts = parquet(&r.report, "bursts");
    let outcome = strs(&bursts, "outcome");
    let alert_id = bursts.column("alert_id").unwrap().str().unwrap().clone();
    let alerted: BTreeSet<String> = (0..bursts.height())
        .filter(|&i| outcome[i] == "alerted")
        .map(|i| alert_id.get(i).unwrap().to_string())
        .collect();
    let burst_ids: BTreeSet<String> = r
        .alerts
        .iter()
        .filter(|a| a["kind"] == "burst")
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(alerted, burst_ids);
    assert!(
        outcome.iter().any(|o| o != "alerted"),
        "gated bursts are listed too"
    );

    // Timeline: the burst's upstream bytes are in the alert's seconds (give or take the
    // partial ramp-up and tail seconds the detector adds to a burst).
    let tl = parquet(&r.report, "timeline");
    let (tid, up) = (strs(&tl, "alert_id"), u64s(&tl, "bytes_up"));
    let ts = secs(&tl, "ts");
    let in_span = tl.column("in_span").unwrap().bool().unwrap().clone();
    for a in r.alerts.iter().filter(|a| a["kind"] == "burst") {
        let id = a["id"].as_str().unwrap();
        let (start, end) = (
            a["start_ts"].as_f64().unwrap().floor(),
            a["end_ts"].as_f64().unwrap().floor(),
        );
        let rows: Vec<usize> = (0..tl.height()).filter(|&i| tid[i] == id).collect();
        assert!(!rows.is_empty(), "alert {id} has a timeline");
        let span: u64 = rows
            .iter()
            .filter(|&&i| in_span.get(i) == Some(true))
            .map(|&i| up[i])
            .sum();
        let wide: u64 = rows
            .iter()
            .filter(|&&i| ts[i] >= start - 2.0 && ts[i] <= end + 2.0)
            .map(|&i| up[i])
            .sum();
        let want = a["bytes_out"].as_u64().unwrap();
        assert!(
            wide >= want && span * 2 >= want,
            "alert {id}: span {span}, ±2 s {wide}, alert {want}"
        );
    }

    // Hosts and endpoints: the alerted subscribers and endpoints are there, with the alerts
    // counted and the endpoints rare.
    let hosts = parquet(&r.report, "hosts");
    let (host, n_alerts) = (strs(&hosts, "host"), u64s(&hosts, "alerts"));
    let eps = parquet(&r.report, "endpoints");
    let (ep, prevalence) = (strs(&eps, "endpoint"), u64s(&eps, "hosts"));
    for a in &r.alerts {
        let i = host
            .iter()
            .position(|h| h == a["src"].as_str().unwrap())
            .unwrap();
        assert!(n_alerts[i] >= 1);
        let j = ep
            .iter()
            .position(|e| e == a["dst"].as_str().unwrap())
            .unwrap();
        assert!(
            (1..=3).contains(&prevalence[j]),
            "{}: {}",
            ep[j],
            prevalence[j]
        );
    }
    let total: u64 = u64s(&hosts, "flows").iter().sum();
    assert_eq!(total, u64s(&eps, "flows").iter().sum::<u64>());
    assert!(total > 0 && total as usize <= r.flows);
}

#[test]
fn csv_report_has_the_same_columns_and_rows_as_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = simulated();
    let pq = analyze(pcap, dir.path(), "parquet");
    let csv = analyze(pcap, dir.path(), "csv");
    for t in TABLES {
        let a = parquet(&pq.report, t);
        let path = csv.report.join(format!("{t}.csv"));
        let b = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0)) // all text: compare shape and names only
            .try_into_reader_with_file_path(Some(path))
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(a.get_column_names(), b.get_column_names(), "{t}");
        assert_eq!(a.height(), b.height(), "{t}");
    }
}

/// Chromium from `BURSTWATCH_CHROMIUM` or the `PATH`.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("BURSTWATCH_CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("which").arg(name).output() {
            if out.status.success() {
                return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            }
        }
    }
    panic!("the browser test needs chromium (apt-get install chromium)");
}

/// Run headless Chromium on a local page; returns (stdout, stderr).
fn browse(page: &Path, extra: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Console messages and failed loads in Chromium's log.
fn console_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Failed to load") || l.contains("ERR_"))
        .collect()
}

/// A decoded 8-bit RGB/RGBA PNG: (width, height, channels, pixels).
fn decode_png(bytes: &[u8]) -> (usize, usize, usize, Vec<u8>) {
    use std::io::Read as _;
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (mut pos, mut idat) = (8, Vec::new());
    let (mut w, mut h, mut ch) = (0, 0, 0);
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = &bytes[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                h = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!(data[8], 8, "bit depth");
                ch = match data[9] {
                    2 => 3,
                    6 => 4,
                    t => panic!("colour type {t}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        pos += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = w * ch;
    let mut px = vec![0u8; h * stride];
    for y in 0..h {
        let filter = raw[y * (stride + 1)];
        for x in 0..stride {
            let v = raw[y * (stride + 1) + 1 + x];
            let a = if x >= ch { px[y * stride + x - ch] } else { 0 };
            let b = if y > 0 { px[(y - 1) * stride + x] } else { 0 };
            let c = if x >= ch && y > 0 {
                px[(y - 1) * stride + x - ch]
            } else {
                0
            };
            let pred = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("filter {f}"),
            };
            px[y * stride + x] = v.wrapping_add(pred);
        }
    }
    (w, h, ch, px)
}

/// Why a screenshot does not look like a rendered report: mostly background, or no
/// upstream-series blue (`#1f5fbf`) anywhere.
fn not_rendered(png: &Path) -> Option<String> {
    let (w, h, ch, px) = decode_png(&std::fs::read(png).unwrap());
    let bg = &px[..ch];
    let differ = px.chunks(ch).filter(|p| p[..3] != bg[..3]).count();
    if differ * 50 <= w * h {
        return Some(format!("mostly blank: {differ} of {} pixels differ", w * h));
    }
    let blue = px
        .chunks(ch)
        .filter(|p| {
            p[0].abs_diff(0x1f) < 24 && p[1].abs_diff(0x5f) < 24 && p[2].abs_diff(0xbf) < 24
        })
        .count();
    (blue <= 50).then(|| format!("upstream series not visible: {blue} blue pixels"))
}

/// A full-page screenshot of `page` (1280 x 2000).
fn screenshot(page: &Path, png: &Path) {
    browse(
        page,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,2000",
            "--hide-scrollbars",
        ],
    );
    let (w, h, _, _) = decode_png(&std::fs::read(png).unwrap());
    assert_eq!((w, h), (1280, 2000));
}

#[test]
fn the_page_renders_in_a_headless_browser_without_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = simulated();
    let r = analyze(pcap, dir.path(), "parquet");
    let page = r.report.join("report.html");

    // The DOM after loading holds the overview and one plot per alert (up to 200), each
    // under its alert's heading with the span shaded (a rect), the upstream (blue) and
    // downstream (green) series and, when known, the baseline (orange) as lines: each colour
    // twice, once in the plot and once in the legend.
    let (dom, log) = browse(&page, &["--dump-dom"]);
    assert!(dom.contains("id=\"overview\"><svg"), "overview plot");
    assert_eq!(
        dom.matches("<svg").count(),
        1 + r.alerts.len().min(200),
        "svg elements in the DOM"
    );
    for a in r.alerts.iter().take(200) {
        let id = a["id"].as_str().unwrap();
        let at = dom
            .find(&format!("<h3 id=\"a-{id}\""))
            .unwrap_or_else(|| panic!("no heading for alert {id}"));
        let section = &dom[at..];
        let section = &section[..section[4..].find("<h3").map_or(section.len(), |e| e + 4)];
        let svg = &section[section.find("<svg").expect("a plot under the heading")..];
        let lower = svg.to_ascii_lowercase();
        assert!(lower.contains("<rect"), "alert {id}: no span");
        let lines = |colour: &str| {
            lower
                .matches(&format!(
                    "<polyline fill=\"none\" opacity=\"1\" stroke=\"{colour}\""
                ))
                .count()
        };
        assert!(lines("#1f5fbf") >= 2, "alert {id}: no upstream line");
        assert!(lines("#2a9d3f") >= 2, "alert {id}: no downstream line");
        if a["baseline_bps"].is_number() {
            assert!(lines("#e07b00") >= 2, "alert {id}: no baseline");
        }
    }
    assert!(
        console_errors(&log).is_empty(),
        "{:?}",
        console_errors(&log)
    );

    // The harness does see console errors (so the check above can fail).
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<html><body><script>console.error('boom')</script></body></html>",
    )
    .unwrap();
    let (_, bad_log) = browse(&bad, &["--dump-dom"]);
    assert!(
        !console_errors(&bad_log).is_empty(),
        "console error not detected:\n{bad_log}"
    );

    // The screenshot is not blank and shows the plots' upstream blue; a blank page fails
    // the same check.
    let png = dir.path().join("report.png");
    screenshot(&page, &png);
    if let Some(why) = not_rendered(&png) {
        panic!("report.html: {why}");
    }
    let blank = dir.path().join("blank.html");
    std::fs::write(&blank, "<html><body><p>nothing</p></body></html>").unwrap();
    let blank_png = dir.path().join("blank.png");
    screenshot(&blank, &blank_png);
    assert!(
        not_rendered(&blank_png).is_some(),
        "a blank page passes the check"
    );
}
