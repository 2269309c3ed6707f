//! The benchmark as a picture (SVG) a performance engineer can print: a
//! title naming host, kernel, date and version; per workload, each
//! backend's latency CDF on a log axis with its sample count; then the
//! throughput of each workload on its own scale, median bars with min-max
//! whiskers.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use super::{BackendResult, BenchReport, WorkloadResult};
use crate::run::Workload;

const COLORS: [RGBColor; 3] = [RGBColor(200, 60, 40), RGBColor(30, 110, 200), RGBColor(120, 120, 120)];
const WIDTH: u32 = 900;
const PANEL: u32 = 300;
const TITLE: u32 = 50;

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{e}")
}

pub fn write_svg(report: &BenchReport, path: &Path) -> Result<()> {
    let panels = report.workloads.len() + 1;
    let root = SVGBackend::new(path, (WIDTH, TITLE + PANEL * panels as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (title, body) = root.split_vertically(TITLE);
    title.draw_text(&heading(), &("sans-serif", 16).into_text_style(&title), (12, 8)).map_err(err)?;
    title
        .draw_text(
            &format!("{} vCPUs per VM, {} interleaved runs per backend", report.vcpus, report.repeat),
            &("sans-serif", 13).into_text_style(&title),
            (12, 28),
        )
        .map_err(err)?;
    let areas = body.split_evenly((panels, 1));
    for (w, area) in report.workloads.iter().zip(&areas) {
        latency_cdf(w, area)?;
    }
    throughput(report, &areas[panels - 1])?;
    root.present().map_err(|e| anyhow!("writing {}: {e}", path.display()))
}

/// "xevtchn 0.1.0 bench on HOST (Linux RELEASE), DATE".
fn heading() -> String {
    let read = |p: &str| std::fs::read_to_string(p).map_or_else(|_| "?".to_string(), |s| s.trim().to_string());
    format!(
        "xevtchn {} bench on {} (Linux {}), {}",
        env!("CARGO_PKG_VERSION"),
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/osrelease"),
        jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC")
    )
}

fn name<T: std::fmt::Debug>(x: T) -> String {
    format!("{x:?}").to_lowercase()
}

/// Each backend's latency CDF, on a log axis covering every sample: steps
/// between the measured points (with dots when there are few), n in the
/// legend.
fn latency_cdf(w: &WorkloadResult, area: &Area) -> Result<()> {
    let measured = || w.backends.iter().filter(|b| !b.latency_cdf.is_empty());
    let caption = format!("{}: one-way latency, cumulative fraction of sends", name(w.workload));
    let lo = measured().flat_map(|b| b.latency_cdf.first()).map(|&(ns, _)| ns).min();
    let hi = measured().flat_map(|b| b.latency_cdf.last()).map(|&(ns, _)| ns).max();
    let (Some(lo), Some(hi)) = (lo, hi) else {
        area.titled(&caption, ("sans-serif", 18))
            .map_err(err)?
            .draw_text(
                "no run measured 100 sends (nearly every send coalesced)",
                &("sans-serif", 14).into_text_style(area),
                (40, 60),
            )
            .map_err(err)?;
        return Ok(());
    };
    let (x_lo, x_hi) = ((lo as f64 / 1000.0 / 1.5).max(0.01), (hi as f64 / 1000.0 * 1.5).max(0.02));
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d((x_lo..x_hi).log_scale(), 0.0..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("latency, µs (log scale)")
        .y_desc("fraction ≤ x")
        .x_label_formatter(&|x| format!("{x}"))
        .draw()
        .map_err(err)?;
    for (b, color) in w.backends.iter().zip(COLORS) {
        if b.latency_cdf.is_empty() {
            continue;
        }
        let n = b.latency_ns.n;
        let mut steps = Vec::with_capacity(b.latency_cdf.len() * 2);
        let mut before = 0.0;
        for &(ns, f) in &b.latency_cdf {
            let x = ns as f64 / 1000.0;
            steps.extend([(x, before), (x, f)]);
            before = f;
        }
        chart
            .draw_series(LineSeries::new(steps, color.stroke_width(2)))
            .map_err(err)?
            .label(format!("{} (n={n})", name(b.backend)))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        if b.latency_cdf.len() < 50 {
            let dots = b.latency_cdf.iter().map(|&(ns, f)| Circle::new((ns as f64 / 1000.0, f), 3, color.filled()));
            chart.draw_series(dots).map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE)
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// One small chart per workload, each with its own y scale (pingpong's
/// thousands would vanish beside flood's hundreds of thousands). Rebind's
/// senders are paced alike on every backend: its figure is ports moved.
fn throughput(report: &BenchReport, area: &Area) -> Result<()> {
    let area =
        area.titled("sends/s (rebind: ports moved/s): median bar, min-max whisker", ("sans-serif", 18)).map_err(err)?;
    let cells = area.split_evenly((1, report.workloads.len().max(1)));
    for (w, cell) in report.workloads.iter().zip(&cells) {
        let figure = |b: &BackendResult| {
            if w.workload == Workload::Rebind { b.moves_per_s } else { b.sends_per_s }
        };
        let y_max = w.backends.iter().map(|b| figure(b).max).fold(1.0, f64::max) * 1.15;
        let slots = w.backends.len();
        let labels: Vec<String> = w.backends.iter().map(|b| name(b.backend)).collect();
        let mut chart = ChartBuilder::on(cell)
            .caption(
                if w.workload == Workload::Rebind { "rebind (moves/s)".to_string() } else { name(w.workload) },
                ("sans-serif", 15),
            )
            .margin(10)
            .x_label_area_size(25)
            .y_label_area_size(50)
            .build_cartesian_2d((0..slots).into_segmented(), 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_label_formatter(&|v| if y_max >= 10_000.0 { format!("{:.0}k", v / 1000.0) } else { format!("{v:.0}") })
            .draw()
            .map_err(err)?;
        for (i, (b, color)) in w.backends.iter().zip(COLORS).enumerate() {
            let s = &figure(b);
            chart
                .draw_series([Rectangle::new(
                    [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), s.median)],
                    color.mix(0.8).filled(),
                )])
                .map_err(err)?;
            chart
                .draw_series([ErrorBar::new_vertical(SegmentValue::CenterOf(i), s.min, s.median, s.max, BLACK, 10)])
                .map_err(err)?;
        }
    }
    Ok(())
}
