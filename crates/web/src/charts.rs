//! Charts as server-rendered SVG: no script, readable by a screen reader (a title and a
//! description), and always next to a table of the same numbers on the page.

use std::fmt::Write as _;

const W: f64 = 720.0;
const H: f64 = 180.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 12.0;

/// One series of a chart: its name and a value per period.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<f64>,
    /// `bar` or `line`.
    pub kind: &'static str,
    /// A CSS class (its colour in `site.css`).
    pub class: &'static str,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round top for the axis: 1, 2 or 5 times a power of ten, at least `max`.
fn nice(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * p)
}

/// An SVG chart of `series` over periods labelled `labels` (every `label_every`-th shown),
/// the y axis written by `fmt`.
pub fn chart(
    title: &str,
    labels: &[String],
    label_every: usize,
    series: &[Series<'_>],
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let n = labels.len().max(1);
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0, f64::max);
    // At least 2, so the middle line of a quiet chart falls on a whole number.
    let top = nice(max.max(2.0));
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - TOP - BOTTOM;
    let step = plot_w / n as f64;
    let y = |v: f64| TOP + plot_h - (v / top) * plot_h;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = esc(title)
    );
    for frac in [0.0, 0.5, 1.0] {
        let v = top * frac;
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{tx}" y="{ty:.1}" text-anchor="end">{label}</text>"#,
            x2 = W - 8.0,
            y = y(v),
            tx = LEFT - 6.0,
            ty = y(v) + 4.0,
            label = esc(&fmt(v))
        );
    }
    let bars: Vec<&Series<'_>> = series.iter().filter(|s| s.kind == "bar").collect();
    let bar_w = (step * 0.8) / bars.len().max(1) as f64;
    for (k, b) in bars.iter().enumerate() {
        for (i, v) in b.values.iter().enumerate() {
            let x = LEFT + i as f64 * step + step * 0.1 + k as f64 * bar_w;
            let _ = write!(
                s,
                r#"<rect class="{c}" x="{x:.1}" y="{yy:.1}" width="{w:.1}" height="{h:.1}"><title>{name}, {l}: {val}</title></rect>"#,
                name = esc(b.name),
                c = b.class,
                yy = y(*v),
                w = bar_w.max(1.0),
                h = (TOP + plot_h - y(*v)).max(0.0),
                l = esc(labels.get(i).map(String::as_str).unwrap_or("")),
                val = esc(&fmt(*v))
            );
        }
    }
    for l in series.iter().filter(|s| s.kind == "line") {
        let points: Vec<String> = l
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", LEFT + (i as f64 + 0.5) * step, y(*v)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline class="{c}" fill="none" points="{p}"><title>{name}</title></polyline>"#,
            name = esc(l.name),
            c = l.class,
            p = points.join(" ")
        );
    }
    for (i, l) in labels.iter().enumerate() {
        if i % label_every.max(1) == 0 {
            let _ = write!(
                s,
                r#"<text class="axis" x="{x:.1}" y="{yy}" text-anchor="middle">{l}</text>"#,
                x = LEFT + (i as f64 + 0.5) * step,
                yy = H - 6.0,
                l = esc(l)
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round_and_every_value_is_drawn_and_named() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(13.0), 20.0);
        assert_eq!(nice(420.0), 500.0);
        let labels: Vec<String> = (0..4).map(|h| format!("{h:02}:00")).collect();
        let svg = chart(
            "Messages <per hour>",
            &labels,
            2,
            &[Series {
                name: "accepted",
                values: vec![0.0, 3.0, 7.0, 1.0],
                kind: "bar",
                class: "s1",
            }],
            &|v| format!("{v:.0}"),
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("<title>Messages &lt;per hour&gt;</title>"));
        assert_eq!(svg.matches("<rect").count(), 4);
        assert!(svg.contains("<title>accepted, 02:00: 7</title>"));
        // Every second label on the axis; the top of the axis is 10.
        assert!(svg.contains(">00:00</text>") && !svg.contains(">01:00</text>"));
        assert!(svg.contains(">10</text>"));
    }
}
