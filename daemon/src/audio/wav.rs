//! WAV decoding to `f32` and encoding back to the input's own format, on hound.
//!
//! Every encoding hound reads is accepted: 8/16/24/32-bit integer PCM and
//! 32-bit float, any channel count and rate within sane bounds, with any
//! chunks (`JUNK`, `LIST`, `bext`, …, odd-sized too) before the audio
//! ([`super::riff`]). Errors are one line and name the problem; the caller
//! adds the file name.

use std::io::{Cursor, Read, Seek, Write};

use serde::Serialize;

use super::riff::{RiffError, canonical_header};

/// What is wrong with a WAV stream (read) or its destination (write).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    /// The RIFF chunk list before the audio.
    #[error("not a valid WAV file: {0}")]
    Header(#[from] RiffError),
    /// A well-formed file in an encoding hush does not read.
    #[error("{0}")]
    Unsupported(String),
    /// A header announcing something impossible (channels, zero samples).
    #[error("{0}")]
    Absurd(String),
    /// The audio data ends early or is corrupt.
    #[error("{0}")]
    Data(String),
    /// The destination could not be written.
    #[error("{0}")]
    Write(String),
}

/// Channel counts above this are rejected as an absurd header.
pub const MAX_CHANNELS: u16 = 64;

/// The sample encoding of a WAV file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WavFormat {
    /// Channels (interleaved).
    pub channels: u16,
    /// Sample rate, Hz.
    pub sample_rate: u32,
    /// Bits per sample: 8, 16, 24 or 32.
    pub bits: u16,
    /// True for IEEE float (32-bit), false for integer PCM.
    pub float: bool,
}

impl WavFormat {
    fn from_spec(spec: hound::WavSpec) -> Result<Self, WavError> {
        let float = match spec.sample_format {
            hound::SampleFormat::Float => true,
            hound::SampleFormat::Int => false,
        };
        let supported = if float {
            spec.bits_per_sample == 32
        } else {
            matches!(spec.bits_per_sample, 8 | 16 | 24 | 32)
        };
        if !supported {
            return Err(WavError::Unsupported(format!(
                "unsupported encoding: {}-bit {}",
                spec.bits_per_sample,
                if float { "float" } else { "integer" }
            )));
        }
        if spec.channels == 0 || spec.channels > MAX_CHANNELS {
            return Err(WavError::Absurd(format!(
                "absurd header: {} channels (1..={MAX_CHANNELS})",
                spec.channels
            )));
        }
        if !(1_000..=768_000).contains(&spec.sample_rate) {
            return Err(WavError::Unsupported(format!(
                "unsupported sample rate {} Hz (1000..=768000)",
                spec.sample_rate
            )));
        }
        Ok(Self {
            channels: spec.channels,
            sample_rate: spec.sample_rate,
            bits: spec.bits_per_sample,
            float,
        })
    }

    fn spec(&self) -> hound::WavSpec {
        hound::WavSpec {
            channels: self.channels,
            sample_rate: self.sample_rate,
            bits_per_sample: self.bits,
            sample_format: if self.float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        }
    }

    /// A short description, e.g. "24-bit int, 2 ch, 48000 Hz".
    pub fn describe(&self) -> String {
        format!(
            "{}-bit {}, {} ch, {} Hz",
            self.bits,
            if self.float { "float" } else { "int" },
            self.channels,
            self.sample_rate
        )
    }
}

/// Maps a hound error to a one-line description.
fn describe_hound(e: hound::Error) -> WavError {
    match e {
        hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            WavError::Data("truncated: the file ends before the data its header announces".into())
        }
        hound::Error::IoError(io) => WavError::Data(format!("read error: {io}")),
        hound::Error::FormatError(m) if m.contains("bits per sample") => {
            WavError::Unsupported(format!("unsupported encoding: {m}"))
        }
        hound::Error::FormatError(m) => WavError::Absurd(format!("not a valid WAV file: {m}")),
        hound::Error::Unsupported => WavError::Unsupported("unsupported WAV encoding".into()),
        hound::Error::InvalidSampleFormat => {
            WavError::Unsupported("unsupported sample format".into())
        }
        hound::Error::TooWide => WavError::Data("sample too wide for its bit depth".into()),
        hound::Error::UnfinishedSample => {
            WavError::Data("truncated: the data ends inside a sample".into())
        }
    }
}

/// How one stored sample is laid out: container bytes and the decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// 8-bit unsigned (offset 128).
    U8,
    /// 16-bit signed little-endian.
    I16,
    /// 24-bit signed in 3 bytes.
    I24,
    /// 24-bit signed in the low bytes of a 4-byte container.
    I24In32,
    /// 32-bit signed.
    I32,
    /// IEEE float.
    F32,
}

impl Encoding {
    fn bytes(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::I16 => 2,
            Self::I24 => 3,
            Self::I24In32 | Self::I32 | Self::F32 => 4,
        }
    }
}

/// Reads interleaved samples as `f32` (integers scaled by 2^(1−bits) into
/// [−1, 1]; the largest 32-bit value rounds to 1.0 in `f32`). The header is
/// parsed by hound after the chunk walk of [`super::riff`]; the data is
/// decoded in bulk, a chunk of bytes at a time.
pub struct WavSource<R: Read> {
    inner: std::io::Chain<Cursor<Vec<u8>>, R>,
    format: WavFormat,
    encoding: Encoding,
    frames: u64,
    /// Samples (all channels) the data chunk still holds.
    remaining: u64,
    bytes: Vec<u8>,
}

impl<R: Read> WavSource<R> {
    /// Parses the header. Rejects unsupported encodings, absurd headers and
    /// zero-length audio.
    pub fn new(mut inner: R) -> Result<Self, WavError> {
        let header = canonical_header(&mut inner)?;
        // `fmt ` starts at byte 12 of the canonical header: block align at
        // 12 + 8 + 12, in bytes per frame.
        let block_align = u16::from_le_bytes([header[32], header[33]]) as usize;
        let reader =
            hound::WavReader::new(Cursor::new(header).chain(inner)).map_err(|e| match e {
                hound::Error::IoError(io) => WavError::Absurd(format!(
                    "not a valid WAV file: the fmt chunk is incomplete ({io})"
                )),
                other => describe_hound(other),
            })?;
        let format = WavFormat::from_spec(reader.spec())?;
        let frames = reader.duration() as u64;
        if frames == 0 {
            return Err(WavError::Absurd(
                "no audio: the file holds zero samples".into(),
            ));
        }
        let container = block_align / format.channels.max(1) as usize;
        let encoding = match (format.float, container, format.bits) {
            (true, 4, 32) => Encoding::F32,
            (false, 1, 8) => Encoding::U8,
            (false, 2, 16) => Encoding::I16,
            (false, 3, 24) => Encoding::I24,
            (false, 4, 24) => Encoding::I24In32,
            (false, 4, 32) => Encoding::I32,
            _ => {
                return Err(WavError::Unsupported(format!(
                    "unsupported encoding: {}-bit samples in {container}-byte containers",
                    format.bits
                )));
            }
        };
        Ok(Self {
            // hound has read exactly the header: the stream is at the data.
            inner: reader.into_inner(),
            format,
            encoding,
            frames,
            remaining: frames * u64::from(format.channels),
            bytes: Vec::new(),
        })
    }

    /// The encoding.
    pub fn format(&self) -> WavFormat {
        self.format
    }

    /// Frames (samples per channel) the header announces.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Fills `out` with up to `out.len()` interleaved samples; returns how
    /// many were read (0 at the end, fewer than asked when the file ends
    /// early). Data that ends inside a sample, or a read error, is an error.
    /// Allocates only when `out` is longer than at any earlier call.
    pub fn read(&mut self, out: &mut [f32]) -> Result<usize, WavError> {
        let want = (out.len() as u64).min(self.remaining) as usize;
        let width = self.encoding.bytes();
        if self.bytes.len() < want * width {
            self.bytes.resize(want * width, 0);
        }
        let buf = &mut self.bytes[..want * width];
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(WavError::Data(format!("read error: {e}"))),
            }
        }
        if got % width != 0 {
            return Err(WavError::Data(
                "truncated: the data ends inside a sample".into(),
            ));
        }
        let n = got / width;
        decode(self.encoding, &buf[..got], &mut out[..n]);
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Decodes little-endian samples to `f32`, scaled as hound's integer
/// samples divided by 2^(bits−1).
fn decode(encoding: Encoding, bytes: &[u8], out: &mut [f32]) {
    match encoding {
        Encoding::U8 => {
            let scale = 1.0 / 128.0f32;
            for (o, &b) in out.iter_mut().zip(bytes) {
                *o = (i32::from(b) - 128) as f32 * scale;
            }
        }
        Encoding::I16 => {
            let scale = 1.0 / 32_768.0f32;
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = f32::from(i16::from_le_bytes([b[0], b[1]])) * scale;
            }
        }
        Encoding::I24 | Encoding::I24In32 => {
            let scale = 1.0 / (1u32 << 23) as f32;
            let width = encoding.bytes();
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(width)) {
                // The low three bytes, sign-extended from bit 23.
                let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
                *o = v as f32 * scale;
            }
        }
        Encoding::I32 => {
            let scale = 1.0 / (1u64 << 31) as f32;
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 * scale;
            }
        }
        Encoding::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
    }
}

/// Writes interleaved `f32` samples in a given [`WavFormat`], counting clipped samples.
pub struct WavSink<W: Write + Seek> {
    writer: hound::WavWriter<W>,
    format: WavFormat,
    /// 16-bit samples of the block being written (grows to the largest block).
    block: Vec<i16>,
    /// Integer samples clipped to the format's range.
    pub clipped: u64,
}

impl<W: Write + Seek> WavSink<W> {
    /// Starts a WAV stream in `format`.
    pub fn new(inner: W, format: WavFormat) -> Result<Self, WavError> {
        let writer = hound::WavWriter::new(inner, format.spec())
            .map_err(|e| WavError::Write(format!("cannot write: {e}")))?;
        Ok(Self {
            writer,
            format,
            block: Vec::new(),
            clipped: 0,
        })
    }

    /// Appends interleaved samples. Caller's thread (replay, recorder).
    pub fn write(&mut self, samples: &[f32]) -> Result<(), WavError> {
        let io = |e: hound::Error| WavError::Write(format!("write error: {e}"));
        if self.format.float {
            for &s in samples {
                self.writer.write_sample(s).map_err(io)?;
            }
        } else if self.format.bits == 16 {
            // Convert the block first (a branch-free loop), then hand it to
            // hound's buffered 16-bit writer: one write for the block.
            self.block.resize(samples.len(), 0);
            let clipped = to_i16(samples, &mut self.block);
            let mut w = self.writer.get_i16_writer(samples.len() as u32);
            for &v in &self.block {
                w.write_sample(v);
            }
            w.flush().map_err(io)?;
            self.clipped += clipped;
        } else {
            let full = (1i64 << (self.format.bits - 1)) as f64;
            let (lo, hi) = (-full, full - 1.0);
            for &s in samples {
                let v = round_sample(s as f64 * full);
                let c = v.clamp(lo, hi);
                if c != v {
                    self.clipped += 1;
                }
                self.writer.write_sample(c as i32).map_err(io)?;
            }
        }
        Ok(())
    }

    /// Finishes the header and returns the inner writer.
    pub fn finish(self) -> Result<(), WavError> {
        self.writer
            .finalize()
            .map_err(|e| WavError::Write(format!("write error: {e}")))
    }
}

/// `x.round()` (half away from zero) without the library call that
/// `f64::round` is on baseline x86_64, which cost more than the rest of
/// writing a sample. Exact for what `write` passes, an f32 sample times a
/// power of two: at most 24 significant bits, so below 2⁵² `x ± ½` is
/// exact and truncating it rounds (an arbitrary f64 just below ½ would
/// not be); larger and non-finite values go to the library.
#[inline]
fn round_sample(x: f64) -> f64 {
    if x.abs() < (1u64 << 52) as f64 {
        (x + 0.5f64.copysign(x)) as i64 as f64
    } else {
        x.round()
    }
}

/// Scales `samples` by 2¹⁵, rounds half away from zero and clamps to the
/// 16-bit range into `out` (same length); returns how many were clamped (NaN
/// counts as clamped and becomes 0). The same values as [`round_sample`]
/// followed by a clamp: `x·2¹⁵ + ±½` is exact in f64, and truncating it
/// rounds half away from zero.
fn to_i16(samples: &[f32], out: &mut [i16]) -> u64 {
    let mut clipped = 0u64;
    for (o, &s) in out.iter_mut().zip(samples) {
        let v = s as f64 * 32_768.0 + 0.5f64.copysign(s as f64);
        clipped += u64::from(!(v > -32_769.0 && v < 32_768.0));
        *o = v.clamp(-32_768.0, 32_767.0) as i16;
    }
    clipped
}

#[cfg(test)]
mod tests {
    use super::{round_sample, to_i16};

    #[test]
    fn to_i16_equals_round_then_clamp() {
        let mut xs: Vec<f32> = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            1.5 / 32_768.0,
            -1.5 / 32_768.0,
            2.5 / 32_768.0,
            0.499_999_97 / 32_768.0,
            32_767.5 / 32_768.0,
            -32_768.5 / 32_768.0,
            -32_769.0 / 32_768.0,
            2.0,
            -2.0,
            f32::MAX,
            f32::MIN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
            -f32::MIN_POSITIVE,
        ];
        let mut state = 0x2545_f491u32;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            xs.push((state as f32 / u32::MAX as f32 - 0.5) * 2.2);
        }
        let mut out = vec![0i16; xs.len()];
        let clipped = to_i16(&xs, &mut out);
        let mut expect_clipped = 0;
        for (&x, &got) in xs.iter().zip(&out) {
            let v = round_sample(x as f64 * 32_768.0);
            let c = v.clamp(-32_768.0, 32_767.0);
            expect_clipped += u64::from(c != v);
            assert_eq!(got, c as i16, "{x:e}");
        }
        assert_eq!(clipped, expect_clipped);
    }

    #[test]
    fn round_sample_equals_the_library_round() {
        let edges = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            32_767.5,
            -32_768.5,
            0.499_999_97,
            4503599627370495.5,
            4503599627370496.0,
            -4503599627370497.0,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut values: Vec<f64> = edges.to_vec();
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // f32 samples in ±2 scaled to 16 and 32 bits, as `write` sees them.
            let s = (x >> 40) as f32 / (1u64 << 22) as f32 - 2.0;
            values.push(s as f64 * 32_768.0);
            values.push(s as f64 * 2_147_483_648.0);
        }
        for v in values {
            assert_eq!(round_sample(v), v.round(), "{v}");
        }
        assert!(round_sample(f64::NAN).is_nan());
    }
}
