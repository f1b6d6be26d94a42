#!/usr/bin/env bash
# The main job: the whole pipeline on the bundled two-fly sample recording (skelmae demo):
# pretrain a small model, embed every frame, cluster behaviours, write the results files and
# save napari with the flies coloured by cluster and the ethogram. A few minutes on a CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out/demo}
.venv/bin/skelmae info --sample
.venv/bin/skelmae demo --out "$OUT"
