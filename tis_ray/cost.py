"""What a subset costs before training starts: the preparation steps each sampler needs, charged in seconds.

Cartography, EL2N, forgetting and loss need a full-data fine-tune (the reference run) to score examples, one
per seed of dynamics.seeds when their mean is used; the cluster samplers need it too (its [CLS] embeddings),
then the embedding pass and the clustering. Every step records its seconds and GPU-seconds in its step.json
when it is computed (tis_ray.preparation). A trial's total compute is its sampler's selection cost plus its
own training time: what a user who wants that subset pays, since the selection has to run before the subset
exists.

Not charged to a sampler: the KMeans refits under clustering.stability_seeds (a check of the clustering, not
part of choosing the subset), listed apart by `stability_costs`. Not known at all: what an input given by
path cost whoever made it (dynamics, embeddings, an embedding checkpoint, cluster labels, an indices or score
file); a sampler that reads one says so in `cost_not_recorded`.
"""

from __future__ import annotations

import pandas as pd

from tis_ray.dynamics import SEEDS_DIR
from tis_ray.preparation import DYNAMICS, EMBEDDINGS, PREPARED, PREPARED_FILE, REFERENCE_MODEL, STEP_FILE
from tis_ray.samplers import sampler_from_entry, sampler_key
from tis_ray.spec import reads_file
from tis_ray.storage import Storage

COLUMNS = ["setting", "steps", "selection_s", "selection_gpu_s", "timed", "cost_not_recorded"]
STABILITY_COLUMNS = ["clustering", "stability_seeds", "seconds", "gpu_seconds"]


def step_costs(storage: Storage) -> dict[str, dict[str, float]]:
    """Return {step: {'seconds', 'gpu_seconds'}} of the run directory's timed preparation steps, less the
    stability refits a clustering step ran (their own {'stability_seconds', 'stability_gpu_seconds'} beside;
    None where the refits ran but were not timed apart)."""
    costs = {}
    for info in storage.files(PREPARED):
        if info.base_name != STEP_FILE:
            continue
        record = storage.read_json(info.path.removeprefix(storage.path() + "/"))
        if "seconds" not in record:
            continue
        step = info.path.removeprefix(storage.path(PREPARED) + "/").removesuffix("/" + STEP_FILE)
        seconds, gpu_seconds = record["seconds"], record.get("gpu_seconds", 0.0)
        cost = {"seconds": seconds, "gpu_seconds": gpu_seconds}
        meta = f"{PREPARED}/{step}/meta.json"
        stability = storage.read_json(meta).get("stability") if storage.exists(meta) else None
        if stability is not None:
            refits = stability.get("seconds")
            cost["stability_seeds"] = len(stability.get("seeds", []))
            cost["stability_seconds"] = refits
            cost["stability_gpu_seconds"] = None if refits is None else (
                gpu_seconds * refits / seconds if seconds else 0.0)  # the step's GPU share, held throughout
            if refits is not None:
                cost["seconds"] = seconds - refits
                cost["gpu_seconds"] = gpu_seconds - cost["stability_gpu_seconds"]
        costs[step] = cost
    return costs


def selection_steps(entry: dict, spec, clusters_by_sampler: dict[str, str]) -> list[str]:
    """Return the preparation steps a sampler's subset needs under `spec` (given inputs cost nothing here):
    the reference run, one more per further seed of dynamics.seeds, the embeddings, the clustering."""
    needs = sampler_from_entry(entry).needs
    c = spec.clustering
    given_labels = c.labels_path is not None
    needs_embeddings = "embeddings" in needs or ("clusters" in needs and not given_labels)
    own_reference = not (c.embedding_model or c.embeddings_path)
    own_dynamics = "dynamics" in needs and spec.dynamics.path is None
    steps = []
    if own_dynamics or (needs_embeddings and own_reference):
        steps.append(REFERENCE_MODEL)
    if own_dynamics:  # every run whose dynamics the mean is taken over
        steps += [f"{DYNAMICS}/{SEEDS_DIR}/{seed}" for seed in spec.dynamics.seeds[1:]]
    if needs_embeddings and not c.embeddings_path:
        steps.append(EMBEDDINGS)
    folder = clusters_by_sampler.get(sampler_key(entry))
    if "clusters" in needs and folder and not given_labels:
        steps.append(folder.removeprefix(f"{PREPARED}/"))
    return steps


def given_inputs(entry: dict, spec) -> list[str]:
    """Return the inputs given by path that a sampler's subset is made from, whose cost no step recorded."""
    needs = sampler_from_entry(entry).needs
    c = spec.clustering
    given_labels = c.labels_path is not None
    needs_embeddings = "embeddings" in needs or ("clusters" in needs and not given_labels)
    given = []
    if "dynamics" in needs and spec.dynamics.path is not None:
        given.append("dynamics.path")
    if needs_embeddings and c.embeddings_path:
        given.append("clustering.embeddings_path")
    elif needs_embeddings and c.embedding_model:
        given.append("clustering.embedding_model")  # its fine-tune; the embedding pass is charged
    if "clusters" in needs and given_labels:
        given.append("clustering.labels_path")
    if reads_file(entry):
        given.append(f"{entry['type']}.path")
    return given


def selection_costs(run_dir: str, spec, entries: list[dict]) -> pd.DataFrame:
    """Return per sampler label: the steps charged, their seconds and GPU-seconds (0 for samplers that need
    nothing), whether every step was timed (steps reused from runs before timing was recorded are not, nor a
    clustering whose stability refits were not timed apart), and the inputs given by path whose cost is not
    recorded ('' when none)."""
    from tis_ray.samplers import sampler_label

    storage = Storage(run_dir)
    costs = step_costs(storage)
    prepared = storage.read_json(PREPARED_FILE) if storage.exists(PREPARED_FILE) else {}
    rows = []
    for entry in {sampler_key(e): e for e in entries}.values():
        steps = selection_steps(entry, spec, prepared.get("clusters_by_sampler", {}))
        timed = [costs[s] for s in steps if s in costs]
        refits_apart = all(t.get("stability_seeds") is None or t["stability_seconds"] is not None for t in timed)
        rows.append({"setting": sampler_label(entry), "steps": ", ".join(steps) or "none",
                     "selection_s": sum(t["seconds"] for t in timed),
                     "selection_gpu_s": sum(t["gpu_seconds"] for t in timed),
                     "timed": len(timed) == len(steps) and refits_apart,
                     "cost_not_recorded": ", ".join(given_inputs(entry, spec))})
    return pd.DataFrame(rows, columns=COLUMNS)


def stability_costs(run_dir: str) -> pd.DataFrame:
    """Return per clustering that was refitted under clustering.stability_seeds: how many refits, their
    seconds and GPU-seconds (NaN where a run directory prepared before they were timed apart)."""
    rows = [{"clustering": step, "stability_seeds": cost["stability_seeds"],
             "seconds": cost["stability_seconds"], "gpu_seconds": cost["stability_gpu_seconds"]}
            for step, cost in sorted(step_costs(Storage(run_dir)).items()) if "stability_seeds" in cost]
    return pd.DataFrame(rows, columns=STABILITY_COLUMNS).astype({"seconds": float, "gpu_seconds": float})
