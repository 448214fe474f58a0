"""What a sweep's trials share, prepared once: data, the reference run, embeddings, clusterings.

    data (tokenized once per split) -> reference model (given, or fine-tuned once on the full training set)
    -> [CLS] embeddings -> one clustering per distinct (algorithm, parameters)

`prepare_shared` runs these steps into RUN_DIR/prepared and returns the `prepared` dict that every trial
reads (`tis-ray sweep` and `tis-ray train` both call it). Finished steps are found on disk and reused.
The reference fine-tune calls `training.fit` directly: it writes a model, not a trial.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tis_ray.clustering import clustering_key, fit_clusters, load_clusters, save_clusters
from tis_ray.data.prepare import PreparedData, prepare_data
from tis_ray.device import placement, release_gpu_memory
from tis_ray.embeddings import embed_dataset, load_embeddings
from tis_ray.errors import TisRayError
from tis_ray.models import load_model, load_tokenizer
from tis_ray.spec import SweepSpec, build_spec

log = logging.getLogger(__name__)

REFERENCE_MODEL = "reference_model"  # RUN_DIR/prepared/reference_model: the full-data fine-tune


def reference_spec(spec: SweepSpec) -> SweepSpec:
    """Return the spec of the reference fine-tune: the sweep's model, unfrozen, for clustering.embedding_epochs."""
    raw = spec.model_dump(mode="json")
    raw["model"]["freeze_base"] = False
    raw["train"]["epochs"] = spec.clustering.embedding_epochs or spec.train.epochs
    return build_spec(raw, source="reference run")


def reference_model_path(spec: SweepSpec, root: Path, data: PreparedData, gpus: float | None) -> str:
    """Return the checkpoint to embed with: the given one, or the full-data fine-tune (trained once here)."""
    if spec.clustering.embedding_model:
        return spec.clustering.embedding_model
    out = root / REFERENCE_MODEL
    if (out / "config.json").is_file():
        return str(out)
    from tis_ray.training import fit  # the Trainer stack: only a sweep that needs a fine-tune imports it

    ref = reference_spec(spec)
    where = placement("reference fine-tune", gpus, spec.train.precision)
    log.info("fine-tuning the reference model %s on all %d training examples for %d epochs (%s)",
             ref.model.name, len(data.train), ref.train.epochs, where.describe())
    tokenizer = load_tokenizer(ref.model.name, ref.model.tokenizer)
    trained = fit(ref, data.train, seed=spec.grid.seeds[0], tokenizer=tokenizer, placement=where)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{REFERENCE_MODEL}."))
    trained.model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    log.info("reference model: %.1f s of training -> %s", trained.seconds, out)
    return str(out)


def prepare_embeddings(spec: SweepSpec, root: Path, data: PreparedData, gpus: float | None) -> Path:
    """Return the folder of the training set's embeddings: given, already computed, or computed now."""
    if spec.clustering.embeddings_path:
        load_embeddings(spec.clustering.embeddings_path, data.train_fingerprint)  # refuses another dataset's
        return Path(spec.clustering.embeddings_path)
    out = root / "embeddings"
    try:
        load_embeddings(out, data.train_fingerprint)
        return out
    except TisRayError:
        pass
    model_path = reference_model_path(spec, root, data, gpus)
    tokenizer = load_tokenizer(model_path, spec.model.tokenizer)
    where = placement("embedding", gpus, spec.clustering.embedding_precision)
    embed_dataset(load_model(model_path), data.train, tokenizer.pad_token_id, out, placement=where,
                  pooling=spec.clustering.pooling, batch_size=spec.train.eval_batch_size, model_name=model_path,
                  fingerprint=data.train_fingerprint)
    return out


def prepare_clusterings(spec: SweepSpec, root: Path, data: PreparedData, gpus: float | None) -> dict[str, str]:
    """Return {sampler key: clustering folder} for every cluster sampler of the grid (empty without any)."""
    needs = spec.clusterings()
    if not needs:
        return {}
    if spec.clustering.labels_path:
        load_clusters(spec.clustering.labels_path, len(data.train), data.train_fingerprint)
        return dict.fromkeys(needs, spec.clustering.labels_path)
    embeddings = None
    folders: dict[str, str] = {}
    for key, params in needs.items():
        folder = root / "clusters" / clustering_key(params)
        if not (folder / "meta.json").is_file():
            if embeddings is None:
                embeddings = load_embeddings(prepare_embeddings(spec, root, data, gpus), data.train_fingerprint)
            result = fit_clusters(embeddings, params, spec.clustering.backend, seed=spec.grid.seeds[0],
                                  fingerprint=data.train_fingerprint)
            save_clusters(result, folder)
        folders[key] = str(folder)
    log.info("clusterings: %d distinct for %d cluster samplers", len(set(folders.values())), len(needs))
    return folders


def prepare_shared(spec: SweepSpec, run_dir: Path, gpus: float | None) -> dict[str, Any]:
    """Prepare what trials share into run_dir/prepared; returns the trials' `prepared` dict.

    `gpus` is the GPU share this step holds (None outside Ray: a GPU when one is visible). The GPU memory it
    used is handed back before trials start.
    """
    root = Path(run_dir) / "prepared"
    tokenizer = load_tokenizer(spec.model.name, spec.model.tokenizer)
    data = prepare_data(spec, root / "data", tokenizer)
    log.info("prepared data: %d training examples, eval sets %s", len(data.train), ", ".join(data.eval_sets))
    try:
        clusters = prepare_clusterings(spec, root, data, gpus)
    finally:
        release_gpu_memory()
    return {"data": str(root / "data"), "clusters_by_sampler": clusters}
