#!/usr/bin/env bash
# `make gpu-check`: on a machine with an NVIDIA GPU, the GPU tests and the GPU benchmark rows
# (bench/RESULTS-gpu.md, under 10 minutes on an H100), on one GPU. Without a GPU: one line, exit 0, nothing
# installed.
#   make gpu-check                      # .venv (make install), the gpu extra installed if an index is reachable
#   make gpu-check PY=python3           # a given interpreter: whatever it has (torch, transformers, ...) is used
#   WHEELS=DIR make gpu-check PY=...    # offline: install the wheels in DIR first (bash bench/gpu_wheels.sh DIR)
# tis_ray runs from this checkout (PYTHONPATH), so no editable install (nor setuptools) is needed. The torch rows
# need only torch, transformers, datasets and pydantic; the cuML rows and tests run only where cuML imports, and
# RESULTS-gpu.md says what ran and what was skipped, and why.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  echo "gpu-check: no NVIDIA GPU on this machine (nvidia-smi -L lists none); nothing to check"
  exit 0
fi
# One GPU, as a trial holds: the first visible one (the Trainer would otherwise use DataParallel over all).
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES%%,*}
if [ -z "${PY:-}" ]; then
  PY=.venv/bin/python
  [ -x "$PY" ] || make install
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if [ -n "${WHEELS:-}" ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --find-links "$WHEELS" "$WHEELS"/*.whl
fi
missing=$("$PY" - <<'PYCODE'
import importlib.util
need = ["torch", "transformers", "datasets", "pydantic", "yaml", "pandas", "pyarrow", "sklearn", "psutil"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
PYCODE
)
if [ -n "$missing" ]; then
  echo "gpu-check: $PY lacks $missing: carry them as wheels (bash bench/gpu_wheels.sh DIR, then WHEELS=DIR)" >&2
  exit 2
fi
# GPU_CHECK_DRY_RUN=1 with TIS_RAY_FAKE_GPU_FACTS (a JSON of tis_ray.device.GpuFacts): the same path on faked
# facts, down to the benchmark's plan, installing and measuring nothing (what the CPU test suite runs)
cuda=$("$PY" -c "import json, os, torch
fake = json.loads(os.environ.get('TIS_RAY_FAKE_GPU_FACTS') or 'null')
print(((fake['torch_cuda'] if fake else torch.version.cuda) or 'none').split('.')[0])")
case "$cuda" in
  13) extra=gpu ;;
  12) extra=gpu-cu12 ;;
  *) echo "gpu-check: torch has no CUDA build (torch.version.cuda: $cuda): make install on this GPU machine" >&2; exit 2 ;;
esac
if [ "${GPU_CHECK_DRY_RUN:-0}" = 1 ]; then
  echo "gpu-check: dry run with GPU facts $TIS_RAY_FAKE_GPU_FACTS (extra $extra, CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES)"
  exec "$PY" bench/bench_gpu.py --dry-run
fi
if ! "$PY" -c "import cuml, cupy" 2>/dev/null && [ -z "${WHEELS:-}" ]; then
  # a package index may be out of reach: one quick try, then the cuML rows are skipped with the reason
  "$PY" -m pip install -q --retries 0 --timeout 15 ".[$extra]" \
    || echo "gpu-check: could not install tis-ray[$extra] here; the cuML rows and tests are skipped"
fi
"$PY" -m tis_ray.cli doctor || echo "gpu-check: doctor found problems (above); measuring what runs"
"$PY" -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py
"$PY" bench/bench_gpu.py
