//! The benchmark as a picture (SVG): per workload, the latency CDF of each
//! backend; then the throughput of each backend per workload.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use super::BenchReport;

const COLORS: [RGBColor; 3] = [RGBColor(200, 60, 40), RGBColor(30, 110, 200), RGBColor(120, 120, 120)];

pub fn write_svg(report: &BenchReport, path: &Path) -> Result<()> {
    let panels = report.workloads.len() + 1;
    let root = SVGBackend::new(path, (900, 320 * panels as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let areas = root.split_evenly((panels, 1));
    for (w, area) in report.workloads.iter().zip(&areas) {
        let max_ns = w.backends.iter().flat_map(|b| b.latency_cdf.last()).map(|&(ns, _)| ns).max().unwrap_or(1);
        // The tail above p99 squeezes the picture: stop at the largest p99.
        let x_max = w.backends.iter().map(|b| b.p99_ns.max as u64).max().unwrap_or(max_ns).max(1) as f64 / 1000.0;
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{:?}: one-way latency CDF (µs)", w.workload), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(0.0..x_max * 1.05, 0.0..1.0)
            .map_err(|e| anyhow!("{e}"))?;
        chart.configure_mesh().x_desc("µs").y_desc("fraction").draw().map_err(|e| anyhow!("{e}"))?;
        for (b, color) in w.backends.iter().zip(COLORS) {
            if b.latency_cdf.is_empty() {
                continue;
            }
            let points = b.latency_cdf.iter().map(|&(ns, f)| (ns as f64 / 1000.0, f));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| anyhow!("{e}"))?
                .label(format!(
                    "{} (n={})",
                    format!("{:?}", b.backend).to_lowercase(),
                    b.samples.iter().map(|s| s.latency_samples).sum::<u64>()
                ))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
    }
    throughput_bars(report, &areas[panels - 1])?;
    root.present().map_err(|e| anyhow!("writing {}: {e}", path.display()))
}

fn throughput_bars(report: &BenchReport, area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> Result<()> {
    let bars: Vec<(usize, usize, f64)> = report
        .workloads
        .iter()
        .enumerate()
        .flat_map(|(w, r)| r.backends.iter().enumerate().map(move |(b, x)| (w, b, x.sends_per_s.median)))
        .collect();
    let y_max = bars.iter().map(|&(_, _, v)| v).fold(1.0, f64::max) * 1.1;
    let slots = report.workloads.len() * 4;
    let mut chart = ChartBuilder::on(area)
        .caption("median sends/s per workload (userspace, bpf, bare)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0..slots, 0.0..y_max)
        .map_err(|e| anyhow!("{e}"))?;
    let names: Vec<String> = report.workloads.iter().map(|w| format!("{:?}", w.workload).to_lowercase()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(slots)
        .x_label_formatter(&|x| if x % 4 == 1 { names.get(x / 4).cloned().unwrap_or_default() } else { String::new() })
        .y_label_formatter(&|v| format!("{:.0}k", v / 1000.0))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(bars.iter().map(|&(w, b, v)| {
            let x = w * 4 + b;
            Rectangle::new([(x, 0.0), (x + 1, v)], COLORS[b % COLORS.len()].filled())
        }))
        .map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
