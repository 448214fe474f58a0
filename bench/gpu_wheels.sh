#!/usr/bin/env bash
# The wheels a GPU machine without a package index needs for `make gpu-check`, downloaded here (where pip reaches
# PyPI) for Python 3.12 on x86-64 Linux, then carried there: WHEELS=DIR make gpu-check PY=python3.
# Such machines (see the README's GPUs section) have torch, transformers, CuPy, pandas, pyarrow, scikit-learn,
# PyYAML and psutil, but no pydantic or datasets: these, and their own small dependencies, must fit in ~60 MB.
#   bash bench/gpu_wheels.sh [DIR]        # default DIR: .whl (ignored by git); prints each size and the total
# WITH_PYARROW=1 adds pyarrow (~45 MB) for a machine whose pyarrow is older than datasets needs (>= 24).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.whl}
limit_mb=${LIMIT_MB:-60}
wheels=(pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
        datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19)
[ "${WITH_PYARROW:-0}" = 1 ] && wheels+=(pyarrow==26.0.1)
mkdir -p "$dir"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
  platforms+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d "$dir" "${wheels[@]}"
total=0
for f in "$dir"/*.whl; do
  size=$(stat -c %s "$f")
  total=$((total + size))
  printf '%8.1f MB  %s\n' "$(echo "$size / 1048576" | bc -l)" "$(basename "$f")"
done
total_mb=$(echo "$total / 1048576" | bc -l)
printf '%8.1f MB  in all (limit %s MB)\n' "$total_mb" "$limit_mb"
if [ "$(echo "$total_mb > $limit_mb" | bc -l)" = 1 ]; then
  echo "gpu_wheels: the wheels exceed ${limit_mb} MB" >&2
  exit 1
fi
