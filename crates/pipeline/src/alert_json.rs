//! Alerts as JSON lines, and the top-alerts table for the terminal.

use std::io::Write;

use burstwatch_engine::Alert;
use serde::Serialize;

use crate::flow_json::{Proto, Ts, COMMUNITY_ID_SEED};
use crate::privacy::Privacy;
use crate::timestamp::Rfc3339;

#[derive(Serialize)]
struct ReasonJson {
    name: &'static str,
    value: f64,
    contribution: f64,
}

/// The subscriber side of an alert.
#[derive(Serialize)]
struct SubscriberJson {
    address: std::net::IpAddr,
}

#[derive(Serialize)]
struct EndpointJson<'a> {
    address: std::net::IpAddr,
    port: u16,
    prevalence: u32,
    popular: bool,
    prefix_len: u8,
    prefix_prevalence: u32,
    prefix_popular: bool,
    /// Sampled input only: subscribers sampling likely hid (Chao1), counted in the rarity gate.
    #[serde(skip_serializing_if = "is_zero")]
    prevalence_unseen: u32,
    #[serde(skip_serializing_if = "is_zero")]
    prefix_prevalence_unseen: u32,
    rarity_certain: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_seen: Option<Ts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn_prevalence: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn_popular: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    as_org: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    watched: bool,
    /// With a shared prevalence store: this sensor's counts and the store's.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterJson>,
}

/// The endpoint's prevalence here and over every sensor.
#[derive(Serialize)]
struct ClusterJson {
    local_prevalence: u32,
    local_popular: bool,
    local_prefix_prevalence: u32,
    local_prefix_popular: bool,
    /// `null` when the store did not answer in time (then `rarity_certain` is false).
    global_prevalence: Option<u32>,
    global_popular: Option<bool>,
    global_prefix_prevalence: Option<u32>,
    global_prefix_popular: Option<bool>,
    sensors_seen: Option<u32>,
}

#[derive(Serialize)]
struct AlertJson<'a> {
    timestamp: Rfc3339,
    id: String,
    /// `daemon.sensor` (or `cluster.sensor_id`) when set: which sensor raised it.
    #[serde(skip_serializing_if = "Option::is_none")]
    sensor: Option<&'a str>,
    kind: &'static str,
    src: std::net::IpAddr,
    dst: std::net::IpAddr,
    dst_port: u16,
    proto: Proto,
    start_ts: Ts,
    end_ts: Ts,
    detected_ts: Ts,
    bytes_out: u64,
    bytes_in: u64,
    packets_out: u64,
    packets_in: u64,
    peak_bps: f64,
    flows: u32,
    community_ids: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    community_ids_omitted: u32,
    occurrence: u32,
    score: f64,
    severity: &'static str,
    reasons: Vec<ReasonJson>,
    subscriber: SubscriberJson,
    endpoint: EndpointJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    baseline_bps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_threshold: Option<RateThresholdJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pair_before: Option<PairRatesJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    emitted_early: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<crate::flow_input::AlertSource>,
}

#[derive(Serialize)]
struct RateThresholdJson {
    bps: f64,
    basis: &'static str,
}

#[derive(Serialize)]
struct PairRatesJson {
    out_10s_bps: f64,
    out_60s_bps: f64,
    in_10s_bps: f64,
    in_60s_bps: f64,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// Round to a fixed number of decimals so output is stable and readable.
fn round(x: f64, decimals: i32) -> f64 {
    let m = 10f64.powi(decimals);
    (x * m).round() / m
}

/// The alert id as printed: 16 hex digits.
pub fn id_string(id: u64) -> String {
    format!("{id:016x}")
}

/// Write one alert as a JSON line, its addresses passed through `privacy`. (Reasons carry
/// names and numbers only, never addresses.) An alert raised from flow export gets `source`:
/// what its volume was estimated from; a named sensor's alert gets `sensor`.
pub fn write_alert_from<W: Write>(
    out: &mut W,
    a: &Alert,
    privacy: &Privacy,
    source: Option<crate::flow_input::AlertSource>,
    sensor: Option<&str>,
) -> std::io::Result<()> {
    let (src, dst) = (privacy.addr(a.src), privacy.addr(a.dst));
    // Over the addresses as written (see `flow_json::write_record`).
    let community_ids: Vec<String> = a
        .connections
        .as_slice()
        .iter()
        .filter_map(|c| c.community_id(COMMUNITY_ID_SEED, src, dst))
        .collect();
    let listed = u32::try_from(community_ids.len()).unwrap_or(u32::MAX);
    let json = AlertJson {
        timestamp: Rfc3339(a.detected_ns),
        id: id_string(privacy.alert_id(a.id)),
        sensor: sensor.filter(|s| !s.is_empty()),
        kind: a.kind.as_str(),
        src,
        dst,
        dst_port: a.dst_port,
        proto: Proto::of(a.proto),
        start_ts: Ts(a.start_ns),
        end_ts: Ts(a.end_ns),
        detected_ts: Ts(a.detected_ns),
        bytes_out: a.bytes_out,
        bytes_in: a.bytes_in,
        packets_out: a.packets_out,
        packets_in: a.packets_in,
        peak_bps: round(a.peak_bps, 0),
        flows: a.flows,
        community_ids_omitted: a.flows.saturating_sub(listed),
        community_ids,
        occurrence: a.occurrence,
        score: round(a.score, 4),
        severity: a.severity.as_str(),
        reasons: a
            .reasons
            .iter()
            .map(|r| ReasonJson {
                name: r.name,
                value: round(r.value, 4),
                contribution: round(r.contribution, 4),
            })
            .collect(),
        subscriber: SubscriberJson { address: src },
        endpoint: EndpointJson {
            address: dst,
            port: a.dst_port,
            prevalence: a.endpoint.prevalence,
            popular: a.endpoint.popular,
            prefix_len: a.endpoint.prefix_len,
            prefix_prevalence: a.endpoint.prefix_prevalence,
            prefix_popular: a.endpoint.prefix_popular,
            prevalence_unseen: a.endpoint.unseen,
            prefix_prevalence_unseen: a.endpoint.prefix_unseen,
            rarity_certain: a.endpoint.rarity_certain,
            first_seen: a.endpoint.first_seen_ns.map(Ts),
            asn: a.endpoint.asn,
            asn_prevalence: a.endpoint.asn_prevalence.map(|(n, _)| n),
            asn_popular: a.endpoint.asn_prevalence.map(|(_, p)| p),
            as_org: a.endpoint.as_org.as_deref(),
            country: a.endpoint.country.as_deref(),
            watched: a.endpoint.watched,
            cluster: a.endpoint.shared.map(|s| ClusterJson {
                local_prevalence: s.local_prevalence,
                local_popular: s.local_popular,
                local_prefix_prevalence: s.local_prefix_prevalence,
                local_prefix_popular: s.local_prefix_popular,
                global_prevalence: s.global.map(|g| g.prevalence),
                global_popular: s.global.map(|g| g.popular),
                global_prefix_prevalence: s.global.map(|g| g.prefix_prevalence),
                global_prefix_popular: s.global.map(|g| g.prefix_popular),
                sensors_seen: s.global.map(|g| g.sensors),
            }),
        },
        baseline_bps: a.baseline_bps.map(|b| round(b, 0)),
        rate_threshold: a.rate_threshold.map(|t| RateThresholdJson {
            bps: round(t.bps, 0),
            basis: t.basis.as_str(),
        }),
        pair_before: a.pair_before.map(|r| PairRatesJson {
            out_10s_bps: round(r.up_10s * 8.0, 0),
            out_60s_bps: round(r.up_60s * 8.0, 0),
            in_10s_bps: round(r.down_10s * 8.0, 0),
            in_60s_bps: round(r.down_60s * 8.0, 0),
        }),
        emitted_early: a.emitted_early.map(|r| r.as_str()),
        source,
    };
    serde_json::to_writer(&mut *out, &json)?;
    out.write_all(b"\n")
}

fn human_bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut x = b as f64;
    let mut i = 0;
    while x >= 1000.0 && i < U.len() - 1 {
        x /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{x:.1} {}", U[i])
    }
}

/// Print the highest-scoring alerts as a table, addresses passed through `privacy`. Columns are
/// as wide as their widest cell, so IPv6 subscribers and endpoints keep the table aligned.
pub fn print_top<W: Write>(w: &mut W, alerts: &[Alert], limit: usize, privacy: &Privacy) {
    if alerts.is_empty() {
        let _ = writeln!(w, "burstwatch: no alerts");
        return;
    }
    let mut sorted: Vec<&Alert> = alerts.iter().collect();
    sorted.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.start_ns.cmp(&b.start_ns))
    });
    let _ = writeln!(
        w,
        "burstwatch: {} alert(s); top {}:",
        alerts.len(),
        limit.min(alerts.len())
    );
    let rows: Vec<[String; COLUMNS]> = std::iter::once(HEADER.map(String::from))
        .chain(
            sorted
                .into_iter()
                .take(limit)
                .map(|a| table_row(a, privacy)),
        )
        .collect();
    for line in render_table(&rows) {
        let _ = writeln!(w, "{line}");
    }
}

/// Lines of a table whose columns are as wide as their widest cell (in characters): text
/// columns left-aligned, numbers right-aligned, the last column (reasons) left as it is.
fn render_table(rows: &[[String; COLUMNS]]) -> Vec<String> {
    let mut widths = [0usize; COLUMNS];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let mut line = String::from(" ");
            for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
                line.push(' ');
                if i == COLUMNS - 1 {
                    line.push(' ');
                    line.push_str(cell);
                } else if RIGHT_ALIGNED.contains(&i) {
                    line.push_str(&format!("{cell:>width$}"));
                } else {
                    line.push_str(&format!("{cell:<width$}"));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// Cells of one alert-table row.
const COLUMNS: usize = 10;
/// The alert table's column names.
const HEADER: [&str; COLUMNS] = [
    "severity",
    "kind",
    "score",
    "subscriber",
    "endpoint",
    "out",
    "in",
    "peak",
    "hosts",
    "top reasons",
];
/// The numeric columns: out, in, peak, hosts.
const RIGHT_ALIGNED: [usize; 4] = [5, 6, 7, 8];

fn table_row(a: &Alert, privacy: &Privacy) -> [String; COLUMNS] {
    let mut reasons: Vec<_> = a.reasons.iter().filter(|r| r.contribution > 0.0).collect();
    reasons.sort_by(|x, y| y.contribution.total_cmp(&x.contribution));
    let top: Vec<String> = reasons
        .iter()
        .take(3)
        .map(|r| format!("{} +{:.2}", r.name, r.contribution))
        .collect();
    let dst = privacy.addr(a.dst);
    let endpoint = match dst {
        std::net::IpAddr::V6(_) => format!("[{}]:{}", dst, a.dst_port),
        std::net::IpAddr::V4(_) => format!("{}:{}", dst, a.dst_port),
    };
    [
        a.severity.as_str().to_string(),
        a.kind.as_str().to_string(),
        format!("{:.2}", a.score),
        privacy.addr(a.src).to_string(),
        endpoint,
        human_bytes(a.bytes_out),
        human_bytes(a.bytes_in),
        format!("{:.1} Mb/s", a.peak_bps / 1e6),
        a.endpoint.prevalence.to_string(),
        top.join(", "),
    ]
}

#[cfg(test)]
mod table_tests {
    use super::*;

    fn row(cells: [&str; COLUMNS]) -> [String; COLUMNS] {
        cells.map(String::from)
    }

    #[test]
    fn ipv6_cells_widen_their_columns_and_every_line_stays_aligned() {
        let rows = [
            row(HEADER),
            row([
                "high",
                "burst",
                "0.71",
                "10.0.0.7",
                "198.51.100.9:443",
                "8.4 MiB",
                "12.0 KiB",
                "30.2 Mb/s",
                "1",
                "rarity +0.30",
            ]),
            row([
                "critical",
                "beacon",
                "0.93",
                "fd3f:dc00:3:6400:c22f:e576:c8bf:8c53",
                "[2001:db8:e007:0:9f2e:c883:6d40:8bd3]:8443",
                "120 B",
                "96 B",
                "0.0 Mb/s",
                "12",
                "regularity +0.40",
            ]),
        ];
        let lines = render_table(&rows);
        // The column after each cell starts at the same character on every line.
        let starts = |line: &str, cells: &[String; COLUMNS]| -> Vec<usize> {
            let mut at = 0;
            cells[..COLUMNS - 1]
                .iter()
                .map(|c| {
                    let found = line[at..].find(c.as_str()).map(|i| i + at);
                    let i = found.unwrap_or(usize::MAX);
                    at = i.saturating_add(c.len());
                    at
                })
                .collect()
        };
        let header_ends: Vec<usize> = starts(&lines[0], &rows[0]);
        for (line, cells) in lines.iter().zip(&rows).skip(1) {
            let ends = starts(line, cells);
            // Left-aligned columns (severity .. endpoint) start where the header's start;
            // right-aligned ones (out .. hosts) end where the header's end.
            for i in RIGHT_ALIGNED {
                assert_eq!(ends[i], header_ends[i], "column {i}:\n{}", lines.join("\n"));
            }
            for i in 0..5 {
                let start = ends[i] - cells[i].len();
                let header_start = header_ends[i] - rows[0][i].len();
                assert_eq!(start, header_start, "column {i}:\n{}", lines.join("\n"));
            }
            assert!(line.ends_with(cells[COLUMNS - 1].as_str()));
        }
        // One space between columns at their widest.
        assert!(lines[2].contains("fd3f:dc00:3:6400:c22f:e576:c8bf:8c53 [2001:db8"));
    }
}
