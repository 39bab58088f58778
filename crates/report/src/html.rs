//! `report.html`: one self-contained page (inline CSS and SVG, no scripts, no fetches).

use std::fmt::Write as _;

use burstwatch_engine::{Alert, Severity};

use crate::plot;
use crate::rows::{proto_text, secs, AddrText};
use crate::timeline::Timelines;
use crate::RunInfo;

/// Alerts that get a plot (highest score first).
pub const MAX_PLOTS: usize = 200;

/// Text escaped for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `YYYY-MM-DD hh:mm:ss.mmm` UTC of a time in ns since the epoch (milliseconds truncated).
pub fn utc(ns: i64) -> String {
    // Every i64 of nanoseconds (years 1677 to 2262) is a valid jiff timestamp.
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        Err(_) => format!("{ns} ns"),
    }
}

fn bytes(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.2} GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.2} MB", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.1} kB", f / 1e3)
    } else {
        format!("{n} B")
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}\
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 7px;\
text-align:left;font-size:13px;vertical-align:top}th{background:#f0f0f0}td.n{text-align:right}td.why{white-space:nowrap}\
.sev-critical{background:#f8c9c4}.sev-high{background:#fde0c2}.sev-medium{background:#fff3c4}\
.plot{margin:6px 0 26px}.note{color:#666;font-size:13px}code{font-size:12px}";

/// Everything the page shows.
pub struct PageInput<'a> {
    /// The run.
    pub run: &'a RunInfo,
    /// Alerts, highest score first.
    pub alerts: &'a [Alert],
    /// Alerts seen beyond those kept.
    pub alerts_dropped: u64,
    /// Their timelines (window `i` belongs to alert `windows[i].alert`).
    pub timelines: &'a Timelines,
    /// Whole-run bins.
    pub overview: &'a [(i64, u64, u64)],
    /// Their width in seconds.
    pub overview_width_s: i64,
    /// Bursts per outcome name.
    pub burst_outcomes: &'a [(&'static str, u64)],
    /// Flow records written.
    pub flows: u64,
    /// Address and alert id text.
    pub addr: &'a AddrText,
}

/// The page.
pub fn page(p: &PageInput<'_>) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>burstwatch report</title><style>{STYLE}</style></head><body>\n\
         <h1>burstwatch forensic report</h1>"
    );
    summary(&mut h, p);
    h.push_str("<h2>Traffic overview</h2>\n");
    if p.overview.is_empty() {
        h.push_str("<p class=\"note\">No subscriber traffic.</p>\n");
    } else {
        match plot::overview(p.overview, p.overview_width_s) {
            Ok(svg) => {
                let _ = writeln!(h, "<div class=\"plot\" id=\"overview\">{svg}</div>");
            }
            Err(e) => {
                let _ = writeln!(h, "<p class=\"note\">Overview plot failed: {}</p>", esc(&e));
            }
        }
    }
    alert_table(&mut h, p);
    alert_plots(&mut h, p);
    h.push_str("</body></html>\n");
    h
}

fn summary(h: &mut String, p: &PageInput<'_>) {
    let r = p.run;
    h.push_str("<h2>Run</h2>\n<table>\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", esc(k), v);
    };
    let inputs: Vec<String> = r
        .inputs
        .iter()
        .map(|i| format!("<code>{}</code>", esc(i)))
        .collect();
    row("inputs", inputs.join("<br>"));
    row("burstwatch", esc(&r.version));
    row("packets", r.packets.to_string());
    row("captured bytes", bytes(r.bytes));
    if let (Some(a), Some(b)) = (r.first_ns, r.last_ns) {
        row(
            "time span (UTC)",
            format!("{} – {} ({:.0} s)", utc(a), utc(b), secs(b - a)),
        );
    }
    row("flow records", p.flows.to_string());
    if r.input_errors > 0 {
        row("input errors", r.input_errors.to_string());
    }
    let bursts: Vec<String> = p
        .burst_outcomes
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{} {n}", esc(k)))
        .collect();
    row("bursts by outcome", bursts.join(", "));
    h.push_str("</table>\n<h2>Alerts by severity</h2>\n<table><tr><th>kind</th>");
    for s in Severity::ALL.iter().rev() {
        let _ = write!(h, "<th class=\"sev-{0}\">{0}</th>", s.as_str());
    }
    h.push_str("<th>total</th></tr>\n");
    for kind in ["burst", "beacon"] {
        let _ = write!(h, "<tr><td>{kind}</td>");
        let of_kind: Vec<&Alert> = p
            .alerts
            .iter()
            .filter(|a| a.kind.as_str() == kind)
            .collect();
        for s in Severity::ALL.iter().rev() {
            let n = of_kind.iter().filter(|a| a.severity == *s).count();
            let _ = write!(h, "<td class=\"n\">{n}</td>");
        }
        let _ = writeln!(h, "<td class=\"n\">{}</td></tr>", of_kind.len());
    }
    h.push_str("</table>\n");
    if p.alerts_dropped > 0 {
        let _ = writeln!(
            h,
            "<p class=\"note\">{} further alerts were not kept (cap reached).</p>",
            p.alerts_dropped
        );
    }
}

fn alert_table(h: &mut String, p: &PageInput<'_>) {
    let _ = writeln!(
        h,
        "<h2>Alerts ({}), highest score first</h2>",
        p.alerts.len()
    );
    if p.alerts.is_empty() {
        h.push_str("<p class=\"note\">No alerts.</p>\n");
        return;
    }
    h.push_str(
        "<table id=\"alerts\"><tr><th>#</th><th>id</th><th>kind</th><th>severity</th><th>score</th>\
         <th>subscriber</th><th>endpoint</th><th>start (UTC)</th><th>duration</th>\
         <th>bytes out / in</th><th>peak</th><th>reasons: value (contribution)</th></tr>\n",
    );
    for (i, a) in p.alerts.iter().enumerate() {
        let id = p.addr.id(a.id);
        let id_cell = if i < MAX_PLOTS.min(p.timelines.windows.len()) {
            format!("<a href=\"#a-{id}\">{id}</a>")
        } else {
            id.clone()
        };
        let reasons: Vec<String> = a
            .reasons
            .iter()
            .map(|r| format!("{} {:.3} ({:+.3})", esc(r.name), r.value, r.contribution))
            .collect();
        let _ = writeln!(
            h,
            "<tr class=\"sev-{sev}\"><td class=\"n\">{n}</td><td><code>{id_cell}</code></td>\
             <td>{kind}</td><td>{sev}</td><td class=\"n\">{score:.3}</td><td>{src}</td>\
             <td>{dst}/{proto}</td><td>{start}</td><td class=\"n\">{dur:.1} s</td>\
             <td class=\"n\">{bo} / {bi}</td><td class=\"n\">{peak}</td><td class=\"why\">{reasons}</td></tr>",
            n = i + 1,
            kind = a.kind.as_str(),
            sev = a.severity.as_str(),
            score = a.score,
            src = esc(&p.addr.text(a.src)),
            dst = esc(&with_port(&p.addr.text(a.dst), a.dst_port)),
            proto = esc(&proto_text(a.proto)),
            start = utc(a.start_ns),
            dur = secs(a.end_ns.saturating_sub(a.start_ns)),
            bo = bytes(a.bytes_out),
            bi = bytes(a.bytes_in),
            peak = plot::si_rate(a.peak_bps),
            reasons = reasons.join("<br>"),
        );
    }
    h.push_str("</table>\n");
}

fn alert_plots(h: &mut String, p: &PageInput<'_>) {
    let n = p.timelines.windows.len().min(MAX_PLOTS);
    let _ = writeln!(h, "<h2>Alert timelines ({n} of {})</h2>", p.alerts.len());
    let _ = writeln!(
        h,
        "<p class=\"note\">Per alert (at most {MAX_PLOTS}, highest score first): the pair's \
         upstream and downstream rate per second, the alert span shaded, the subscriber's \
         baseline (p95 upstream rate when the burst started) as a line.</p>"
    );
    for w in p.timelines.windows.iter().take(MAX_PLOTS) {
        let Some(a) = p.alerts.get(w.alert) else {
            continue;
        };
        let id = p.addr.id(a.id);
        let endpoint = with_port(&p.addr.text(a.dst), a.dst_port);
        let title = format!(
            "{} {} → {endpoint}  score {:.2}",
            a.kind.as_str(),
            p.addr.text(a.src),
            a.score
        );
        let _ = writeln!(h, "<h3 id=\"a-{id}\">{}</h3>", esc(&title));
        match plot::alert_timeline(w, a.baseline_bps, &title) {
            Ok(svg) => {
                let _ = writeln!(h, "<div class=\"plot\">{svg}</div>");
            }
            Err(e) => {
                let _ = writeln!(h, "<p class=\"note\">Plot failed: {}</p>", esc(&e));
            }
        }
    }
}

/// An address with a port: IPv6 in brackets (RFC 5952, section 6), `192.0.2.1:443`,
/// `[2001:db8::1]:443`.
fn with_port(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(1_767_226_020_104_233_000), "2026-01-01 00:07:00.104");
        assert_eq!(utc(951_782_400_000_000_000), "2000-02-29 00:00:00.000");
        assert_eq!(utc(-1_000_000), "1969-12-31 23:59:59.999");
    }

    #[test]
    fn ipv6_endpoints_take_brackets_before_the_port() {
        assert_eq!(with_port("192.0.2.1", 443), "192.0.2.1:443");
        assert_eq!(with_port("2001:db8::1", 443), "[2001:db8::1]:443");
    }
}
