//! The web app's charts, drawn by `plotters` into SVG text on the server: no script
//! needed to see them, and each has its table beside it (the text equivalent).
//! Figures come in as major units (`f64` only for drawing; the tables show the exact
//! decimals).

use plotters::prelude::*;

const ACTUAL: RGBColor = RGBColor(37, 99, 235);
const PLAN: RGBColor = RGBColor(203, 213, 225);
const EXPECTED: RGBColor = RGBColor(17, 24, 39);
const FORECAST: RGBColor = RGBColor(234, 88, 12);
/// The plan as a line.
const PLAN_LINE: RGBColor = RGBColor(100, 116, 139);

/// One rep's bar: plan, actual, expected-to-date and forecast (major units).
pub struct RepBar {
    pub rep: String,
    pub plan: f64,
    pub actual: f64,
    pub expected: Option<f64>,
    pub forecast: Option<f64>,
}

/// Horizontal bars, one per rep: the plan as a pale bar, the actual over it, the
/// expected-to-date as a dark mark and the forecast as an orange mark.
pub fn team_bars(bars: &[RepBar]) -> String {
    let mut svg = String::new();
    let height = 40 + 28 * bars.len().max(1) as u32;
    let max = bars
        .iter()
        .flat_map(|b| {
            [
                b.plan,
                b.actual,
                b.expected.unwrap_or(0.0),
                b.forecast.unwrap_or(0.0),
            ]
        })
        .fold(1.0_f64, f64::max)
        * 1.05;
    {
        let root = SVGBackend::with_string(&mut svg, (720, height)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let n = bars.len().max(1) as i32;
        let chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..max, (0..n).into_segmented());
        let Ok(mut chart) = chart else {
            return svg_error();
        };
        let names: Vec<String> = bars.iter().map(|b| b.rep.clone()).collect();
        let _ = chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(bars.len().max(1))
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) if (0..n).contains(i) => {
                    names[(n - 1 - *i) as usize].clone()
                }
                SegmentValue::CenterOf(_) | SegmentValue::Exact(_) => String::new(),
                SegmentValue::Last => String::new(),
            })
            .x_label_formatter(&|v| short_money(*v))
            .draw();
        // The first rep at the top, as in the table.
        for (i, b) in bars.iter().enumerate() {
            let row = n - 1 - i as i32;
            let (top, bottom) = (SegmentValue::Exact(row), SegmentValue::Exact(row + 1));
            let bar = |to: f64, color: RGBColor, margin: u32| {
                let mut r = Rectangle::new(
                    [(0.0, top.clone()), (to, bottom.clone())],
                    ShapeStyle::from(&color).filled(),
                );
                r.set_margin(margin, margin, 0, 0);
                r
            };
            let _ = chart.draw_series([bar(b.plan, PLAN, 3), bar(b.actual, ACTUAL, 8)]);
            for (mark, color) in [(b.expected, EXPECTED), (b.forecast, FORECAST)] {
                if let Some(x) = mark {
                    let _ = chart.draw_series(std::iter::once(PathElement::new(
                        vec![(x, top.clone()), (x, bottom.clone())],
                        ShapeStyle::from(&color).stroke_width(3),
                    )));
                }
            }
        }
        let _ = root.present();
    }
    svg
}

/// One line of a line chart: a value per label (`None`: no point there), drawn in
/// `color`, `width` wide, with a dot of radius `dots` at each point (0: none).
struct Line<'a> {
    values: &'a [Option<f64>],
    color: RGBColor,
    width: u32,
    dots: u32,
}

/// Lines over labelled points (months, days), drawn in order, the axis from 0 to a
/// tenth above the highest value; `x_labels` of the labels are written.
fn line_chart(labels: &[String], x_labels: usize, lines: &[Line]) -> String {
    let mut svg = String::new();
    let max = lines
        .iter()
        .flat_map(|l| l.values.iter().flatten().copied())
        .fold(1.0_f64, f64::max)
        * 1.1;
    {
        let root = SVGBackend::with_string(&mut svg, (720, 260)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let n = labels.len().max(1);
        let Ok(mut chart) = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(60)
            .build_cartesian_2d(0..n, 0.0..max)
        else {
            return svg_error();
        };
        let _ = chart
            .configure_mesh()
            .x_labels(x_labels)
            .x_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
            .y_label_formatter(&|v| short_money(*v))
            .draw();
        for line in lines {
            let points: Vec<(usize, f64)> = line
                .values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (i, v)))
                .collect();
            let style = ShapeStyle::from(&line.color);
            let _ = chart.draw_series(LineSeries::new(
                points.clone(),
                style.stroke_width(line.width),
            ));
            if line.dots > 0 {
                let _ = chart.draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, line.dots, style.filled())),
                );
            }
        }
        let _ = root.present();
    }
    svg
}

/// Plan and actual over months (major units): the plan as a grey line, the actual as
/// a blue line with a dot each month.
pub fn months_line(months: &[String], plan: &[f64], actual: &[Option<f64>]) -> String {
    let plan: Vec<Option<f64>> = plan.iter().copied().map(Some).collect();
    line_chart(
        months,
        12,
        &[
            Line {
                values: &plan,
                color: PLAN_LINE,
                width: 2,
                dots: 0,
            },
            Line {
                values: actual,
                color: ACTUAL,
                width: 3,
                dots: 3,
            },
        ],
    )
}

/// A team's month over its working days: the plan expected to date (grey), the
/// forecast (orange, dotted) from today to the month's end and the cumulative actual
/// (blue, through today).
pub fn team_course(
    days: &[String],
    plan: &[f64],
    actual: &[Option<f64>],
    forecast: &[Option<f64>],
) -> String {
    let plan: Vec<Option<f64>> = plan.iter().copied().map(Some).collect();
    line_chart(
        days,
        11,
        &[
            Line {
                values: &plan,
                color: PLAN_LINE,
                width: 2,
                dots: 0,
            },
            Line {
                values: forecast,
                color: FORECAST,
                width: 2,
                dots: 2,
            },
            Line {
                values: actual,
                color: ACTUAL,
                width: 3,
                dots: 0,
            },
        ],
    )
}

/// Money for an axis: 12k, 1.2M.
fn short_money(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if v >= 1_000.0 {
        format!("{:.0}k", v / 1_000.0)
    } else {
        format!("{v:.0}")
    }
}

fn svg_error() -> String {
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\"></svg>".into()
}
