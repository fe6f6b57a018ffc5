//! SVG bar charts, written by hand: what the comparison examples draw their numbers
//! with, so that a run leaves a picture a browser opens.
//!
//! The examples measure a few quantities (bytes per update, lateness, requests) for a
//! few contenders (the polling patterns, a sync and an async server). A table says
//! the numbers; a chart shows at a glance which bar is ten times longer. This module
//! turns such numbers into one standalone SVG file with no dependency and no
//! JavaScript:
//!
//! - a [`BarChart`] is one quantity: a bar per (category, series) pair, grouped by
//!   category, drawn horizontally so that long category names stay readable. Its
//!   axis has round tick values (1, 2 or 5 times a power of ten; on a
//!   [`log_scale`](BarChart::log_scale) one tick per power of ten) and names the
//!   unit; each bar carries its value in human-readable form (`12.3k`, `0.25`), and a
//!   legend names the series when there are several.
//! - [`stack`] puts several charts one above the other in one document, as the
//!   examples write them to `target/<example>/<example>.svg`.
//!
//! A value that cannot be drawn (NaN, an infinity, a negative number, or zero on a
//! log scale where zero has no place) gets no bar and the label `n/a` (`0` for zero
//! on a log scale); a series shorter than the categories is missing the rest. Text is
//! escaped (`&`, `<`, `>`, `"`, `'`), so any name can be a label. The output is
//! SVG 1.1 (W3C, "Scalable Vector Graphics 1.1"): `width`, `height` and `viewBox` on
//! the root, text at 12 px or more, a white background (readable in a dark-themed
//! viewer too) and the Okabe-Ito colours, which stay distinct for colour-blind
//! readers.
//!
//! ```
//! use wirepatterns::chart::{BarChart, Series};
//!
//! let chart = BarChart {
//!     title: "Bytes per update".into(),
//!     unit: "bytes".into(),
//!     categories: vec!["short 100 ms".into(), "SSE".into()],
//!     series: vec![Series::new("server → client", vec![2150.0, 61.0])],
//!     log_scale: false,
//! };
//! let svg = chart.to_svg();
//! assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
//! assert!(svg.contains(">2150<") && svg.contains(">61<"));
//! ```

use std::fmt::Write as _;

/// One series of a [`BarChart`]: a name for the legend and one value per category.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// What the series is (the legend's entry; also in each bar's tooltip).
    pub name: String,
    /// One value per category of the chart, in the same order; a missing or
    /// undrawable value is shown as `n/a`.
    pub values: Vec<f64>,
}

impl Series {
    /// A series named `name` with `values`, one per category.
    pub fn new(name: impl Into<String>, values: Vec<f64>) -> Series {
        Series {
            name: name.into(),
            values,
        }
    }
}

/// A grouped horizontal bar chart of one quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    /// The heading above the chart.
    pub title: String,
    /// The unit of the values (`bytes`, `ms`), written under the axis.
    pub unit: String,
    /// One group of bars per category, top to bottom, named on the left.
    pub categories: Vec<String>,
    /// One bar per series in each group, in this order and colour.
    pub series: Vec<Series>,
    /// Draw the axis logarithmically (one tick per power of ten), for values that
    /// span orders of magnitude.
    pub log_scale: bool,
}

/// The width of every chart, in pixels (wider when long labels need it).
const WIDTH: f64 = 760.0;
/// The margin around everything.
const PAD: f64 = 12.0;
/// Font sizes: labels and ticks, the chart title, the document title of [`stack`].
const FONT: f64 = 13.0;
const TITLE_FONT: f64 = 16.0;
const DOC_TITLE_FONT: f64 = 19.0;
/// The width of one character at [`FONT`], for sizing the margins (a generous
/// average for a sans-serif font, so text fits rather than overflows).
const CHAR_W: f64 = 7.8;
/// One bar's thickness, the space between bars of a group, and between groups.
const BAR_H: f64 = 18.0;
const BAR_GAP: f64 = 3.0;
const GROUP_GAP: f64 = 12.0;
/// The plot area's least width.
const MIN_PLOT_W: f64 = 240.0;
/// Space between two stacked charts.
const STACK_GAP: f64 = 20.0;
/// The most ticks a linear axis gets (about 5 in practice), and decades labelled on
/// a log axis before they are thinned.
const MAX_DECADE_TICKS: i32 = 8;

/// The Okabe-Ito palette without its yellow (too pale on white), then black.
const COLOURS: [&str; 7] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
];
/// Text, the axis and the grid.
const INK: &str = "#222222";
const MUTED: &str = "#666666";
const GRID: &str = "#dddddd";

/// A chart drawn at the origin: its size and its elements, ready to be wrapped in an
/// `<svg>` (by [`BarChart::to_svg`]) or a translated `<g>` (by [`stack`]).
struct Drawn {
    width: f64,
    height: f64,
    body: String,
}

impl BarChart {
    /// The chart as one standalone `<svg>` element, with `width`, `height` and a
    /// `viewBox` of the same size, ending with a newline.
    pub fn to_svg(&self) -> String {
        let drawn = self.draw();
        let mut out = String::new();
        open_svg(&mut out, drawn.width, drawn.height);
        out.push_str(&drawn.body);
        out.push_str("</svg>\n");
        out
    }

    /// Lays the chart out and draws it at the origin.
    fn draw(&self) -> Drawn {
        let labels: Vec<Vec<String>> = self
            .series
            .iter()
            .map(|s| {
                (0..self.categories.len())
                    .map(|i| self.label(s.values.get(i).copied()))
                    .collect()
            })
            .collect();
        let label_w =
            text_width(self.categories.iter().map(String::as_str)).clamp(40.0, 300.0) + 10.0;
        let value_w = text_width(labels.iter().flatten().map(String::as_str)).max(30.0) + 8.0;
        let width = WIDTH.max(PAD + label_w + MIN_PLOT_W + value_w + PAD);
        let plot_x = PAD + label_w;
        let plot_w = width - plot_x - value_w - PAD;

        let mut body = String::new();
        let mut y = PAD + TITLE_FONT;
        text(
            &mut body,
            PAD,
            y,
            TITLE_FONT,
            "start",
            "font-weight=\"bold\"",
            &self.title,
        );
        y += 10.0;
        if self.series.len() > 1 {
            y = legend(&mut body, &self.series, y, width);
        }
        y += 8.0;

        let n = self.series.len();
        if self.categories.is_empty() || n == 0 {
            y += FONT + 4.0;
            text(&mut body, PAD, y, FONT, "start", "", "no data");
            return Drawn {
                width,
                height: y + PAD,
                body,
            };
        }

        let axis = Axis::new(
            self.series.iter().flat_map(|s| s.values.iter().copied()),
            self.log_scale,
        );
        let plot_top = y;
        let group_h = n as f64 * (BAR_H + BAR_GAP) - BAR_GAP;
        let plot_h = self.categories.len() as f64 * (group_h + GROUP_GAP) - GROUP_GAP;
        let plot_bottom = plot_top + plot_h;

        // The grid first, so that the bars are drawn over it.
        let _ = writeln!(body, "<g class=\"grid\" stroke=\"{GRID}\">");
        for tick in &axis.ticks {
            let x = plot_x + tick.at * plot_w;
            let _ = writeln!(
                body,
                "<line x1=\"{x:.1}\" y1=\"{plot_top:.1}\" x2=\"{x:.1}\" y2=\"{plot_bottom:.1}\"/>"
            );
        }
        body.push_str("</g>\n");

        for (c, category) in self.categories.iter().enumerate() {
            let group_y = plot_top + c as f64 * (group_h + GROUP_GAP);
            text(
                &mut body,
                plot_x - 8.0,
                group_y + group_h / 2.0 + FONT * 0.35,
                FONT,
                "end",
                "class=\"category\"",
                category,
            );
            for (s, series) in self.series.iter().enumerate() {
                let bar_y = group_y + s as f64 * (BAR_H + BAR_GAP);
                let value = series.values.get(c).copied();
                let label = labels
                    .get(s)
                    .and_then(|l| l.get(c))
                    .map_or("", String::as_str);
                let baseline = bar_y + BAR_H / 2.0 + FONT * 0.35;
                match value.and_then(|v| axis.position(v)) {
                    Some(at) => {
                        let w = at * plot_w;
                        let colour = COLOURS[s % COLOURS.len()];
                        let _ = write!(
                            body,
                            "<rect class=\"bar\" data-series=\"{s}\" data-category=\"{c}\" \
                             x=\"{plot_x:.1}\" y=\"{bar_y:.1}\" width=\"{w:.2}\" \
                             height=\"{BAR_H:.1}\" fill=\"{colour}\"><title>"
                        );
                        escape_into(
                            &mut body,
                            &format!("{category}, {}: {label} {}", series.name, self.unit),
                        );
                        body.push_str("</title></rect>\n");
                        text(
                            &mut body,
                            plot_x + w + 4.0,
                            baseline,
                            FONT,
                            "start",
                            "class=\"value\"",
                            label,
                        );
                    }
                    None => text(
                        &mut body,
                        plot_x + 4.0,
                        baseline,
                        FONT,
                        "start",
                        &format!("class=\"value\" fill=\"{MUTED}\" font-style=\"italic\""),
                        label,
                    ),
                }
            }
        }

        // The axis: its line, a label under each tick, then the unit.
        let _ = writeln!(
            body,
            "<line class=\"axis\" x1=\"{plot_x:.1}\" y1=\"{plot_bottom:.1}\" x2=\"{:.1}\" \
             y2=\"{plot_bottom:.1}\" stroke=\"{INK}\"/>",
            plot_x + plot_w
        );
        let tick_y = plot_bottom + 4.0 + FONT;
        for tick in &axis.ticks {
            text(
                &mut body,
                plot_x + tick.at * plot_w,
                tick_y,
                FONT,
                "middle",
                "class=\"tick\"",
                &tick.label,
            );
        }
        let unit_y = tick_y + 6.0 + FONT;
        let unit = if self.log_scale {
            format!("{} (log scale)", self.unit)
        } else {
            self.unit.clone()
        };
        text(
            &mut body,
            plot_x + plot_w / 2.0,
            unit_y,
            FONT,
            "middle",
            &format!("class=\"unit\" fill=\"{MUTED}\""),
            &unit,
        );
        Drawn {
            width,
            height: unit_y + PAD,
            body,
        }
    }

    /// The label of one value: its human-readable form, or `n/a`.
    fn label(&self, value: Option<f64>) -> String {
        match value {
            Some(v) if v.is_finite() && v >= 0.0 => {
                if v == 0.0 && self.log_scale {
                    "0".to_string()
                } else {
                    human(v)
                }
            }
            _ => "n/a".to_string(),
        }
    }
}

/// Several charts one above the other, under `title`, as one standalone SVG
/// document (with its XML declaration), as wide as the widest chart.
pub fn stack(title: &str, charts: &[BarChart]) -> String {
    let drawn: Vec<Drawn> = charts.iter().map(BarChart::draw).collect();
    let width = drawn.iter().map(|d| d.width).fold(WIDTH, f64::max);
    let mut body = String::new();
    let mut y = PAD + DOC_TITLE_FONT;
    text(
        &mut body,
        PAD,
        y,
        DOC_TITLE_FONT,
        "start",
        "font-weight=\"bold\"",
        title,
    );
    y += STACK_GAP / 2.0;
    for d in &drawn {
        let _ = writeln!(body, "<g transform=\"translate(0,{y:.1})\">");
        body.push_str(&d.body);
        body.push_str("</g>\n");
        y += d.height + STACK_GAP;
    }
    let height = y - STACK_GAP + PAD;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    open_svg(&mut out, width, height);
    out.push_str(&body);
    out.push_str("</svg>\n");
    out
}

/// A number as people read it: three significant digits, `k`, `M`, `G`, `T` for
/// thousands and up from 10,000 (`12.3k`, `4.5M`), whole numbers below that
/// (`4096`), an exponent outside what those cover (`2.50e-4`), `n/a` when it is not
/// a number.
pub fn human(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".to_string();
    }
    let a = v.abs();
    if a == 0.0 {
        "0".to_string()
    } else if !(1e-3..1e15).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 1e12 {
        format!("{}T", three_digits(v / 1e12))
    } else if a >= 1e9 {
        format!("{}G", three_digits(v / 1e9))
    } else if a >= 1e6 {
        format!("{}M", three_digits(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", three_digits(v / 1e3))
    } else if a >= 1e3 {
        format!("{v:.0}")
    } else {
        three_digits(v)
    }
}

/// The label of 10^`exp`: as [`human`] writes it where that is exact, `1e-5` beyond.
fn power_of_ten(exp: i32) -> String {
    if (-3..15).contains(&exp) {
        human(10f64.powi(exp))
    } else {
        format!("1e{exp}")
    }
}

/// `v` (below 1000 in magnitude) to three significant digits, without trailing
/// zeros after the point.
fn three_digits(v: f64) -> String {
    let a = v.abs();
    let text = if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// One tick of an axis: where it is (0 at the origin, 1 at the end) and its label.
#[derive(Debug, Clone, PartialEq)]
struct Tick {
    at: f64,
    label: String,
}

/// The value axis: how a value maps to a fraction of the plot's width, and its ticks.
#[derive(Debug, Clone, PartialEq)]
enum Scale {
    /// From 0 to `max`.
    Linear { max: f64 },
    /// From 10^`lo` to 10^`hi` (exponents, so that no power is computed that
    /// underflows or overflows).
    Log { lo: f64, hi: f64 },
}

#[derive(Debug, Clone, PartialEq)]
struct Axis {
    scale: Scale,
    ticks: Vec<Tick>,
}

impl Axis {
    /// The axis that fits every drawable value of `values`.
    fn new(values: impl Iterator<Item = f64>, log: bool) -> Axis {
        let drawable = values.filter(|v| v.is_finite() && *v >= 0.0);
        if log {
            Axis::log(drawable.filter(|v| *v > 0.0))
        } else {
            Axis::linear(drawable.fold(0.0, f64::max))
        }
    }

    /// 0 to a round number at or above `max`, ticks at 1, 2 or 5 times a power of
    /// ten, about five of them.
    fn linear(max: f64) -> Axis {
        let max = if max > 0.0 { max } else { 1.0 };
        let step = nice_step(max / 5.0);
        let (end, count) = match step {
            Some(step) if (max / step).ceil() * step < f64::INFINITY => {
                let count = (max / step).ceil();
                (count * step, count as usize)
            }
            _ => (max, 1),
        };
        let ticks = (0..=count.min(20))
            .map(|i| {
                let v = end * i as f64 / count as f64;
                Tick {
                    at: i as f64 / count as f64,
                    label: human(v),
                }
            })
            .collect();
        Axis {
            scale: Scale::Linear { max: end },
            ticks,
        }
    }

    /// From the power of ten below the least value to the one at or above the
    /// greatest, a tick per power (or per few, beyond [`MAX_DECADE_TICKS`] decades).
    fn log(positive: impl Iterator<Item = f64>) -> Axis {
        let (min, max) = positive.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let (lo, hi) = if max > 0.0 {
            // Strictly below the least value, so that its bar has a length.
            let lo = (min.log10() - 1e-9).floor();
            (lo, max.log10().ceil().max(lo + 1.0))
        } else {
            (0.0, 1.0)
        };
        let decades = (hi - lo) as i32;
        let every = (decades + MAX_DECADE_TICKS - 1) / MAX_DECADE_TICKS;
        let ticks = (0..=decades)
            .step_by(every.max(1) as usize)
            .map(|d| {
                let exp = lo as i32 + d;
                Tick {
                    at: f64::from(d) / f64::from(decades),
                    label: power_of_ten(exp),
                }
            })
            .collect();
        Axis {
            scale: Scale::Log { lo, hi },
            ticks,
        }
    }

    /// Where `v` ends on the axis (0 to 1), or `None` when it cannot be drawn.
    fn position(&self, v: f64) -> Option<f64> {
        if !v.is_finite() || v < 0.0 {
            return None;
        }
        match self.scale {
            Scale::Linear { max } => Some((v / max).clamp(0.0, 1.0)),
            Scale::Log { lo, hi } => {
                (v > 0.0).then(|| ((v.log10() - lo) / (hi - lo)).clamp(0.0, 1.0))
            }
        }
    }
}

/// The round step (1, 2 or 5 times a power of ten) at or above `raw`, or `None`
/// when `raw` is too small or large for one.
fn nice_step(raw: f64) -> Option<f64> {
    if !raw.is_finite() || raw <= 0.0 {
        return None;
    }
    let power = 10f64.powf(raw.log10().floor());
    if power <= 0.0 || !power.is_finite() {
        return None;
    }
    let fraction = raw / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    let step = nice * power;
    (step > 0.0 && step.is_finite()).then_some(step)
}

/// The legend: a swatch and the name of each series, in rows that fit `width`.
/// Returns the `y` under it.
fn legend(body: &mut String, series: &[Series], mut y: f64, width: f64) -> f64 {
    let mut x = PAD;
    y += FONT + 4.0;
    for (s, one) in series.iter().enumerate() {
        let w = 14.0 + 6.0 + text_width(std::iter::once(one.name.as_str())) + 18.0;
        if x > PAD && x + w > width - PAD {
            x = PAD;
            y += FONT + 8.0;
        }
        let colour = COLOURS[s % COLOURS.len()];
        let _ = writeln!(
            body,
            "<rect class=\"swatch\" x=\"{x:.1}\" y=\"{:.1}\" width=\"14\" height=\"14\" \
             fill=\"{colour}\"/>",
            y - 11.5
        );
        text(
            body,
            x + 20.0,
            y,
            FONT,
            "start",
            "class=\"legend\"",
            &one.name,
        );
        x += w;
    }
    y + 4.0
}

/// The estimated width of the widest of `texts` at [`FONT`].
fn text_width<'a>(texts: impl Iterator<Item = &'a str>) -> f64 {
    texts
        .map(|t| t.chars().count() as f64 * CHAR_W)
        .fold(0.0, f64::max)
}

/// The root element's start tag, with a white background behind what follows.
fn open_svg(out: &mut String, width: f64, height: f64) {
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"Helvetica, Arial, sans-serif\" \
         fill=\"{INK}\">"
    );
    let _ = writeln!(
        out,
        "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>"
    );
}

/// A `<text>` element; `attrs` are further attributes, written as they are.
fn text(out: &mut String, x: f64, y: f64, size: f64, anchor: &str, attrs: &str, content: &str) {
    let _ = write!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\""
    );
    if !attrs.is_empty() {
        out.push(' ');
        out.push_str(attrs);
    }
    out.push('>');
    escape_into(out, content);
    out.push_str("</text>\n");
}

/// Appends `text` with the five characters XML gives a meaning escaped (XML 1.0
/// §2.4: `<` and `&` never appear literally in character data; quotes so that the
/// same text is safe in an attribute).
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and newlines are not allowed in
            // XML 1.0 at all (§2.2), escaped or not.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that every element opened is closed in order, that the document has
    /// one root, and that no `<` or `&` stands in text unescaped. Returns the element
    /// names in document order.
    fn check_well_formed(svg: &str) -> Vec<String> {
        let mut open: Vec<String> = Vec::new();
        let mut names = Vec::new();
        let mut roots = 0;
        let mut rest = svg;
        for _ in 0..svg.len() {
            let Some(lt) = rest.find('<') else {
                check_text(rest);
                break;
            };
            check_text(&rest[..lt]);
            let gt = rest[lt..].find('>').expect("a tag that is never closed") + lt;
            let tag = &rest[lt + 1..gt];
            rest = &rest[gt + 1..];
            if tag.starts_with('?') {
                assert!(names.is_empty(), "a declaration after the root");
                continue;
            }
            assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                let top = open.pop().expect("a closing tag with nothing open");
                assert_eq!(top, name, "</{name}> closes <{top}>");
                continue;
            }
            let name: String = tag
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '/')
                .collect();
            check_attributes(tag);
            if open.is_empty() {
                roots += 1;
            }
            names.push(name.clone());
            if !tag.ends_with('/') {
                open.push(name);
            }
        }
        assert!(open.is_empty(), "left open: {open:?}");
        assert_eq!(roots, 1, "one root element");
        assert!(rest.trim().is_empty() || !rest.contains('<'));
        names
    }

    /// Text between tags: no `<`, and every `&` starts one of the five entities.
    fn check_text(text: &str) {
        assert!(!text.contains('<'));
        for (i, _) in text.match_indices('&') {
            let after = &text[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| after.starts_with(e)),
                "a bare & in {text:?}"
            );
        }
    }

    /// A tag's attributes come in `name="value"` pairs, values without `"` or `<`.
    fn check_attributes(tag: &str) {
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes: {tag}");
        for value in tag.split('"').skip(1).step_by(2) {
            check_text(value);
        }
    }

    /// The value of attribute `name` in the first tag of `tag`.
    fn attribute(tag: &str, name: &str) -> Option<String> {
        let key = format!(" {name}=\"");
        let start = tag.find(&key)? + key.len();
        let len = tag[start..].find('"')?;
        Some(tag[start..start + len].to_string())
    }

    /// Every bar: (series, category, width).
    fn bars(svg: &str) -> Vec<(usize, usize, f64)> {
        svg.split("<rect class=\"bar\"")
            .skip(1)
            .map(|rest| {
                let tag = format!(" {}", &rest[..rest.find('>').unwrap()]);
                let num = |n: &str| attribute(&tag, n).unwrap();
                (
                    num("data-series").parse().unwrap(),
                    num("data-category").parse().unwrap(),
                    num("width").parse().unwrap(),
                )
            })
            .collect()
    }

    /// The content of every `<text class="…">` of `class`.
    fn texts(svg: &str, class: &str) -> Vec<String> {
        let key = format!("class=\"{class}\"");
        svg.split("<text ")
            .skip(1)
            .filter(|t| t[..t.find('>').unwrap()].contains(&key))
            .map(|t| {
                let start = t.find('>').unwrap() + 1;
                t[start..t.find("</text>").unwrap()].to_string()
            })
            .collect()
    }

    fn chart(values: Vec<Vec<f64>>, log_scale: bool) -> BarChart {
        let categories = (0..values.first().map_or(0, Vec::len))
            .map(|i| format!("category {i}"))
            .collect();
        BarChart {
            title: "Title".into(),
            unit: "ms".into(),
            categories,
            series: values
                .into_iter()
                .enumerate()
                .map(|(i, v)| Series::new(format!("series {i}"), v))
                .collect(),
            log_scale,
        }
    }

    #[test]
    fn svg_root_has_size_and_view_box() {
        let svg = chart(vec![vec![1.0, 2.0]], false).to_svg();
        let names = check_well_formed(&svg);
        assert_eq!(names[0], "svg");
        let root = &svg[..svg.find('>').unwrap()];
        let w = attribute(root, "width").unwrap();
        let h = attribute(root, "height").unwrap();
        assert_eq!(attribute(root, "viewBox").unwrap(), format!("0 0 {w} {h}"));
        assert!(w.parse::<f64>().unwrap() >= WIDTH);
        assert!(h.parse::<f64>().unwrap() > 50.0);
        assert!(attribute(root, "xmlns").is_some());
    }

    #[test]
    fn labels_are_escaped() {
        let nasty = "a<b & \"c\" 'd' >e";
        let c = BarChart {
            title: nasty.into(),
            unit: "<unit>".into(),
            categories: vec![nasty.into(), "ok".into()],
            series: vec![
                Series::new(nasty, vec![1.0, 2.0]),
                Series::new("x", vec![3.0, 4.0]),
            ],
            log_scale: false,
        };
        let svg = c.to_svg();
        check_well_formed(&svg);
        let escaped = "a&lt;b &amp; &quot;c&quot; &apos;d&apos; &gt;e";
        assert!(svg.contains(&format!(">{escaped}</text>")), "{svg}");
        assert!(texts(&svg, "category").contains(&escaped.to_string()));
        assert!(texts(&svg, "legend").contains(&escaped.to_string()));
        assert!(svg.contains("&lt;unit&gt;"));
        assert!(!svg.contains(nasty));
        // A control character is not allowed in XML even escaped.
        let mut c = c;
        c.title = "bell\u{7}".into();
        assert!(!c.to_svg().contains('\u{7}'));
    }

    #[test]
    fn bar_lengths_are_proportional_to_values() {
        let values = vec![vec![10.0, 40.0, 25.0], vec![5.0, 0.0, 80.0]];
        let svg = chart(values.clone(), false).to_svg();
        check_well_formed(&svg);
        let bars = bars(&svg);
        assert_eq!(bars.len(), 6);
        // The width per unit of value is the same for every bar.
        let (s, c, w) = bars[0];
        let per_unit = w / values[s][c];
        for (s, c, w) in bars {
            let expected = values[s][c] * per_unit;
            assert!(
                (w - expected).abs() < 0.02,
                "bar {s},{c}: {w} vs {expected}"
            );
        }
        // Value labels say each number.
        let labels = texts(&svg, "value");
        for v in ["10", "40", "25", "5", "0", "80"] {
            assert!(labels.contains(&v.to_string()), "{v} in {labels:?}");
        }
    }

    #[test]
    fn linear_ticks_are_round_and_cover_the_largest_value() {
        let svg = chart(vec![vec![37.0, 12.0]], false).to_svg();
        assert_eq!(texts(&svg, "tick"), ["0", "10", "20", "30", "40"]);
        let svg = chart(vec![vec![1234.0]], false).to_svg();
        assert_eq!(texts(&svg, "tick"), ["0", "500", "1000", "1500"]);
        let svg = chart(vec![vec![0.7]], false).to_svg();
        assert_eq!(texts(&svg, "tick"), ["0", "0.2", "0.4", "0.6", "0.8"]);
        assert_eq!(texts(&svg, "unit"), ["ms"]);
    }

    #[test]
    fn log_scale_ticks_are_powers_of_ten() {
        let values = vec![vec![3.0, 4500.0, 100.0]];
        let svg = chart(values.clone(), true).to_svg();
        check_well_formed(&svg);
        assert_eq!(texts(&svg, "tick"), ["1", "10", "100", "1000", "10k"]);
        assert_eq!(texts(&svg, "unit"), ["ms (log scale)"]);
        // Bars are proportional to the logarithm: 100 ends halfway along 1..10k.
        let bars = bars(&svg);
        let full = bars[0].2 / (3f64.log10() / 4.0);
        assert!((bars[2].2 - full / 2.0).abs() < 0.1, "{bars:?}");
        assert!((bars[1].2 - full * 4500f64.log10() / 4.0).abs() < 0.1);
        // Many decades are thinned to a tick every few.
        let svg = chart(vec![vec![1e-3, 1e14]], true).to_svg();
        let ticks = texts(&svg, "tick");
        assert!(ticks.len() <= MAX_DECADE_TICKS as usize + 1, "{ticks:?}");
        // From below 1e-3 (so that its bar has a length) to 1e14, every third power.
        assert_eq!(
            ticks,
            ["1e-4", "0.1", "100", "100k", "100M", "100G", "100T"]
        );
    }

    #[test]
    fn log_scale_smallest_value_on_a_power_of_ten_still_has_a_bar() {
        let svg = chart(vec![vec![1.0, 10.0]], true).to_svg();
        let bars = bars(&svg);
        assert!(bars[0].2 > 1.0, "{bars:?}");
        assert_eq!(texts(&svg, "tick"), ["0.1", "1", "10"]);
    }

    #[test]
    fn undrawable_values_are_n_a_without_a_bar() {
        for log in [false, true] {
            let values = vec![vec![f64::NAN, f64::INFINITY, -3.0, f64::NEG_INFINITY, 2.0]];
            let svg = chart(values, log).to_svg();
            check_well_formed(&svg);
            let bars = bars(&svg);
            assert_eq!(bars.len(), 1, "only the 2 is drawn: {bars:?}");
            assert_eq!(bars[0].1, 4);
            assert_eq!(texts(&svg, "value"), ["n/a", "n/a", "n/a", "n/a", "2"]);
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
        // Zero is a zero-length bar on a linear axis, no bar on a log one.
        let svg = chart(vec![vec![0.0, 5.0]], false).to_svg();
        assert_eq!(bars(&svg)[0].2, 0.0);
        let svg = chart(vec![vec![0.0, 5.0]], true).to_svg();
        assert_eq!(bars(&svg).len(), 1);
        assert_eq!(texts(&svg, "value"), ["0", "5"]);
    }

    #[test]
    fn a_short_series_is_missing_the_rest() {
        let mut c = chart(vec![vec![1.0, 2.0, 3.0]], false);
        c.series.push(Series::new("short", vec![4.0]));
        let svg = c.to_svg();
        check_well_formed(&svg);
        assert_eq!(bars(&svg).len(), 4);
        assert_eq!(
            texts(&svg, "value").iter().filter(|v| *v == "n/a").count(),
            2
        );
    }

    #[test]
    fn degenerate_inputs_draw_without_panicking() {
        let all_zero = chart(vec![vec![0.0, 0.0]], false).to_svg();
        check_well_formed(&all_zero);
        assert!(bars(&all_zero).iter().all(|b| b.2 == 0.0));
        let all_zero_log = chart(vec![vec![0.0, 0.0]], true).to_svg();
        check_well_formed(&all_zero_log);
        assert!(bars(&all_zero_log).is_empty());
        let all_nan = chart(vec![vec![f64::NAN]], false).to_svg();
        check_well_formed(&all_nan);
        for (categories, series) in [
            (vec![], vec![]),
            (vec!["a".to_string()], vec![]),
            (vec![], vec![Series::new("s", vec![1.0])]),
        ] {
            let c = BarChart {
                title: String::new(),
                unit: String::new(),
                categories,
                series,
                log_scale: false,
            };
            let svg = c.to_svg();
            check_well_formed(&svg);
            assert!(svg.contains(">no data</text>"));
            assert!(bars(&svg).is_empty());
        }
        for extreme in [f64::MAX, f64::MIN_POSITIVE, 5e-324, 1e300] {
            for log in [false, true] {
                let svg = chart(vec![vec![extreme, 1.0]], log).to_svg();
                check_well_formed(&svg);
                assert!(!svg.contains("NaN") && !svg.contains("inf"), "{extreme}");
                assert_eq!(bars(&svg).len(), 2);
            }
        }
    }

    #[test]
    fn a_legend_names_several_series_only() {
        let one = chart(vec![vec![1.0]], false).to_svg();
        assert!(texts(&one, "legend").is_empty());
        let three = chart(vec![vec![1.0], vec![2.0], vec![3.0]], false).to_svg();
        assert_eq!(
            texts(&three, "legend"),
            ["series 0", "series 1", "series 2"]
        );
        // Each series keeps its colour in the legend and on its bars.
        assert_eq!(three.matches(COLOURS[1]).count(), 2);
    }

    #[test]
    fn text_is_readable() {
        let svg = stack("doc", &[chart(vec![vec![1.0, 2.0], vec![3.0, 4.0]], true)]);
        for size in svg.split("font-size=\"").skip(1) {
            let px: f64 = size[..size.find('"').unwrap()].parse().unwrap();
            assert!(px >= 12.0);
        }
    }

    #[test]
    fn stack_puts_charts_one_above_the_other() {
        let charts = [
            chart(vec![vec![1.0, 2.0]], false),
            chart(vec![vec![3.0]], true),
            chart(vec![], false),
        ];
        let svg = stack("All & more", &charts);
        assert!(svg.starts_with("<?xml"));
        let names = check_well_formed(&svg);
        assert_eq!(names.iter().filter(|n| *n == "svg").count(), 1);
        assert!(svg.contains(">All &amp; more</text>"));
        let offsets: Vec<f64> = svg
            .split("<g transform=\"translate(0,")
            .skip(1)
            .map(|t| t[..t.find(')').unwrap()].parse().unwrap())
            .collect();
        assert_eq!(offsets.len(), 3);
        assert!(
            offsets.windows(2).all(|w| w[1] > w[0] + 50.0),
            "{offsets:?}"
        );
        // The document is as tall as its charts, its own title and the gaps between.
        let root = &svg[svg.find("<svg").unwrap()..];
        let height: f64 = attribute(&root[..root.find('>').unwrap()], "height")
            .unwrap()
            .parse()
            .unwrap();
        let heights: f64 = charts.iter().map(|c| c.draw().height).sum();
        assert!(height > heights && *offsets.last().unwrap() < height);
        // An empty stack is still a document.
        check_well_formed(&stack("", &[]));
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human(0.0), "0");
        assert_eq!(human(7.0), "7");
        assert_eq!(human(0.25), "0.25");
        assert_eq!(human(1.5), "1.5");
        assert_eq!(human(12.34), "12.3");
        assert_eq!(human(999.0), "999");
        assert_eq!(human(4096.0), "4096");
        assert_eq!(human(12_345.0), "12.3k");
        assert_eq!(human(2_500_000.0), "2.5M");
        assert_eq!(human(3e9), "3G");
        assert_eq!(human(0.0004), "4.00e-4");
        assert_eq!(human(-12.5), "-12.5");
        assert_eq!(human(f64::NAN), "n/a");
        assert_eq!(human(f64::INFINITY), "n/a");
    }
}
