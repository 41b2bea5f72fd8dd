//! Charts with plotters: SVG everywhere (notebooks and the page reuse it), PNG natively.

use plotters::coord::Shift;
use plotters::prelude::*;

/// One line: points `(x, mean, min, max)`; min = max = mean for a single run.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64, f64, f64)>,
}

impl Series {
    /// Adds `point` to the line labelled `label` in `lines`, a new line after the others if
    /// there is none yet.
    pub fn add_to(lines: &mut Vec<Series>, label: String, point: (f64, f64, f64, f64)) {
        match lines.iter_mut().find(|s| s.label == label) {
            Some(s) => s.points.push(point),
            None => lines.push(Series {
                label,
                points: vec![point],
            }),
        }
    }

    /// Every line's points in increasing x.
    pub fn sort_by_x(lines: &mut [Series]) {
        for s in lines {
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
    }
}

/// A line chart description, rendered by [`to_svg`] or natively by [`save_png`].
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// A log x axis for levels such as % of weights remaining: drawn as the LTH paper draws
    /// it, falling from the left (100%) to the right, with a tick at every level a series has.
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

/// A level as the paper's axes write it: 100, 51.3, 21.1, 3.6, 1.9, 0.46.
fn format_level(x: f64) -> String {
    let text = if x >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{:.*}", (1.0 - x.log10().floor()).max(1.0) as usize, x)
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The tick levels of a log x axis: every distinct x of the chart, thinned evenly to at most
/// `most` (the first and last kept) so labels do not run into each other.
pub fn level_ticks(chart: &Chart, most: usize) -> Vec<f64> {
    let mut levels: Vec<f64> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite() && *x > 0.0)
        .collect();
    levels.sort_by(|a, b| b.total_cmp(a));
    // Levels closer than 1% apart (the same round of several seeds) are one tick.
    levels.dedup_by(|b, a| (*a - *b).abs() <= 0.01 * a.abs());
    if levels.len() <= most || most < 2 {
        return levels;
    }
    let step = (levels.len() - 1) as f64 / (most - 1) as f64;
    let mut thinned: Vec<f64> = (0..most)
        .map(|i| levels[(i as f64 * step).round() as usize])
        .collect();
    thinned.dedup();
    thinned
}

/// A linear axis whose ticks are given levels only (plotters' `WithKeyPoints` has no default
/// label formatting, which the mesh needs).
struct LevelAxis {
    inner: plotters::coord::types::RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for LevelAxis {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Bold lines and labels at the levels; no light lines between them.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// A reversed log axis as a linear one in u = −log10(x): 100% on the left.
fn to_u(x: f64) -> f64 {
    -x.log10()
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
    // A log x axis is drawn in u = −log10(x) (see `to_u`); `ux` maps a point's x there.
    // A log axis needs positive values: a chart with a value ≤ 0 is drawn linear.
    let log_x = chart.log_x && x0 > 0.0;
    let ux = |x: f64| if log_x { to_u(x) } else { x };
    let x_label = |x: &f64| {
        if log_x {
            format_level(10f64.powf(-*x))
        } else {
            format_tick(*x)
        }
    };
    macro_rules! body {
        ($ctx:expr) => {{
            let mut ctx = $ctx;
            ctx.configure_mesh()
                .x_labels(if log_x { 14 } else { 8 })
                .y_labels(10)
                .x_label_formatter(&x_label)
                .x_desc(chart.x_label.as_str())
                .y_desc(chart.y_label.as_str())
                .draw()?;
            for (i, series) in chart.series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                ctx.draw_series(LineSeries::new(
                    series.points.iter().map(|&(x, y, _, _)| (ux(x), y)),
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
                        .map(|&(x, y, _, _)| Circle::new((ux(x), y), 3, color.filled())),
                )?;
                ctx.draw_series(series.points.iter().filter(|p| p.2 < p.3).map(
                    |&(x, y, lo, hi)| {
                        ErrorBar::new_vertical(ux(x), lo, y, hi, color.stroke_width(1), 6)
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
    if log_x {
        // Ticks at the levels that were run, on a little margin either side.
        let (u0, u1) = (to_u(x1), to_u(x0));
        let margin = ((u1 - u0) * 0.03).max(0.01);
        let ticks: Vec<f64> = level_ticks(chart, 14).into_iter().map(to_u).collect();
        let xs = LevelAxis {
            inner: ((u0 - margin)..(u1 + margin)).into(),
            ticks,
        };
        if log_y {
            body!(builder.build_cartesian_2d(xs, (y0..y1).log_scale())?)
        } else {
            body!(builder.build_cartesian_2d(xs, y0..y1)?)
        }
    } else if log_y {
        body!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?)
    } else {
        body!(builder.build_cartesian_2d(x0..x1, y0..y1)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The x position of the tick label `text` in an SVG, if it is drawn.
    fn label_x(svg: &str, text: &str) -> Option<f64> {
        svg.split("<text").skip(1).find_map(|element| {
            let (tag, rest) = element.split_once('>')?;
            let content = rest.split("</text>").next()?.trim();
            if content != text {
                return None;
            }
            tag.split("x=\"").nth(1)?.split('"').next()?.parse().ok()
        })
    }

    #[test]
    fn log_axis_labels_the_levels_run_with_100_on_the_left() {
        let levels = [100.0, 80.0, 51.3, 21.1, 13.5, 3.6, 1.9];
        let chart = Chart {
            title: "t".into(),
            x_label: "% of weights remaining (log)".into(),
            y_label: "accuracy".into(),
            log_x: true,
            log_y: false,
            legend_top: false,
            series: vec![Series {
                label: "ticket".into(),
                points: levels.iter().map(|&x| (x, 98.0, 98.0, 98.0)).collect(),
            }],
        };
        let svg = to_svg(&chart);
        let xs: Vec<f64> = ["100", "80", "51.3", "21.1", "13.5", "3.6", "1.9"]
            .iter()
            .map(|t| label_x(&svg, t).unwrap_or_else(|| panic!("no tick {t}")))
            .collect();
        assert!(
            xs.windows(2).all(|w| w[0] < w[1]),
            "not falling left to right: {xs:?}"
        );
        // Nothing but the levels: no 10 between 13.5 and 3.6.
        assert!(label_x(&svg, "10").is_none());
    }

    #[test]
    fn many_levels_are_thinned_keeping_both_ends() {
        let chart = Chart {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            log_x: true,
            log_y: false,
            legend_top: false,
            series: vec![Series {
                label: "s".into(),
                points: (0..19)
                    .map(|r| (100.0 * 0.8f64.powi(r), 1.0, 1.0, 1.0))
                    .collect(),
            }],
        };
        let ticks = level_ticks(&chart, 14);
        assert!(ticks.len() <= 14 && ticks.len() >= 10, "{ticks:?}");
        assert_eq!(ticks[0], 100.0);
        assert_eq!(*ticks.last().unwrap(), 100.0 * 0.8f64.powi(18));
        assert_eq!(format_level(51.2), "51.2");
        assert_eq!(format_level(100.0), "100");
        assert_eq!(format_level(0.46), "0.46");
    }
}
