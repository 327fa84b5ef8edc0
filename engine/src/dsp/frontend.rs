//! The analysis half of the pipeline: STFT, band features and, for feature
//! layouts that use them, periodicity features. The one implementation of
//! a frame's analysis, used by the engine and by the trainer (feature parity).

use super::bands::BandLayout;
use super::features::{BandFrame, FeatureExtractor};
use super::geometry::FrameGeometry;
use super::pitch::PitchAnalyzer;
use super::pitch_filter::{PitchFilter, PitchFilterInput};
use super::stft::Stft;

/// One channel's analysis state; all buffers preallocated.
/// [`analyze`](Self::analyze) runs on the audio thread.
pub struct FrontEnd {
    stft: Stft,
    layout: BandLayout,
    features: FeatureExtractor,
    pitch: Option<PitchAnalyzer>,
    power_scale: f32,
    rate: f64,
}

impl FrontEnd {
    /// Analysis at `geometry` into the bands of `layout`, with a running
    /// normalisation of `running_norm_s` seconds; `with_pitch` adds the
    /// period search ([`crate::dsp::pitch`]). Allocates; setup only.
    pub fn new(
        geometry: &FrameGeometry,
        layout: BandLayout,
        running_norm_s: f64,
        with_pitch: bool,
    ) -> Self {
        let stft = Stft::new(geometry.window);
        let power_scale = 1.0 / (stft.window_sum() * stft.window_sum());
        let hop_s = geometry.hop as f64 / geometry.rate as f64;
        Self {
            features: FeatureExtractor::new(layout.len(), hop_s, running_norm_s),
            pitch: with_pitch
                .then(|| PitchAnalyzer::new(geometry.window, geometry.rate as f64, layout.len())),
            stft,
            layout,
            power_scale,
            rate: geometry.rate as f64,
        }
    }

    /// The band layout.
    pub fn layout(&self) -> &BandLayout {
        &self.layout
    }

    /// Switches the period search on (a fresh analyzer) or off. Allocates
    /// when switched on; setup only.
    pub fn set_pitch(&mut self, on: bool) {
        if self.pitch.is_some() != on {
            self.pitch = on
                .then(|| PitchAnalyzer::new(self.stft.window_len(), self.rate, self.layout.len()));
        }
    }

    /// Shifts one hop of `input` in and returns the features of the frame.
    /// `[audio-thread]`; no allocation.
    pub fn analyze(&mut self, input: &[f32]) -> BandFrame<'_> {
        let spectrum = self.stft.analyze(input);
        let mut frame = self.features.push(&self.layout, spectrum, self.power_scale);
        if let Some(pitch) = &mut self.pitch {
            frame.pitch = Some(pitch.push(
                input,
                spectrum,
                frame.energy,
                self.power_scale,
                &self.layout,
            ));
        }
        frame
    }

    /// The features of the last frame analysed.
    pub fn frame(&self) -> BandFrame<'_> {
        let mut frame = self.features.frame();
        frame.pitch = self.pitch.as_ref().map(PitchAnalyzer::frame);
        frame
    }

    /// Applies `filter` to the frame's spectrum, given the band gains the
    /// estimator chose for it; nothing without the period search.
    /// `[audio-thread]`; no allocation.
    pub fn pitch_filter(&mut self, filter: &mut PitchFilter, gains: &[f32]) {
        let Some(pitch) = &self.pitch else { return };
        let features = self.features.frame();
        filter.apply(
            &self.layout,
            self.stft.spectrum_mut(),
            &PitchFilterInput {
                delayed: pitch.delayed_spectrum(),
                energy: features.energy,
                delayed_energy: pitch.delayed_energy(),
                correlation: pitch.frame().correlation,
                gains,
                scale: self.power_scale,
            },
        );
    }

    /// The layout and the STFT (whose spectrum the gains are applied to and
    /// which resynthesises). `[audio-thread]`.
    pub fn layout_and_stft(&mut self) -> (&BandLayout, &mut Stft) {
        (&self.layout, &mut self.stft)
    }

    /// Clears all signal state. `[audio-thread]`; no allocation.
    pub fn reset(&mut self) {
        self.stft.reset();
        self.features.reset();
        if let Some(p) = &mut self.pitch {
            p.reset();
        }
    }
}
