//! A generic x/y SVG plot (lines or scatter, log axes, y = x band), for
//! `hush-lab memory`; hand-written like `plot.rs`, no plotting dependency.

use std::fmt::Write as _;

/// One series of [`xy_svg`]: points `(x, y)`, drawn as a line with markers
/// or as markers only.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Data points.
    pub points: Vec<(f64, f64)>,
    /// SVG colour.
    pub color: String,
    /// Join the points with a line.
    pub line: bool,
}

/// A generic x/y plot with a legend; logarithmic axes on request, and with
/// `diagonal` the line y = x plus the band y/x ∈ [0.67, 1.5] (dashed).
pub fn xy_svg(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[Series],
    log_x: bool,
    log_y: bool,
    diagonal: bool,
) -> String {
    let (w, h, m) = (720.0, 440.0, 64.0);
    let tx = |v: f64, log: bool| if log { v.max(1e-12).log10() } else { v };
    let pts = || series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts() {
        x0 = x0.min(tx(x, log_x));
        x1 = x1.max(tx(x, log_x));
        y0 = y0.min(tx(y, log_y));
        y1 = y1.max(tx(y, log_y));
    }
    if diagonal {
        (x0, y0) = (x0.min(y0), x0.min(y0));
        (x1, y1) = (x1.max(y1), x1.max(y1));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    if y1 - y0 < 1e-9 {
        y1 = y0 + 1.0;
    }
    let (padx, pady) = (0.04 * (x1 - x0), 0.06 * (y1 - y0));
    let (x0, x1, y0, y1) = (x0 - padx, x1 + padx, y0 - pady, y1 + pady);
    let px = |v: f64| m + (tx(v, log_x) - x0) / (x1 - x0) * (w - 2.0 * m);
    let py = |v: f64| h - m - (tx(v, log_y) - y0) / (y1 - y0) * (h - 2.0 * m);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{title}</text>"#,
        w / 2.0
    );
    let _ = writeln!(
        svg,
        r#"<polyline points="{m},{m} {m},{0} {1},{0}" fill="none" stroke="black"/>"#,
        h - m,
        w - m
    );
    for k in 0..=5 {
        let fx = x0 + (x1 - x0) * k as f64 / 5.0;
        let fy = y0 + (y1 - y0) * k as f64 / 5.0;
        let vx = if log_x { 10f64.powf(fx) } else { fx };
        let vy = if log_y { 10f64.powf(fy) } else { fy };
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            px(vx),
            h - m + 16.0,
            tick(vx)
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            m - 6.0,
            py(vy) + 4.0,
            tick(vy)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{xlabel}</text>"#,
        w / 2.0,
        h - 16.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="14" y="{0}" transform="rotate(-90 14 {0})" text-anchor="middle">{ylabel}</text>"#,
        h / 2.0
    );
    if diagonal {
        let (a, b) = (
            if log_x { 10f64.powf(x0) } else { x0 },
            if log_x { 10f64.powf(x1) } else { x1 },
        );
        for (k, dash) in [(1.0, ""), (0.67, "4 3"), (1.5, "4 3")] {
            let _ = writeln!(
                svg,
                r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="gray" stroke-dasharray="{dash}"/>"#,
                px(a),
                py(a * k),
                px(b),
                py(b * k)
            );
        }
    }
    let _ = writeln!(
        svg,
        r#"<clipPath id="plot"><rect x="{m}" y="{m}" width="{}" height="{}"/></clipPath><g clip-path="url(#plot)">"#,
        w - 2.0 * m,
        h - 2.0 * m
    );
    for s in series {
        if s.line && s.points.len() > 1 {
            let path: Vec<String> = s
                .points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5"/>"#,
                path.join(" "),
                s.color
            );
        }
        for &(x, y) in &s.points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}" fill-opacity="0.8"/>"#,
                px(x),
                py(y),
                s.color
            );
        }
    }
    let _ = writeln!(svg, "</g>");
    for (i, s) in series.iter().enumerate() {
        let y = m + 8.0 + 15.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{}" y="{:.1}">{}</text>"#,
            w - m - 150.0,
            y - 9.0,
            s.color,
            w - m - 135.0,
            y,
            s.label
        );
    }
    let _ = writeln!(svg, "</svg>");
    svg
}

fn tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if !(1e-2..1e4).contains(&a) {
        format!("{v:.1e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}
