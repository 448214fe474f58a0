#!/usr/bin/env bash
# `make gpu-check`: on a machine with an NVIDIA GPU, install the GPU extra that matches torch's CUDA major,
# run tis-ray doctor, the GPU-marked tests and the GPU benchmark rows (bench/RESULTS-gpu.md).
# Without a GPU it says so in one line and exits 0, installing nothing.
# Offline machines: WHEELS=/path/to/wheels installs the extra from that folder (pip --no-index).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  echo "gpu-check: no NVIDIA GPU on this machine (nvidia-smi -L lists none); nothing to check"
  exit 0
fi
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || make install
cuda=$("$PY" -c "import torch; print((torch.version.cuda or 'none').split('.')[0])")
case "$cuda" in
  13) extra=gpu ;;
  12) extra=gpu-cu12 ;;
  *) echo "gpu-check: torch has no CUDA build (torch.version.cuda: $cuda): make install on this GPU machine" >&2; exit 2 ;;
esac
if "$PY" -c "import cuml, cupy" 2>/dev/null; then
  echo "gpu-check: cuML and CuPy already installed"
else
  "$PY" -m pip install -q ${WHEELS:+--no-index --find-links "$WHEELS"} -e ".[$extra]"
fi
"$PY" -m tis_ray.cli doctor
"$PY" -m pytest -q -m gpu tests/test_gpu.py
"$PY" bench/bench_gpu.py
