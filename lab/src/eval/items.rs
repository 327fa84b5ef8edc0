//! The validation mixtures of `hush-lab eval`: every validation speaker in
//! turn, each with several mixtures that rotate through the four noise
//! kinds, six SNRs from −5 to 20 dB, and reverberation on a quarter of them.

use crate::corpus::NoiseKind;
use crate::corpus::{Corpus, Sex};
use crate::mix::{Example, MixConfig, make_example};
use crate::rng::Rng;

/// SNRs of the validation mixtures, dB.
pub const SNRS_DB: [f64; 6] = [-5.0, 0.0, 5.0, 10.0, 15.0, 20.0];

/// One validation mixture and what it is made of.
#[derive(Debug, Clone)]
pub struct Item {
    /// The mixture.
    pub ex: Example,
    /// Speaker id.
    pub speaker: String,
    /// Speaker's language.
    pub language: String,
    /// Speaker's sex.
    pub sex: Sex,
    /// Noise kind.
    pub kind: NoiseKind,
    /// SNR, dB.
    pub snr_db: f64,
}

/// `per_speaker` mixtures of `seconds` for every speaker of `val`
/// (sorted by id), deterministic given `seed`. Mixture `j` of speaker `i`
/// has noise kind `(i + j) mod 4`, SNR `SNRS_DB[(5 i + j) mod 6]` and is
/// reverberant when `(3 i + j) mod 4 = 0`; its babble comes from the other
/// validation speakers.
pub fn validation_items(val: &Corpus, per_speaker: usize, seconds: f64, seed: u64) -> Vec<Item> {
    let rate = 16_000.0;
    let len = (seconds * rate) as usize;
    let mut out = Vec::new();
    for (i, speaker) in val.speakers().iter().enumerate() {
        let own = Corpus {
            speech: val
                .speech
                .iter()
                .filter(|c| &c.label == speaker)
                .cloned()
                .collect(),
            noise: val.noise.clone(),
            babble: val
                .speech
                .iter()
                .filter(|c| &c.label != speaker)
                .cloned()
                .collect(),
            meta: Default::default(),
            sources: Default::default(),
        };
        let (language, sex) = val.speaker_meta(speaker);
        for j in 0..per_speaker {
            let kind = NoiseKind::ALL[(i + j) % 4];
            let snr = SNRS_DB[(5 * i + j) % SNRS_DB.len()];
            let cfg = MixConfig {
                snr_db: (snr, snr),
                level_db: (-32.0, -18.0),
                reverb: if (3 * i + j) % 4 == 0 { 1.0 } else { 0.0 },
                noise_only: 0.0,
                noise_kind: Some(kind),
                noise_free: 0.0,
                from_start: 1.0,
                formant_shift: 0.0,
            };
            let ex = make_example(
                &mut Rng::for_item(seed, 9, (i * 1000 + j) as u64),
                &own,
                &cfg,
                len,
                rate,
            );
            out.push(Item {
                ex,
                speaker: speaker.clone(),
                language: language.clone(),
                sex,
                kind,
                snr_db: snr,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Clip;
    use crate::mix::tests::synthetic_corpus;

    #[test]
    fn every_speaker_meets_every_kind_and_several_snrs() {
        let mut c = synthetic_corpus();
        let third = Clip {
            label: "c".into(),
            ..c.speech[0].clone()
        };
        c.speech.push(third);
        let items = validation_items(&c, 4, 1.0, 3);
        assert_eq!(items.len(), 12);
        for s in ["a", "b", "c"] {
            let mine: Vec<&Item> = items.iter().filter(|i| i.speaker == s).collect();
            let mut kinds: Vec<NoiseKind> = mine.iter().map(|i| i.kind).collect();
            kinds.sort();
            kinds.dedup();
            assert_eq!(kinds.len(), 4, "{s}");
            let mut snrs: Vec<i64> = mine.iter().map(|i| i.snr_db as i64).collect();
            snrs.sort();
            snrs.dedup();
            assert_eq!(snrs.len(), 4, "{s}");
            assert!(mine.iter().all(|i| !i.ex.onsets.is_empty()));
        }
        assert_eq!(items.iter().filter(|i| i.ex.reverberant).count(), 3);
        // Deterministic.
        let again = validation_items(&c, 4, 1.0, 3);
        assert_eq!(again[5].ex.mix, items[5].ex.mix);
    }
}
