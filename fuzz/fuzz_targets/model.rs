//! The model loader: any bytes either load as a model that passes every
//! check (and then builds a network that runs a frame) or give an error
//! naming the file; never a panic or an unbounded allocation.
#![no_main]

use hush_engine::settings::{EstimatorChoice, Settings};
use hush_engine::{ChannelBuilder, ModelChoice};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match hush_engine::model::ModelFile::from_bytes(data, "fuzz.safetensors") {
        Err(e) => assert!(e.to_string().starts_with("fuzz.safetensors: ")),
        Ok(_) => {
            let mut s = Settings::default();
            s.engine.estimator = EstimatorChoice::Network;
            let model = ModelChoice::Bytes {
                bytes: data.to_vec(),
                origin: "fuzz.safetensors".into(),
            };
            if let Ok(mut b) = ChannelBuilder::new(&s, model, None)
                && let Ok(mut ch) = b.channel(16_000)
            {
                let x = vec![0.01f32; 320];
                let mut y = vec![0.0f32; 320];
                ch.process(&x, &mut y);
                assert!(y.iter().all(|v| v.is_finite()));
            }
        }
    }
});
