"""What preemption safety and remote storage cost (issue 13):

1. Epoch checkpoint cost for the ALBERT-base shape of bench_trial.py: the time the Trainer spends writing a
   full checkpoint (model, optimizer, scheduler, RNG states) plus copying it once more (what Tune's persist to
   the run directory does), as a fraction of the epoch it follows, and of a full-MNLI epoch at the measured
   throughput.
2. The demo sweep with S3 storage (moto's S3 server on 127.0.0.1) against a local run directory: same trials,
   one run.

    python bench/bench_storage.py [--n-train 320] [--skip-sweeps]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

from common import machine, record, timed_sweep
from models import albert_base_random
from transformers import TrainerCallback

from tis_ray.data.prepare import prepare_data
from tis_ray.device import placement
from tis_ray.models import load_tokenizer
from tis_ray.spec import build_spec, load_spec
from tis_ray.training import fit

MNLI_TRAIN = 392_702
ROOT = Path(__file__).parents[1]


class SaveTimer(TrainerCallback):
    """Epoch wall times, and the time from each epoch's end to its checkpoint being on disk and copied."""

    def __init__(self):
        self.epoch_start, self.epochs, self.saves, self.ended = time.perf_counter(), [], [], None

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):
        self.ended = time.perf_counter()
        self.epochs.append(self.ended - self.epoch_start)

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        shutil.copytree(folder, Path(args.output_dir) / f"persisted-{state.global_step}")  # Tune's copy
        self.saves.append(time.perf_counter() - self.ended)


def checkpoint_cost(work: Path, n_train: int) -> dict:
    model_path = albert_base_random(work / "albert-base-random")
    spec = build_spec({"model": {"name": model_path}, "eval_sets": ["mnli_m"],
                       "train": {"epochs": 2, "batch_size": 32, "learning_rate": 2e-5},
                       "data": {"synthetic": {"n_train": n_train, "n_eval": 8, "length_profile": "mnli"},
                                "hans": None}})
    tokenizer = load_tokenizer(model_path)
    data = prepare_data(spec, work / "prepared", tokenizer)
    timer = SaveTimer()
    fit(spec, data.train, seed=0, tokenizer=tokenizer, placement=placement("bench", None),
        callbacks=[timer], checkpoint_dir=work / "checkpoints")
    size = sum(f.stat().st_size for f in next((work / "checkpoints").glob("checkpoint-*")).rglob("*") if f.is_file())
    per_example = sum(timer.epochs) / (2 * n_train)
    return {"epoch_s": timer.epochs, "save_s": timer.saves, "size_gib": size / 2**30,
            "mnli_epoch_s": per_example * MNLI_TRAIN}


def demo_sweep(storage_path: str, name: str) -> float:
    return timed_sweep(load_spec(ROOT / "experiments" / "demo.yaml", [f"storage_path={storage_path}",
                                                                      f"name={name}"]))


def s3_vs_local(work: Path) -> tuple[float, float]:
    from moto.server import ThreadedMotoServer
    from pyarrow import fs as pafs

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"endpoint_override=127.0.0.1:{port}&scheme=http"
        pafs.FileSystem.from_uri(f"s3://bench?{endpoint}&allow_bucket_creation=true")[0].create_dir("bench")
        local = demo_sweep(str(work / "runs"), "demo_local")
        remote = demo_sweep(f"s3://bench/runs?{endpoint}", "demo_s3")
    finally:
        server.stop()
    return local, remote


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-train", type=int, default=320)
    parser.add_argument("--skip-sweeps", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tis_ray_bench_"))
    cost = checkpoint_cost(work, args.n_train)
    fractions = [s / e for s, e in zip(cost["save_s"], cost["epoch_s"], strict=True)]
    save = max(cost["save_s"])
    lines = [
        f"`python bench/bench_storage.py --n-train {args.n_train}` on {machine()}.", "",
        f"Epoch checkpoints, ALBERT-base shape ({cost['size_gib']:.2f} GiB per checkpoint: weights, Adam states, "
        f"scheduler, RNG), {args.n_train} MNLI-length pairs per epoch, batch 32:", "",
        "| epoch | epoch s | checkpoint write + one copy s | fraction |", "|---:|---:|---:|---:|",
        *[f"| {i + 1} | {e:.1f} | {s:.2f} | {100 * f:.1f}% |"
          for i, (e, s, f) in enumerate(zip(cost["epoch_s"], cost["save_s"], fractions, strict=True))], "",
        f"**Checkpoint cost: {100 * max(fractions):.1f}% of a {args.n_train}-pair epoch here; against a full-MNLI "
        f"epoch at this throughput ({cost['mnli_epoch_s'] / 3600:.1f} h on this CPU) it is "
        f"{100 * save / cost['mnli_epoch_s']:.3f}%, and against the ~60 s GPU epoch of the GPU target "
        f"{100 * save / 60:.1f}% (write speed is the disk's, not the GPU's).**"]
    if not args.skip_sweeps:
        local, remote = s3_vs_local(work)
        lines += ["", "The demo sweep (18 trials, `experiments/demo.yaml`), local run directory vs S3 (moto's S3 "
                  "server on 127.0.0.1), one after the other in one run:", "",
                  "| storage | wall seconds |", "|---|---:|", f"| local path | {local:.1f} |",
                  f"| s3://...?endpoint_override=127.0.0.1 | {remote:.1f} |", "",
                  f"**S3 storage: {100 * (remote / local - 1):+.1f}% wall time on the demo** (uploads of the "
                  "prepared data and of each trial's files, the fetch of the prepared data into the node cache, "
                  "Tune's syncing of results and checkpoints)."]
    record("Checkpoints and remote storage (issue 13)", "\n".join(lines))


if __name__ == "__main__":
    main()
