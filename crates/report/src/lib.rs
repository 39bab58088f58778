//! # burstwatch-report
//!
//! Forensic reports of an `analyze` run: Parquet (or CSV) tables of flows, alerts, bursts,
//! hosts, endpoints and per-second alert timelines, and `report.html`, one self-contained page
//! with the run summary, the alerts and an inline SVG plot per alert.
//!
//! The shell feeds a [`Report`] as the engine hands out records (per record, never per
//! packet, except the cheap whole-run overview counter), plans the alert [`Timelines`], fills
//! them in a second pass over the inputs, and calls [`Report::finish`]:
//!
//! ```text
//!  flow records ─add_flow──▶ ┌────────┐ ─▶ flows.parquet (streamed, 64 Ki rows per row group)
//!  burst records ─add_burst▶ │ Report │ ─▶ bursts.parquet, hosts, endpoints
//!  alerts ───────add_alert─▶ │        │ ─▶ alerts.parquet
//!  packets ──packet/traffic─▶└────────┘     (overview bins)
//!  plan_timelines ─▶ Timelines ◀─ second pass: add_packet ─▶ timeline.parquet, report.html
//! ```
//!
//! Memory is bounded: flows and bursts are written in batches; hosts, endpoints, alerts and
//! timelines have caps (see `SCHEMA.md` for every column). Addresses and alert ids become text
//! in one place, [`Report::addr_text`] and [`Report::id_text`], which apply the
//! [`OutputMap`] given to [`Report::set_output_map`] (pseudonymisation).
#![forbid(unsafe_code)]

mod aggregate;
mod error;
mod html;
mod plot;
mod rows;
pub mod schema;
mod table;
mod timeline;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use burstwatch_engine::detect::{BurstOutcome, BurstRecord};
use burstwatch_engine::{Alert, FlowRecord, PrefixSet};

pub use error::ReportError;
pub use rows::OutputMap;
pub use table::Format;
pub use timeline::{Timelines, MAX_TIMELINES};

use aggregate::{Aggregates, Oriented};
use overview::Overview;
use rows::AddrText;
use table::TableOut;

mod overview;
mod parquet;

/// Alerts kept for the alerts table, timelines and page.
pub const MAX_ALERTS: usize = 100_000;
/// Home hosts aggregated.
pub const MAX_HOSTS: usize = 1_000_000;
/// External endpoints aggregated.
pub const MAX_ENDPOINTS: usize = 2_000_000;

/// Facts about the run that only the shell knows.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// Input files and directories as given.
    pub inputs: Vec<String>,
    /// Program name and version.
    pub version: String,
    /// Frames read.
    pub packets: u64,
    /// Captured bytes read.
    pub bytes: u64,
    /// First packet (ns since the epoch).
    pub first_ns: Option<i64>,
    /// Last packet (ns since the epoch).
    pub last_ns: Option<i64>,
    /// Inputs with errors.
    pub input_errors: u64,
}

/// What [`Report::finish`] wrote.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// `(table, rows)` per table file.
    pub tables: Vec<(&'static str, u64)>,
    /// The HTML page.
    pub html: PathBuf,
}

/// A report being collected; see the crate docs.
pub struct Report {
    dir: PathBuf,
    format: Format,
    home: PrefixSet,
    addr: AddrText,
    /// The streamed tables, until [`Report::write_tables`] closes them.
    streamed: Option<(TableOut, TableOut)>,
    /// Tables written so far, `(name, rows)`.
    written: Vec<(&'static str, u64)>,
    flow_rows: u64,
    alerts: Vec<Alert>,
    alerts_dropped: u64,
    sorted: bool,
    agg: Aggregates,
    overview: Overview,
    outcomes: [u64; BurstOutcome::ALL.len()],
}

impl Report {
    /// Start a report in `dir` (created if missing). `home` tells subscribers from endpoints.
    pub fn create(dir: &Path, format: Format, home: PrefixSet) -> Result<Self, ReportError> {
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Self {
            streamed: Some((
                TableOut::new(dir, schema::FLOWS, format),
                TableOut::new(dir, schema::BURSTS, format),
            )),
            written: Vec::new(),
            dir: dir.to_path_buf(),
            format,
            home,
            addr: AddrText::default(),
            flow_rows: 0,
            alerts: Vec::new(),
            alerts_dropped: 0,
            sorted: true,
            agg: Aggregates::new(MAX_HOSTS, MAX_ENDPOINTS),
            overview: Overview::new(),
            outcomes: [0; BurstOutcome::ALL.len()],
        })
    }

    /// Map every address and alert id before it is written (tables and page), e.g. to
    /// pseudonymise. Set it before the first record.
    pub fn set_output_map(&mut self, map: Box<dyn OutputMap>) {
        self.addr.set_map(map);
    }

    /// An address as the report writes it.
    pub fn addr_text(&self, ip: IpAddr) -> String {
        self.addr.text(ip)
    }

    /// An alert id as the report writes it.
    pub fn id_text(&self, id: u64) -> String {
        self.addr.id(id)
    }

    /// Count one packet in the whole-run overview (subscriber ↔ external traffic only).
    #[inline]
    pub fn packet(&mut self, ts_ns: i64, src: IpAddr, dst: IpAddr, ip_len: u32) {
        if let Some(up) = self.home.upstream(src, dst) {
            self.overview.add(ts_ns, up, u64::from(ip_len));
        }
    }

    /// Count subscriber ↔ external bytes at `ts_ns` in the whole-run overview, already summed
    /// (e.g. per second by a shell that classifies packets itself): the same as calling
    /// [`Report::packet`] for each of those packets.
    pub fn traffic(&mut self, ts_ns: i64, bytes_up: u64, bytes_down: u64) {
        self.overview.add(ts_ns, true, bytes_up);
        self.overview.add(ts_ns, false, bytes_down);
    }

    /// One flow record: a `flows` row, and host/endpoint totals. Ignored once the tables
    /// are written.
    pub fn add_flow(&mut self, r: &FlowRecord) -> Result<(), ReportError> {
        let Some((flows, _)) = self.streamed.as_mut() else {
            return Ok(());
        };
        flows.push(rows::flow_row(&self.addr, r))?;
        self.flow_rows += 1;
        if let Some(up) = self.home.upstream(r.src, r.dst) {
            let (host, ep, out, back) = if up {
                (r.src, r.dst, &r.fwd, &r.rev)
            } else {
                (r.dst, r.src, &r.rev, &r.fwd)
            };
            self.agg.add(&Oriented {
                host,
                endpoint: ep,
                bytes_up: out.bytes,
                bytes_down: back.bytes,
                packets_up: u64::from(out.packets),
                packets_down: u64::from(back.packets),
                first_ns: r.first_ns(),
                last_ns: r.last_ns(),
            });
        }
        Ok(())
    }

    /// One segmented burst: a `bursts` row. Ignored once the tables are written.
    pub fn add_burst(&mut self, b: &BurstRecord) -> Result<(), ReportError> {
        let Some((_, bursts)) = self.streamed.as_mut() else {
            return Ok(());
        };
        bursts.push(rows::burst_row(&self.addr, b))?;
        if let Some(i) = BurstOutcome::ALL.iter().position(|o| *o == b.outcome) {
            self.outcomes[i] += 1;
        }
        self.agg.bump(b.src, true);
        Ok(())
    }

    /// One alert (kept up to [`MAX_ALERTS`]). Ignored once the tables are written.
    pub fn add_alert(&mut self, a: &Alert) {
        if self.streamed.is_none() {
            return;
        }
        self.agg.bump(a.src, false);
        if self.alerts.len() < MAX_ALERTS {
            self.alerts.push(a.clone());
            self.sorted = false;
        } else {
            self.alerts_dropped += 1;
        }
    }

    fn sort_alerts(&mut self) {
        if !self.sorted {
            self.alerts.sort_by(|a, b| {
                b.score
                    .total_cmp(&a.score)
                    .then(a.start_ns.cmp(&b.start_ns))
                    .then(a.id.cmp(&b.id))
            });
            self.sorted = true;
        }
    }

    /// The timeline windows of the highest-scoring alerts, to be filled by a second pass
    /// (empty when there are no alerts: skip the pass).
    pub fn plan_timelines(&mut self) -> Timelines {
        self.sort_alerts();
        Timelines::plan(&self.alerts)
    }

    /// Write every table that does not need the timelines (flows, bursts, alerts, hosts,
    /// endpoints), e.g. while the second pass runs. Records added afterwards are ignored.
    /// [`Report::finish`] calls it when it has not been called.
    pub fn write_tables(&mut self) -> Result<(), ReportError> {
        let Some((flows, bursts)) = self.streamed.take() else {
            return Ok(());
        };
        self.sort_alerts();
        self.written.push(("flows", flows.finish()?));
        self.written.push(("bursts", bursts.finish()?));
        let (dir, format, a) = (&self.dir, self.format, &self.addr);

        let mut t = TableOut::new(dir, schema::alerts(), format);
        for al in &self.alerts {
            t.push(rows::alert_row(a, al))?;
        }
        self.written.push(("alerts", t.finish()?));

        let mut hosts: Vec<_> = self.agg.hosts.iter().collect();
        hosts.sort_by(|x, y| (y.1.bytes_up, x.0).cmp(&(x.1.bytes_up, y.0)));
        let mut t = TableOut::new(dir, schema::HOSTS, format);
        for (ip, h) in hosts {
            t.push(rows::host_row(a, *ip, h))?;
        }
        self.written.push(("hosts", t.finish()?));

        let mut eps: Vec<_> = self.agg.endpoints.iter().collect();
        eps.sort_by(|x, y| (x.1.hosts.len(), x.0).cmp(&(y.1.hosts.len(), y.0)));
        let mut t = TableOut::new(dir, schema::ENDPOINTS, format);
        for (ip, e) in eps {
            t.push(rows::endpoint_row(a, *ip, e))?;
        }
        self.written.push(("endpoints", t.finish()?));
        Ok(())
    }

    /// Write the remaining tables, the filled `timelines` and `report.html`.
    pub fn finish(mut self, run: &RunInfo, timelines: &Timelines) -> Result<Written, ReportError> {
        self.write_tables()?;
        let mut written = Written {
            tables: std::mem::take(&mut self.written),
            ..Written::default()
        };
        let (dir, format, a) = (&self.dir, self.format, &self.addr);
        let mut t = TableOut::new(dir, schema::TIMELINE, format);
        for w in &timelines.windows {
            if let Some(al) = self.alerts.get(w.alert) {
                for row in rows::timeline_rows(a, al, w) {
                    t.push(row)?;
                }
            }
        }
        written.tables.push(("timeline", t.finish()?));

        if self.agg.dropped > 0 {
            tracing::warn!(
                flows = self.agg.dropped,
                "report: host/endpoint caps reached; some flows are not in hosts/endpoints"
            );
        }
        let overview: Vec<_> = self.overview.bins().collect();
        let outcomes: Vec<(&'static str, u64)> = BurstOutcome::ALL
            .iter()
            .zip(self.outcomes)
            .map(|(o, n)| (o.as_str(), n))
            .collect();
        let page = html::page(&html::PageInput {
            run,
            alerts: &self.alerts,
            alerts_dropped: self.alerts_dropped,
            timelines,
            overview: &overview,
            overview_width_s: self.overview.width_seconds(),
            burst_outcomes: &outcomes,
            flows: self.flow_rows,
            addr: a,
        });
        let html_path = dir.join("report.html");
        std::fs::write(&html_path, page).map_err(|source| ReportError::Io {
            path: html_path.display().to_string(),
            source,
        })?;
        written.html = html_path;
        Ok(written)
    }
}

#[cfg(test)]
mod tests;
