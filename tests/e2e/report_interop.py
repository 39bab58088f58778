"""Reads a `burstwatch analyze --report` directory of Parquet tables the way analysts do:
pyarrow (schema, compute filters, dataset filters, sorts, joins), pandas (`read_parquet` with
filters, when pandas is installed) and DuckDB (SQL over the files). Any failure is an
exception (non-zero exit); a missing module exits with status 3 and names it.

Usage: report_interop.py DIR. Prints one JSON object for the Rust test to compare with the
JSON outputs of the same run.
"""

import datetime
import json
import os
import sys

try:
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
except ImportError as e:
    print(f"missing module: {e.name}", file=sys.stderr)
    sys.exit(3)
try:
    import pandas as pd
except ImportError:
    pd = None

TABLES = ["flows", "alerts", "bursts", "hosts", "endpoints", "timeline"]
UTC_US = pa.timestamp("us", tz="UTC")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def is_view(t):
    return t in (pa.string_view(), pa.binary_view())


def check_schema(path):
    """Text columns are `string`/`large_string`; `ts` and `*_ts` columns are
    `timestamp[us, tz=UTC]`, stored as Parquet TIMESTAMP(MICROS, isAdjustedToUTC=true)."""
    f = pq.ParquetFile(path)
    arrow = f.schema_arrow
    n_text = n_ts = 0
    for i, field in enumerate(arrow):
        where = f"{path}: {field.name} is {field.type}"
        assert not is_view(field.type), where
        assert not pa.types.is_dictionary(field.type), where
        assert not pa.types.is_nested(field.type), where
        if field.name == "ts" or field.name.endswith("_ts"):
            assert field.type == UTC_US, where
            logical = json.loads(f.schema.column(i).logical_type.to_json())
            want = {"Type": "Timestamp", "isAdjustedToUTC": True, "timeUnit": "microseconds"}
            assert want.items() <= logical.items(), f"{where}: Parquet {logical}"
            assert f.schema.column(i).physical_type == "INT64", where
            n_ts += 1
        elif pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            assert f.schema.column(i).physical_type == "BYTE_ARRAY", where
            n_text += 1
        else:
            assert not pa.types.is_timestamp(field.type), where
    return n_text, n_ts


def main(d):
    p = {t: os.path.join(d, f"{t}.parquet") for t in TABLES}
    columns = {}
    for t in TABLES:
        columns[t] = check_schema(p[t])
    assert all(n_text > 0 for n_text, _ in columns.values()), columns

    alerts = pq.read_table(p["alerts"])
    hosts = pq.read_table(p["hosts"])
    bursts = pq.read_table(p["bursts"])
    assert alerts.num_rows > 0, "no alerts"
    src = alerts["src"][0].as_py()

    # pyarrow.compute on a text column, and the same filter pushed into the reader.
    by_compute = alerts.filter(pc.equal(alerts["src"], src))
    by_reader = pq.read_table(p["alerts"], filters=[("src", "=", src)])
    assert by_compute.num_rows == by_reader.num_rows > 0
    # Sort by text, then time.
    mine = by_compute.sort_by([("src", "ascending"), ("start_ts", "ascending"), ("id", "ascending")])
    ids = mine["id"].to_pylist()
    start_us = pc.cast(mine["start_ts"], pa.int64()).to_pylist()
    assert start_us == sorted(start_us)
    # A timestamp comparison: alerts that started at or after this subscriber's first one.
    first = pa.scalar(start_us[0], type=pa.int64()).cast(UTC_US)
    later = alerts.filter(pc.greater_equal(alerts["start_ts"], first)).num_rows
    # Joins on text keys: every alert's subscriber has a hosts row; burst rows to their alert.
    joined = alerts.join(hosts, keys="src", right_keys="host", join_type="inner")
    assert joined.num_rows == alerts.num_rows, (joined.num_rows, alerts.num_rows)
    burst_join = bursts.join(
        alerts.select(["id", "kind"]), keys="alert_id", right_keys="id", join_type="inner"
    )
    assert set(burst_join["kind"].to_pylist()) <= {"burst"}
    # Whole-table sort on a text column (fails on string_view with pyarrow).
    hosts.sort_by([("host", "descending")])

    # pandas.
    if pd is not None:
        df = pd.read_parquet(p["alerts"], filters=[("src", "==", src)])
        assert len(df) == len(ids), (len(df), len(ids))
        assert str(df["start_ts"].dtype).startswith("datetime64[") and "UTC" in str(
            df["start_ts"].dtype
        ), df["start_ts"].dtype
        ts_filter = [("start_ts", ">=", pd.Timestamp(start_us[0], unit="us", tz="UTC"))]
        assert len(pd.read_parquet(p["alerts"], filters=ts_filter)) == later

    # DuckDB.
    con = duckdb.connect()
    rows = con.execute(
        "SELECT id, epoch_us(start_ts), typeof(start_ts), typeof(src) FROM read_parquet(?) "
        "WHERE src = ? ORDER BY start_ts, id",
        [p["alerts"], src],
    ).fetchall()
    assert [r[0] for r in rows] == ids, (rows, ids)
    assert [r[1] for r in rows] == start_us, (rows, start_us)
    assert {r[2] for r in rows} == {"TIMESTAMP WITH TIME ZONE"}, rows
    assert {r[3] for r in rows} == {"VARCHAR"}, rows
    first_iso = (EPOCH + datetime.timedelta(microseconds=start_us[0])).isoformat()
    (duck_later,) = con.execute(
        "SELECT count(*) FROM read_parquet(?) WHERE start_ts >= CAST(? AS TIMESTAMPTZ)",
        [p["alerts"], first_iso],
    ).fetchone()
    assert duck_later == later, (duck_later, later)
    (duck_bursts,) = con.execute(
        "SELECT count(*) FROM read_parquet(?) b JOIN read_parquet(?) a ON b.alert_id = a.id",
        [p["bursts"], p["alerts"]],
    ).fetchone()
    assert duck_bursts == burst_join.num_rows, (duck_bursts, burst_join.num_rows)

    print(
        json.dumps(
            {
                "src": src,
                "ids": ids,
                "start_us": start_us,
                "later": later,
                "bursts_joined": burst_join.num_rows,
                "columns": {t: {"text": c[0], "timestamps": c[1]} for t, c in columns.items()},
                "pandas": pd is not None,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
