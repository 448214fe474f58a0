"""What a rerun of a failed preparation saves (issue 18): the demo's preparation stopped by DBSCAN's >= 95% noise
check, then the rerun with another eps, which reuses the reference fine-tune and the embeddings the first run
finished and only clusters again. The MNLI-scale line multiplies the measured per-example rates.

    python bench/bench_preparation_reuse.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import machine, record

from tis_ray import preparation
from tis_ray.errors import TisRayError
from tis_ray.spec import load_spec

MNLI_TRAIN = 392_702
DEMO = Path(__file__).parents[1] / "experiments" / "demo.yaml"


class Timed:
    """Wraps preparation's reference fine-tune and embedding pass, adding up the seconds each takes."""

    def __init__(self):
        self.seconds = {"reference fine-tune": 0.0, "embedding": 0.0}
        for name, attr in (("reference fine-tune", "reference_run"), ("embedding", "embed_dataset")):
            setattr(preparation, attr, self._timed(name, getattr(preparation, attr)))

    def _timed(self, name, real):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
        return run


def attempt(run_dir: Path, eps: float) -> float:
    spec = load_spec(DEMO, [f"storage_path={run_dir.parent}", f"name={run_dir.name}",
                            f"grid.samplers=[{{type: dbscan, eps: {eps:.1e}}}]"])
    start = time.perf_counter()
    try:
        preparation.prepare_shared(spec, run_dir, gpus=None)
    except TisRayError as exc:
        assert "no trial was started" in str(exc), exc
    return time.perf_counter() - start


def main() -> None:
    timed = Timed()
    run_dir = Path(tempfile.mkdtemp(prefix="tis_ray_bench_reuse_")) / "demo-noise"
    first = attempt(run_dir, 1.0e-9)
    spent = dict(timed.seconds)
    second = attempt(run_dir, 2.0e-9)
    assert timed.seconds == spent, "the rerun fine-tuned or embedded again"
    n = 4000  # the demo's training pairs
    fine_tune, embed = spent["reference fine-tune"], spent["embedding"]
    spec = load_spec(DEMO)
    body = "\n".join([
        f"`python bench/bench_preparation_reuse.py` on {machine()}.", "",
        f"The demo's preparation ({n:,} pairs, tiny-albert, reference fine-tune of {spec.reference_epochs()} epochs) "
        "with a DBSCAN sampler whose eps leaves all points as noise, then the rerun with another eps:", "",
        "| run | wall | reference fine-tune | embedding |", "|---|---:|---:|---:|",
        f"| first: stopped by the noise check | {first:.1f} s | {fine_tune:.1f} s | {embed:.1f} s |",
        f"| rerun, another eps: reuses both, clusters again | {second:.1f} s | 0 (reused) | 0 (reused) |", "",
        f"**Saved per rerun: {first - second:.1f} s of {first:.1f} s ({(first - second) / first:.0%}).** "
        f"At MNLI's {MNLI_TRAIN:,} pairs the saving is the reference fine-tune plus the embedding pass: on this "
        f"machine's CPU rates ({n * spec.reference_epochs() / fine_tune:.0f} training and {n / embed:.0f} "
        f"embedding examples/s for tiny-albert) {MNLI_TRAIN * spec.reference_epochs() / (n * spec.reference_epochs() / fine_tune) / 3600:.1f} h + "
        f"{MNLI_TRAIN / (n / embed) / 60:.0f} min; for ALBERT-base (6.81 training examples/s on 2 CPU cores, "
        "bench_trial.py; 14.8 embedding pairs/s, bench_embed.py) 3 epochs are "
        f"{3 * MNLI_TRAIN / 6.81 / 3600:.0f} h + {MNLI_TRAIN / 14.8 / 3600:.1f} h (estimates; the GPU rates are "
        "make gpu-check's, not measured yet)."])
    record("Preparation reuse after a failure (issue 18)", body)


if __name__ == "__main__":
    main()
