//! The control-socket protocol: any request line gets exactly one reply
//! line of JSON with an `ok` field; never a panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use hushd::control::socket::Handler;
use hushd::control::{ControlParams, FaultHooks};
use libfuzzer_sys::fuzz_target;

fn handler() -> &'static Handler {
    static H: OnceLock<Handler> = OnceLock::new();
    H.get_or_init(|| Handler {
        params: Arc::new(ControlParams::new(30.0, false)),
        faults: Some(Arc::new(FaultHooks::default())),
        status: Box::new(|| serde_json::json!({"state": "fuzzing"})),
        reload: Box::new(|| Ok("nothing changed".into())),
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let reply = handler().handle_line(line);
    assert!(!reply.contains('\n'), "a reply is one line");
    let v: serde_json::Value = serde_json::from_str(&reply).expect("the reply is JSON");
    assert!(v.get("ok").and_then(|o| o.as_bool()).is_some(), "{reply}");
});
