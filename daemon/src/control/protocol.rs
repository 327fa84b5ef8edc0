//! The control protocol: one JSON object per line in each direction.
//!
//! Requests (`cmd` selects; unknown fields are errors):
//!
//! ```text
//! {"cmd":"status"}
//! {"cmd":"set","bypass":true,"attenuation_limit_db":12,"error_budget":0.04,
//!  "compute_budget":2e6,"mode":"error-budget","deadline_guard":true}   (any subset)
//! {"cmd":"reload"}
//! {"cmd":"fault","device_error":true,"stall_ms":300,"frame_pad_us":8000}  (only with fault_injection)
//! ```
//!
//! The bare words `status` and `reload` are accepted as shorthands.
//! Replies: `{"ok":true,...}` or `{"ok":false,"error":"one line"}`.

use crate::error::Error;
use serde::{Deserialize, Serialize};

use hush_engine::settings::AdaptMode;

use super::ControlParams;

/// Longest request line accepted, bytes.
pub const MAX_LINE: usize = 64 * 1024;

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// Telemetry and daemon state.
    Status(Empty),
    /// Change live parameters.
    Set(SetRequest),
    /// Re-read the config file (like SIGHUP).
    Reload(Empty),
    /// Inject a fault (tests; refused unless enabled).
    Fault(FaultRequest),
}

/// A request without arguments.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `set`: every field optional.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRequest {
    /// Unity-gain bypass.
    pub bypass: Option<bool>,
    /// Attenuation limit, dB (0–120).
    pub attenuation_limit_db: Option<f64>,
    /// Rank controller error budget (linear RMS gain error, > 0, ≤ 1).
    pub error_budget: Option<f64>,
    /// Rank controller compute budget, recurrent MACs/s per channel (≥ 0; 0 = none).
    pub compute_budget: Option<f64>,
    /// Rank controller mode.
    pub mode: Option<AdaptMode>,
    /// Deadline guard on or off (live frame times to the rank controller).
    pub deadline_guard: Option<bool>,
}

/// `fault`: what to inject.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    /// Simulate a fatal device/stream error (the daemon reconnects).
    #[serde(default)]
    pub device_error: bool,
    /// Stall the processing thread once for this long, ms (≤ 10000).
    #[serde(default)]
    pub stall_ms: u64,
    /// Busy-wait this long inside every engine frame from now on, µs
    /// (≤ 100000; 0 removes the pad; absent leaves it as it is).
    #[serde(default)]
    pub frame_pad_us: Option<u64>,
}

/// Parses one request line. Errors are one line.
pub fn parse_request(line: &str) -> Result<Request, Error> {
    let t = line.trim();
    match t {
        "status" => return Ok(Request::Status(Empty {})),
        "reload" => return Ok(Request::Reload(Empty {})),
        "" => return Err(Error::Control("empty request".into())),
        _ => {}
    }
    serde_json::from_str(t).map_err(|e| {
        let msg = e.to_string();
        // serde_json appends " at line L column C"; requests are one line.
        match msg.rsplit_once(" at line ") {
            Some((head, _)) => Error::Control(format!("bad request: {head}")),
            None => Error::Control(format!("bad request: {msg}")),
        }
    })
}

impl SetRequest {
    /// Checks every given value; `Err` names the field.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(v) = self.attenuation_limit_db
            && !(v.is_finite() && (0.0..=120.0).contains(&v))
        {
            return Err(Error::Control(format!(
                "attenuation_limit_db: {v} is outside 0..=120"
            )));
        }
        if let Some(v) = self.error_budget
            && !(v.is_finite() && v > 0.0 && v <= 1.0)
        {
            return Err(Error::Control(format!(
                "error_budget: {v} is outside (0, 1]"
            )));
        }
        if let Some(v) = self.compute_budget
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(Error::Control(format!(
                "compute_budget: {v} must be ≥ 0 MACs/s"
            )));
        }
        if *self == SetRequest::default() {
            return Err(Error::Control("set: nothing to set (fields: bypass, attenuation_limit_db, error_budget, compute_budget, mode, deadline_guard)".into()));
        }
        Ok(())
    }

    /// Validates, then stores every given value into `params`.
    pub fn apply(&self, params: &ControlParams) -> Result<(), Error> {
        self.validate()?;
        if let Some(v) = self.attenuation_limit_db {
            params.set_attenuation_limit_db(v);
        }
        if let Some(v) = self.bypass {
            params.set_bypass(v);
        }
        if let Some(v) = self.error_budget {
            params.set_error_budget(v as f32);
        }
        if let Some(v) = self.compute_budget {
            params.set_compute_budget(v);
        }
        if let Some(m) = self.mode {
            params.set_mode(m);
        }
        if let Some(on) = self.deadline_guard {
            params.set_deadline_guard(on);
        }
        Ok(())
    }
}

/// The one-line error reply.
pub fn error_reply(message: &str) -> String {
    #[derive(Serialize)]
    struct E<'a> {
        ok: bool,
        error: &'a str,
    }
    let one_line = message.replace('\n', " ");
    serde_json::to_string(&E {
        ok: false,
        error: &one_line,
    })
    .unwrap_or_else(|_| r#"{"ok":false,"error":"unserialisable error"}"#.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_request() {
        assert_eq!(
            parse_request(r#"{"cmd":"status"}"#).unwrap(),
            Request::Status(Empty {})
        );
        assert_eq!(
            parse_request("status\n").unwrap(),
            Request::Status(Empty {})
        );
        assert_eq!(parse_request("reload").unwrap(), Request::Reload(Empty {}));
        let set = parse_request(
            r#"{"cmd":"set","bypass":true,"attenuation_limit_db":12,"mode":"compute-budget","compute_budget":1e6,"error_budget":0.03}"#,
        )
        .unwrap();
        let Request::Set(s) = set else {
            panic!("not a set")
        };
        assert_eq!(s.bypass, Some(true));
        assert_eq!(s.mode, Some(AdaptMode::ComputeBudget));
        let f = parse_request(r#"{"cmd":"fault","stall_ms":300}"#).unwrap();
        assert_eq!(
            f,
            Request::Fault(FaultRequest {
                device_error: false,
                stall_ms: 300,
                frame_pad_us: None,
            })
        );
    }

    #[test]
    fn bad_requests_are_one_line_errors() {
        for bad in [
            "",
            "{",
            "hello",
            r#"{"cmd":"explode"}"#,
            r#"{"cmd":"set","volume":3}"#,
            r#"{"cmd":"set","mode":"turbo"}"#,
            r#"{"cmd":"set","bypass":"yes"}"#,
            r#"{"cmd":"status","x":1}"#,
            r#"[1,2,3]"#,
        ] {
            let e = parse_request(bad).unwrap_err();
            assert!(matches!(e, Error::Control(_)), "{e:?}");
            let e = e.to_string();
            assert!(!e.contains('\n'), "{e}");
            let reply = error_reply(&e);
            let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
            assert_eq!(v["ok"], false);
        }
    }

    #[test]
    fn set_validates_ranges_and_applies() {
        let p = ControlParams::new(30.0, false);
        for bad in [
            SetRequest {
                attenuation_limit_db: Some(-1.0),
                ..Default::default()
            },
            SetRequest {
                attenuation_limit_db: Some(f64::NAN),
                ..Default::default()
            },
            SetRequest {
                error_budget: Some(0.0),
                ..Default::default()
            },
            SetRequest {
                compute_budget: Some(-5.0),
                ..Default::default()
            },
            SetRequest::default(),
        ] {
            assert!(bad.apply(&p).is_err(), "{bad:?}");
        }
        assert_eq!(p.snapshot().attenuation_limit_db, 30.0);
        SetRequest {
            attenuation_limit_db: Some(6.0),
            bypass: Some(true),
            ..Default::default()
        }
        .apply(&p)
        .unwrap();
        let s = p.snapshot();
        assert_eq!((s.attenuation_limit_db, s.bypass), (6.0, true));
    }
}
