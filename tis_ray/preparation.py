"""Shared preparation for cluster samplers: the embedding model, [CLS] embeddings, one clustering each.

The model that produces the embeddings is either given (clustering.embedding_model, e.g. a fine-tuned MNLI
checkpoint) or fine-tuned once here on the full training set. Each distinct (algorithm, parameters) is
clustered exactly once and shared by every trial whose sampler uses it. Finished steps are found on disk
and reused.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tis_ray.clustering import clustering_key, fit_clusters, load_clusters, save_clusters
from tis_ray.data.prepare import PreparedData
from tis_ray.embeddings import embed_dataset, load_embeddings
from tis_ray.errors import TisRayError
from tis_ray.models import load_model, load_tokenizer
from tis_ray.spec import SweepSpec
from tis_ray.trial import run_trial

log = logging.getLogger(__name__)


def embedding_model_path(spec: SweepSpec, root: Path) -> str:
    """Return the checkpoint to embed with, fine-tuning one on the full training set when none is given."""
    if spec.clustering.embedding_model:
        return spec.clustering.embedding_model
    out = root / "embedding_model"
    if (out / "model" / "config.json").is_file():
        return str(out / "model")
    log.info("fine-tuning the embedding model %s on the full training set", spec.model.name)
    raw = spec.model_dump(mode="json")
    raw["train"]["save_model"] = True
    raw["model"]["freeze_base"] = False
    raw["train"]["epochs"] = spec.clustering.embedding_epochs or spec.train.epochs
    run_trial({"spec": raw, "seed": spec.grid.seeds[0], "budget": {"data_pct": 1.0}, "sampler": {"type": "random"},
               "prepared": {"data": str(root / "data")}}, out)
    return str(out / "model")


def prepare_embeddings(spec: SweepSpec, root: Path, data: PreparedData) -> Path:
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
    model_path = embedding_model_path(spec, root)
    tokenizer = load_tokenizer(model_path, spec.model.tokenizer)
    model = load_model(model_path)
    embed_dataset(model, data.train, tokenizer.pad_token_id, out, pooling=spec.clustering.pooling,
                  batch_size=spec.train.eval_batch_size, model_name=model_path, fingerprint=data.train_fingerprint)
    return out


def prepare_clusterings(spec: SweepSpec, root: Path, data: PreparedData) -> dict[str, str]:
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
                embeddings = load_embeddings(prepare_embeddings(spec, root, data), data.train_fingerprint)
            result = fit_clusters(embeddings, params, spec.clustering.backend, seed=spec.grid.seeds[0],
                                  fingerprint=data.train_fingerprint)
            save_clusters(result, folder)
        folders[key] = str(folder)
    log.info("clusterings: %d distinct for %d cluster samplers", len(set(folders.values())), len(needs))
    return folders
