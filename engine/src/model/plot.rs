//! A dependency-free SVG line plot for loss curves (`loss.svg` in a run directory).

use std::fmt::Write;

/// One named line of (x, y) points.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const MARGIN_LEFT: f64 = 70.0;
const MARGIN_RIGHT: f64 = 150.0;
const MARGIN_Y: f64 = 40.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// Renders the series as an SVG document. Non-finite points are skipped.
pub fn line_plot_svg(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    let all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied().filter(finite))
        .collect();
    let (mut x0, mut x1, mut y0, mut y1) = all.iter().fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
    );
    if all.is_empty() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-12 {
        y1 = y0 + 1.0;
    }
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = HEIGHT - 2.0 * MARGIN_Y;
    let sx = |x: f64| MARGIN_LEFT + (x - x0) / (x1 - x0) * plot_w;
    let sy = |y: f64| MARGIN_Y + (1.0 - (y - y0) / (y1 - y0)) * plot_h;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        MARGIN_LEFT + plot_w / 2.0,
        escape(title)
    );
    // Axes, ticks and grid.
    for i in 0..=5 {
        let fy = y0 + (y1 - y0) * i as f64 / 5.0;
        let fx = x0 + (x1 - x0) * i as f64 / 5.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{l}" x2="{r}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{tx}" y="{ty}" text-anchor="end">{fy:.3}</text>"##,
            l = MARGIN_LEFT,
            r = MARGIN_LEFT + plot_w,
            y = sy(fy),
            tx = MARGIN_LEFT - 6.0,
            ty = sy(fy) + 4.0,
        );
        let _ = writeln!(
            svg,
            r#"<text x="{x}" y="{y}" text-anchor="middle">{fx}</text>"#,
            x = sx(fx),
            y = MARGIN_Y + plot_h + 16.0,
            fx = trim_number(fx),
        );
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{MARGIN_LEFT}" y="{MARGIN_Y}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        MARGIN_LEFT + plot_w / 2.0,
        HEIGHT - 6.0,
        escape(x_label)
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
        MARGIN_Y + plot_h / 2.0,
        escape(y_label)
    );
    for (n, s) in series.iter().enumerate() {
        let colour = COLOURS[n % COLOURS.len()];
        let points: Vec<String> = s
            .points
            .iter()
            .filter(|p| finite(p))
            .map(|&(x, y)| format!("{:.2},{:.2}", sx(x), sy(y)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let ly = MARGIN_Y + 16.0 + 18.0 * n as f64;
        let lx = MARGIN_LEFT + plot_w + 12.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Rounds a tick value to 4 decimals; printed with `{}` (shortest round-trip form), whole
/// values such as epochs print without decimals and fractions without trailing zeros.
fn trim_number(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_every_series_and_skips_non_finite() {
        let series = [
            Series {
                name: "train <loss>".into(),
                points: vec![(1.0, 2.3), (2.0, 2.0), (3.0, f64::NAN), (4.0, 1.7)],
            },
            Series {
                name: "val".into(),
                points: vec![(1.0, 2.4), (4.0, 1.9)],
            },
        ];
        let svg = line_plot_svg("loss", "epoch", "cross-entropy", &series);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("train &lt;loss&gt;"));
        assert!(!svg.contains("NaN"));
        // x ticks over epochs 1..=6 fall on whole numbers and 1.0 steps: no decimals printed.
        let epochs = Series {
            name: "e".into(),
            points: (1..=6).map(|e| (e as f64, 1.0 / e as f64)).collect(),
        };
        let svg = line_plot_svg("loss", "epoch", "loss", &[epochs]);
        for tick in ["1", "2", "3", "4", "5", "6"] {
            assert!(
                svg.contains(&format!(">{tick}</text>")),
                "missing x tick {tick}"
            );
        }
        assert!(!svg.contains(">1.0000</text>"));
        let fractional = Series {
            name: "f".into(),
            points: vec![(0.0, 0.0), (0.5, 1.0)],
        };
        let svg = line_plot_svg("f", "x", "y", &[fractional]);
        assert!(svg.contains(">0.1</text>") && svg.contains(">0.5</text>"));
        let empty = line_plot_svg("empty", "x", "y", &[]);
        assert!(empty.contains("</svg>"));
    }
}
