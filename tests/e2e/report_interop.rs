//! The Parquet report read by the tools analysts use (needs the `report` feature): pyarrow
//! (compute filters, filters pushed into the reader, sorts, joins), pandas (`read_parquet`
//! with filters) and DuckDB (SQL with a text filter, a timestamp comparison and a join), run
//! by `report_interop.py` on the tables of one `analyze` run and compared with that run's
//! JSON alerts. The script also checks the stored types: text as `string`/`large_string`,
//! never `string_view`; timestamps as `timestamp[us, tz=UTC]`, Parquet
//! `TIMESTAMP(MICROS, isAdjustedToUTC=true)`.
//!
//! The interpreter is `BURSTWATCH_PYTHON` (CI points it at a virtual environment with
//! pyarrow, pandas and DuckDB), else `python3`. Without the modules the test is skipped with
//! a message, except in CI (`CI` set) or when `BURSTWATCH_PYTHON` is set: there it fails.

use std::path::Path;
use std::process::Command;

use crate::report::{analyze, simulated};

/// Whether a missing interpreter or module fails the test.
fn strict() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    ci || std::env::var_os("BURSTWATCH_PYTHON").is_some()
}

/// Alert start in µs since the epoch from the JSON (seconds with µs precision).
fn start_us(alert: &serde_json::Value) -> i64 {
    (alert["start_ts"].as_f64().unwrap() * 1e6).round() as i64
}

#[test]
fn parquet_report_reads_back_in_pyarrow_pandas_and_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let r = analyze(simulated(), dir.path(), "parquet");
    let python = std::env::var("BURSTWATCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/report_interop.py");
    let out = match Command::new(&python).arg(&script).arg(&r.report).output() {
        Ok(out) => out,
        Err(e) if !strict() => {
            eprintln!("SKIPPED: cannot run {python} ({e}); set BURSTWATCH_PYTHON");
            return;
        }
        Err(e) => panic!("cannot run {python}: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        assert!(!strict(), "{python}: {stderr}");
        eprintln!("SKIPPED: {python}: {stderr} (pip install pyarrow duckdb pandas)");
        return;
    }
    assert!(
        out.status.success(),
        "{python} {}: {stderr}",
        script.display()
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    // The text filter, sort and DuckDB query found this subscriber's alerts, in start order.
    let src = v["src"].as_str().unwrap();
    let mut want: Vec<(i64, &str)> = r
        .alerts
        .iter()
        .filter(|a| a["src"] == src)
        .map(|a| (start_us(a), a["id"].as_str().unwrap()))
        .collect();
    want.sort_unstable();
    let ids: Vec<&str> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    let starts: Vec<i64> = v["start_us"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(ids, want.iter().map(|w| w.1).collect::<Vec<_>>());
    assert_eq!(starts, want.iter().map(|w| w.0).collect::<Vec<_>>());
    // The timestamp comparison counted the alerts that started at or after the first one.
    let later = r.alerts.iter().filter(|a| start_us(a) >= want[0].0).count();
    assert_eq!(v["later"].as_u64(), Some(later as u64));
    // The join of bursts to alerts on the alert id found every burst alert.
    let burst_alerts = r.alerts.iter().filter(|a| a["kind"] == "burst").count();
    assert!(burst_alerts > 0);
    assert_eq!(v["bursts_joined"].as_u64(), Some(burst_alerts as u64));
    // Every timestamp column was seen as one.
    for (table, n) in [
        ("flows", 2),
        ("alerts", 4),
        ("bursts", 2),
        ("hosts", 0),
        ("endpoints", 2),
        ("timeline", 1),
    ] {
        assert_eq!(
            v["columns"][table]["timestamps"].as_u64(),
            Some(n),
            "{table}"
        );
    }
    if strict() {
        assert_eq!(v["pandas"], true, "pandas not installed for {python}");
    }
}
