#!/usr/bin/env python3
"""PESQ-WB and STOI for hush-lab eval.

Reads JSON from stdin: {"rate": 16000, "pairs": [{"ref": "clean.wav", "deg": "out.wav"}, ...]}
Writes JSON to stdout: [{"pesq": float|null, "stoi": float|null}, ...] in the same order.
Needs: pip install pesq pystoi numpy scipy. Files are mono WAVs at `rate`
(16 kHz for PESQ-WB), equal length and time-aligned.
"""
import json
import sys
import wave

import numpy as np
from pesq import pesq
from pystoi import stoi


def read(path):
    with wave.open(path, "rb") as w:
        n = w.getnframes()
        width = w.getsampwidth()
        raw = w.readframes(n)
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if width == 4:
        return np.frombuffer(raw, dtype="<f4").astype(np.float64)
    raise SystemExit(f"{path}: unsupported sample width {width}")


def main():
    job = json.load(sys.stdin)
    rate = int(job["rate"])
    out = []
    for p in job["pairs"]:
        ref, deg = read(p["ref"]), read(p["deg"])
        n = min(len(ref), len(deg))
        ref, deg = ref[:n], deg[:n]
        try:
            q = float(pesq(rate, ref, deg, "wb"))
        except Exception as e:  # PESQ refuses e.g. silent references
            print(f"metrics.py: pesq failed for {p['deg']}: {e}", file=sys.stderr)
            q = None
        s = float(stoi(ref, deg, rate, extended=False))
        out.append({"pesq": q, "stoi": s})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
