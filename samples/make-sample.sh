#!/usr/bin/env bash
# Regenerates samples/noisy-speech.wav: synthetic speech (espeak-ng) under
# synthetic noise (sox: pink noise, a 100 Hz hum with harmonics, a slow
# fan-like modulation), 16 kHz mono 16-bit, about 6 s. Nothing in it comes from
# a recording. Needs: espeak-ng, sox (Debian packages of the same names).
set -euo pipefail
cd "$(dirname "$0")"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
espeak-ng -v en-us -s 150 -w "$t/speech.wav" \
  "Hush removes the noise around your voice, in real time. The hum fades away, and the words stay."
sox "$t/speech.wav" -r 16000 -c 1 -b 16 "$t/s16.wav" pad 0.5 0.5 norm -3
len=$(soxi -D "$t/s16.wav")
sox -R -n -r 16000 -c 1 -b 16 "$t/pink.wav" synth "$len" pinknoise vol 0.12 tremolo 0.3 40
sox -R -n -r 16000 -c 1 -b 16 "$t/hum.wav" synth "$len" sine 100 sine 200 sine 300 remix - vol 0.03
sox -R -m "$t/s16.wav" "$t/pink.wav" "$t/hum.wav" -b 16 noisy-speech.wav norm -1
soxi noisy-speech.wav
