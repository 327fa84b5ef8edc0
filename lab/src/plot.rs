//! Small hand-written SVG plots (no plotting dependency).

use std::fmt::Write as _;

use crate::eval::Scores;

/// SI-SDR (and PESQ-WB, when measured) of the network versus recurrent rank,
/// with the full-rank value as a dashed line.
pub fn rank_svg(scores: &[Scores]) -> String {
    let full = scores.iter().find(|s| s.method == "hush");
    let mut pts: Vec<(f64, &Scores)> = scores
        .iter()
        .filter_map(|s| {
            s.method
                .strip_prefix("hush rank ")
                .and_then(|r| r.parse::<f64>().ok())
                .map(|r| (r, s))
        })
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (w, h, m) = (640.0, 360.0, 56.0);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    if pts.is_empty() {
        let _ = writeln!(svg, "</svg>");
        return svg;
    }
    let xmin = pts.first().map(|p| p.0.log2()).unwrap_or(0.0);
    let xmax = pts
        .last()
        .map(|p| p.0.log2())
        .unwrap_or(1.0)
        .max(xmin + 1.0);
    let all: Vec<f64> = pts
        .iter()
        .map(|p| p.1.si_sdr)
        .chain(full.map(|f| f.si_sdr))
        .collect();
    let ymin = all.iter().copied().fold(f64::MAX, f64::min).floor() - 1.0;
    let ymax = all.iter().copied().fold(f64::MIN, f64::max).ceil() + 1.0;
    let x = |r: f64| m + (r.log2() - xmin) / (xmax - xmin) * (w - 2.0 * m);
    let y = |v: f64| h - m - (v - ymin) / (ymax - ymin) * (h - 2.0 * m);
    let _ = writeln!(
        svg,
        r#"<line x1="{m}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
        h - m,
        w - m,
        h - m
    );
    let _ = writeln!(
        svg,
        r#"<line x1="{m}" y1="{m}" x2="{m}" y2="{}" stroke="black"/>"#,
        h - m
    );
    for (r, _) in &pts {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{r}</text>"#,
            x(*r),
            h - m + 16.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">recurrent rank (every matrix)</text>"#,
        w / 2.0,
        h - 12.0
    );
    for k in 0..=4 {
        let v = ymin + (ymax - ymin) * k as f64 / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{v:.1}</text>"#,
            m - 6.0,
            y(v) + 4.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">SI-SDR dB</text>"#,
        h / 2.0,
        h / 2.0
    );
    if let Some(f) = full {
        let _ = writeln!(
            svg,
            r#"<line x1="{m}" y1="{0}" x2="{1}" y2="{0}" stroke="gray" stroke-dasharray="4 3"/><text x="{1}" y="{2}" text-anchor="end" fill="gray">full rank {3:.2} dB</text>"#,
            y(f.si_sdr),
            w - m,
            y(f.si_sdr) - 4.0,
            f.si_sdr
        );
    }
    let path: Vec<String> = pts
        .iter()
        .map(|(r, s)| format!("{:.1},{:.1}", x(*r), y(s.si_sdr)))
        .collect();
    let _ = writeln!(
        svg,
        r#"<polyline points="{}" fill="none" stroke="steelblue" stroke-width="2"/>"#,
        path.join(" ")
    );
    for (r, s) in &pts {
        let label = match s.pesq {
            Some(p) => format!("{:.2} dB / PESQ {p:.2}", s.si_sdr),
            None => format!("{:.2} dB", s.si_sdr),
        };
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="steelblue"/><text x="{:.1}" y="{:.1}" font-size="10">{label}</text>"#,
            x(*r),
            y(s.si_sdr),
            x(*r) + 4.0,
            y(s.si_sdr) - 6.0
        );
    }
    let _ = writeln!(svg, "</svg>");
    svg
}
