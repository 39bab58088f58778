//! `analyze --pseudonymize KEYFILE --report DIR` (needs the `report` feature): no home address
//! of the clear run is left in any report output (every text cell of every Parquet table read
//! back with polars, the CSV files, `report.html`), the pseudonyms and alert ids are those of
//! the JSON outputs of the same run, and `reveal` maps them back.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use burstwatch_tests::{json_lines, write_test_key};
use polars::prelude::*;

use crate::privacy::reveal;
use crate::report::{parquet, strs, TABLES};
use crate::simcap::{addresses_in, analyze, is_home, sim};

/// Every non-null text cell of every Parquet table, one per line.
fn parquet_text(dir: &Path) -> String {
    let mut text = String::new();
    for t in TABLES {
        let df = parquet(dir, t);
        let mut string_cols = 0;
        for col in df.columns() {
            if col.dtype() != &DataType::String {
                continue;
            }
            string_cols += 1;
            let c = col.str().unwrap();
            for i in 0..c.len() {
                if let Some(v) = c.get(i) {
                    text.push_str(v);
                    text.push('\n');
                }
            }
        }
        assert!(string_cols > 0, "{t}: no text column");
    }
    text
}

/// The text of every CSV table and of the page.
fn files_text(dir: &Path, names: &[String]) -> String {
    names
        .iter()
        .map(|n| std::fs::read_to_string(dir.join(n)).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

fn csv_names() -> Vec<String> {
    TABLES.iter().map(|t| format!("{t}.csv")).collect()
}

/// Addresses of `text` that belong to `clear`, and how many addresses `text` holds at all.
fn leaks(text: &str, clear: &BTreeSet<IpAddr>) -> (Vec<IpAddr>, usize) {
    let found = addresses_in(text.as_bytes());
    let n = found.len();
    let mut leaked: Vec<IpAddr> = found.into_iter().filter(|a| clear.contains(a)).collect();
    leaked.sort();
    leaked.dedup();
    (leaked, n)
}

#[test]
fn pseudonymised_report_holds_no_home_address_and_reveal_maps_it_back() {
    let s = sim();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    write_test_key(&key);
    let keyarg = key.to_str().unwrap();
    let home: BTreeSet<IpAddr> = addresses_in(&s.outputs)
        .into_iter()
        .filter(|a| is_home(*a))
        .collect();
    assert!(
        home.len() >= 20,
        "subscribers in the clear run: {}",
        home.len()
    );

    let pq = dir.path().join("report-parquet");
    let csv = dir.path().join("report-csv");
    let outs = analyze(
        dir.path(),
        "pq",
        &s.pcap,
        &["--pseudonymize", keyarg, "--report", pq.to_str().unwrap()],
    );
    analyze(
        dir.path(),
        "csv",
        &s.pcap,
        &[
            "--pseudonymize",
            keyarg,
            "--report",
            csv.to_str().unwrap(),
            "--report-format",
            "csv",
        ],
    );
    // The tables name every flow's addresses; the page at least every alert's two, twice
    // (table and plot heading).
    let (in_tables, on_page) = (s.flows.len(), 4 * s.alerts.len());
    let html = ["report.html".to_string()];
    for (what, text, want) in [
        ("Parquet tables", parquet_text(&pq), in_tables),
        ("CSV tables", files_text(&csv, &csv_names()), in_tables),
        ("report.html (Parquet run)", files_text(&pq, &html), on_page),
        ("report.html (CSV run)", files_text(&csv, &html), on_page),
    ] {
        let (leaked, n) = leaks(&text, &home);
        assert!(n >= want, "{what}: only {n} addresses scanned");
        assert!(
            leaked.is_empty(),
            "{what}: home addresses in clear: {leaked:?}"
        );
    }

    // The report's alerts are the pseudonymised JSON alerts: same ids, same pseudonyms,
    // endpoints in clear; `reveal` gives back the clear run's subscribers.
    let json = json_lines(&outs[1]);
    assert_eq!(json.len(), s.alerts.len());
    let by_id: BTreeMap<&str, usize> = json
        .iter()
        .enumerate()
        .map(|(i, a)| (a["id"].as_str().unwrap(), i))
        .collect();
    let alerts = parquet(&pq, "alerts");
    let (ids, src, dst) = (
        strs(&alerts, "id"),
        strs(&alerts, "src"),
        strs(&alerts, "dst"),
    );
    assert_eq!(ids.len(), json.len());
    let pseudonyms: BTreeSet<IpAddr> = src.iter().map(|a| a.parse().unwrap()).collect();
    let back = reveal(&key, &pseudonyms);
    let page = std::fs::read_to_string(pq.join("report.html")).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let j = by_id[id.as_str()];
        let (p, clear) = (&json[j], &s.alerts[j]);
        assert_ne!(clear["id"], p["id"], "alert ids are keyed tags");
        assert_eq!(src[i], p["src"].as_str().unwrap(), "alert {id}: src");
        assert_eq!(dst[i], p["dst"].as_str().unwrap(), "alert {id}: dst");
        assert_eq!(
            dst[i],
            clear["dst"].as_str().unwrap(),
            "endpoints stay in clear"
        );
        let pseudonym: IpAddr = src[i].parse().unwrap();
        assert_ne!(pseudonym.to_string(), clear["src"].as_str().unwrap());
        assert_eq!(back[&pseudonym].to_string(), clear["src"].as_str().unwrap());
        assert!(
            page.contains(&src[i]) && page.contains(id.as_str()),
            "{id} on the page"
        );
    }
    // Bursts and timelines carry the same alert ids.
    let alerted: BTreeSet<String> = strs(&parquet(&pq, "bursts"), "alert_id")
        .into_iter()
        .filter(|i| !i.is_empty())
        .collect();
    let timeline_ids: BTreeSet<String> = strs(&parquet(&pq, "timeline"), "alert_id")
        .into_iter()
        .collect();
    let all_ids: BTreeSet<String> = ids.iter().cloned().collect();
    assert!(
        !alerted.is_empty() && alerted.is_subset(&all_ids),
        "{alerted:?}"
    );
    assert_eq!(timeline_ids, all_ids);

    // --pseudonymize-endpoints: no address of the clear run at all.
    let every = dir.path().join("report-every");
    analyze(
        dir.path(),
        "every",
        &s.pcap,
        &[
            "--pseudonymize",
            keyarg,
            "--pseudonymize-endpoints",
            "--report",
            every.to_str().unwrap(),
        ],
    );
    let clear_all: BTreeSet<IpAddr> = addresses_in(&s.outputs).into_iter().collect();
    for (what, text, want) in [
        ("Parquet tables", parquet_text(&every), in_tables),
        ("report.html", files_text(&every, &html), on_page),
    ] {
        let (leaked, n) = leaks(&text, &clear_all);
        assert!(n >= want, "{what}: only {n} addresses scanned");
        assert!(leaked.is_empty(), "{what}: addresses in clear: {leaked:?}");
    }
}
