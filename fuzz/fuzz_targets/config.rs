//! The configuration parser: any text either parses to a configuration that
//! validates (and round-trips through TOML) or gives an error naming the
//! origin; never a panic.
#![no_main]

use hushd::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text, "fuzz.toml") {
        Err(e) => assert!(e.to_string().starts_with("fuzz.toml: ")),
        Ok(cfg) => {
            assert!(cfg.validate().is_ok());
            let again = Config::from_toml(&cfg.to_toml(), "round-trip.toml")
                .expect("a valid config's TOML parses again");
            assert_eq!(again, cfg);
        }
    }
});
