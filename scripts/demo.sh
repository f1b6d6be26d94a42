#!/usr/bin/env bash
# The main job on the bundled sample recording. Until the pipeline issues land this is:
# what was read (`skelmae info`) and a rendered screenshot of the tracks over the video.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-out}
mkdir -p "$OUT"
.venv/bin/skelmae info --sample
.venv/bin/skelmae view --sample --frame 100 --size 1400x900 --screenshot "$OUT/sample_frame100.png"
.venv/bin/skelmae view --sample --frame 100 --size 1400x900 --zoom-to-animals --with-ui \
  --screenshot "$OUT/sample_frame100_zoom.png"
