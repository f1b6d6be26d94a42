#!/usr/bin/env bash
# Idempotent set-up of everything napari-skelmae needs on a fresh Debian machine:
# the Xvfb virtual screen (napari renders only under an X server), a .venv with the CPU
# build of torch (installed first and alone so nothing drags in the multi-GB CUDA build),
# then the package in editable mode with its test and optional extras.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v xvfb-run >/dev/null 2>&1; then
  echo "[setup] installing Xvfb and the X libraries Qt needs"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 \
    libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0 \
    libxcb-shape0 libgl1 libegl1 libfontconfig1 libdbus-1-3 >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
STAMP=.venv/.skelmae-installed
HASH=$(cat pyproject.toml scripts/setup-env.sh | sha1sum | cut -c1-12)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
  exit 0
fi

echo "[setup] creating .venv with $PY"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip uv
# torch first and alone: pip finds the local CPU wheel; uv is then pointed at it.
mkdir -p .cache/wheels
if ! ls .cache/wheels/torch-* >/dev/null 2>&1; then
  .venv/bin/python -m pip download -q --no-deps -d .cache/wheels "torch==2.13.0" \
    || .venv/bin/python -m pip download -q --no-deps -d .cache/wheels "torch>=2.4,<=2.14.1"
fi
VIRTUAL_ENV=$PWD/.venv .venv/bin/uv pip install -q --find-links .cache/wheels .cache/wheels/torch-*.whl
VIRTUAL_ENV=$PWD/.venv .venv/bin/uv pip install -q --find-links .cache/wheels -e ".[all,test]"
# Machines here set PYTHONDONTWRITEBYTECODE=1, so nothing caches bytecode on import: without this
# every process recompiles torch._dynamo, sympy, napari... (~15 s per process and test subprocess)
.venv/bin/python -m compileall -q -j 0 .venv/lib/python3*/site-packages >/dev/null || true
echo "$HASH" > "$STAMP"
echo "[setup] done: $(.venv/bin/python -c 'import torch, napari; print("torch", torch.__version__, "napari", napari.__version__)')"
