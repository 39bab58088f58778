//! Whole-report tests: every table written, read back with polars and compared with the
//! documented schema; CSV parsed with that schema gives the same data as Parquet.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::IpAddr;

use burstwatch_engine::detect::{BurstOutcome, BurstRecord, EndpointInfo, Reason};
use burstwatch_engine::{AlertKind, DirStats, EndReason, FlowRecord, Prefix, Severity};
use polars::prelude::*;

use super::*;
use crate::schema::{all_tables, Table, Ty};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_767_225_600 * S;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn home() -> PrefixSet {
    PrefixSet::new(vec!["10.0.0.0/8".parse::<Prefix>().unwrap()])
}

fn flow(src: &str, dst: &str, up: u64, t: i64) -> FlowRecord {
    let dir = |bytes: u64, packets: u32| DirStats {
        packets,
        fragments: 0,
        bytes,
        payload: bytes / 2,
        first_ns: t,
        last_ns: t + 2 * S,
        tcp_flags: 0x1b,
    };
    FlowRecord {
        proto: 6,
        src: ip(src),
        sport: 40_000,
        dst: ip(dst),
        dport: 443,
        fwd: dir(up, 10),
        rev: dir(500, 5),
        end_reason: EndReason::Fin,
        context: None,
        icmp: None,
    }
}

fn alert(score: f64, t: i64) -> Alert {
    Alert {
        id: 0xdead_beef_0000_0001 + t as u64,
        kind: AlertKind::Burst,
        src: ip("10.0.0.1"),
        dst: ip("192.0.2.9"),
        dst_port: 8443,
        proto: 6,
        start_ns: t,
        end_ns: t + 5 * S,
        detected_ns: t + 10 * S,
        bytes_out: 9_000_000,
        bytes_in: 10_000,
        packets_out: 6_000,
        packets_in: 300,
        peak_bps: 20e6,
        flows: 1,
        connections: Default::default(),
        occurrence: 1,
        score,
        severity: Severity::High,
        reasons: vec![
            Reason {
                name: "rate_jump",
                value: 40.0,
                contribution: 0.2,
            },
            Reason {
                name: "rarity",
                value: 1.0,
                contribution: 0.3,
            },
            Reason {
                name: "something_new",
                value: 2.0,
                contribution: 0.0,
            },
        ],
        endpoint: EndpointInfo {
            prevalence: 1,
            popular: false,
            prefix_len: 24,
            prefix_prevalence: 1,
            prefix_popular: false,
            unseen: 0,
            prefix_unseen: 0,
            rarity_certain: true,
            first_seen_ns: Some(t - S),
            asn: None,
            asn_prevalence: None,
            as_org: None,
            country: Some("<XX>".into()),
            watched: false,
            shared: None,
        },
        baseline_bps: Some(1e6),
        rate_threshold: None,
        pair_before: None,
        emitted_early: None,
        sampling: 0,
    }
}

fn burst(outcome: BurstOutcome) -> BurstRecord {
    BurstRecord {
        src: ip("10.0.0.1"),
        dst: ip("192.0.2.9"),
        proto: 6,
        dst_port: 8443,
        start_ns: T0 + 100 * S,
        end_ns: T0 + 105 * S,
        bytes_up: 9_000_000,
        bytes_down: 10_000,
        packets_up: 6_000,
        packets_down: 300,
        peak_bps: 20e6,
        entry_bps: 5e6,
        baseline_bps: None,
        flows: 1,
        outcome,
        score: (outcome == BurstOutcome::Alerted).then_some(0.8),
        alert_id: (outcome == BurstOutcome::Alerted).then_some(7),
    }
}

/// A small report in `dir`; returns what was written.
fn write_report(dir: &Path, format: Format) -> Written {
    let mut r = Report::create(dir, format, home()).unwrap();
    for i in 0..50 {
        let t = T0 + i * S;
        r.add_flow(&flow(
            "10.0.0.1",
            &format!("198.51.100.{}", i % 7),
            1_000 + i as u64,
            t,
        ))
        .unwrap();
        r.add_flow(&flow("192.0.2.9", "10.0.0.2", 300, t)).unwrap(); // inbound-initiated
        r.packet(t, ip("10.0.0.1"), ip("198.51.100.1"), 1_000);
        r.packet(t, ip("198.51.100.1"), ip("10.0.0.1"), 400);
    }
    r.add_flow(&flow("10.0.0.1", "10.0.0.2", 5, T0)).unwrap(); // internal: not aggregated
    r.add_burst(&burst(BurstOutcome::Alerted)).unwrap();
    r.add_burst(&burst(BurstOutcome::TooSmall)).unwrap();
    r.add_alert(&alert(0.5, T0 + 20 * S));
    r.add_alert(&alert(0.9, T0 + 100 * S));
    let mut tl = r.plan_timelines();
    tl.add_packet(T0 + 101 * S, ip("10.0.0.1"), ip("192.0.2.9"), 1_500);
    tl.add_packet(T0 + 101 * S, ip("192.0.2.9"), ip("10.0.0.1"), 60);
    let run = RunInfo {
        inputs: vec!["a <b>.pcap".into()],
        version: "burstwatch test".into(),
        packets: 100,
        bytes: 70_000,
        first_ns: Some(T0),
        last_ns: Some(T0 + 49 * S),
        input_errors: 0,
    };
    r.finish(&run, &tl).unwrap()
}

fn dtype(ty: Ty) -> DataType {
    match ty {
        Ty::Str => DataType::String,
        Ty::U32 => DataType::UInt32,
        Ty::U64 => DataType::UInt64,
        Ty::F64 => DataType::Float64,
        Ty::Bool => DataType::Boolean,
        Ty::Ts => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
    }
}

fn documented(t: &Table) -> Schema {
    t.cols
        .iter()
        .map(|c| Field::new(c.name.into(), dtype(c.ty)))
        .collect()
}

fn read_parquet(path: &Path) -> DataFrame {
    let f = std::fs::File::open(path).unwrap();
    ParquetReader::new(f).finish().unwrap()
}

fn read_csv(path: &Path, schema: Schema) -> DataFrame {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_schema(Some(Arc::new(schema)))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .unwrap()
        .finish()
        .unwrap()
}

#[test]
fn parquet_tables_match_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_report(dir.path(), Format::Parquet);
    let rows: std::collections::HashMap<_, _> = w.tables.iter().copied().collect();
    assert_eq!(rows["flows"], 101);
    assert_eq!(rows["alerts"], 2);
    assert_eq!(rows["bursts"], 2);
    assert_eq!(rows["hosts"], 2);
    assert_eq!(rows["endpoints"], 8);
    assert_eq!(
        rows["timeline"],
        2 * (5 + 2 * timeline::MARGIN_SECONDS as u64 + 1)
    );
    for t in all_tables() {
        let df = read_parquet(&dir.path().join(format!("{}.parquet", t.name)));
        assert_eq!(**df.schema(), documented(&t), "table {}", t.name);
        let names: Vec<&str> = t.cols.iter().map(|c| c.name).collect();
        let got: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(got, names, "column order of {}", t.name);
        assert_eq!(df.height() as u64, rows[t.name], "table {}", t.name);
    }
    // Contents: alerts sorted by score, reasons flattened, unknown reasons kept in JSON.
    let alerts = read_parquet(&dir.path().join("alerts.parquet"));
    let score = alerts.column("score").unwrap().f64().unwrap();
    assert_eq!(score.get(0), Some(0.9));
    let rj = alerts
        .column("reason_rate_jump_contribution")
        .unwrap()
        .f64()
        .unwrap();
    assert_eq!(rj.get(0), Some(0.2));
    let vol = alerts.column("reason_volume_value").unwrap().f64().unwrap();
    assert_eq!(vol.get(0), None);
    let json = alerts.column("reasons_json").unwrap().str().unwrap();
    assert!(json.get(0).unwrap().contains("something_new"));
    // Hosts: the inbound-initiated flow counts for 10.0.0.2 with its directions swapped.
    let hosts = read_parquet(&dir.path().join("hosts.parquet"));
    let host = hosts.column("host").unwrap().str().unwrap();
    let up = hosts.column("bytes_up").unwrap().u64().unwrap();
    let down = hosts.column("bytes_down").unwrap().u64().unwrap();
    let i2 = (0..hosts.height())
        .find(|&i| host.get(i) == Some("10.0.0.2"))
        .unwrap();
    assert_eq!((up.get(i2), down.get(i2)), (Some(50 * 500), Some(50 * 300)));
    let i1 = (0..hosts.height())
        .find(|&i| host.get(i) == Some("10.0.0.1"))
        .unwrap();
    assert_eq!(
        hosts.column("bursts").unwrap().u64().unwrap().get(i1),
        Some(2)
    );
    assert_eq!(
        hosts.column("alerts").unwrap().u64().unwrap().get(i1),
        Some(2)
    );
    assert!(hosts
        .column("top5_endpoint")
        .unwrap()
        .str()
        .unwrap()
        .get(i1)
        .is_some());
    // Timeline: the packet counted in the right second of the top alert.
    let tl = read_parquet(&dir.path().join("timeline.parquet"));
    let ts = tl.column("ts").unwrap().cast(&DataType::Int64).unwrap();
    let ts = ts.i64().unwrap();
    let bu = tl.column("bytes_up").unwrap().u64().unwrap();
    let bd = tl.column("bytes_down").unwrap().u64().unwrap();
    let hit: Vec<_> = (0..tl.height()).filter(|&i| bu.get(i) != Some(0)).collect();
    assert_eq!(hit.len(), 1);
    assert_eq!(ts.get(hit[0]), Some((T0 / S + 101) * 1_000_000));
    assert_eq!(bd.get(hit[0]), Some(60));
}

/// The Arrow schema a Parquet file stores (what pyarrow, pandas and DuckDB's Arrow paths
/// read; polars maps text to its own view type whatever the file says, so it cannot tell).
fn stored_arrow_schema(path: &Path) -> polars_arrow::datatypes::ArrowSchema {
    use base64::Engine as _;
    let mut f = std::fs::File::open(path).unwrap();
    let meta = polars_parquet::read::read_metadata(&mut f).unwrap();
    let kv = meta.key_value_metadata().as_ref().unwrap();
    let encoded = kv.iter().find(|kv| kv.key == "ARROW:schema").unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.value.as_ref().unwrap())
        .unwrap();
    // Continuation marker and length, then the IPC schema message.
    assert_eq!(bytes[..4], [0xff; 4]);
    polars_arrow::io::ipc::read::deserialize_schema(&bytes[8..])
        .unwrap()
        .0
}

#[test]
fn parquet_files_hold_plain_strings_and_utc_microsecond_timestamps() {
    use polars_arrow::datatypes::{ArrowDataType, TimeUnit as ArrowTimeUnit};
    use polars_parquet::parquet::schema::types::{
        PhysicalType, PrimitiveLogicalType, TimeUnit as PqTimeUnit,
    };
    let dir = tempfile::tempdir().unwrap();
    write_report(dir.path(), Format::Parquet);
    for t in all_tables() {
        let path = dir.path().join(format!("{}.parquet", t.name));
        // The Parquet column types.
        let mut f = std::fs::File::open(&path).unwrap();
        let meta = polars_parquet::read::read_metadata(&mut f).unwrap();
        let cols = meta.schema().columns();
        assert_eq!(cols.len(), t.cols.len(), "table {}", t.name);
        for (col, want) in cols.iter().zip(t.cols) {
            let p = &col.descriptor.primitive_type;
            let what = format!("{}.{}: {p:?}", t.name, want.name);
            assert_eq!(p.field_info.name.as_str(), want.name, "{what}");
            match want.ty {
                Ty::Str => {
                    assert_eq!(p.physical_type, PhysicalType::ByteArray, "{what}");
                    assert_eq!(p.logical_type, Some(PrimitiveLogicalType::String), "{what}");
                }
                Ty::Ts => {
                    assert_eq!(p.physical_type, PhysicalType::Int64, "{what}");
                    assert_eq!(
                        p.logical_type,
                        Some(PrimitiveLogicalType::Timestamp {
                            unit: PqTimeUnit::Microseconds,
                            is_adjusted_to_utc: true
                        }),
                        "{what}"
                    );
                }
                Ty::U32 | Ty::U64 | Ty::F64 | Ty::Bool => {}
            }
        }
        // The Arrow types stored beside them: no view types.
        let arrow = stored_arrow_schema(&path);
        assert_eq!(arrow.len(), t.cols.len(), "table {}", t.name);
        for (field, want) in arrow.iter_values().zip(t.cols) {
            let what = format!("{}.{}: {:?}", t.name, want.name, field.dtype);
            let ok = match want.ty {
                Ty::Str => field.dtype == ArrowDataType::LargeUtf8,
                Ty::Ts => matches!(
                    &field.dtype,
                    ArrowDataType::Timestamp(ArrowTimeUnit::Microsecond, Some(tz)) if tz.as_str() == "UTC"
                ),
                Ty::U32 => field.dtype == ArrowDataType::UInt32,
                Ty::U64 => field.dtype == ArrowDataType::UInt64,
                Ty::F64 => field.dtype == ArrowDataType::Float64,
                Ty::Bool => field.dtype == ArrowDataType::Boolean,
            };
            assert!(ok, "{what}");
        }
    }
}

#[test]
fn timestamps_are_the_records_instants_in_microseconds() {
    let dir = tempfile::tempdir().unwrap();
    write_report(dir.path(), Format::Parquet);
    let us = |df: &DataFrame, col: &str| -> Vec<Option<i64>> {
        let c = df.column(col).unwrap().cast(&DataType::Int64).unwrap();
        let c = c.i64().unwrap();
        (0..c.len()).map(|i| c.get(i)).collect()
    };
    let alerts = read_parquet(&dir.path().join("alerts.parquet"));
    let t = (T0 + 100 * S) / 1_000;
    assert_eq!(us(&alerts, "start_ts")[0], Some(t));
    assert_eq!(us(&alerts, "end_ts")[0], Some(t + 5_000_000));
    assert_eq!(us(&alerts, "detected_ts")[0], Some(t + 10_000_000));
    assert_eq!(us(&alerts, "first_seen_ts")[0], Some(t - 1_000_000));
    let flows = read_parquet(&dir.path().join("flows.parquet"));
    assert_eq!(us(&flows, "first_ts")[0], Some(T0 / 1_000));
    assert_eq!(us(&flows, "last_ts")[0], Some((T0 + 2 * S) / 1_000));
    // CSV: RFC 3339 in UTC with microseconds.
    let csv = tempfile::tempdir().unwrap();
    write_report(csv.path(), Format::Csv);
    let text = std::fs::read_to_string(csv.path().join("flows.csv")).unwrap();
    let row = text.lines().nth(1).unwrap();
    assert!(
        row.contains(",2026-01-01T00:00:00.000000Z,2026-01-01T00:00:02.000000Z,"),
        "{row}"
    );
}

#[test]
fn csv_tables_parse_with_the_documented_schema_and_equal_parquet() {
    let pq = tempfile::tempdir().unwrap();
    let csv = tempfile::tempdir().unwrap();
    write_report(pq.path(), Format::Parquet);
    write_report(csv.path(), Format::Csv);
    for t in all_tables() {
        let a = read_parquet(&pq.path().join(format!("{}.parquet", t.name)));
        let path = csv.path().join(format!("{}.csv", t.name));
        let header = std::fs::read_to_string(&path).unwrap();
        let names: Vec<&str> = t.cols.iter().map(|c| c.name).collect();
        assert_eq!(
            header.lines().next().unwrap(),
            names.join(","),
            "table {}",
            t.name
        );
        let b = read_csv(&path, documented(&t));
        for (x, y) in a.columns().iter().zip(b.columns()) {
            // polars' CSV reader (without its time zone feature) drops the zone of the
            // timestamps it parses: compare their instants.
            let (x, y) = match x.dtype() {
                DataType::Datetime(..) => (
                    x.cast(&DataType::Int64).unwrap(),
                    y.cast(&DataType::Int64).unwrap(),
                ),
                _ => (x.clone(), y.clone()),
            };
            assert!(
                x.equals_missing(&y),
                "{}.{}: {:?} vs {:?}",
                t.name,
                x.name(),
                x.get(0),
                y.get(0)
            );
        }
    }
}

#[test]
fn schema_md_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("SCHEMA.md");
    let want = schema::markdown();
    if std::env::var_os("BURSTWATCH_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "crates/report/SCHEMA.md is out of date: rerun with BURSTWATCH_BLESS=1"
    );
}

#[test]
fn reason_columns_follow_reason_names() {
    let cols = schema::alert_cols();
    for name in schema::REASON_NAMES {
        for suffix in ["value", "contribution"] {
            let col = format!("reason_{name}_{suffix}");
            assert!(cols.iter().any(|c| c.name == col), "{col}");
        }
    }
    let mut names: Vec<_> = cols.iter().map(|c| c.name).collect();
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n, "duplicate column names");
}

#[test]
fn page_escapes_text_and_embeds_plots() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_report(dir.path(), Format::Parquet);
    let page = std::fs::read_to_string(w.html).unwrap();
    assert!(page.contains("a &lt;b&gt;.pcap"));
    assert!(!page.contains("<b>"));
    assert!(!page.contains("<script"));
    for external in ["src=", "href=\"http", "url(", "@import", "<link"] {
        assert!(!page.contains(external), "external reference: {external}");
    }
    // Overview plus one plot per alert.
    assert_eq!(page.matches("<svg").count(), 3);
    assert!(page.contains("id=\"a-"));
}

/// Keeps the first octet of IPv4 addresses and flips every bit of alert ids.
struct Coarse;

impl OutputMap for Coarse {
    fn addr(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v) => IpAddr::from([v.octets()[0], 0, 0, 0]),
            v6 => v6,
        }
    }
    fn alert_id(&self, id: u64) -> u64 {
        !id
    }
}

#[test]
fn addresses_and_alert_ids_go_through_the_output_map() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Report::create(dir.path(), Format::Csv, home()).unwrap();
    r.set_output_map(Box::new(Coarse));
    r.add_flow(&flow("10.0.0.1", "198.51.100.7", 10, T0))
        .unwrap();
    let a = alert(0.9, T0);
    r.add_alert(&a);
    let mut b = burst(BurstOutcome::Alerted);
    b.alert_id = Some(a.id);
    r.add_burst(&b).unwrap();
    let tl = r.plan_timelines();
    let w = r.finish(&RunInfo::default(), &tl).unwrap();
    let (clear_id, mapped_id) = (format!("{:016x}", a.id), format!("{:016x}", !a.id));
    for f in [
        "flows.csv",
        "alerts.csv",
        "bursts.csv",
        "hosts.csv",
        "endpoints.csv",
        "timeline.csv",
    ] {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert!(
            !text.contains("10.0.0.1") && !text.contains("198.51.100.7"),
            "{f}: {text}"
        );
        assert!(!text.contains(&clear_id), "{f}: {text}");
        if ["alerts.csv", "bursts.csv", "timeline.csv"].contains(&f) {
            assert!(text.contains(&mapped_id), "{f}: {text}");
        }
    }
    let page = std::fs::read_to_string(w.html).unwrap();
    assert!(!page.contains("10.0.0.1") && page.contains("10.0.0.0"));
    assert!(!page.contains(&clear_id) && page.contains(&format!("id=\"a-{mapped_id}\"")));
}

#[test]
fn traffic_summed_per_run_of_seconds_counts_like_its_packets() {
    let dir = tempfile::tempdir().unwrap();
    let mut by_packet = Report::create(dir.path(), Format::Csv, home()).unwrap();
    let mut by_second = Report::create(dir.path(), Format::Csv, home()).unwrap();
    let (sub, ext) = (ip("10.0.0.1"), ip("198.51.100.1"));
    // Sums over runs of packets within one second, handed over when the second changes (as
    // the shell does); packets out of order, some before the first one.
    let mut run: Option<(i64, u64, u64)> = None;
    for i in 0..20_000i64 {
        let t = T0 + i * S / 4 - (i % 7 == 3) as i64 * 5 * S;
        let (src, dst, len) = match i % 4 {
            0 => (ext, sub, 1_500),
            3 => (sub, ip("10.0.0.2"), 99),
            _ => (sub, ext, 60 + i as u32 % 900),
        };
        by_packet.packet(t, src, dst, len);
        let up = match (home().contains(src), home().contains(dst)) {
            (true, false) => true,
            (false, true) => false,
            _ => continue,
        };
        let sec = t.div_euclid(S) * S;
        let mut cur = match run {
            Some(r) if r.0 == sec => r,
            prev => {
                if let Some((t, u, d)) = prev {
                    by_second.traffic(t, u, d);
                }
                (sec, 0, 0)
            }
        };
        if up {
            cur.1 += u64::from(len);
        } else {
            cur.2 += u64::from(len);
        }
        run = Some(cur);
    }
    if let Some((t, u, d)) = run {
        by_second.traffic(t, u, d);
    }
    let a: Vec<_> = by_packet.overview.bins().collect();
    let b: Vec<_> = by_second.overview.bins().collect();
    assert!(a.len() > 1_000, "{}", a.len());
    assert_eq!(a, b);
}
