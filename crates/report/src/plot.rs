//! Inline SVG plots (plotters' SVG backend; text in the page's sans-serif font).

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::timeline::Window;

type PlotResult = Result<(), Box<dyn std::error::Error>>;

const UP: RGBColor = RGBColor(0x1f, 0x5f, 0xbf);
const DOWN: RGBColor = RGBColor(0x2a, 0x9d, 0x3f);
const BASELINE: RGBColor = RGBColor(0xe0, 0x7b, 0x00);
const SPAN: RGBColor = RGBColor(0xf4, 0xc7, 0xc3);

/// A rate in bit/s with an SI prefix, e.g. `12.5 Mb/s`.
pub fn si_rate(bps: f64) -> String {
    let (v, unit) = if bps >= 1e9 {
        (bps / 1e9, "Gb/s")
    } else if bps >= 1e6 {
        (bps / 1e6, "Mb/s")
    } else if bps >= 1e3 {
        (bps / 1e3, "kb/s")
    } else {
        (bps, "b/s")
    };
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0} {unit}")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// Upstream and downstream rate of an alerted pair per second, the alert span shaded and the
/// subscriber's baseline as a horizontal line. x: seconds from the alert start.
pub fn alert_timeline(
    w: &Window,
    baseline_bps: Option<f64>,
    title: &str,
) -> Result<String, String> {
    let mut svg = String::new();
    draw_timeline(&mut svg, w, baseline_bps, title).map_err(|e| e.to_string())?;
    Ok(svg)
}

fn draw_timeline(
    svg: &mut String,
    w: &Window,
    baseline_bps: Option<f64>,
    title: &str,
) -> PlotResult {
    let t0 = w.span.0;
    let pts = |i: usize| -> Vec<(f64, f64)> {
        w.seconds()
            .map(|(sec, b)| ((sec - t0) as f64, b[i] as f64 * 8.0))
            .collect()
    };
    let (up, down) = (pts(0), pts(1));
    let peak = up
        .iter()
        .chain(&down)
        .map(|p| p.1)
        .chain(baseline_bps)
        .fold(0.0f64, f64::max);
    let ymax = (peak * 1.1).max(8.0);
    let x0 = (w.first_sec - t0) as f64;
    let x1 = x0 + w.bins.len().max(1) as f64;
    let root = SVGBackend::with_string(svg, (900, 280)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = rate_chart(&root, title, "seconds from alert start", x0..x1, ymax)?;
    let (s0, s1) = (0.0, (w.span.1 - t0 + 1) as f64);
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(s0, 0.0), (s1, ymax)],
            SPAN.mix(0.6).filled(),
        )))?
        .label("alert span")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], SPAN.filled()));
    draw_up_down(&mut chart, up, down)?;
    if let Some(b) = baseline_bps {
        chart
            .draw_series(LineSeries::new(
                vec![(x0, b), (x1, b)],
                BASELINE.stroke_width(2),
            ))?
            .label("host baseline (p95 up)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BASELINE.stroke_width(2)));
    }
    draw_legend(&mut chart)?;
    root.present()?;
    Ok(())
}

/// Whole-run upstream and downstream rate per bin `(bin start s, bytes up, bytes down)`.
pub fn overview(bins: &[(i64, u64, u64)], width_s: i64) -> Result<String, String> {
    let mut svg = String::new();
    draw_overview(&mut svg, bins, width_s).map_err(|e| e.to_string())?;
    Ok(svg)
}

fn draw_overview(svg: &mut String, bins: &[(i64, u64, u64)], width_s: i64) -> PlotResult {
    let t0 = bins.first().map_or(0, |b| b.0);
    let w = width_s.max(1) as f64;
    let series = |up: bool| -> Vec<(f64, f64)> {
        bins.iter()
            .map(|b| {
                let bytes = if up { b.1 } else { b.2 };
                ((b.0 - t0) as f64 / 60.0, bytes as f64 * 8.0 / w)
            })
            .collect()
    };
    let (up, down) = (series(true), series(false));
    let ymax = (up.iter().chain(&down).map(|p| p.1).fold(0.0, f64::max) * 1.1).max(8.0);
    let x1 = (bins.len() as f64 * w / 60.0).max(1.0 / 60.0);
    let root = SVGBackend::with_string(svg, (900, 260)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!("all subscriber traffic, {width_s} s bins");
    let x_desc = "minutes from the first packet";
    let mut chart = rate_chart(&root, &caption, x_desc, 0f64..x1, ymax)?;
    draw_up_down(&mut chart, up, down)?;
    draw_legend(&mut chart)?;
    root.present()?;
    Ok(())
}

/// The whole SVG a chart is drawn on.
type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
/// A chart of rates over time.
type RateChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart of rates (0 to `ymax` bit/s, labelled with SI prefixes) over `x`, with its caption
/// and mesh.
fn rate_chart<'a, 'b>(
    root: &'a Area<'b>,
    caption: &str,
    x_desc: &str,
    x: std::ops::Range<f64>,
    ymax: f64,
) -> Result<RateChart<'a, 'b>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(root)
        .margin(8)
        .caption(caption, ("sans-serif", 15))
        .x_label_area_size(32)
        .y_label_area_size(72)
        .build_cartesian_2d(x, 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("rate")
        .y_label_formatter(&|v| si_rate(*v))
        .light_line_style(WHITE)
        .draw()?;
    Ok(chart)
}

/// The upstream and downstream rate lines, with their legend entries.
fn draw_up_down(
    chart: &mut RateChart<'_, '_>,
    up: Vec<(f64, f64)>,
    down: Vec<(f64, f64)>,
) -> PlotResult {
    chart
        .draw_series(LineSeries::new(up, UP.stroke_width(2)))?
        .label("upstream")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], UP.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(down, DOWN.stroke_width(1)))?
        .label("downstream")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], DOWN.stroke_width(1)));
    Ok(())
}

/// The legend of the series drawn, upper right.
fn draw_legend<'a, 'b: 'a>(chart: &mut RateChart<'a, 'b>) -> PlotResult {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_with_prefixes() {
        assert_eq!(si_rate(0.0), "0 b/s");
        assert_eq!(si_rate(1_500.0), "1.5 kb/s");
        assert_eq!(si_rate(12_000_000.0), "12 Mb/s");
        assert_eq!(si_rate(250e9), "250 Gb/s");
    }

    #[test]
    fn overview_is_an_svg_with_two_series() {
        let bins = vec![(100, 1_000, 5_000), (101, 2_000, 100), (102, 0, 0)];
        let svg = overview(&bins, 1).unwrap_or_default();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.matches("<polyline").count() >= 2, "{svg}");
    }
}
