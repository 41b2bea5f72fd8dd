//! Charts with plotters: SVG everywhere (notebooks and the page reuse it), PNG natively.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::record::RoundResult;
use crate::train::EvalPoint;

/// One line: points `(x, mean, min, max)`; min = max = mean for a single run.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64, f64, f64)>,
}

/// A line chart description, rendered by [`to_svg`] or natively by [`save_png`].
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    /// A log y axis (costs that span orders of magnitude).
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Where the legend goes: lines that fall to the right want it at the top.
    pub legend_top: bool,
}

// matplotlib's tab10, so ten lines (methods and comparisons) stay apart.
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn bounds(chart: &Chart) -> ((f64, f64), (f64, f64)) {
    let points = chart.series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, _, lo, hi) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(lo);
        y1 = y1.max(hi);
    }
    if x0 > x1 {
        return ((1.0, 100.0), (0.0, 1.0));
    }
    if x0 == x1 {
        x0 *= 0.9;
        x1 = x1 * 1.1 + 1e-9;
    }
    if chart.log_y && y0 > 0.0 {
        return ((x0, x1), (y0 / 1.2, y1 * 1.2));
    }
    let pad = ((y1 - y0) * 0.08).max(1e-3);
    ((x0, x1), (y0 - pad, y1 + pad))
}

/// Ticks without trailing zeros: 100, 21.1, 1.9, 0.25.
fn format_tick(x: f64) -> String {
    let text = if x >= 10.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    chart: &Chart,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let ((x0, x1), (y0, y1)) = bounds(chart);
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(&chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60);
    macro_rules! body {
        ($ctx:expr) => {{
            let mut ctx = $ctx;
            ctx.configure_mesh()
                .x_labels(8)
                .y_labels(10)
                .x_label_formatter(&|x| format_tick(*x))
                .x_desc(chart.x_label.as_str())
                .y_desc(chart.y_label.as_str())
                .draw()?;
            for (i, series) in chart.series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                ctx.draw_series(LineSeries::new(
                    series.points.iter().map(|&(x, y, _, _)| (x, y)),
                    color.stroke_width(2),
                ))?
                .label(series.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
                ctx.draw_series(
                    series
                        .points
                        .iter()
                        .map(|&(x, y, _, _)| Circle::new((x, y), 3, color.filled())),
                )?;
                ctx.draw_series(series.points.iter().filter(|p| p.2 < p.3).map(
                    |&(x, y, lo, hi)| {
                        ErrorBar::new_vertical(x, lo, y, hi, color.stroke_width(1), 6)
                    },
                ))?;
            }
            ctx.configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(if chart.legend_top {
                    SeriesLabelPosition::UpperRight
                } else {
                    SeriesLabelPosition::LowerRight
                })
                .draw()?;
        }};
    }
    // A log axis needs positive values: a chart with a value ≤ 0 is drawn linear.
    let log_y = chart.log_y && y0 > 0.0;
    match (chart.log_x, log_y) {
        (true, true) => {
            body!(builder.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?)
        }
        (true, false) => body!(builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?),
        (false, true) => body!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?),
        (false, false) => body!(builder.build_cartesian_2d(x0..x1, y0..y1)?),
    }
    root.present()?;
    Ok(())
}

pub const WIDTH: u32 = 800;
pub const HEIGHT: u32 = 500;

/// Renders the chart as an SVG document.
pub fn to_svg(chart: &Chart) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(root, chart).expect("drawing into a string cannot fail");
    }
    svg
}

/// Renders the chart as a PNG file.
#[cfg(feature = "png")]
pub fn save_png(chart: &Chart, path: &std::path::Path) -> Result<(), PlotError> {
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    draw(root, chart).map_err(|e| PlotError {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// A PNG chart that could not be drawn or written (no usable font, an unwritable path).
#[cfg(feature = "png")]
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct PlotError {
    pub path: String,
    pub reason: String,
}

/// Groups runs by round number and summarises `metric` as (% remaining, mean, min, max).
pub fn summarise(
    runs: &[Vec<RoundResult>],
    metric: impl Fn(&RoundResult) -> f64,
) -> Vec<(f64, f64, f64, f64)> {
    let mut by_round: std::collections::BTreeMap<usize, Vec<&RoundResult>> = Default::default();
    for result in runs.iter().flatten() {
        by_round.entry(result.round).or_default().push(result);
    }
    by_round
        .values()
        .map(|found| {
            let values: Vec<f64> = found.iter().map(|r| metric(r)).collect();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let lo = values.iter().copied().fold(f64::MAX, f64::min);
            let hi = values.iter().copied().fold(f64::MIN, f64::max);
            let remaining =
                found.iter().map(|r| r.weights_remaining).sum::<f64>() / found.len() as f64;
            (100.0 * remaining, mean, lo, hi)
        })
        .collect()
}

/// Test accuracy at early stop vs % of weights remaining (the LTH figure), one line per
/// labelled group of runs (e.g. ticket, reinit, random-prune; several seeds each).
pub fn accuracy_vs_remaining(groups: &[(String, Vec<Vec<RoundResult>>)]) -> Chart {
    Chart {
        title: "Test accuracy at early stop".into(),
        x_label: "% of weights remaining (log)".into(),
        y_label: "test accuracy (%)".into(),
        log_x: true,
        log_y: false,
        legend_top: false,
        series: groups
            .iter()
            .map(|(label, runs)| Series {
                label: label.clone(),
                points: summarise(runs, |r| 100.0 * r.test_accuracy),
            })
            .collect(),
    }
}

/// Early-stop iteration vs % of weights remaining.
pub fn early_stop_vs_remaining(groups: &[(String, Vec<Vec<RoundResult>>)]) -> Chart {
    Chart {
        title: "Early-stop iteration (minimum validation loss)".into(),
        x_label: "% of weights remaining (log)".into(),
        y_label: "iteration".into(),
        log_x: true,
        log_y: false,
        legend_top: false,
        series: groups
            .iter()
            .map(|(label, runs)| Series {
                label: label.clone(),
                points: summarise(runs, |r| r.early_stop_iteration as f64),
            })
            .collect(),
    }
}

/// Test accuracy during training, one line per labelled run.
pub fn training_curves(curves: &[(String, Vec<EvalPoint>)]) -> Chart {
    Chart {
        title: "Test accuracy during training".into(),
        x_label: "iteration".into(),
        y_label: "test accuracy (%)".into(),
        log_x: false,
        log_y: false,
        legend_top: false,
        series: curves
            .iter()
            .map(|(label, curve)| Series {
                label: label.clone(),
                points: curve
                    .iter()
                    .map(|p| {
                        let y = 100.0 * p.test_accuracy;
                        (p.iteration as f64, y, y, y)
                    })
                    .collect(),
            })
            .collect(),
    }
}
