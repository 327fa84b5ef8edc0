//! The RIFF chunk walk in front of the WAV decoder: real recorders put
//! `JUNK`, `LIST`, `bext`, `iXML` or `fact` chunks before (or between) `fmt `
//! and `data`, some of odd length with a pad byte. [`canonical_header`]
//! reads the chunk list up to `data`, keeps the `fmt ` chunk and skips the
//! rest, and returns a minimal header (`RIFF`/`WAVE`/`fmt `/`data`) that,
//! followed by the rest of the stream, any strict decoder reads.
//!
//! Bounded: `fmt ` is read only up to [`MAX_FMT_BYTES`], other chunks are
//! skipped through a fixed buffer, and at most [`MAX_CHUNKS`] chunks are
//! walked, so a hostile header can neither allocate without bound nor loop.

use std::io::Read;

/// Longest `fmt ` chunk accepted (WAVE_FORMAT_EXTENSIBLE is 40 bytes).
pub const MAX_FMT_BYTES: u32 = 1024;
/// Most chunks walked before `data`.
pub const MAX_CHUNKS: usize = 4096;

/// What is wrong with a RIFF header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RiffError {
    /// Not a RIFF/WAVE stream at all.
    #[error("not a WAV file (no RIFF/WAVE header)")]
    NotWav,
    /// The stream ends inside the header.
    #[error("the header is incomplete: the file ends inside the {0} chunk list")]
    Truncated(&'static str),
    /// A `data` chunk before any `fmt ` chunk.
    #[error("the data chunk comes before the fmt chunk")]
    DataBeforeFormat,
    /// A `fmt ` chunk of an impossible size.
    #[error("fmt chunk of {0} bytes (16..={MAX_FMT_BYTES})")]
    BadFormatChunk(u32),
    /// More chunks than anyone writes before `data`.
    #[error("more than {MAX_CHUNKS} chunks before the data")]
    TooManyChunks,
    /// A read error other than the end of the stream.
    #[error("read error: {0}")]
    Io(String),
}

fn read_exact_or<R: Read>(r: &mut R, buf: &mut [u8], at: &'static str) -> Result<(), RiffError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => RiffError::Truncated(at),
        _ => RiffError::Io(e.to_string()),
    })
}

/// Skips `n` bytes through a fixed buffer.
fn skip<R: Read>(r: &mut R, mut n: u64) -> Result<(), RiffError> {
    let mut scratch = [0u8; 512];
    while n > 0 {
        let k = n.min(scratch.len() as u64) as usize;
        read_exact_or(r, &mut scratch[..k], "RIFF")?;
        n -= k as u64;
    }
    Ok(())
}

/// Reads the RIFF header and chunks up to the start of the `data` payload
/// and returns a canonical header for it: `RIFF`, `WAVE`, the stream's own
/// `fmt ` chunk and the `data` chunk header. The reader is left at the first
/// byte of the audio data.
pub fn canonical_header<R: Read>(r: &mut R) -> Result<Vec<u8>, RiffError> {
    let mut head = [0u8; 12];
    r.read_exact(&mut head).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => RiffError::NotWav,
        _ => RiffError::Io(e.to_string()),
    })?;
    if &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err(RiffError::NotWav);
    }
    let mut fmt: Option<Vec<u8>> = None;
    for _ in 0..MAX_CHUNKS {
        let mut ch = [0u8; 8];
        read_exact_or(r, &mut ch, "RIFF")?;
        let id = [ch[0], ch[1], ch[2], ch[3]];
        let len = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
        match &id {
            b"fmt " => {
                if !(16..=MAX_FMT_BYTES).contains(&len) {
                    return Err(RiffError::BadFormatChunk(len));
                }
                let mut body = vec![0u8; len as usize];
                read_exact_or(r, &mut body, "fmt")?;
                skip(r, u64::from(len & 1))?;
                fmt = Some(body);
            }
            b"data" => {
                let body = fmt.ok_or(RiffError::DataBeforeFormat)?;
                let fmt_len = body.len() as u32;
                let pad = fmt_len & 1;
                let riff_len = (4 + 8 + fmt_len + pad + 8).saturating_add(len);
                let mut out = Vec::with_capacity(20 + body.len() + 9);
                out.extend_from_slice(b"RIFF");
                out.extend_from_slice(&riff_len.to_le_bytes());
                out.extend_from_slice(b"WAVE");
                out.extend_from_slice(b"fmt ");
                out.extend_from_slice(&fmt_len.to_le_bytes());
                out.extend_from_slice(&body);
                if pad == 1 {
                    out.push(0);
                }
                out.extend_from_slice(b"data");
                out.extend_from_slice(&len.to_le_bytes());
                return Ok(out);
            }
            _ => skip(r, u64::from(len) + u64::from(len & 1))?,
        }
    }
    Err(RiffError::TooManyChunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v.extend_from_slice(body);
        if body.len() % 2 == 1 {
            v.push(0);
        }
        v
    }

    fn riff(chunks: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = b"WAVE".iter().copied().chain(chunks.concat()).collect();
        let mut v = b"RIFF".to_vec();
        v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v.extend_from_slice(&body);
        v
    }

    const FMT: [u8; 16] = [1, 0, 1, 0, 0x80, 0x3e, 0, 0, 0, 0x7d, 0, 0, 2, 0, 16, 0];

    #[test]
    fn skips_odd_and_even_chunks_before_fmt_and_between_fmt_and_data() {
        let data = [1u8, 2, 3, 4];
        let file = riff(&[
            chunk(b"JUNK", &[0; 27]),
            chunk(b"bext", &[7; 602]),
            chunk(b"fmt ", &FMT),
            chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00hush\x00"),
            chunk(b"data", &data),
        ]);
        let mut r = &file[..];
        let head = canonical_header(&mut r).unwrap();
        let mut expected = b"RIFF".to_vec();
        expected.extend_from_slice(&40u32.to_le_bytes()); // WAVE + fmt chunk + data header + 4 bytes
        expected.extend_from_slice(b"WAVEfmt ");
        expected.extend_from_slice(&16u32.to_le_bytes());
        expected.extend_from_slice(&FMT);
        expected.extend_from_slice(b"data");
        expected.extend_from_slice(&4u32.to_le_bytes());
        assert_eq!(head, expected);
        assert_eq!(r, &data, "the reader is left at the audio data");
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(canonical_header(&mut &b"RIFX"[..]), Err(RiffError::NotWav));
        let no_fmt = riff(&[chunk(b"data", &[0; 4])]);
        assert_eq!(
            canonical_header(&mut &no_fmt[..]),
            Err(RiffError::DataBeforeFormat)
        );
        let cut = riff(&[chunk(b"JUNK", &[0; 100])]);
        assert!(matches!(
            canonical_header(&mut &cut[..cut.len() - 50]),
            Err(RiffError::Truncated(_))
        ));
        let huge = riff(&[chunk(b"fmt ", &[0; 2000])]);
        assert_eq!(
            canonical_header(&mut &huge[..]),
            Err(RiffError::BadFormatChunk(2000))
        );
        let many: Vec<Vec<u8>> = (0..MAX_CHUNKS + 1).map(|_| chunk(b"JUNK", &[])).collect();
        assert_eq!(
            canonical_header(&mut &riff(&many)[..]),
            Err(RiffError::TooManyChunks)
        );
    }
}
