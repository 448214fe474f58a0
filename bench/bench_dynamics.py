"""What recording training dynamics costs the reference run (issue 14): the same full-data fine-tune with and
without the DynamicsRecorder, alternating, in one run; plus the recorder's own time measured inside.

    python bench/bench_dynamics.py [--repeats 3] [--albert-pairs 256]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import machine, record
from models import albert_base_random

from tis_ray.data.prepare import prepare_data
from tis_ray.device import placement
from tis_ray.models import load_tokenizer
from tis_ray.spec import build_spec
from tis_ray.training import DynamicsRecorder, fit


def timed_fits(spec, work: Path, repeats: int) -> tuple[list[float], list[float], list[float]]:
    tokenizer = load_tokenizer(spec.model.name)
    data = prepare_data(spec, work / f"prepared-{spec.name}", tokenizer)
    where = placement("bench", None)
    plain, recording, inside = [], [], []
    for _ in range(repeats):
        for with_recorder in (False, True):
            recorder = DynamicsRecorder(len(data.train), spec.train.epochs) if with_recorder else None
            start = time.perf_counter()
            fit(spec, data.train, seed=0, tokenizer=tokenizer, placement=where, recorder=recorder)
            (recording if with_recorder else plain).append(time.perf_counter() - start)
            if recorder is not None:
                inside.append(recorder.seconds)
    return plain, recording, inside


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--albert-pairs", type=int, default=256)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tis_ray_bench_"))
    demo = build_spec({"name": "demo", "train": {"epochs": 2, "learning_rate": 3e-4, "batch_size": 32,
                                                   "group_by_length": False}})
    albert = build_spec({"name": "albert", "model": {"name": albert_base_random(work / "albert")},
                         "train": {"epochs": 1, "batch_size": 32},
                         "data": {"synthetic": {"n_train": args.albert_pairs, "n_eval": 8,
                                                "length_profile": "mnli"}}})
    rows = []
    for label, spec, repeats in (("tiny-albert, the demo's 4,000 pairs, 2 epochs", demo, args.repeats),
                                 (f"ALBERT-base shape, {args.albert_pairs} MNLI-length pairs, 1 epoch", albert, 1)):
        plain, recording, inside = timed_fits(spec, work, repeats)
        p, r = statistics.median(plain), statistics.median(recording)
        rows.append((label, repeats, p, r, 100 * (r / p - 1), 100 * statistics.median(inside) / r))
    body = "\n".join([
        f"`python bench/bench_dynamics.py --repeats {args.repeats} --albert-pairs {args.albert_pairs}` on {machine()}.",
        "", "The reference run's fine-tune without and with recording (softmax and loss of every example from the "
        "training forward passes), alternating; medians:", "",
        "| reference run | repeats | without s | with s | wall difference | recorder's own time |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {label} | {n} | {p:.1f} | {r:.1f} | {d:+.1f}% | {i:.2f}% |" for label, n, p, r, d, i in rows], "",
        "The recorder's own time (measured inside it: a softmax, a gather and a copy to host memory per batch) is "
        "what recording adds; the wall difference also carries this machine's run-to-run noise."])
    record("Training-dynamics recording overhead (issue 14)", body)


if __name__ == "__main__":
    main()
