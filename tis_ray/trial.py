"""One training run: subset -> HF Trainer -> evaluators after every epoch -> one flat metrics dict.

`run_trial(config)` takes one plain dict (what a Ray Tune trial receives) and returns the final metrics;
`report` is called with the metrics of every epoch (Tune passes `tune.report`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
import transformers
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from tis_ray import evaluation
from tis_ray.batching import PairCollator
from tis_ray.clustering import load_clusters
from tis_ray.data.loaders import cache_dir
from tis_ray.data.prepare import PreparedData, open_prepared, prepare_data
from tis_ray.errors import SamplingError
from tis_ray.inference import predict_ids, resolve_precision
from tis_ray.io import load_npy, save_npy, sha256_of_indices, write_json
from tis_ray.models import count_parameters, freeze_base, load_model, load_tokenizer, model_label_ids
from tis_ray.samplers import SamplingPool, sampler_from_entry
from tis_ray.spec import SweepSpec, build_spec, set_dotted

log = logging.getLogger(__name__)

Reporter = Callable[[dict[str, Any]], None]


def trial_spec(config: dict) -> SweepSpec:
    """Return the spec of one trial: the sweep's spec with the trial's extra-axis overrides applied."""
    raw = json.loads(json.dumps(config["spec"]))
    for key, value in (config.get("overrides") or {}).items():
        set_dotted(raw, key, value)
    return build_spec(raw, source="trial config")


def resolve_budget(budget: dict, n_train: int) -> int | None:
    """Return the subset size for {'data_pct': x} / {'n_examples': k} / {} on n_train examples."""
    if "data_pct" in budget:
        return max(1, round(budget["data_pct"] * n_train))
    if "n_examples" in budget:
        if budget["n_examples"] > n_train:
            raise SamplingError(f"n_examples={budget['n_examples']} but the training set has {n_train} examples")
        return budget["n_examples"]
    return None


def select_subset(config: dict, data: PreparedData) -> tuple[np.ndarray, SamplingPool]:
    """Return the subset indices of this trial (explicit, or from its sampler) and the pool it came from."""
    pool = SamplingPool(labels=data.train_labels)
    clusters_dir = (config.get("prepared") or {}).get("clusters")
    if clusters_dir:
        clusters = load_clusters(clusters_dir, expected_rows=len(pool), fingerprint=data.train_fingerprint)
        pool = SamplingPool(data.train_labels, clusters.labels_, clusters.distances_)
    if config.get("indices_path"):
        indices = np.unique(load_npy(config["indices_path"]).astype(np.int64))
        if len(indices) == 0 or indices[0] < 0 or indices[-1] >= len(pool):
            raise SamplingError(f"{config['indices_path']}: indices must be in [0, {len(pool)})")
        return indices, pool
    sampler = sampler_from_entry(config.get("sampler") or {"type": "random"})
    budget = resolve_budget(config.get("budget") or {}, len(pool))
    return sampler.select(pool, budget, config["seed"]), pool


def subset_record(indices: np.ndarray, pool: SamplingPool) -> dict[str, Any]:
    """Return the record of a subset: size, hash, and counts per label and per cluster."""
    labels, counts = np.unique(pool.labels[indices], return_counts=True)
    record = {"n": len(indices), "sha256": sha256_of_indices(indices),
              "label_counts": {int(k): int(v) for k, v in zip(labels, counts, strict=True)}}
    if pool.clusters is not None:
        clusters, counts = np.unique(pool.clusters[indices], return_counts=True)
        record["cluster_counts"] = {int(k): int(v) for k, v in zip(clusters, counts, strict=True)}
    return record


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
        self.on_epoch, self.eval_seconds, self.last_predictions = on_epoch, 0.0, {}

    def evaluate(self, model) -> dict[str, float]:
        """Return every evaluation metric of `model` now; keeps the predictions of this pass."""
        start = time.perf_counter()
        metrics: dict[str, float] = {}
        id2label = model.config.id2label
        for name, tokenized in self.data.eval_sets.items():
            pred = predict_ids(model, tokenized, self.pad_id, self.batch_size, self.precision)
            self.last_predictions[name] = pred
            gold = np.asarray(tokenized["label"])
            if name == "hans":
                meta = self.data.hans_meta
                metrics.update(evaluation.hans_metrics(pred, gold, meta["heuristic"].tolist(),
                                                       meta["subcase"].tolist(), id2label))
            else:
                metrics.update(evaluation.mnli_metrics(name, pred, gold, id2label))
        self.eval_seconds += time.perf_counter() - start
        return metrics

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        metrics = self.evaluate(model)
        metrics["epoch"] = round(state.epoch)
        self.on_epoch(metrics)


def _training_arguments(spec: SweepSpec, output_dir: Path, seed: int, precision: str) -> TrainingArguments:
    t = spec.train
    return TrainingArguments(
        output_dir=str(output_dir),  # a scratch folder: nothing is saved there (save_strategy="no")
        num_train_epochs=t.epochs,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,
        fp16=precision == "fp16",
        bf16=precision == "bf16",
        use_cpu=not torch.cuda.is_available(),
        seed=seed,
        data_seed=seed,
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        remove_unused_columns=False,  # keeps `length` for the length-grouped sampler
        eval_strategy="no",  # EpochEvaluator evaluates MNLI-m/mm and HANS itself
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def _trial_fields(config: dict, spec: SweepSpec, seed: int, indices: np.ndarray, record: dict, model,
                  precision: str) -> dict[str, Any]:
    """Return what every reported metrics dict of this trial carries besides the metrics."""
    sampler, budget = config.get("sampler") or {}, config.get("budget") or {}
    return {"seed": seed, "sampler": sampler.get("type", "indices"),
            "sampler_params": json.dumps({k: v for k, v in sampler.items() if k != "type"}, sort_keys=True),
            "data_pct": budget.get("data_pct"), "n_examples": budget.get("n_examples"),
            "n_train": len(indices), "subset_sha256": record["sha256"], "precision": precision,
            "model": spec.model.name, "freeze_base": spec.model.freeze_base,
            **count_parameters(model), **node_info()}


def _write_subset(output_dir: Path, config: dict, seed: int, indices: np.ndarray, pool: SamplingPool,
                  fingerprint: str) -> dict[str, Any]:
    record = subset_record(indices, pool)
    save_npy(output_dir / "subset_indices.npy", indices)
    write_json(output_dir / "subset.json", {**record, "sampler": config.get("sampler"), "seed": seed,
                                             "budget": config.get("budget"), "train_fingerprint": fingerprint})
    return record


def _labels_in_model_order(train_subset, model):
    """Return the subset with labels renumbered to the model's ids when its label order differs from MNLI's."""
    label_ids = np.asarray(model_label_ids(model))
    if np.array_equal(label_ids, np.arange(3)):
        return train_subset
    return train_subset.map(lambda b: {"label": label_ids[np.asarray(b["label"])].tolist()}, batched=True)


def run_trial(config: dict, output_dir: str | Path, report: Reporter | None = None) -> dict[str, Any]:
    """Train and evaluate one subset; returns the final flat metrics dict and writes metrics.json.

    config keys: spec (a SweepSpec dict), seed, budget ({'data_pct': x} / {'n_examples': k} / {}),
    sampler ({'type': ..., params}), overrides (dotted fields), prepared ({'data': dir, 'clusters': dir}),
    indices_path (explicit subset, instead of a sampler), num_threads.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "worker.pid").write_text(str(os.getpid()))  # fault-tolerance tests kill it
    spec, seed = trial_spec(config), int(config.get("seed", 42))
    if config.get("num_threads"):
        torch.set_num_threads(int(config["num_threads"]))
    transformers.set_seed(seed)
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()

    tokenizer = load_tokenizer(spec.model.name, spec.model.tokenizer)
    prepared_dir = (config.get("prepared") or {}).get("data")
    data = open_prepared(prepared_dir) if prepared_dir else prepare_data(spec, cache_dir() / "prepared", tokenizer)
    indices, pool = select_subset(config, data)
    record = _write_subset(output_dir, config, seed, indices, pool, data.train_fingerprint)

    model = load_model(spec.model.name, seed=seed, vocab_size=len(tokenizer))
    if spec.model.freeze_base:
        freeze_base(model)
    train_subset = _labels_in_model_order(data.train.select(indices), model)
    precision = resolve_precision(spec.train.precision)
    fields = _trial_fields(config, spec, seed, indices, record, model, precision)
    history: list[dict] = []

    def on_epoch(metrics: dict) -> None:
        metrics = {**fields, **metrics, "final": int(metrics["epoch"] >= spec.train.epochs)}
        history.append(metrics)
        log.info("epoch %d: %s", metrics["epoch"], {k: round(v, 4) for k, v in metrics.items() if k.endswith("/acc")})
        if report is not None and not metrics["final"]:  # the final epoch is reported below, with timings
            report(metrics)

    evaluator = EpochEvaluator(data, tokenizer.pad_token_id, spec.train.eval_batch_size, precision, on_epoch)
    with tempfile.TemporaryDirectory(prefix="tis_ray_hf_") as scratch:
        trainer = Trainer(model=model, args=_training_arguments(spec, Path(scratch), seed, precision),
                          train_dataset=train_subset, data_collator=PairCollator(tokenizer.pad_token_id),
                          callbacks=[evaluator])
        trainer.remove_callback(PrinterCallback)  # its end-of-training dict duplicates our metrics
        start = time.perf_counter()
        trainer.train()
    train_time = time.perf_counter() - start - evaluator.eval_seconds
    final = history[-1] = {**history[-1], "train_time_s": train_time, "eval_time_s": evaluator.eval_seconds,
                           "train_examples_per_s": len(indices) * spec.train.epochs / train_time}

    if "hans" in evaluator.last_predictions:
        evaluation.write_hans_predictions(output_dir / "hans_predictions.txt", data.hans_meta["pair_id"].tolist(),
                                          evaluator.last_predictions["hans"], model.config.id2label)
    if spec.train.save_model:
        trainer.save_model(str(output_dir / "model"))
        tokenizer.save_pretrained(str(output_dir / "model"))
    write_json(output_dir / "metrics.json", {"final": final, "epochs": history})
    if report is not None:
        report(final)
    return final
