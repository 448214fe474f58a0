"""One trial, one grid point: subset -> fit (evaluating every epoch) -> the trial's files.

`run_trial(config, output_dir, report)` takes a TrialConfig (or the dict a Ray Tune trial receives): the
sweep's spec, the trial's grid point and the prepared data it reads. Its EpochReporter reports one flat
metrics dict per epoch from the Trainer (Tune passes `tune.report`), and it writes metrics.json,
subset.json, subset_indices.npy and hans_predictions.txt into `output_dir`.
"""

from __future__ import annotations

import logging
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from transformers import TrainerCallback

from tis_ray import evaluation
from tis_ray.clustering import load_clusters
from tis_ray.data.prepare import PreparedData, open_prepared
from tis_ray.device import memory_fraction, placement, release_gpu_memory
from tis_ray.dynamics import load_dynamics
from tis_ray.embeddings import load_embeddings
from tis_ray.inference import predict_logits
from tis_ray.io import read_json, save_npy, sha256_of_indices, write_json
from tis_ray.models import count_parameters, load_tokenizer, save_checkpoint
from tis_ray.overlap import HIGH_OVERLAP_NON_ENTAILED, subset_composition
from tis_ray.samplers import SamplingPool, sampler_from_entry
from tis_ray.spec import GridPoint, build_spec
from tis_ray.training import epoch_training_metrics, fit

log = logging.getLogger(__name__)

# report(metrics, checkpoint_dir=None): Tune's tune.report, with the epoch's checkpoint folder when there is one
Reporter = Callable[..., None]
HISTORY_FILE = "history.json"  # the epochs reported so far, inside each epoch checkpoint


class TrialConfig(BaseModel):
    """What one trial receives (a Ray Tune trial's config, or `tis-ray train`'s)."""

    model_config = ConfigDict(extra="ignore")  # Tune adds its own keys (the setting label, the run directory)

    spec: dict[str, Any]  # the sweep's SweepSpec, dumped
    point: GridPoint  # the grid point this trial runs
    prepared: dict[str, str | None]  # local folders it reads: data, clusters, dynamics, embeddings, indices
    gpus: float | None = None  # the GPU share it holds; None outside Ray: a GPU when one is visible
    num_threads: int | None = None  # torch CPU threads
    checkpoints: bool = False  # under Tune: every epoch but the last is reported with its epoch checkpoint
    resume_from: str | None = None  # an epoch checkpoint of an earlier attempt: training continues after it


class EpochReporter(TrainerCallback):
    """Each epoch's metrics, with the trial's fields, into the trial's history and to Tune (as Ray's own
    Transformers callback reports from the Trainer). With checkpoints, an epoch is reported with its checkpoint
    when the Trainer has written it (the history goes into the checkpoint); without, at once. The final epoch
    is reported by `run_trial`, with the timings."""

    def __init__(self, fields: dict[str, Any], epochs: int, history: list[dict], report: Reporter | None,
                 checkpointing: bool):
        self.fields, self.epochs, self.history = fields, epochs, history
        self.report, self.checkpointing = report, checkpointing

    def record(self, metrics: dict) -> None:
        """Add one epoch's metrics (from the EpochEvaluator) to the history and report it unless it waits."""
        metrics = {**self.fields, **metrics, "final": int(metrics["epoch"] >= self.epochs)}
        self.history.append(metrics)
        log.info("epoch %d: %s", metrics["epoch"], {k: round(v, 4) for k, v in metrics.items()
                                                      if k.endswith("/acc") or k.startswith("train/")})
        if self.report is not None and not metrics["final"] and not self.checkpointing:
            self.report(metrics)

    def on_save(self, args, state, control, **kwargs):
        if self.checkpointing and self.history and not self.history[-1]["final"]:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            write_json(folder / HISTORY_FILE, self.history)
            self.report(self.history[-1], checkpoint_dir=folder)


def select_subset(point: GridPoint, data: PreparedData, clusters_dir: str | None,
                  dynamics_dir: str | None = None, rounding: str = "round", indices_path: str | None = None,
                  embeddings_dir: str | None = None) -> tuple[np.ndarray, SamplingPool]:
    """Return the sorted subset indices of a grid point, and the pool (labels, clusters, dynamics) they came from.

    `rounding` turns a data_pct into a size (spec grid.budget_rounding: round, or floor as the original);
    `indices_path`: the run directory's copy of the file of a sampler that reads one (indices, score), read
    instead of the user's path.
    """
    n = len(data.train_labels)
    clusters = load_clusters(clusters_dir, expected_rows=n, fingerprint=data.train_fingerprint) if clusters_dir else None
    pool = SamplingPool(data.train_labels, clusters.labels_ if clusters else None,
                        clusters.distances_ if clusters else None,
                        load_dynamics(dynamics_dir, data.train_fingerprint) if dynamics_dir else None,
                        clusters.centroid_nearest_ if clusters else None,
                        load_embeddings(embeddings_dir, data.train_fingerprint) if embeddings_dir else None,
                        data.train_fingerprint)
    sampler = sampler_from_entry({**point.sampler, "path": indices_path} if indices_path else point.sampler)
    return sampler.select(pool, point.subset_size(len(pool), rounding), point.seed), pool


def subset_record(indices: np.ndarray, pool: SamplingPool) -> dict[str, Any]:
    """Return the record of a subset: size, hash, and counts per label and per cluster."""
    labels, counts = np.unique(pool.labels[indices], return_counts=True)
    record = {"n": len(indices), "sha256": sha256_of_indices(indices),
              "label_counts": {int(k): int(v) for k, v in zip(labels, counts, strict=True)}}
    if pool.clusters is not None:
        clusters, counts = np.unique(pool.clusters[indices], return_counts=True)
        record["cluster_counts"] = {int(k): int(v) for k, v in zip(clusters, counts, strict=True)}
    return record


def training_passes(point: GridPoint, spec, pool: SamplingPool, n_full: int,
                    indices: np.ndarray) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Return the training-set rows a trial trains on and, for a sampler with a subset per epoch, the passes
    (positions in those rows; as many as the schedule goes through its budget), else None."""
    sampler = sampler_from_entry(point.sampler)
    if not getattr(sampler, "per_epoch", False):
        return indices, None
    budget = len(indices)
    samples = spec.train.examples_per_epoch(budget, n_full) * spec.train.epochs
    subsets = sampler.epoch_subsets(pool, budget, point.seed, max(1, -(-samples // budget)))
    rows = np.unique(np.concatenate(subsets))
    return rows, [np.searchsorted(rows, subset) for subset in subsets]


def node_info() -> dict[str, str]:
    """Return the Ray node id and IP running this code (hostname when outside Ray)."""
    try:
        import ray

        if ray.is_initialized():
            return {"node_id": ray.get_runtime_context().get_node_id(), "node_ip": ray.util.get_node_ip_address()}
    except Exception:  # noqa: BLE001 - node info is informative only
        pass
    return {"node_id": socket.gethostname(), "node_ip": "127.0.0.1"}


class EpochEvaluator(TrainerCallback):
    """Evaluates every evaluation set at the end of each epoch and reports one flat metrics dict."""

    def __init__(self, data: PreparedData, pad_id: int, batch_size: int, precision: str,
                 on_epoch: Callable[[dict], None]):
        self.data, self.pad_id, self.batch_size, self.precision = data, pad_id, batch_size, precision
        self.on_epoch, self.eval_seconds, self.last_logits = on_epoch, 0.0, {}

    def evaluate(self, model) -> dict[str, float]:
        """Return every evaluation metric of `model` now; keeps the logits of this pass."""
        start = time.perf_counter()
        metrics: dict[str, float] = {}
        id2label = model.config.id2label
        for name, tokenized in self.data.eval_sets.items():
            logits = predict_logits(model, tokenized, self.pad_id, self.batch_size, self.precision)
            self.last_logits[name] = logits
            metrics.update(evaluation.set_metrics(self.data.definitions[name], logits.argmax(-1),
                                                  np.asarray(tokenized["label"]), self.data.eval_meta[name], id2label))
        self.eval_seconds += time.perf_counter() - start
        return metrics

    def score(self, model, epoch: int, training: dict[str, float] | None = None) -> None:
        """Evaluate `model` and pass the metrics of `epoch` on, with the epoch's training loss and rate."""
        self.on_epoch({**self.evaluate(model), **(training or {}), "epoch": epoch})

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        self.score(model, round(state.epoch), epoch_training_metrics(state))


def _write_subset(output_dir: Path, point: GridPoint, indices: np.ndarray, pool: SamplingPool,
                  data: PreparedData, rounding: str, extra: dict[str, Any]) -> dict[str, Any]:
    record = subset_record(indices, pool)
    if data.train_overlap is not None:
        record["hans_composition"] = {**subset_composition(data.train_overlap, pool.labels, indices, data.task.labels),
                                      "rule": data.train_overlap_rule}
    sampler = sampler_from_entry(point.sampler)
    save_npy(output_dir / "subset_indices.npy", indices)
    write_json(output_dir / "subset.json", {**record, "sampler": point.sampler, "seed": point.seed,
                                             "sampler_params": sampler.params(),
                                             "selection": sampler.selection_record(pool, indices),
                                             "budget_kind": point.budget_kind, "data_pct": point.data_pct,
                                             "n_examples": point.n_examples,
                                             "budget": point.subset_size(len(pool), rounding),
                                             "budget_rounding": rounding, "overrides": point.overrides,
                                             "train_fingerprint": data.train_fingerprint, **extra})
    return record


OUTCOMES = "outcomes"  # in each trial folder: every evaluation example's margin and correctness


def write_outcomes(out: Path, data: PreparedData, logits: dict[str, np.ndarray], id2label: dict) -> None:
    """Write each evaluation set's per-example outcomes as <set>.npy, float16 [n, 2] (margin, correct), and a
    manifest.json with the sets' fingerprints: what `tis-ray attribute` regresses on."""
    manifest = {}
    for name, set_logits in logits.items():
        gold = np.asarray(data.eval_sets[name]["label"])
        margins = evaluation.set_margins(data.definitions[name], set_logits, gold, id2label)
        save_npy(out / f"{name}.npy", np.stack([margins, margins > 0], axis=1).astype(np.float16))
        manifest[name] = {"rows": len(gold), "columns": ["margin", "correct"],
                          "fingerprint": data.eval_fingerprints.get(name)}
    write_json(out / "manifest.json", manifest)


def run_trial(config: dict | TrialConfig, output_dir: str | Path, report: Reporter | None = None) -> dict[str, Any]:
    """Train and evaluate one grid point; returns the final flat metrics dict and writes the trial's files
    (metrics.json, subset.json, subset_indices.npy, hans_predictions.txt) into `output_dir`. `config`: a
    TrialConfig or its dict; `report`: Tune's report, called once per epoch."""
    c = TrialConfig.model_validate(config)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    spec = build_spec(c.spec, source="trial config").for_point(c.point)
    if c.num_threads:
        torch.set_num_threads(c.num_threads)
    datasets.disable_progress_bars()
    where = placement("trial", c.gpus, spec.train.precision)
    if where.on_gpu and (share := memory_fraction(c.gpus)):
        # Ray does not partition the card: a trial holding 0.25 GPU stays within a quarter of its memory, so an
        # oversized batch fails in its own trial instead of taking the memory of the trials beside it
        torch.cuda.set_per_process_memory_fraction(share)

    # the subset
    data = open_prepared(c.prepared["data"])
    rounding = spec.grid.budget_rounding
    indices, pool = select_subset(c.point, data, c.prepared.get("clusters"), c.prepared.get("dynamics"), rounding,
                                  c.prepared.get("indices"), c.prepared.get("embeddings"))
    rows, passes = training_passes(c.point, spec, pool, len(data.train), indices)
    epoch_subsets = {}
    if passes is not None:  # a fresh subset each epoch: all of them, and how many examples they cover
        save_npy(output_dir / "epoch_indices.npy", rows[np.stack(passes)])
        epoch_subsets = {"epoch_subsets": len(passes), "n_distinct_seen": len(rows)}
    record = _write_subset(output_dir, c.point, indices, pool, data, rounding, epoch_subsets)

    # training, evaluated and reported every epoch
    tokenizer = load_tokenizer(spec.model.name, spec.model.tokenizer)
    fields = {**c.point.row_fields(), "n_train": len(indices), "n_train_full": len(pool),
              "subset_sha256": record["sha256"],
              "device": where.device, "precision": where.precision, "model": spec.model.name,
              "freeze_base": spec.model.freeze_base, "schedule": spec.train.schedule, **node_info()}
    if "hans_composition" in record:
        fields[f"subset/{HIGH_OVERLAP_NON_ENTAILED}"] = record["hans_composition"][HIGH_OVERLAP_NON_ENTAILED]
    history: list[dict] = read_json(Path(c.resume_from) / HISTORY_FILE) if c.resume_from else []
    resumed_epochs = len(history)
    checkpointing = c.checkpoints and report is not None
    reporter = EpochReporter(fields, spec.train.epochs, history, report, checkpointing)
    evaluator = EpochEvaluator(data, tokenizer.pad_token_id, spec.train.eval_batch_size, where.precision,
                               reporter.record)
    with tempfile.TemporaryDirectory(prefix="tis_ray_ckpt_") as local_checkpoints:
        trained = fit(spec, data.train.select(rows), seed=c.point.seed, tokenizer=tokenizer, placement=where,
                      callbacks=[evaluator, reporter], checkpoint_dir=local_checkpoints if checkpointing else None,
                      resume_from=c.resume_from, passes=passes, full_size=len(data.train),
                      labels=data.task.labels)
    if trained.epochs == 0:  # evaluate-only: score the model as built, once
        evaluator.score(trained.model, epoch=0)

    # the final metrics with this attempt's timings, and the trial's files
    train_time = trained.seconds - evaluator.eval_seconds
    epochs_here = trained.epochs - resumed_epochs
    trained_examples = spec.train.examples_per_epoch(len(indices), len(data.train)) * epochs_here
    final = history[-1] = {**history[-1], **count_parameters(trained.model), "train_time_s": train_time,
                           "eval_time_s": evaluator.eval_seconds, "resumed_after_epoch": resumed_epochs,
                           "train_steps": trained.steps,
                           "train_examples_per_s": trained_examples / train_time if train_time else 0.0}
    for name, definition in data.definitions.items():
        if definition.predictions == "hans" and name in evaluator.last_logits:  # for HANS's own evaluator
            evaluation.write_hans_predictions(output_dir / f"{name}_predictions.txt",
                                              data.eval_meta[name]["pair_id"].tolist(),
                                              evaluator.last_logits[name].argmax(-1), trained.model.config.id2label)
    write_outcomes(output_dir / OUTCOMES, data, evaluator.last_logits, trained.model.config.id2label)
    if spec.train.save_model:
        save_checkpoint(trained.model, tokenizer, output_dir / "model")
    write_json(output_dir / "metrics.json", {"final": final, "epochs": history})
    del trained  # the model's GPU memory goes back before the next trial (a reused worker, a shared GPU)
    release_gpu_memory()
    if report is not None:
        report(final)
    return final
