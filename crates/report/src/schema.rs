//! The tables' columns: names, types and meanings, in one place.
//!
//! The writers build every table from these definitions, `SCHEMA.md` is generated from them
//! (a test keeps it current) and the read-back tests compare written files against them.

/// Column type as written. Every column may hold nulls where its description says so.
///
/// Parquet files carry plain Arrow types only (no view types), so that every Arrow-based
/// reader can filter, sort and join on them: see [`Ty::arrow_name`] and [`Ty::parquet_name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// UTF-8 text.
    Str,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// 64-bit float.
    F64,
    /// Boolean.
    Bool,
    /// An instant in UTC with microsecond precision.
    Ts,
}

impl Ty {
    /// Every type, in the order SCHEMA.md lists them.
    pub const ALL: [Ty; 6] = [Ty::Str, Ty::U32, Ty::U64, Ty::F64, Ty::Bool, Ty::Ts];

    /// The Arrow type a Parquet reader sees (pyarrow's spelling), which SCHEMA.md lists.
    pub fn arrow_name(self) -> &'static str {
        match self {
            Ty::Str => "large_string",
            Ty::U32 => "uint32",
            Ty::U64 => "uint64",
            Ty::F64 => "double",
            Ty::Bool => "bool",
            Ty::Ts => "timestamp[us, tz=UTC]",
        }
    }

    /// The Parquet physical type and logical type as written.
    pub fn parquet_name(self) -> &'static str {
        match self {
            Ty::Str => "BYTE_ARRAY, STRING",
            Ty::U32 => "INT32, INTEGER(32, unsigned)",
            Ty::U64 => "INT64, INTEGER(64, unsigned)",
            Ty::F64 => "DOUBLE",
            Ty::Bool => "BOOLEAN",
            Ty::Ts => "INT64, TIMESTAMP(MICROS, isAdjustedToUTC=true)",
        }
    }
}

/// One column.
#[derive(Debug, Clone, Copy)]
pub struct Col {
    /// Column name.
    pub name: &'static str,
    /// Its type.
    pub ty: Ty,
    /// What it holds.
    pub doc: &'static str,
}

const fn c(name: &'static str, ty: Ty, doc: &'static str) -> Col {
    Col { name, ty, doc }
}

/// One table: its file stem and columns.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// File stem (`flows` → `flows.parquet` / `flows.csv`).
    pub name: &'static str,
    /// One line on what a row is.
    pub doc: &'static str,
    /// Columns in file order.
    pub cols: &'static [Col],
}

/// Reason names the detector emits; each gets a `reason_<name>_value` and
/// `reason_<name>_contribution` column in `alerts` (all reasons are also in `reasons_json`).
pub const REASON_NAMES: [&str; 11] = [
    "rate_jump",
    "volume",
    "asymmetry",
    "rarity",
    "novelty",
    "recurrence",
    "port_rarity",
    "watchlist",
    "regularity",
    "interval",
    "warmup",
];

/// Every flow record.
pub const FLOWS: Table = Table {
    name: "flows",
    doc: "One row per flow record (the fields of `analyze --flows`); `src` is the initiator.",
    cols: &[
        c("proto", Ty::Str, "`tcp`, `udp`, `icmp`, `icmp6`, `sctp`, else the IP protocol number as text"),
        c("src", Ty::Str, "initiator address"),
        c("sport", Ty::U32, "initiator port (0 where the protocol has none)"),
        c("dst", Ty::Str, "responder address"),
        c("dport", Ty::U32, "responder port"),
        c("first_ts", Ty::Ts, "first packet"),
        c("last_ts", Ty::Ts, "last packet"),
        c("packets_fwd", Ty::U64, "frames initiator → responder"),
        c("packets_rev", Ty::U64, "frames responder → initiator"),
        c("bytes_fwd", Ty::U64, "L3 bytes initiator → responder"),
        c("bytes_rev", Ty::U64, "L3 bytes responder → initiator"),
        c("payload_fwd", Ty::U64, "transport payload bytes initiator → responder"),
        c("payload_rev", Ty::U64, "transport payload bytes responder → initiator"),
        c("tcp_flags_fwd", Ty::Str, "TCP flags seen, e.g. `SAF`; null for other protocols"),
        c("tcp_flags_rev", Ty::Str, "TCP flags seen in reverse; null for other protocols"),
        c("fragments_fwd", Ty::U64, "later IP fragments counted in `packets_fwd`"),
        c("fragments_rev", Ty::U64, "later IP fragments counted in `packets_rev`"),
        c("end_reason", Ty::Str, "`idle`, `active`, `fin`, `rst`, `evicted`, `end_of_input`"),
        c("vlan", Ty::Str, "VLAN ids, outermost first, comma-separated; null when untagged"),
        c("mpls_label", Ty::U32, "top MPLS label; null when none"),
        c("tunnel", Ty::Str, "stripped tunnel kinds, outermost first, `/`-separated (e.g. `gre/vxlan`); null when none"),
        c("tunnel_outer_src", Ty::Str, "outermost tunnel's source address; null when none"),
        c("tunnel_outer_dst", Ty::Str, "outermost tunnel's destination address; null when none"),
    ],
};

/// Column definitions of `alerts` before the per-reason columns.
const ALERT_HEAD: &[Col] = &[
    c("id", Ty::Str, "alert id, 16 hex digits (as in the alert JSON)"),
    c("kind", Ty::Str, "`burst` or `beacon`"),
    c("severity", Ty::Str, "`low`, `medium`, `high`, `critical`"),
    c("score", Ty::F64, "score in [0, 1]"),
    c("src", Ty::Str, "subscriber address"),
    c("dst", Ty::Str, "endpoint address"),
    c("dst_port", Ty::U32, "endpoint port that carried most upstream bytes"),
    c("proto", Ty::Str, "protocol of that port (name or number as text)"),
    c("start_ts", Ty::Ts, "event start"),
    c("end_ts", Ty::Ts, "event end"),
    c("detected_ts", Ty::Ts, "packet time at which the event was complete"),
    c("bytes_out", Ty::U64, "L3 bytes subscriber → endpoint (beacons: since the pair was first seen)"),
    c("bytes_in", Ty::U64, "L3 bytes endpoint → subscriber"),
    c("packets_out", Ty::U64, "packets subscriber → endpoint"),
    c("packets_in", Ty::U64, "packets endpoint → subscriber"),
    c("peak_bps", Ty::F64, "highest one-second upstream rate, bit/s (0 for beacons)"),
    c("flows", Ty::U64, "distinct connections the burst used (0 for beacons)"),
    c("occurrence", Ty::U64, "events of this kind for the pair so far, this one included"),
    c("baseline_bps", Ty::F64, "subscriber's p95 upstream bit/s when the burst started; null when not warmed up or a beacon"),
    c("prevalence", Ty::U64, "distinct subscribers talking to the endpoint within the look-back"),
    c("popular", Ty::Bool, "more subscribers than the exact set tracks"),
    c("rarity_certain", Ty::Bool, "the look-back had filled when the alert was made"),
    c("first_seen_ts", Ty::Ts, "when this subscriber first talked to the endpoint; null if unknown"),
    c("asn", Ty::U32, "endpoint's autonomous system; null without an ASN database"),
    c("country", Ty::Str, "endpoint's country code; null without a country database"),
    c("watched", Ty::Bool, "endpoint is on the watch list"),
];

/// Column definitions of `alerts` after the per-reason columns.
const ALERT_TAIL: &[Col] = &[c(
    "reasons_json",
    Ty::Str,
    "every reason as a JSON array of `{name, value, contribution}` (also names not listed above)",
)];

/// Doc text of the per-reason columns (the names are generated from [`REASON_NAMES`]).
pub const REASON_VALUE_DOC: &str =
    "the reason's measured value; null when the alert has no such reason";
/// Doc text of the per-reason contribution columns.
pub const REASON_CONTRIBUTION_DOC: &str =
    "what the reason added to the score (negative for damping); null when absent";

/// Per-reason column names, in file order: `reason_<name>_value`, `reason_<name>_contribution`.
const REASON_COLS: &[Col] = &{
    let mut out = [c("", Ty::F64, ""); 2 * REASON_NAMES.len()];
    let names: [&str; 22] = [
        "reason_rate_jump_value",
        "reason_rate_jump_contribution",
        "reason_volume_value",
        "reason_volume_contribution",
        "reason_asymmetry_value",
        "reason_asymmetry_contribution",
        "reason_rarity_value",
        "reason_rarity_contribution",
        "reason_novelty_value",
        "reason_novelty_contribution",
        "reason_recurrence_value",
        "reason_recurrence_contribution",
        "reason_port_rarity_value",
        "reason_port_rarity_contribution",
        "reason_watchlist_value",
        "reason_watchlist_contribution",
        "reason_regularity_value",
        "reason_regularity_contribution",
        "reason_interval_value",
        "reason_interval_contribution",
        "reason_warmup_value",
        "reason_warmup_contribution",
    ];
    let mut i = 0;
    while i < names.len() {
        out[i] = c(
            names[i],
            Ty::F64,
            if i % 2 == 0 {
                REASON_VALUE_DOC
            } else {
                REASON_CONTRIBUTION_DOC
            },
        );
        i += 1;
    }
    out
};

/// All columns of `alerts`, in file order.
pub fn alert_cols() -> Vec<Col> {
    let mut v = ALERT_HEAD.to_vec();
    v.extend_from_slice(REASON_COLS);
    v.extend_from_slice(ALERT_TAIL);
    v
}

/// One row per alert.
pub fn alerts() -> Table {
    static COLS: std::sync::OnceLock<Vec<Col>> = std::sync::OnceLock::new();
    Table {
        name: "alerts",
        doc: "One row per alert, sorted by score (highest first); the reasons flattened into columns.",
        cols: COLS.get_or_init(alert_cols),
    }
}

/// Every segmented burst with its gate outcome.
pub const BURSTS: Table = Table {
    name: "bursts",
    doc: "One row per burst the detector segmented, whatever the gates decided.",
    cols: &[
        c("src", Ty::Str, "subscriber address"),
        c("dst", Ty::Str, "endpoint address"),
        c("proto", Ty::Str, "protocol of the port that carried most upstream bytes (`0` if none)"),
        c("dst_port", Ty::U32, "that endpoint port"),
        c("start_ts", Ty::Ts, "first packet of the burst"),
        c("end_ts", Ty::Ts, "last packet of the burst"),
        c("bytes_up", Ty::U64, "L3 bytes subscriber → endpoint during the burst"),
        c("bytes_down", Ty::U64, "L3 bytes endpoint → subscriber during the burst"),
        c("packets_up", Ty::U64, "packets subscriber → endpoint"),
        c("packets_down", Ty::U64, "packets endpoint → subscriber"),
        c("peak_bps", Ty::F64, "highest one-second upstream rate, bit/s"),
        c("entry_bps", Ty::F64, "upstream rate a second needed to start the burst, bit/s"),
        c("baseline_bps", Ty::F64, "subscriber's p95 upstream bit/s at the start; null when not warmed up"),
        c("flows", Ty::U64, "distinct connections (capped at 64)"),
        c("outcome", Ty::Str, "`alerted`, `too_long`, `too_small`, `not_upstream`, `allowed`, `common_endpoint`, `low_score`"),
        c("score", Ty::F64, "score, when the burst was scored (`alerted`, `low_score`); else null"),
        c("alert_id", Ty::Str, "the alert's id when `alerted`; else null"),
    ],
};

/// Per-subscriber totals.
pub const HOSTS: Table = Table {
    name: "hosts",
    doc: "One row per home host (subscriber) seen in a flow with exactly one side in the home networks.",
    cols: &[
        c("host", Ty::Str, "subscriber address"),
        c("bytes_up", Ty::U64, "L3 bytes to external endpoints"),
        c("bytes_down", Ty::U64, "L3 bytes from external endpoints"),
        c("packets_up", Ty::U64, "packets to external endpoints"),
        c("packets_down", Ty::U64, "packets from external endpoints"),
        c("flows", Ty::U64, "flow records with an external endpoint"),
        c("bursts", Ty::U64, "bursts segmented (any outcome)"),
        c("alerts", Ty::U64, "alerts (burst and beacon)"),
        c("top1_endpoint", Ty::Str, "endpoint with the most bytes (both ways); null if none"),
        c("top1_bytes", Ty::U64, "its bytes (an upper bound once the host had more than 32 endpoints)"),
        c("top2_endpoint", Ty::Str, "second endpoint by bytes"),
        c("top2_bytes", Ty::U64, "its bytes"),
        c("top3_endpoint", Ty::Str, "third endpoint by bytes"),
        c("top3_bytes", Ty::U64, "its bytes"),
        c("top4_endpoint", Ty::Str, "fourth endpoint by bytes"),
        c("top4_bytes", Ty::U64, "its bytes"),
        c("top5_endpoint", Ty::Str, "fifth endpoint by bytes"),
        c("top5_bytes", Ty::U64, "its bytes"),
    ],
};

/// Per-endpoint totals.
pub const ENDPOINTS: Table = Table {
    name: "endpoints",
    doc: "One row per external endpoint seen in a flow with exactly one side in the home networks.",
    cols: &[
        c("endpoint", Ty::Str, "external address"),
        c(
            "hosts",
            Ty::U64,
            "distinct home hosts that talked to it (prevalence; exact up to 256)",
        ),
        c(
            "hosts_capped",
            Ty::Bool,
            "more than 256 home hosts: `hosts` is a lower bound",
        ),
        c("first_ts", Ty::Ts, "first packet of its first flow"),
        c("last_ts", Ty::Ts, "last packet of its last flow"),
        c("bytes_up", Ty::U64, "L3 bytes from home hosts to it"),
        c("bytes_down", Ty::U64, "L3 bytes from it to home hosts"),
        c("flows", Ty::U64, "flow records"),
    ],
};

/// Per-second traffic of alerted pairs.
pub const TIMELINE: Table = Table {
    name: "timeline",
    doc: "Per alert (up to 1,000, highest score first), one row per second of the pair's traffic from 30 s before the alert span to 30 s after (at most the last hour of it), from a second pass over the inputs.",
    cols: &[
        c("alert_id", Ty::Str, "the alert's id"),
        c("src", Ty::Str, "subscriber address"),
        c("dst", Ty::Str, "endpoint address"),
        c("ts", Ty::Ts, "start of the second"),
        c("bytes_up", Ty::U64, "L3 bytes subscriber → endpoint in that second"),
        c("bytes_down", Ty::U64, "L3 bytes endpoint → subscriber in that second"),
        c("packets_up", Ty::U64, "packets subscriber → endpoint"),
        c("packets_down", Ty::U64, "packets endpoint → subscriber"),
        c("in_span", Ty::Bool, "the second overlaps the alert's span"),
    ],
};

/// Every table, in the order SCHEMA.md lists them.
pub fn all_tables() -> [Table; 6] {
    [FLOWS, alerts(), BURSTS, HOSTS, ENDPOINTS, TIMELINE]
}

/// SCHEMA.md's text, generated from the definitions above.
pub fn markdown() -> String {
    let mut s = String::from(
        "# Report tables\n\n\
         Generated from `src/schema.rs` (a test fails when this file is out of date).\n\n\
         `burstwatch analyze ... --report DIR` writes each table as `DIR/<table>.parquet`, or\n\
         with `--report-format csv` as `DIR/<table>.csv` with the same columns (a header row,\n\
         nulls as empty fields). No column is a list, struct, dictionary or view type\n\
         (`string_view`), so the files open as-is in polars, DuckDB, pandas/pyarrow (filters,\n\
         `pyarrow.compute`, sorts and joins included) and spreadsheets. Addresses are text,\n\
         written through one function (`Report::addr_text`; alert ids through\n\
         `Report::id_text`), so a pseudonymising map applies to every table and the HTML page\n\
         alike.\n\n\
         Timestamps (`ts` and the `*_ts` columns) are instants in UTC with microsecond\n\
         precision: the same instants as the epoch seconds of the JSON outputs.\n\n\
         The types below are the Arrow types a Parquet reader sees; as written and as other\n\
         tools read them:\n\n",
    );
    s.push_str(
        "| type | Parquet (physical, logical) | polars | DuckDB (Parquet) | CSV |\n|---|---|---|---|---|\n",
    );
    for ty in Ty::ALL {
        let (polars, duckdb, csv) = match ty {
            Ty::Str => ("String", "VARCHAR", "text"),
            Ty::U32 => ("UInt32", "UINTEGER", "decimal digits"),
            Ty::U64 => ("UInt64", "UBIGINT", "decimal digits"),
            Ty::F64 => ("Float64", "DOUBLE", "decimal number"),
            Ty::Bool => ("Boolean", "BOOLEAN", "`true` / `false`"),
            Ty::Ts => (
                "Datetime(\"us\", \"UTC\")",
                "TIMESTAMP WITH TIME ZONE",
                "RFC 3339 in UTC, e.g. `2026-01-01T00:00:00.000000Z`",
            ),
        };
        s.push_str(&format!(
            "| `{}` | {} | {polars} | {duckdb} | {csv} |\n",
            ty.arrow_name(),
            ty.parquet_name()
        ));
    }
    for t in all_tables() {
        s.push_str(&format!(
            "\n## `{}`\n\n{}\n\n| column | type | meaning |\n|---|---|---|\n",
            t.name, t.doc
        ));
        for col in t.cols {
            s.push_str(&format!(
                "| `{}` | {} | {} |\n",
                col.name,
                col.ty.arrow_name(),
                col.doc
            ));
        }
    }
    s
}
