//! `hushd ctl`: a client of the control socket. Main thread of the `hushd
//! ctl` process only.

use crate::error::Error;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// A connection to a running daemon.
pub struct Client {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connects to the socket at `path`. Errors are one line.
    pub fn connect(path: &Path) -> Result<Self, Error> {
        let s = UnixStream::connect(path).map_err(|e| {
            Error::Control(format!(
                "{}: cannot connect ({e}); is hushd running? (--socket selects another path)",
                path.display()
            ))
        })?;
        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
        let writer = s.try_clone().map_err(|e| Error::Control(e.to_string()))?;
        Ok(Self {
            writer,
            reader: BufReader::new(s),
        })
    }

    /// Sends one request line and returns the parsed reply.
    pub fn request(&mut self, line: &str) -> Result<Value, Error> {
        writeln!(self.writer, "{}", line.trim())
            .map_err(|e| Error::Control(format!("send: {e}")))?;
        let mut reply = String::new();
        self.reader
            .read_line(&mut reply)
            .map_err(|e| Error::Control(format!("receive: {e}")))?;
        if reply.is_empty() {
            return Err(Error::Control("the daemon closed the connection".into()));
        }
        serde_json::from_str(&reply).map_err(|e| Error::Control(format!("bad reply: {e}")))
    }

    /// Sends a request and turns `{"ok":false}` into an error.
    pub fn call(&mut self, line: &str) -> Result<Value, Error> {
        let v = self.request(line)?;
        if v["ok"] == Value::Bool(true) {
            Ok(v)
        } else {
            Err(Error::Control(
                v["error"].as_str().unwrap_or("request failed").to_string(),
            ))
        }
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// One human-readable line from a `status` object.
pub fn status_line(s: &Value) -> String {
    let t = &s["telemetry"];
    let st = &t["stream"];
    let io = &t["io"];
    let ps = &io["last_second"];
    let lat = &t["latency"];
    let cpu = &t["cpu"];
    let mut line = format!(
        "{} {} Hz x{} | cpu {:.1}% p99 {:.2} ms | latency {:.0} ms (max {:.0}) | xruns {} ({}/s) drop {} ins {} resync {} drift {:+.0} ppm | reconnects {}",
        s["daemon"]["state"].as_str().unwrap_or("?"),
        st["rate"],
        st["channels"],
        f(&cpu["load"]) * 100.0,
        f(&cpu["frame_ns_p99"]) / 1e6,
        f(&lat["end_to_end_ms"]),
        f(&lat["end_to_end_max_ms"]),
        io["xrun_events"].as_u64().unwrap_or(0) + io["device_xruns"].as_u64().unwrap_or(0),
        ps["xruns"],
        io["dropped_frames"].as_u64().unwrap_or(0)
            + io["input_overrun_frames"].as_u64().unwrap_or(0),
        io["inserted_frames"].as_u64().unwrap_or(0)
            + io["output_underrun_frames"].as_u64().unwrap_or(0),
        io["resyncs"],
        f(&io["drift_ppm"]),
        s["daemon"]["reconnects"],
    );
    if let Some(chs) = t["channels"].as_array() {
        for (i, c) in chs.iter().enumerate() {
            let vad = c["speech_probability"]
                .as_f64()
                .map(|p| format!("{p:.2}"))
                .unwrap_or_else(|| "-".into());
            let ranks = c["adapt"]["ranks"]
                .as_array()
                .filter(|r| !r.is_empty())
                .map(|r| {
                    r.iter()
                        .map(|m| m["rank"].to_string())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_else(|| "full".into());
            let a = &c["adapt"];
            let adapt = if a["active"] == Value::Bool(true) {
                format!(
                    " ({}) err {:.3} coh in {:.2} inj {:.2} cost {:.1} % | deadline {} ({}/s){}",
                    a["mode"].as_str().unwrap_or("?"),
                    f(&a["predicted_error"]),
                    f(&a["input_coherence"]),
                    f(&a["injection_coherence"]),
                    100.0 * f(&a["overhead_time_fraction"]),
                    a["deadline_events"].as_u64().unwrap_or(0),
                    a["deadline_events_last_second"].as_u64().unwrap_or(0),
                    if a["deadline_guard"] == Value::Bool(false) {
                        " guard off"
                    } else {
                        ""
                    },
                )
            } else {
                String::new()
            };
            line.push_str(&format!(
                " | ch{i} {} vad {vad} gain {:.2} rank {ranks}{adapt}{}{}",
                c["estimator"].as_str().unwrap_or("?"),
                f(&c["mean_gain"]),
                if c["bypass"] == Value::Bool(true) {
                    " BYPASS"
                } else {
                    ""
                },
                if c["estimator_failed"] == Value::Bool(true) {
                    " FAILED(unity gains)"
                } else {
                    ""
                },
            ));
        }
    }
    line
}

/// `hushd ctl status [--watch] [--json]`.
pub fn status(path: &Path, watch: bool, json: bool) -> Result<(), Error> {
    let mut c = Client::connect(path)?;
    let tty = std::io::stdout().is_terminal();
    loop {
        let v = c.call(r#"{"cmd":"status"}"#)?;
        let out = if json {
            v["status"].to_string()
        } else {
            status_line(&v["status"])
        };
        let mut stdout = std::io::stdout().lock();
        if watch && tty && !json {
            let _ = write!(stdout, "\r\x1b[2K{out}");
        } else {
            let _ = writeln!(stdout, "{out}");
        }
        let _ = stdout.flush();
        if !watch {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_handles_missing_fields() {
        let l = status_line(&serde_json::json!({}));
        assert!(l.contains("latency"), "{l}");
        let l = status_line(&serde_json::json!({
            "daemon": {"state": "running", "reconnects": 2},
            "telemetry": {"stream": {"rate": 48000, "channels": 1},
              "cpu": {"load": 0.031},
              "channels": [{"estimator": "network", "speech_probability": 0.9, "mean_gain": 0.5,
                            "bypass": true, "adapt": {"ranks": []}}]}
        }));
        assert!(l.contains("48000 Hz x1"), "{l}");
        assert!(l.contains("cpu 3.1%"), "{l}");
        assert!(l.contains("vad 0.90"), "{l}");
        assert!(l.contains("BYPASS"), "{l}");
        assert!(l.contains("reconnects 2"), "{l}");
        let l = status_line(&serde_json::json!({
            "telemetry": {"channels": [{"estimator": "network", "adapt": {
                "active": true, "mode": "error-budget", "ranks": [{"rank": 8}, {"rank": 32}],
                "predicted_error": 0.021, "input_coherence": 0.93, "injection_coherence": 0.5,
                "deadline_events": 7, "deadline_events_last_second": 3, "deadline_guard": false}}]}
        }));
        assert!(l.contains("rank 8/32 (error-budget) err 0.021"), "{l}");
        assert!(l.contains("coh in 0.93 inj 0.50"), "{l}");
        assert!(l.contains("deadline 7 (3/s) guard off"), "{l}");
    }
}
