#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/seeds/<target>) of the fuzz targets (small, generated, committed):
WAVs of every encoding hush reads (and recorder chunks before fmt), a tiny
valid hush model, the default configuration and a few variants, and control
requests. Run from the repository root: python3 fuzz/seeds.py"""
import json, math, os, struct

root = os.path.dirname(os.path.abspath(__file__))

def out(target, name, data):
    d = os.path.join(root, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

def chunk(cid, body):
    return cid + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")

def wav(fmt_tag, channels, rate, bits, samples, extra=b"", ext=False):
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if ext else fmt_tag, channels, rate, rate * block, block, bits)
    if ext:
        guid = struct.pack("<H", fmt_tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt += struct.pack("<HHI", 22, bits, 0) + guid
    body = b"WAVE" + extra + chunk(b"fmt ", fmt) + chunk(b"data", samples)
    return b"RIFF" + struct.pack("<I", len(body)) + body

tone = [math.sin(2 * math.pi * 440 * i / 16000) * 0.5 for i in range(64)]
pcm16 = b"".join(struct.pack("<h", int(v * 32767)) for v in tone)
out("wav", "pcm16.wav", wav(1, 1, 16000, 16, pcm16))
out("wav", "pcm8.wav", wav(1, 1, 8000, 8, bytes(int(128 + v * 127) for v in tone)))
out("wav", "pcm24-stereo.wav", wav(1, 2, 48000, 24, b"".join(struct.pack("<i", int(v * 8388607))[:3] * 2 for v in tone)))
out("wav", "float32.wav", wav(3, 1, 44100, 32, b"".join(struct.pack("<f", v) for v in tone)))
out("wav", "extensible.wav", wav(1, 1, 16000, 16, pcm16, ext=True))
out("wav", "junk-odd-list-bext.wav", wav(1, 1, 16000, 16, pcm16,
    extra=chunk(b"JUNK", b"\0" * 27) + chunk(b"LIST", b"INFOISFT\x05\0\0\0hush\0") + chunk(b"bext", b"\0" * 64)))

def safetensors(tensors, meta):
    header, blobs, off = {}, [], 0
    for name, (shape, values) in sorted(tensors.items()):
        data = b"".join(struct.pack("<f", v) for v in values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)

bands = [0.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 450.0, 500.0, 600.0, 700.0,
         800.0, 950.0, 1050.0, 1250.0, 1400.0, 1600.0, 1850.0, 2100.0, 2350.0, 2700.0, 3050.0,
         3450.0, 3900.0, 4400.0, 4950.0, 5600.0, 6300.0, 7100.0, 8000.0]
nb, n, m = len(bands), 4, 3 * len(bands)
def vals(k, s=0.1):
    return [s * math.sin(1.7 * i + k) for i in range(k)]
tensors = {
    "layers.0.weight": ([n, m], vals(n * m)), "layers.0.bias": ([n], vals(n)),
    "layers.1.w_f": ([n, n], vals(n * n)), "layers.1.u_f": ([n, n], vals(n * n)),
    "layers.1.w_c": ([n, n], vals(n * n)), "layers.1.u_c": ([n, n], vals(n * n)),
    "layers.1.b_f": ([n], vals(n)), "layers.1.b_c": ([n], vals(n)),
    "layers.2.weight": ([nb, n], vals(nb * n)), "layers.2.bias": ([nb], vals(nb)),
}
meta = {
    "hush.format": "1", "hush.sample_rate": "16000", "hush.frame": "320", "hush.hop": "0.01",
    "hush.window": "0.02", "hush.bands": json.dumps(bands),
    "hush.features": json.dumps({"layout": "log-energy+running+delta/1", "running_norm_s": 3.0,
                                 "mean": [-5.0] * m, "std": [2.0] * m}),
    "hush.layers": json.dumps([
        {"kind": "dense", "input": m, "output": n, "activation": "tanh"},
        {"kind": "cell", "cell": "hush.mgru", "input": n, "state": n},
        {"kind": "dense", "input": n, "output": nb, "activation": "sigmoid"}]),
}
out("model", "tiny-mgru.safetensors", safetensors(tensors, meta))
out("model", "empty-header.safetensors", struct.pack("<Q", 2) + b"{}")

default = open(os.path.join(root, "..", "config", "default.toml")).read()
out("config", "default.toml", default)
out("config", "small.toml", "[engine]\nestimator = \"classical\"\nattenuation_limit_db = 12\n\n[adapt]\nmode = \"fixed\"\nfixed_rank = 8\n")
out("config", "live.toml", "[live]\nsample_rate = 48000\nchannels = 2\n\n[control]\nenabled = false\n")

for i, line in enumerate([
    '{"cmd":"status"}',
    '{"cmd":"set","bypass":true,"attenuation_limit_db":12}',
    '{"cmd":"set","mode":"compute-budget","compute_budget":2e6,"error_budget":0.05}',
    '{"cmd":"reload"}',
    '{"cmd":"fault","stall_ms":10,"frame_pad_us":50}',
    '{"cmd":"set","deadline_guard":false}',
]):
    out("control", f"request-{i}.json", line)
