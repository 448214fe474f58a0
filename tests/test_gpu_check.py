"""`make gpu-check` where no GPU exists: one line and exit 0; with faked GPU facts, the path down to the plan."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
H100 = {"torch_cuda": "13.0", "device_count": 1, "capability": [9, 0], "name": "NVIDIA H100 80GB HBM3"}


def write_executable(path: Path, text: str) -> None:
    """Write an executable script at `path` whose inode this process never holds open for writing: `install`,
    a child process, copies the text there with mode 0755. A fork by another thread of this process (Ray,
    pytest plugins) can inherit only a handle on the source file, so exec'ing `path` never meets a file still
    open for writing ("Text file busy"), as a rename of a file written here still could."""
    source = path.with_name(f".{path.name}.txt")
    source.write_text(text)
    subprocess.run(["install", "-m", "0755", str(source), str(path)], check=True)


def run_check(env: dict, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh")], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300, cwd=tmp_path)


def test_without_a_gpu_it_says_so_in_one_line_and_installs_nothing(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    done = run_check({"PATH": f"{empty}:/usr/bin:/bin"}, tmp_path)  # no nvidia-smi on this PATH
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.splitlines() == ["gpu-check: no NVIDIA GPU on this machine (nvidia-smi -L lists none); "
                                        "nothing to check"]


def test_a_given_interpreter_without_cuml_reaches_the_torch_rows(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    write_executable(fake / "nvidia-smi", "#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)'\n"
                                           "echo 'GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-1)'\n")
    done = run_check({"PATH": f"{fake}:{os.environ['PATH']}", "PY": sys.executable, "GPU_CHECK_DRY_RUN": "1",
                      "TIS_RAY_FAKE_GPU_FACTS": json.dumps(H100)}, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "extra gpu, CUDA_VISIBLE_DEVICES=0)" in lines[0]  # CUDA 13 -> tis-ray[gpu]; one GPU of the two
    assert "- runs: trial throughput (bf16 vs the original's fp16, pad to 128)" in lines
    assert "- runs: embedding (fp32, bf16)" in lines and "- runs: peak memory per batch size" in lines
    assert any(line.startswith("- skipped: cuML KMeans (cuML not installed") for line in lines)


def test_the_plan_follows_the_facts():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from bench_gpu import plan
    finally:
        sys.path.remove(str(ROOT / "bench"))
    from tis_ray.device import GpuFacts

    t4 = plan(GpuFacts("13.0", 1, (7, 5), "Tesla T4"), True, None)
    assert [s.runs for s in t4] == [True] * 5 and t4[0].name.startswith("trial throughput (fp16")
    broken = plan(GpuFacts("13.0", 1, (9, 0), "H100"), False, "ImportError: libcuml++.so")
    assert broken[3].reason == "cuML does not import: ImportError: libcuml++.so" and not broken[4].runs
    none = plan(GpuFacts(None, 0), True, None)
    assert not any(s.runs for s in none)
