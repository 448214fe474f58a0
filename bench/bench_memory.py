"""Peak memory of a demo trial and of `tis-ray embed` on 392,702 examples (MNLI train's size).

    python bench/bench_memory.py        # ~6 min on 2 CPU cores

Each command runs in its own wrapper process, whose RUSAGE_CHILDREN peak (ru_maxrss) is that command's.
Embeddings are written batch by batch into a memory-mapped .npy, so they are never held in memory twice.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import machine, record

ROOT = Path(__file__).parents[1]


def peak_rss(cmd: list[str]) -> tuple[float, float]:
    """Run `cmd` under a fresh wrapper process; return (peak RSS of cmd's process tree in GiB, seconds).

    The wrapper's RUSAGE_CHILDREN covers `cmd` alone, not the commands measured before it.
    """
    wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
               "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], check=True, cwd=ROOT, capture_output=True, text=True)
    return int(out.stdout.strip()) / 2**20, time.perf_counter() - start  # ru_maxrss is in KiB on Linux


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="tis_ray_bench_"))
    tis_ray = [sys.executable, "-m", "tis_ray.cli"]
    trial_rss, trial_s = peak_rss([*tis_ray, "train", "experiments/demo.yaml", "--out", str(work / "trial")])
    spec = work / "mnli_size.yaml"
    spec.write_text(yaml.safe_dump({"data": {"synthetic": {"n_train": 392_702, "n_eval": 10, "hans_per_cell": 1}}}))
    embed_rss, embed_s = peak_rss([*tis_ray, "embed", str(spec), "--model", "tiny-albert", "--out", str(work / "emb"),
                                   "--batch-size", "512"])
    matrix_gib = (work / "emb" / "embeddings.npy").stat().st_size / 2**30
    body = "\n".join([
        f"`python bench/bench_memory.py` on {machine()}.", "",
        "| command | peak RSS | wall seconds |", "|---|---:|---:|",
        f"| `tis-ray train experiments/demo.yaml` (4,000 pairs, 4 epochs) | {trial_rss:.2f} GiB | {trial_s:.0f} |",
        f"| `tis-ray embed` on 392,702 synthetic pairs, tiny-albert | {embed_rss:.2f} GiB | {embed_s:.0f} |", "",
        f"The embedding matrix on disk is {matrix_gib:.2f} GiB (392,702 x 128 float32); rows are written into the "
        "memory-mapped .npy as each batch finishes, so no second in-memory copy is made. Peak RSS is the OS's "
        "ru_maxrss of each command's own process tree."])
    record("Peak memory (issue 6.4)", body)


if __name__ == "__main__":
    main()
