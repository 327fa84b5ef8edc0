//! Speakers of the built corpus: splitting a voice group that mixes voices
//! by pitch, the sex estimate from median F0, and `speakers.tsv`.

use std::path::Path;

use super::clip::Split;
use crate::error::LabError;

/// Sex as estimated from the median F0 (below 165 Hz: male).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    /// Median F0 below 165 Hz.
    Male,
    /// Median F0 at or above 165 Hz.
    Female,
    /// No voiced frames.
    Unknown,
}

impl Sex {
    /// From a median F0 in Hz (0: unknown).
    pub fn from_f0(f0: f64) -> Self {
        if f0 <= 0.0 {
            Self::Unknown
        } else if f0 < 165.0 {
            Self::Male
        } else {
            Self::Female
        }
    }

    /// `M`, `F` or `?`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Male => "M",
            Self::Female => "F",
            Self::Unknown => "?",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "M" => Self::Male,
            "F" => Self::Female,
            _ => Self::Unknown,
        }
    }
}

/// One speaker of the corpus (a row of `speakers.tsv`).
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerInfo {
    /// Speaker id (folder name under `speech/<source>/`).
    pub id: String,
    /// Corpus source id.
    pub source: String,
    /// Language code.
    pub language: String,
    /// Estimated sex.
    pub sex: Sex,
    /// Median over clips of the clips' median F0, Hz.
    pub f0_hz: f64,
    /// Seconds of kept speech.
    pub seconds: f64,
    /// Kept clips.
    pub clips: usize,
    /// Split the speaker belongs to (all of its clips).
    pub split: Split,
}

const HEADER: &str = "speaker\tsource\tlanguage\tsex\tf0_hz\tminutes\tclips\tsplit";

/// `speakers.tsv` text.
pub fn to_tsv<'a>(rows: impl Iterator<Item = &'a SpeakerInfo>) -> String {
    let mut s = format!("{HEADER}\n");
    for r in rows {
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{:.0}\t{:.2}\t{}\t{}\n",
            r.id,
            r.source,
            r.language,
            r.sex.as_str(),
            r.f0_hz,
            r.seconds / 60.0,
            r.clips,
            r.split.as_str()
        ));
    }
    s
}

/// Parses `speakers.tsv`; errors name the line.
pub fn parse_tsv(text: &str, origin: &Path) -> Result<Vec<SpeakerInfo>, LabError> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(LabError::Line {
            path: origin.to_path_buf(),
            line: 1,
            problem: format!("expected the header '{HEADER}'"),
        });
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let f: Vec<&str> = l.split('\t').collect();
            let bad = |what: &str| LabError::Line {
                path: origin.to_path_buf(),
                line: i + 2,
                problem: what.to_string(),
            };
            if f.len() != 8 {
                return Err(bad("expected 8 tab-separated fields"));
            }
            let num = |s: &str, what: &str| s.parse::<f64>().map_err(|_| bad(what));
            Ok(SpeakerInfo {
                id: f[0].into(),
                source: f[1].into(),
                language: f[2].into(),
                sex: Sex::parse(f[3]),
                f0_hz: num(f[4], "f0_hz is not a number")?,
                seconds: 60.0 * num(f[5], "minutes is not a number")?,
                clips: f[6].parse().map_err(|_| bad("clips is not an integer"))?,
                split: match f[7] {
                    "train" => Split::Train,
                    "validation" => Split::Validation,
                    _ => return Err(bad("split must be train or validation")),
                },
            })
        })
        .collect()
}

/// Splits a voice group's clips (their median F0s, 0 = unvoiced) into
/// speakers: two when the clips' log F0 falls into two clusters whose
/// centres are ≥ 1.45× apart (e.g. a male and a female voice) and the
/// smaller holds ≥ 15 % and ≥ 10 clips; otherwise one. Returns (suffix,
/// clip indices): `("", all)` or `("low", …), ("high", …)`; unvoiced clips
/// join the larger cluster.
pub fn split_by_pitch(f0: &[f64]) -> Vec<(String, Vec<usize>)> {
    let all = || vec![(String::new(), (0..f0.len()).collect())];
    let voiced: Vec<(usize, f64)> = f0
        .iter()
        .enumerate()
        .filter(|(_, f)| **f > 0.0)
        .map(|(i, f)| (i, f.ln()))
        .collect();
    if voiced.len() < 20 {
        return all();
    }
    let mut sorted: Vec<f64> = voiced.iter().map(|v| v.1).collect();
    sorted.sort_by(f64::total_cmp);
    let (mut lo, mut hi) = (sorted[sorted.len() / 4], sorted[3 * sorted.len() / 4]);
    let mut assign = vec![false; voiced.len()];
    for _ in 0..50 {
        for (a, v) in assign.iter_mut().zip(&voiced) {
            *a = (v.1 - hi).abs() < (v.1 - lo).abs();
        }
        let mean = |high: bool| {
            let s: Vec<f64> = voiced
                .iter()
                .zip(&assign)
                .filter(|(_, a)| **a == high)
                .map(|(v, _)| v.1)
                .collect();
            (!s.is_empty()).then(|| s.iter().sum::<f64>() / s.len() as f64)
        };
        match (mean(false), mean(true)) {
            (Some(a), Some(b)) => (lo, hi) = (a, b),
            _ => return all(),
        }
    }
    let n_hi = assign.iter().filter(|a| **a).count();
    let small = n_hi.min(voiced.len() - n_hi);
    if (hi - lo).exp() < 1.45 || small < 10 || (small as f64) < 0.15 * voiced.len() as f64 {
        return all();
    }
    let unvoiced_high = n_hi * 2 > voiced.len();
    let mut low = Vec::new();
    let mut high = Vec::new();
    let mut k = 0;
    for (i, f) in f0.iter().enumerate() {
        let is_high = if *f > 0.0 {
            let a = assign[k];
            k += 1;
            a
        } else {
            unvoiced_high
        };
        if is_high { high.push(i) } else { low.push(i) }
    }
    vec![("low".into(), low), ("high".into(), high)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn voices(centres: &[(f64, usize)], seed: u64) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        centres
            .iter()
            .flat_map(|&(c, n)| {
                (0..n)
                    .map(|_| c * (0.08 * rng.normal()).exp())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn one_voice_stays_one_speaker() {
        let f0 = voices(&[(210.0, 300)], 1);
        let s = split_by_pitch(&f0);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].1.len(), 300);
    }

    #[test]
    fn a_male_and_a_female_voice_are_split() {
        let mut f0 = voices(&[(115.0, 120), (225.0, 60)], 2);
        f0.push(0.0);
        let s = split_by_pitch(&f0);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].0.as_str(), s[1].0.as_str()), ("low", "high"));
        // The unvoiced clip joins the larger (low) cluster.
        assert_eq!((s[0].1.len(), s[1].1.len()), (121, 60));
        assert!(s[1].1.iter().all(|&i| (120..180).contains(&i)));
    }

    #[test]
    fn a_few_outliers_do_not_make_a_speaker() {
        let f0 = voices(&[(120.0, 200), (240.0, 8)], 3);
        assert_eq!(split_by_pitch(&f0).len(), 1);
    }

    #[test]
    fn speakers_tsv_round_trips_and_errors_name_the_line() {
        let rows = vec![SpeakerInfo {
            id: "tuxpaint-ro".into(),
            source: "tuxpaint".into(),
            language: "ro".into(),
            sex: Sex::Female,
            f0_hz: 212.0,
            seconds: 600.0,
            clips: 900,
            split: Split::Validation,
        }];
        let text = to_tsv(rows.iter());
        assert_eq!(parse_tsv(&text, Path::new("s.tsv")).unwrap(), rows);
        let bad = text.replace("validation", "test");
        let e = parse_tsv(&bad, Path::new("s.tsv")).unwrap_err().to_string();
        assert!(e.starts_with("s.tsv: line 2:"), "{e}");
        assert_eq!(Sex::from_f0(120.0), Sex::Male);
        assert_eq!(Sex::from_f0(0.0), Sex::Unknown);
    }
}
