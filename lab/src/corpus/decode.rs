//! Decoding a corpus source file (Ogg Vorbis, WAV) to mono f32 at the
//! model rate.

use std::path::Path;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::baselines::resample;
use crate::error::LabError;

/// A decoded clip before resampling.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Mono samples (channels averaged), in [−1, 1].
    pub samples: Vec<f32>,
    /// Sample rate of `samples`, Hz.
    pub rate: u32,
}

/// Decodes `path` with symphonia (Ogg Vorbis, WAV/PCM). Errors name the file.
pub fn decode(path: &Path) -> Result<Decoded, LabError> {
    let err = |source: SymError| LabError::Decode {
        path: path.to_path_buf(),
        source,
    };
    let audio = |problem: &str| LabError::Audio {
        path: path.to_path_buf(),
        problem: problem.to_string(),
    };
    let file = std::fs::File::open(path).map_err(LabError::read(path))?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(err)?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| audio("no audio track"))?;
    let track_id = track.id;
    let rate = track
        .codec_params
        .sample_rate
        .ok_or_else(|| audio("no sample rate"))?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(err)?;
    let mut samples = Vec::new();
    let mut buf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(err(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A corrupt packet is skipped, as players do; the clip is screened later.
            Err(SymError::DecodeError(_)) => continue,
            Err(e) => return Err(err(e)),
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count();
        let b = buf.get_or_insert_with(|| SampleBuffer::new(decoded.capacity() as u64, spec));
        if b.capacity() < decoded.capacity() * channels {
            *b = SampleBuffer::new(decoded.capacity() as u64, spec);
        }
        b.copy_interleaved_ref(decoded);
        samples.extend(
            b.samples()
                .chunks(channels)
                .map(|f| f.iter().sum::<f32>() / channels as f32),
        );
    }
    if samples.is_empty() {
        return Err(audio("no audio decoded"));
    }
    Ok(Decoded { samples, rate })
}

/// `d` at `rate` (rubato FFT resampler, delay trimmed; unchanged when equal).
pub fn to_rate(d: &Decoded, rate: u32) -> Vec<f32> {
    resample(&d.samples, d.rate, rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wav_decodes_to_its_samples_and_a_stereo_one_to_their_mean() {
        let dir = std::env::temp_dir().join(format!("hush-decode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 22_050,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&p, spec).unwrap();
        for i in 0..1000i32 {
            w.write_sample((i * 10) as i16).unwrap();
            w.write_sample(-(i * 10) as i16 + 2000).unwrap();
        }
        w.finalize().unwrap();
        let d = decode(&p).unwrap();
        assert_eq!((d.rate, d.samples.len()), (22_050, 1000));
        for v in &d.samples {
            assert!((v - 1000.0 / 32768.0).abs() < 1e-6, "{v}");
        }
        let r = to_rate(&d, 16_000);
        assert!((r.len() as i64 - 726).abs() <= 1, "{}", r.len());
        assert!(
            decode(&dir.join("missing.ogg"))
                .unwrap_err()
                .to_string()
                .contains("missing.ogg")
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
