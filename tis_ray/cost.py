"""What a subset costs before training starts: the preparation steps each sampler needs, charged in seconds.

Cartography, EL2N, forgetting and loss need a full-data fine-tune (the reference run) to score examples; the
cluster samplers need it too (its [CLS] embeddings), then the embedding pass and the clustering. Every step
records its seconds and GPU-seconds in its step.json when it is computed (tis_ray.preparation). A trial's
total compute is its sampler's selection cost plus its own training time: what a user who wants that subset
pays, since the selection has to run before the subset exists.
"""

from __future__ import annotations

import pandas as pd

from tis_ray.preparation import EMBEDDINGS, PREPARED, PREPARED_FILE, REFERENCE_MODEL, STEP_FILE
from tis_ray.samplers import sampler_from_entry, sampler_key
from tis_ray.storage import Storage


def step_costs(storage: Storage) -> dict[str, dict[str, float]]:
    """Return {step: {'seconds', 'gpu_seconds'}} of the run directory's timed preparation steps."""
    costs = {}
    for info in storage.files(PREPARED):
        if info.base_name != STEP_FILE:
            continue
        record = storage.read_json(info.path.removeprefix(storage.path() + "/"))
        if "seconds" in record:
            step = info.path.removeprefix(storage.path(PREPARED) + "/").removesuffix("/" + STEP_FILE)
            costs[step] = {"seconds": record["seconds"], "gpu_seconds": record.get("gpu_seconds", 0.0)}
    return costs


def selection_steps(entry: dict, spec, clusters_by_sampler: dict[str, str]) -> list[str]:
    """Return the preparation steps a sampler's subset needs under `spec` (given inputs cost nothing here)."""
    needs = sampler_from_entry(entry).needs
    c = spec.clustering
    given_labels = c.labels_path is not None
    needs_embeddings = "embeddings" in needs or ("clusters" in needs and not given_labels)
    own_reference = not (c.embedding_model or c.embeddings_path)
    steps = []
    if ("dynamics" in needs and spec.dynamics.path is None) or (needs_embeddings and own_reference):
        steps.append(REFERENCE_MODEL)
    if needs_embeddings and not c.embeddings_path:
        steps.append(EMBEDDINGS)
    folder = clusters_by_sampler.get(sampler_key(entry))
    if "clusters" in needs and folder and not given_labels:
        steps.append(folder.removeprefix(f"{PREPARED}/"))
    return steps


def selection_costs(run_dir: str, spec, entries: list[dict]) -> pd.DataFrame:
    """Return per sampler label: the steps charged, their seconds and GPU-seconds (0 for samplers that need
    nothing), and whether every step was timed (steps reused from runs before timing was recorded are not)."""
    from tis_ray.samplers import sampler_label

    storage = Storage(run_dir)
    costs = step_costs(storage)
    prepared = storage.read_json(PREPARED_FILE) if storage.exists(PREPARED_FILE) else {}
    rows = []
    for entry in {sampler_key(e): e for e in entries}.values():
        steps = selection_steps(entry, spec, prepared.get("clusters_by_sampler", {}))
        timed = [costs[s] for s in steps if s in costs]
        rows.append({"setting": sampler_label(entry), "steps": ", ".join(steps) or "none",
                     "selection_s": sum(t["seconds"] for t in timed),
                     "selection_gpu_s": sum(t["gpu_seconds"] for t in timed), "timed": len(timed) == len(steps)})
    return pd.DataFrame(rows, columns=["setting", "steps", "selection_s", "selection_gpu_s", "timed"])
