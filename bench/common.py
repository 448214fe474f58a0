"""Helpers shared by the benchmark scripts: machine description and RESULTS.md sections."""

from __future__ import annotations

import os
import platform
import re
from datetime import date
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    """Return a one-line description of this machine (CPU count, memory, torch device)."""
    import psutil

    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{os.cpu_count()} CPU cores ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GiB, {gpu}, "
            f"torch {torch.__version__}, {date.today().isoformat()}")


def record(section: str, body: str) -> None:
    """Replace (or append) `## section` in bench/RESULTS.md with `body`, and print it."""
    text = RESULTS.read_text() if RESULTS.is_file() else "# Benchmark results\n\nEach section is rewritten by the script named in it.\n"
    block = f"## {section}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(block + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    RESULTS.write_text(text)
    print(block)


def timed_sweep(spec) -> float:
    """Run a sweep under local Ray with 2 CPUs (shut down after); returns its wall seconds, start-up included."""
    import time

    import ray

    from tis_ray.sweep import run_sweep

    start = time.perf_counter()
    try:
        run_sweep(spec, num_cpus=2)
    finally:
        ray.shutdown()
    return time.perf_counter() - start
