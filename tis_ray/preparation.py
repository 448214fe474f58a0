"""What a sweep's trials share, prepared once: data, the reference run, embeddings, clusterings.

    data (tokenized once per split) -> reference model (given, or fine-tuned once on the full training set)
    -> [CLS] embeddings -> one clustering per distinct (algorithm, parameters)

`prepare_shared` runs these steps into RUN_DIR/prepared and returns the `prepared` dict that every trial
reads (`tis-ray sweep` and `tis-ray train` both call it). Finished steps are found on disk and reused.
The reference fine-tune calls `training.fit` directly: it writes a model, not a trial.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tis_ray.clustering import (
    check_noise,
    clustering_key,
    dbscan_k_distance,
    fit_clusters,
    load_clusters,
    save_clusters,
)
from tis_ray.data.loaders import load_data
from tis_ray.data.prepare import PreparedData, prepare_data
from tis_ray.device import placement, release_gpu_memory
from tis_ray.dynamics import load_dynamics, save_dynamics
from tis_ray.embeddings import embed_dataset, load_embeddings
from tis_ray.errors import TisRayError
from tis_ray.io import folder_written_whole, read_json
from tis_ray.models import load_encoder_model, load_tokenizer
from tis_ray.samplers import sampler_from_entry, sampler_key
from tis_ray.spec import GridPoint, SweepSpec, build_spec
from tis_ray.storage import Storage, join

log = logging.getLogger(__name__)

PREPARED = "prepared"  # RUN_DIR/prepared: everything trials share
DYNAMICS = "dynamics"  # RUN_DIR/prepared/dynamics: the reference run's training dynamics
REFERENCE_MODEL = "reference_model"  # RUN_DIR/prepared/reference_model: the full-data fine-tune


def reference_spec(spec: SweepSpec) -> SweepSpec:
    """Return the spec of the reference fine-tune: the sweep's model, unfrozen, for spec.reference_epochs()."""
    raw = spec.model_dump(mode="json")
    raw["model"]["freeze_base"] = False
    raw["train"]["epochs"] = spec.reference_epochs()
    return build_spec(raw, source="reference run")


def reference_run(spec: SweepSpec, out: Path, data: PreparedData, gpus: float | None,
                  dynamics_out: Path | None = None) -> str:
    """Fine-tune the sweep's model once on the full training set into `out` (model + tokenizer, nothing else);
    with `dynamics_out`, record every example's training dynamics on the way. Returns the model folder."""
    from tis_ray.training import DynamicsRecorder, fit  # the Trainer stack: only when a fine-tune is needed

    ref = reference_spec(spec)
    seed = spec.dynamics.seed if spec.dynamics.seed is not None else spec.grid.seeds[0]
    where = placement("reference fine-tune", gpus, spec.train.precision)
    log.info("fine-tuning the reference model %s on all %d training examples for %d epochs (%s)%s",
             ref.model.name, len(data.train), ref.train.epochs, where.describe(),
             ", recording training dynamics" if dynamics_out else "")
    tokenizer = load_tokenizer(ref.model.name, ref.model.tokenizer)
    recorder = DynamicsRecorder(len(data.train), ref.train.epochs) if dynamics_out else None
    trained = fit(ref, data.train, seed=seed, tokenizer=tokenizer, placement=where, recorder=recorder)
    with folder_written_whole(out, replace=True) as tmp:
        trained.model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    if recorder is not None:
        save_dynamics(recorder.result(), dynamics_out, fingerprint=data.train_fingerprint, model=ref.model.name,
                      seed=seed, seconds=recorder.seconds)
    log.info("reference model: %.1f s of training -> %s", trained.seconds, out)
    return str(out)


def reference_model_path(spec: SweepSpec, root: Path, data: PreparedData, gpus: float | None) -> str:
    """Return the checkpoint to embed with: the given one, or the full-data fine-tune (trained once here)."""
    if spec.clustering.embedding_model:
        return spec.clustering.embedding_model
    out = root / REFERENCE_MODEL
    if (out / "config.json").is_file():
        return str(out)
    return reference_run(spec, out, data, gpus)


def prepare_dynamics(spec: SweepSpec, root: Path, data: PreparedData, gpus: float | None) -> str | None:
    """Return the folder of the reference run's training dynamics when a sampler needs them (recorded once,
    by the same run that gives the embedding model), else None."""
    if not spec.needs_dynamics():
        return None
    out = root / DYNAMICS
    if spec.dynamics.path:  # copied into the run directory: trials on other nodes read it there
        load_dynamics(spec.dynamics.path, data.train_fingerprint)  # refuses another dataset's
        shutil.copytree(spec.dynamics.path, out, dirs_exist_ok=True)
        return str(out)
    try:
        load_dynamics(out, data.train_fingerprint)
    except TisRayError:
        reference_run(spec, root / REFERENCE_MODEL, data, gpus, dynamics_out=out)
    return str(out)


def prepare_embeddings(spec: SweepSpec, root: Path, shared: SharedData, fingerprint: str,
                       gpus: float | None) -> Path:
    """Return the folder of the training set's embeddings: given, already computed, or computed now."""
    if spec.clustering.embeddings_path:
        load_embeddings(spec.clustering.embeddings_path, fingerprint)  # refuses another dataset's
        return Path(spec.clustering.embeddings_path)
    out = root / "embeddings"
    try:
        load_embeddings(out, fingerprint)
        return out
    except TisRayError:
        pass
    sweep_data = shared.for_model(spec.model.name, spec.model.tokenizer)
    model_path = reference_model_path(spec, root, sweep_data, gpus)
    if spec.clustering.embedding_model:  # a given checkpoint reads the pairs through its own tokenizer
        data, tokenizer = shared.for_model(model_path), load_tokenizer(model_path)
    else:  # the reference run was trained with the sweep's tokenizer
        data, tokenizer = sweep_data, load_tokenizer(spec.model.name, spec.model.tokenizer)
    where = placement("embedding", gpus, spec.clustering.embedding_precision)
    embed_dataset(load_encoder_model(model_path), data.train, tokenizer.pad_token_id, out, placement=where,
                  pooling=spec.clustering.pooling, batch_size=spec.train.eval_batch_size, model_name=model_path,
                  fingerprint=data.train_fingerprint)
    return out


def prepare_clusterings(spec: SweepSpec, root: Path, shared: SharedData, gpus: float | None) -> dict[str, str]:
    """Return {sampler key: clustering folder} for every cluster sampler of the grid (empty without any)."""
    needs = spec.clusterings()
    if not needs:
        return {}
    data = shared.for_model(spec.model.name, spec.model.tokenizer)
    if spec.clustering.labels_path:  # copied into the run directory: trials on other nodes read it there
        given = load_clusters(spec.clustering.labels_path, len(data.train), data.train_fingerprint)
        save_clusters(given, root / "clusters" / "given")
        return dict.fromkeys(needs, str(root / "clusters" / "given"))
    embeddings = None
    folders: dict[str, str] = {}
    for key, params in needs.items():
        folder = root / "clusters" / clustering_key(params)
        if not (folder / "meta.json").is_file():
            if embeddings is None:
                embeddings = load_embeddings(prepare_embeddings(spec, root, shared, data.train_fingerprint, gpus),
                                             data.train_fingerprint)
            result = fit_clusters(embeddings, params, spec.clustering.backend, seed=spec.grid.seeds[0],
                                  fingerprint=data.train_fingerprint)
            if params["algorithm"] == "dbscan":
                result.extra.update(dbscan_k_distance(embeddings, params, folder))
            save_clusters(result, folder)
        check_noise(read_json(folder / "meta.json"), folder)
        folders[key] = str(folder)
    log.info("clusterings: %d distinct for %d cluster samplers", len(set(folders.values())), len(needs))
    return folders


def tokenizer_key(model_name: str, tokenizer_name: str | None = None) -> str:
    """Return the folder name of the data tokenized for a model, e.g. 'albert-base-v2-3f2a1c'."""
    name = tokenizer_name or model_name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(name).name)[-40:]}-{digest}"


class SharedData:
    """The sweep's data, loaded once and tokenized once per distinct tokenizer, under root/data/<key>."""

    def __init__(self, spec: SweepSpec, root: Path):
        self.spec, self.root, self.raw = spec, root / "data", None
        self.folders: dict[str, str] = {}  # tokenizer key -> folder of its data.json
        self.prepared: dict[str, PreparedData] = {}

    def for_model(self, model_name: str, tokenizer_name: str | None = None) -> PreparedData:
        """Return the data tokenized with this model's tokenizer (tokenizing on first use)."""
        key = tokenizer_key(model_name, tokenizer_name)
        if key not in self.prepared:
            if self.raw is None:
                self.raw = load_data(self.spec.data, self.spec.eval_sets)
            tokenizer = load_tokenizer(model_name, tokenizer_name)
            self.prepared[key] = prepare_data(self.spec, self.root / key, tokenizer, self.raw,
                                              tokenized_root=self.root / "tokenized")
            self.folders[key] = str(self.root / key)
        return self.prepared[key]


def prepare_shared(spec: SweepSpec, run_dir: str | Path, gpus: float | None) -> dict[str, Any]:
    """Prepare what trials share into RUN_DIR/prepared; returns the trials' `prepared` dict (paths relative
    to the run directory).

    The data is tokenized once for each distinct tokenizer the grid's models use (and the embedding
    model's). A run directory on a URI is prepared in a local staging folder and uploaded whole. `gpus` is
    the GPU share this step holds (None outside Ray: a GPU when one is visible). The GPU memory it used is
    handed back before trials start.
    """
    storage = Storage(run_dir)
    with contextlib.ExitStack() as stack:
        local_run = Path(storage.path()) if storage.local else Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="tis_ray_staging_")))
        root = local_run / PREPARED
        shared = SharedData(spec, root)
        models = {(s.model.name, s.model.tokenizer) for s in map(spec.for_point, spec.grid_points())}
        for name, tokenizer_name in sorted(models, key=str):
            data = shared.for_model(name, tokenizer_name)
        log.info("prepared data: %d training examples, eval sets %s, %d tokenizer(s)", len(data.train),
                 ", ".join(data.eval_sets), len(shared.folders))
        try:
            sweep_data = shared.for_model(spec.model.name, spec.model.tokenizer)
            dynamics = prepare_dynamics(spec, root, sweep_data, gpus)  # before embeddings: one reference run
            clusters = prepare_clusterings(spec, root, shared, gpus)
        finally:
            release_gpu_memory()
        if not storage.local:
            log.info("uploading the prepared data to %s", join(storage.location, PREPARED))
            storage.upload(root, PREPARED)
        def relative(folder: str) -> str:
            return os.path.relpath(folder, local_run)

        return {"data_by_tokenizer": {key: relative(f) for key, f in shared.folders.items()},
                "clusters_by_sampler": {key: relative(f) for key, f in clusters.items()},
                "dynamics": relative(dynamics) if dynamics else None}


def trial_inputs(prepared: dict[str, Any], spec: SweepSpec, point: GridPoint,
                 run_dir: str | Path) -> dict[str, str | None]:
    """Return the local folders one trial reads: its model's data, its sampler's clustering (fetched once per
    node into a local cache when the run directory is on a URI)."""
    storage = Storage(run_dir)
    trial = spec.for_point(point)
    data = prepared["data_by_tokenizer"][tokenizer_key(trial.model.name, trial.model.tokenizer)]
    clusters = prepared["clusters_by_sampler"].get(sampler_key(point.sampler))
    data_root = storage.fetch(f"{PREPARED}/data")  # every tokenization with its shared token cache
    dynamics = prepared.get("dynamics") if sampler_from_entry(point.sampler).needs_dynamics else None
    return {"data": str(data_root / Path(data).name),
            "clusters": str(storage.fetch(clusters)) if clusters else None,
            "dynamics": str(storage.fetch(dynamics)) if dynamics else None}
