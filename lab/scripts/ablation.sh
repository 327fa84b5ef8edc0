#!/usr/bin/env bash
# Source ablation of the training corpus (issue 13): the same trainer and
# settings for every row, scored by `hush-lab eval --quick` on the same
# validation set (full rank). Rows: the shared corpus alone, everything, and
# everything without each source. Trainings run one at a time on one core
# (RAYON_NUM_THREADS=1; JOBS=2 runs two at once), at low priority.
#
#   lab/scripts/ablation.sh CORPUS_DIR WORK_DIR [STEPS]
#
# TRAIN_ARGS adds training options to every row (e.g. "--snr-db -5,30").
# Writes WORK_DIR/ablation.md. Needs a release build of hush-lab.
set -euo pipefail
corpus=${1:?corpus dir (hush-lab corpus --out)}
work=${2:?work dir}
steps=${3:-2500}
lab=${HUSH_LAB:-target/release/hush-lab}
jobs=${JOBS:-1}
export RAYON_NUM_THREADS=1
# shellcheck disable=SC2206
extra=(${TRAIN_ARGS:-})
sources=(tuxpaint fillets-cs fillets-nl fillets-en-music festvox-ru klettres ktuberling codec2)
mkdir -p "$work"

train_and_eval() { # name, extra args...
  local name=$1; shift
  local dir="$work/$name"
  if [ ! -f "$dir/eval/eval.json" ]; then
    nice -n 10 "$lab" train "$@" "${extra[@]}" --steps "$steps" --val-every 500 --quiet \
      --work "$dir" --out "$dir/model.safetensors" > "$dir.log" 2>&1
    nice -n 10 "$lab" eval --quick --corpus "$corpus" --model "$dir/model.safetensors" \
      --out "$dir/eval" >> "$dir.log" 2>&1
  fi
}

rows=("shared-only" "all")
args=("" "--corpus $corpus")
for s in "${sources[@]}"; do
  rows+=("without-$s"); args+=("--corpus $corpus --without $s")
done
i=0
while [ $i -lt ${#rows[@]} ]; do
  for ((k = 0; k < jobs && i + k < ${#rows[@]}; k++)); do
    # shellcheck disable=SC2086
    train_and_eval "${rows[$((i + k))]}" ${args[$((i + k))]} &
  done
  wait
  i=$((i + jobs))
done

python3 - "$work" "$corpus" "${rows[@]}" <<'PY'
import json, sys, csv, collections
work, corpus, rows = sys.argv[1], sys.argv[2], sys.argv[3:]
minutes = collections.Counter()
for r in csv.DictReader(open(f"{corpus}/MANIFEST.tsv"), delimiter="\t"):
    if r["split"] == "train":
        minutes[r["source"]] += float(r["seconds"]) / 60
    elif r["split"] == "noise":
        minutes[r["source"] + "-" + r["speaker"]] += float(r["seconds"]) / 60
out = ["| training data | minutes of the left-out source | mean SI-SDR / PESQ-WB / STOI | median SI-SDR / PESQ-WB / STOI |",
       "|---|---|---|---|"]
for name in rows:
    m = json.load(open(f"{work}/{name}/eval/eval.json"))["methods"]
    h = next(x for x in m if x["method"] == "hush")
    src = name.removeprefix("without-")
    mins = f"{minutes[src]:.1f}" if name.startswith("without-") else "–"
    out.append(f"| {name} | {mins} | {h['si_sdr']:.2f} / {h['pesq']:.3f} / {h['stoi']:.3f} | "
               f"{h['si_sdr_median']:.2f} / {h['pesq_median']:.3f} / {h['stoi_median']:.3f} |")
noisy = next(x for x in m if x["method"] == "noisy")
out.append(f"| (noisy input) | – | {noisy['si_sdr']:.2f} / {noisy['pesq']:.3f} / {noisy['stoi']:.3f} | "
           f"{noisy['si_sdr_median']:.2f} / {noisy['pesq_median']:.3f} / {noisy['stoi_median']:.3f} |")
open(f"{work}/ablation.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
