//! Small hand-written SVG plots (no plotting dependency).

use std::fmt::Write as _;

use crate::error::{LabError, ReportDefect};

/// Quality of one network configuration (a point of the rank plot).
#[derive(Debug, Clone, Copy)]
pub struct RankQuality {
    /// Mean SI-SDR, dB.
    pub si_sdr: f64,
    /// Mean PESQ-WB, when measured.
    pub pesq: Option<f64>,
}

/// SI-SDR (and PESQ-WB, when measured) of the network versus recurrent rank
/// (`ranked`: (rank, quality)), with the full-rank value as a dashed line.
pub fn rank_svg(full: Option<RankQuality>, ranked: &[(f64, RankQuality)]) -> String {
    let mut pts = ranked.to_vec();
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

/// A named, coloured series of (t, value) points.
type Series<'a> = (String, &'a str, Vec<(f64, f64)>);

/// One panel of a time-series figure.
struct Panel<'a> {
    title: &'a str,
    series: Vec<Series<'a>>,
    /// Fixed y range, or fitted to the data.
    range: Option<(f64, f64)>,
    /// Log2 y axis (ranks).
    log2: bool,
    /// Horizontal reference line (value, label).
    reference: Option<(f64, String)>,
}

const COLOURS: [&str; 8] = [
    "steelblue",
    "darkorange",
    "seagreen",
    "crimson",
    "purple",
    "saddlebrown",
    "gray",
    "olive",
];

/// Stacked panels over a shared time axis, as an SVG.
fn panels_svg(title: &str, panels: &[Panel<'_>], t_end: f64) -> String {
    let (w, ph, m, top) = (900.0, 150.0, 64.0, 36.0);
    let h = top + panels.len() as f64 * (ph + 28.0) + 30.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{m}" y="20" font-size="14">{}</text>"#,
        xml(title)
    );
    let x = |t: f64| m + t / t_end.max(1e-9) * (w - 2.0 * m);
    for (k, p) in panels.iter().enumerate() {
        let y0 = top + k as f64 * (ph + 28.0) + 14.0;
        let tf = |v: f64| if p.log2 { v.max(1e-9).log2() } else { v };
        let values: Vec<f64> = p
            .series
            .iter()
            .flat_map(|s| s.2.iter().map(|q| tf(q.1)))
            .chain(p.reference.iter().map(|r| tf(r.0)))
            .filter(|v| v.is_finite())
            .collect();
        let (lo, hi) = match p.range {
            Some((a, b)) => (tf(a), tf(b)),
            None => {
                let lo = values.iter().copied().fold(f64::MAX, f64::min);
                let hi = values.iter().copied().fold(f64::MIN, f64::max);
                if lo > hi {
                    (0.0, 1.0)
                } else if hi - lo < 1e-9 {
                    (lo - 1.0, hi + 1.0)
                } else {
                    (lo, hi)
                }
            }
        };
        let y = |v: f64| y0 + ph - (tf(v) - lo) / (hi - lo) * ph;
        let _ = writeln!(
            svg,
            r#"<rect x="{m}" y="{y0}" width="{}" height="{ph}" fill="none" stroke="black"/>"#,
            w - 2.0 * m
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" font-weight="bold">{}</text>"#,
            m + 4.0,
            y0 - 3.0,
            xml(p.title)
        );
        for q in 0..=2 {
            let v = lo + (hi - lo) * q as f64 / 2.0;
            let shown = if p.log2 { v.exp2() } else { v };
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                m - 4.0,
                y0 + ph - (v - lo) / (hi - lo) * ph + 4.0,
                fmt_tick(shown)
            );
        }
        if let Some((v, label)) = &p.reference {
            let _ = writeln!(
                svg,
                r#"<line x1="{m}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="gray" stroke-dasharray="4 3"/><text x="{1}" y="{2:.1}" text-anchor="end" fill="gray">{3}</text>"#,
                y(*v),
                w - m,
                y(*v) - 3.0,
                xml(label)
            );
        }
        for (si, (name, colour, pts)) in p.series.iter().enumerate() {
            let path: Vec<String> = pts
                .iter()
                .filter(|q| q.1.is_finite())
                .map(|q| format!("{:.1},{:.1}", x(q.0), y(q.1)))
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#,
                path.join(" ")
            );
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{:.1}" fill="{colour}">{}</text>"#,
                w - m + 4.0,
                y0 + 12.0 + 13.0 * si as f64,
                xml(name)
            );
        }
    }
    let yb = top + panels.len() as f64 * (ph + 28.0);
    for q in 0..=10 {
        let t = t_end * q as f64 / 10.0;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{t:.0}</text>"#,
            x(t),
            yb
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{:.1}" text-anchor="middle">time, s</text>"#,
        w / 2.0,
        yb + 16.0
    );
    let _ = writeln!(svg, "</svg>");
    svg
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The rank-adaptation figure of a `hushd process --report` JSON: input and
/// output level (the waveform's envelope), rank per matrix, input and
/// injection coherence, and predicted error against the budget with the
/// recurrent MACs fraction — per second, on one time axis.
pub fn report_svg(report: &serde_json::Value, title: &str) -> Result<String, ReportDefect> {
    let secs = report
        .get("per_second")
        .and_then(|v| v.as_array())
        .ok_or(ReportDefect::NoPerSecond)?;
    if secs.is_empty() {
        return Err(ReportDefect::EmptyPerSecond);
    }
    let f = |s: &serde_json::Value, k: &str| s.get(k).and_then(|v| v.as_f64());
    let adapt = |s: &serde_json::Value, k: &str| s.get("adapt").and_then(|a| f(a, k));
    let series = |k: &str, nested: bool| -> Vec<(f64, f64)> {
        secs.iter()
            .filter_map(|s| {
                let t = f(s, "t")?;
                let v = if nested { adapt(s, k)? } else { f(s, k)? };
                Some((t + 0.5, v))
            })
            .collect()
    };
    let matrices = secs
        .iter()
        .filter_map(|s| s.get("adapt")?.get("ranks")?.as_array().map(Vec::len))
        .max()
        .ok_or(ReportDefect::NoRankTrace)?;
    let rank_series: Vec<Series<'_>> = (0..matrices)
        .map(|m| {
            let pts = secs
                .iter()
                .filter_map(|s| {
                    let r = s.get("adapt")?.get("ranks")?.get(m)?.as_f64()?;
                    Some((f(s, "t")? + 0.5, r))
                })
                .collect();
            (format!("matrix {m}"), COLOURS[m % COLOURS.len()], pts)
        })
        .collect();
    let budget = report
        .pointer("/config/adapt/error_budget")
        .and_then(|v| v.as_f64());
    let mode = report
        .pointer("/config/adapt/mode")
        .and_then(|v| v.as_str())
        .unwrap_or("?");
    let t_end = secs.len() as f64;
    let panels = [
        Panel {
            title: "level, dBFS",
            series: vec![
                ("input".into(), COLOURS[6], series("input_dbfs", false)),
                ("output".into(), COLOURS[0], series("output_dbfs", false)),
            ],
            range: None,
            log2: false,
            reference: None,
        },
        Panel {
            title: "rank per matrix (log scale; the top is dense)",
            series: rank_series,
            range: None,
            log2: true,
            reference: None,
        },
        Panel {
            title: "coherence (lag-1)",
            series: vec![
                ("input".into(), COLOURS[6], series("input_coherence", true)),
                (
                    "injection".into(),
                    COLOURS[1],
                    series("injection_coherence", true),
                ),
            ],
            range: Some((0.0, 1.0)),
            log2: false,
            reference: None,
        },
        Panel {
            title: "predicted RMS gain error",
            series: vec![(
                "predicted".into(),
                COLOURS[3],
                series("predicted_error", true),
            )],
            range: None,
            log2: false,
            reference: budget.map(|b| (b, format!("budget {b}"))),
        },
        Panel {
            title: "recurrent MACs, fraction of dense",
            series: vec![(
                "MACs".into(),
                COLOURS[2],
                series("recurrent_macs_fraction", true),
            )],
            range: Some((0.0, 1.0)),
            log2: false,
            reference: None,
        },
    ];
    Ok(panels_svg(
        &format!("{title} — mode {mode}"),
        &panels,
        t_end,
    ))
}

/// Options of `hush-lab plot`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlotArgs {
    /// A `hushd process --report` JSON file.
    pub report: std::path::PathBuf,
    /// Output SVG (default: the report's path with `.svg`).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
}

/// Runs `hush-lab plot`.
pub fn run(args: &PlotArgs) -> Result<(), LabError> {
    let name = args.report.display().to_string();
    let report = |source: ReportDefect| LabError::Report {
        path: args.report.clone(),
        source,
    };
    let text = std::fs::read_to_string(&args.report).map_err(LabError::read(&args.report))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| report(ReportDefect::NotJson(e)))?;
    let title = v
        .get("input")
        .and_then(|s| s.as_str())
        .unwrap_or(&name)
        .to_string();
    let svg = report_svg(&v, &title).map_err(report)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.report.with_extension("svg"));
    std::fs::write(&out, svg).map_err(LabError::write(&out))?;
    println!("wrote {}", out.display());
    Ok(())
}
