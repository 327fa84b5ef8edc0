//! The tables of `hush-lab eval`: every method's means and medians; the
//! share of files where hush beats each anchor; and hush against the
//! anchors per speaker, SNR, noise kind and reverberation.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::items::Item;
use super::metrics::{mean, median};
use super::scores::{ItemScore, Scores};

/// Name of the oracle row.
pub const ORACLE: &str = "oracle (ideal band gains)";
/// Name of the RNNoise 0.1 row.
pub const NNNOISELESS: &str = "nnnoiseless 0.5.2 (RNNoise 0.1)";
/// Name of the RNNoise 0.2 row.
pub const RNNOISE: &str = "RNNoise 0.2 (pyrnnoise 0.4.5)";
/// Name of the DeepFilterNet3 row.
pub const DFN3: &str = "DeepFilterNet3";

fn f(v: Option<f64>, d: usize) -> String {
    v.map_or("–".to_string(), |x| format!("{x:.d$}"))
}

/// The hush row the breakdowns follow: the daemon's adaptive default when
/// it ran, else full rank.
fn hush_default(scores: &[Scores]) -> Option<&Scores> {
    scores
        .iter()
        .find(|s| s.method.starts_with("hush adaptive"))
        .or_else(|| scores.iter().find(|s| s.method == "hush"))
}

/// Share of files where `a` scores higher than `b` on `metric`, and the count.
fn wins(a: &Scores, b: &Scores, metric: fn(&ItemScore) -> Option<f64>) -> Option<(usize, usize)> {
    let pairs: Vec<(f64, f64)> = a
        .items
        .iter()
        .zip(&b.items)
        .filter_map(|(x, y)| Some((metric(x)?, metric(y)?)))
        .collect();
    (!pairs.is_empty()).then(|| (pairs.iter().filter(|(x, y)| x > y).count(), pairs.len()))
}

/// Renders every table.
pub fn render(scores: &[Scores], origin: &str, items: &[Item], audio_s: f64) -> String {
    let mut s = String::new();
    let speakers: BTreeMap<&str, ()> = items.iter().map(|i| (i.speaker.as_str(), ())).collect();
    let female = items
        .iter()
        .filter(|i| i.sex == crate::corpus::Sex::Female)
        .map(|i| i.speaker.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let languages = items
        .iter()
        .map(|i| i.language.as_str())
        .collect::<std::collections::BTreeSet<_>>();
    let _ = writeln!(
        s,
        "hush-lab eval: {} validation mixtures ({audio_s:.0} s) of {} unseen speakers ({female} female; languages {}), \
         music/babble/transient/stationary noise, SNR −5…20 dB, {} reverberant; model {origin}\n",
        items.len(),
        speakers.len(),
        languages.into_iter().collect::<Vec<_>>().join(", "),
        items.iter().filter(|i| i.ex.reverberant).count(),
    );
    let _ = writeln!(
        s,
        "| method | mean SI-SDR / PESQ-WB / STOI | median SI-SDR / PESQ-WB / STOI | onset SI-SDR (first 100 ms) | CPU RTF |"
    );
    let _ = writeln!(s, "| --- | --- | --- | --- | --- |");
    for sc in scores {
        let _ = writeln!(
            s,
            "| {} | {:.2} / {} / {} | {:.2} / {} / {} | {} | {} |",
            sc.method,
            sc.si_sdr,
            f(sc.pesq, 3),
            f(sc.stoi, 3),
            sc.si_sdr_median,
            f(sc.pesq_median, 3),
            f(sc.stoi_median, 3),
            f(sc.onset_si_sdr, 2),
            if sc.cpu_rtf > 0.0 {
                format!("{:.4}", sc.cpu_rtf)
            } else {
                "–".into()
            }
        );
    }
    let hushes: Vec<&Scores> = scores
        .iter()
        .filter(|x| x.method == "hush" || x.method.starts_with("hush adaptive"))
        .collect();
    let anchors: Vec<&Scores> = scores
        .iter()
        .filter(|x| !x.method.starts_with("hush") && x.method != ORACLE)
        .collect();
    let _ = writeln!(
        s,
        "\nShare of files where hush scores higher than each anchor (PESQ-WB / SI-SDR / STOI):\n"
    );
    let _ = writeln!(
        s,
        "| hush | {} |",
        anchors
            .iter()
            .map(|a| a.method.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(s, "| --- |{}", " --- |".repeat(anchors.len()));
    for h in &hushes {
        let cells: Vec<String> = anchors
            .iter()
            .map(|a| {
                let w = |m: fn(&ItemScore) -> Option<f64>| {
                    wins(h, a, m).map_or("–".into(), |(k, n)| {
                        format!("{:.0} %", 100.0 * k as f64 / n as f64)
                    })
                };
                format!(
                    "{} / {} / {}",
                    w(|x| x.pesq),
                    w(|x| Some(x.si_sdr)),
                    w(|x| x.stoi)
                )
            })
            .collect();
        let _ = writeln!(s, "| {} | {} |", h.method, cells.join(" | "));
    }
    let Some(hush) = hush_default(scores) else {
        return s;
    };
    let cols: Vec<&Scores> = ["noisy", hush.method.as_str(), RNNOISE, DFN3, ORACLE]
        .iter()
        .filter_map(|n| scores.iter().find(|x| x.method == *n))
        .collect();
    let short = |m: &str| -> String {
        if m.starts_with("hush") {
            "hush".into()
        } else if m == ORACLE {
            "oracle".into()
        } else if m == RNNOISE {
            "RNNoise 0.2".into()
        } else {
            m.into()
        }
    };
    let breakdown = |s: &mut String, title: &str, key: &dyn Fn(&Item) -> String| {
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, it) in items.iter().enumerate() {
            groups.entry(key(it)).or_default().push(i);
        }
        let _ = writeln!(
            s,
            "\n{title} — mean PESQ-WB / SI-SDR dB (median PESQ-WB), onset SI-SDR for hush and RNNoise 0.2 (hush = {}):\n",
            hush.method
        );
        let _ = write!(s, "| {title} | files |");
        for c in &cols {
            let _ = write!(s, " {} |", short(&c.method));
        }
        let _ = writeln!(s, " onset hush / RNNoise 0.2 |");
        let _ = writeln!(s, "| --- | --- |{}", " --- |".repeat(cols.len() + 1));
        for (g, idx) in &groups {
            let _ = write!(s, "| {g} | {} |", idx.len());
            for c in &cols {
                let pick = |m: fn(&ItemScore) -> Option<f64>| -> Vec<f64> {
                    idx.iter().filter_map(|&i| m(&c.items[i])).collect()
                };
                let _ = write!(
                    s,
                    " {} / {} ({}) |",
                    f(mean(&pick(|x| x.pesq)), 2),
                    f(mean(&pick(|x| Some(x.si_sdr))), 1),
                    f(median(&pick(|x| x.pesq)), 2),
                );
            }
            let onset = |c: Option<&Scores>| {
                c.map(|c| {
                    f(
                        mean(
                            &idx.iter()
                                .filter_map(|&i| c.items[i].onset_si_sdr)
                                .collect::<Vec<_>>(),
                        ),
                        1,
                    )
                })
                .unwrap_or_else(|| "–".into())
            };
            let _ = writeln!(
                s,
                " {} / {} |",
                onset(Some(hush)),
                onset(scores.iter().find(|x| x.method == RNNOISE))
            );
        }
    };
    breakdown(&mut s, "speaker", &|i| {
        format!("{} ({}, {})", i.speaker, i.language, i.sex.as_str())
    });
    breakdown(&mut s, "SNR dB", &|i| format!("{:+03.0}", i.snr_db));
    breakdown(&mut s, "noise kind", &|i| i.kind.name().to_string());
    breakdown(&mut s, "room", &|i| {
        if i.ex.reverberant {
            "reverberant"
        } else {
            "dry"
        }
        .to_string()
    });
    s
}
