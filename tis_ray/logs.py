"""tis_ray's log lines: one format with the time, on the driver and in every Ray worker (where nothing sets
logging up), naming the trial a line comes from; third-party progress bars and chatter off in workers.

    2026-12-03 09:14:02 [tis-ray s42-pct0.1-kmeans_k=8] epoch 2: {'train/loss': 0.61, 'mnli_m/acc': 0.74}
"""

from __future__ import annotations

import logging
import os
import sys

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def setup(where: str = "", verbose: bool = False) -> None:
    """Send tis_ray's INFO lines (DEBUG with `verbose`) to stderr as 'time [tis-ray where] message', replacing
    any earlier setup (a reused Ray worker runs one trial after another); other libraries log warnings only."""
    tag = f"tis-ray {where}".strip()
    logging.basicConfig(level=logging.WARNING, format=f"%(asctime)s [{tag}] %(message)s", datefmt=DATE_FORMAT,
                        stream=sys.stderr, force=True)
    logging.getLogger("tis_ray").setLevel(logging.DEBUG if verbose else logging.INFO)


def every_trial_line() -> None:
    """Have Ray print every line of every trial on the driver's console (each trial's epoch lines differ only in
    their numbers, which Ray's log deduplication merges into one 'repeated Nx' line). Ray reads RAY_DEDUP_LOGS
    once, when `ray` is imported (ray._private.ray_constants): tis_ray/__init__.py calls this before anything
    imports Ray; where Ray was imported first (a notebook), its deduplicator's flag is set to the same."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    ray_logging = sys.modules.get("ray._private.ray_logging")
    if ray_logging is not None and hasattr(ray_logging, "RAY_DEDUP_LOGS"):
        ray_logging.RAY_DEDUP_LOGS = os.environ["RAY_DEDUP_LOGS"].lower() in ("1", "true")


def no_third_party_bars() -> None:
    """Keep the Hub's and transformers' progress bars ('Loading weights', 'Writing model shards') off, without
    importing them: read when they are first imported."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def quiet_third_party() -> None:
    """Turn off the progress bars and INFO chatter of transformers, datasets and the Hub (a worker's output is
    the trial's own lines); tis_ray's own progress lines stay."""
    no_third_party_bars()
    import datasets
    import transformers

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:  # an old huggingface_hub: its bars follow HF_HUB_DISABLE_PROGRESS_BARS
        pass


def quiet_ray_tune() -> None:
    """Keep Ray Tune to its progress table, on the driver and in trial workers: no line per checkpoint, no
    warning per experiment snapshot of short trials (the snapshot still happens; tis_ray's trials keep only
    their newest checkpoint)."""
    for name in ("ray.tune", "ray.train"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Tune warns when it snapshots more than once within this many seconds: 0 never
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
