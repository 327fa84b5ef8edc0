//! The tables of `hush-lab eval`: every method's means and medians; the
//! share of files where hush beats each anchor; hush against the anchors
//! per speaker, SNR, noise kind and reverberation; and the files where hush
//! loses most to RNNoise 0.2 and DeepFilterNet3.

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
    for anchor in [RNNOISE, DFN3] {
        if let Some(a) = scores.iter().find(|x| x.method == anchor) {
            largest_losses_table(&mut s, hush, a, items, LOSSES_LISTED);
        }
    }
    s
}

/// Files listed per anchor in the largest-losses tables.
const LOSSES_LISTED: usize = 6;

/// The files where `hush` scores lowest against `anchor` on PESQ-WB, largest
/// deficit first, at most `k`: (file index, hush, anchor). Files without a
/// PESQ-WB on either side and files hush wins or ties are left out.
fn largest_losses(hush: &[ItemScore], anchor: &[ItemScore], k: usize) -> Vec<(usize, f64, f64)> {
    let mut losses: Vec<(usize, f64, f64)> = hush
        .iter()
        .zip(anchor)
        .enumerate()
        .filter_map(|(i, (h, a))| Some((i, h.pesq?, a.pesq?)))
        .filter(|(_, h, a)| h < a)
        .collect();
    losses.sort_by(|x, y| (y.2 - y.1).total_cmp(&(x.2 - x.1)).then(x.0.cmp(&y.0)));
    losses.truncate(k);
    losses
}

/// Appends the table of [`largest_losses`] of `hush` to `anchor`: which
/// speaker, noise, SNR and room they are, so that a loss can be listened to
/// (the WAVs are numbered by file).
fn largest_losses_table(s: &mut String, hush: &Scores, anchor: &Scores, items: &[Item], k: usize) {
    let losses = largest_losses(&hush.items, &anchor.items, k);
    if losses.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nLargest PESQ-WB losses of {} to {}:\n",
        hush.method, anchor.method
    );
    let _ = writeln!(
        s,
        "| file | speaker | noise | SNR dB | room | hush | {} | deficit |",
        anchor.method
    );
    let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (i, h, a) in losses {
        let it = &items[i];
        let _ = writeln!(
            s,
            "| {i:03} | {} | {} ({}) | {:+03.0} | {} | {h:.2} | {a:.2} | {:.2} |",
            it.speaker,
            it.ex.noise_label,
            it.kind.name(),
            it.snr_db,
            if it.ex.reverberant {
                "reverberant"
            } else {
                "dry"
            },
            a - h
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(pesq: Option<f64>) -> ItemScore {
        ItemScore {
            si_sdr: 0.0,
            pesq,
            stoi: None,
            onset_si_sdr: None,
        }
    }

    /// Losses only, largest first (ties by file), at most k; files without
    /// PESQ-WB on either side skipped.
    #[test]
    fn largest_losses_lists_deficits_largest_first() {
        let hush = [Some(1.0), Some(2.0), None, Some(1.5), Some(1.2), Some(3.0)].map(score);
        let anchor = [Some(1.5), Some(1.9), Some(2.0), Some(2.5), Some(1.7), None].map(score);
        assert_eq!(
            largest_losses(&hush, &anchor, 5),
            vec![(3, 1.5, 2.5), (0, 1.0, 1.5), (4, 1.2, 1.7)]
        );
        assert_eq!(largest_losses(&hush, &anchor, 1), vec![(3, 1.5, 2.5)]);
        assert!(largest_losses(&hush, &hush, 5).is_empty());
    }
}
