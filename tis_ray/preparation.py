"""What a sweep's trials share, prepared once: data, the reference run, embeddings, clusterings.

    data (tokenized once per split) -> reference model (given, or fine-tuned once on the full training set)
    -> [CLS] embeddings -> one clustering per distinct (algorithm, parameters)

`prepare_shared` runs these steps into RUN_DIR/prepared and returns the `prepared` dict that every trial
reads (`tis-ray sweep` and `tis-ray train` both call it). Each step is written to the run directory as soon
as it finishes (uploaded at once when the run directory is a URI), with the key of what it was computed from
(`step.json`); any later preparation of the same run directory, a rerun after a failure included, reuses a
step whose key matches instead of computing it again. The reference fine-tune calls `training.fit`
directly: it writes a model, not a trial.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
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
from tis_ray.data.prepare import MANIFEST, PreparedData, prepare_data
from tis_ray.device import placement, release_gpu_memory
from tis_ray.dynamics import SEEDS_DIR, load_dynamics, save_dynamics
from tis_ray.embeddings import embed_dataset, load_embeddings
from tis_ray.io import folder_written_whole, read_json, write_json
from tis_ray.models import load_encoder_model, load_tokenizer, save_checkpoint
from tis_ray.samplers import SamplingPool, sampler_from_entry, sampler_key
from tis_ray.spec import GridPoint, SweepSpec, build_spec, reads_file
from tis_ray.stability import cluster_agreement
from tis_ray.storage import Storage, join

log = logging.getLogger(__name__)

PREPARED = "prepared"  # RUN_DIR/prepared: everything trials share
DYNAMICS = "dynamics"  # RUN_DIR/prepared/dynamics: the reference run's training dynamics
REFERENCE_MODEL = "reference_model"  # RUN_DIR/prepared/reference_model: the full-data fine-tune
EMBEDDINGS = "embeddings"  # RUN_DIR/prepared/embeddings: the training set's [CLS] embeddings
PREPARED_FILE = "prepared.json"  # in the run directory: the `prepared` dict every trial reads, kept for --resume
# in each finished step's folder: {"key": what the step was computed from, "files": {its data files: bytes}},
# written only once every data file is in the run directory
STEP_FILE = "step.json"


def finished_steps(storage: Storage) -> list[str]:
    """Return the preparation steps a run directory holds finished (each folder with a step.json)."""
    return sorted(info.path.removeprefix(storage.path(PREPARED) + "/").removesuffix("/" + STEP_FILE)
                  for info in storage.files(PREPARED) if info.base_name == STEP_FILE)


def step_key(**inputs: Any) -> str:
    """Return a short hash of everything a preparation step's result depends on."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


class PreparedSteps:
    """RUN_DIR/prepared, built step by step in a local folder: the run directory itself, or a staging folder
    when the run directory is a URI. A finished step is written to the run directory at once; a step the run
    directory already holds under the same key is reused (fetched into the local folder) instead of computed."""

    def __init__(self, storage: Storage, local_root: Path):
        self.storage, self.root = storage, local_root
        self.started: dict[str, tuple[float, float]] = {}

    def start(self, rel: str, gpus: float | None) -> None:
        """Start the clock of step `rel`, computed now on `gpus` (None: a GPU when one is visible); `finish`
        records its seconds and GPU-seconds, what the report charges the samplers that need the step."""
        if gpus is None:
            import torch

            gpus = float(torch.cuda.is_available())
        self.started[rel] = (time.perf_counter(), gpus)

    def where(self, rel: str) -> str:
        """Return where a step lives in the run directory (a local path or a URI), for messages."""
        return join(self.storage.location, PREPARED, rel)

    def reuse(self, rel: str, key: str) -> bool:
        """True when the run directory holds step `rel` computed from `key` with every data file its marker lists
        (then it is in the local folder too). A marker whose data is missing or of another size is removed: the
        step is computed again."""
        local = self.root / rel / STEP_FILE
        if local.is_file() and read_json(local).get("key") == key:
            unlike = differing_file(read_json(local), local_sizes(self.root / rel))
            if not unlike:
                return True
            log.warning("%s is marked finished but %s: computing it again", self.where(rel), unlike)
            local.unlink()
        remote = f"{PREPARED}/{rel}"
        if self.storage.local or not self.storage.exists(f"{remote}/{STEP_FILE}"):
            return False
        record = self.storage.read_json(f"{remote}/{STEP_FILE}")
        if record.get("key") != key:
            return False
        unlike = differing_file(record, remote_sizes(self.storage, remote))
        if unlike:
            log.warning("%s is marked finished but %s: computing it again", self.where(rel), unlike)
            self.storage.delete_file(f"{remote}/{STEP_FILE}")
            return False
        log.info("reusing %s from %s", rel, self.where(rel))
        self.storage.download(remote, self.root / rel)
        return True

    def finish(self, rel: str, key: str | None = None) -> None:
        """Write step `rel` to the run directory now; with `key`, then its marker (the key and every data
        file's size), only once each data file is there with its size."""
        folder, record = self.root / rel, None
        (folder / STEP_FILE).unlink(missing_ok=True)  # a marker fetched with an earlier copy: never sent first
        if key is not None:
            record = {"key": key, "files": local_sizes(folder)}
            if rel in self.started:
                start, gpus = self.started.pop(rel)
                seconds = time.perf_counter() - start
                record.update(seconds=seconds, gpu_seconds=seconds * gpus)
        if not self.storage.local:
            remote = f"{PREPARED}/{rel}"
            self.storage.upload(folder, remote)
            if record is not None:
                unlike = differing_file(record, remote_sizes(self.storage, remote))
                if unlike:
                    raise OSError(f"{self.where(rel)}: {unlike} after its upload; the step stays unfinished")
                self.storage.write_json(f"{remote}/{STEP_FILE}", record)
        if record is not None:
            write_json(folder / STEP_FILE, record)

    def fetch_existing(self, rel: str) -> None:
        """Bring what the run directory already holds of `rel` into the local folder (a URI's staging folder)."""
        if not self.storage.local and self.storage.exists(f"{PREPARED}/{rel}"):
            self.storage.download(f"{PREPARED}/{rel}", self.root / rel)


def local_sizes(folder: Path) -> dict[str, int]:
    """Return {path under `folder`: bytes} of a step's data files: every file but markers and the folders of
    the steps nested in it (each with its own marker)."""
    nested = [marker.parent for marker in folder.rglob(STEP_FILE) if marker.parent != folder]
    return {str(path.relative_to(folder).as_posix()): path.stat().st_size for path in sorted(folder.rglob("*"))
            if path.is_file() and path.name != STEP_FILE and not any(n in path.parents for n in nested)}


def remote_sizes(storage: Storage, rel: str) -> dict[str, int]:
    """Return {path under `rel`: bytes} of every file under `rel` in `storage`."""
    prefix = storage.path(rel) + "/"
    return {info.path.removeprefix(prefix): info.size for info in storage.files(rel)}


def differing_file(record: dict, sizes: dict[str, int]) -> str | None:
    """Return what differs between a step marker's data files and the files there ('embeddings.npy is
    missing', '... has 10 bytes, not 12'); None when each one is there with its size, or for a marker that
    lists none (written before markers listed their files)."""
    for name, size in record.get("files", {}).items():
        if name not in sizes:
            return f"{name} is missing"
        if sizes[name] != size:
            return f"{name} has {sizes[name]} bytes, not {size}"
    return None


def reference_spec(spec: SweepSpec) -> SweepSpec:
    """Return the spec of the reference fine-tune: the sweep's model, unfrozen, for spec.reference_epochs()."""
    raw = spec.model_dump(mode="json")
    raw["model"]["freeze_base"] = False
    raw["train"]["epochs"] = spec.reference_epochs()
    raw["train"]["schedule"] = "epochs"  # the full training set, once per epoch
    return build_spec(raw, source="reference run")


def reference_run(spec: SweepSpec, out: Path | None, data: PreparedData, gpus: float | None,
                  dynamics_out: Path | None = None, seed: int | None = None) -> None:
    """Fine-tune the sweep's model once on the full training set into `out` (model + tokenizer, nothing else;
    None: not kept); with `dynamics_out`, record every example's training dynamics on the way. `seed`: the
    reference seed unless given."""
    from tis_ray.training import DynamicsRecorder, fit  # the Trainer stack: only when a fine-tune is needed

    ref = reference_spec(spec)
    seed = reference_seed(spec) if seed is None else seed
    where = placement("reference fine-tune", gpus, spec.train.precision)
    log.info("fine-tuning the reference model %s (seed %d) on all %d training examples for %d epochs (%s)%s",
             ref.model.name, seed, len(data.train), ref.train.epochs, where.describe(),
             ", recording training dynamics" if dynamics_out else "")
    tokenizer = load_tokenizer(ref.model.name, ref.model.tokenizer)
    labels = data.task.labels
    recorder = DynamicsRecorder(len(data.train), ref.train.epochs, len(labels)) if dynamics_out else None
    trained = fit(ref, data.train, seed=seed, tokenizer=tokenizer, placement=where, recorder=recorder,
                  progress=f"reference fine-tune (seed {seed})", labels=labels)
    if out is not None:
        with folder_written_whole(out, replace=True) as tmp:
            save_checkpoint(trained.model, tokenizer, tmp)
    if recorder is not None:
        save_dynamics(recorder.result(), dynamics_out, fingerprint=data.train_fingerprint, model=ref.model.name,
                      seed=seed, seconds=recorder.seconds)
    log.info("reference run (seed %d): %.1f s of training -> %s", seed, trained.seconds, out or dynamics_out)


def reference_key(spec: SweepSpec, data: PreparedData) -> str:
    """Return the key of the reference fine-tune: its model, training settings, seed and training data."""
    ref = reference_spec(spec)
    return step_key(model=ref.model.model_dump(mode="json"), train=ref.train.model_dump(mode="json"),
                    seed=reference_seed(spec), data=data.train_fingerprint, max_len=spec.data.max_seq_length)


def reference_seed(spec: SweepSpec) -> int:
    """Return the seed of the reference run: dynamics.seed (the first of dynamics.seeds), else the grid's first."""
    if spec.dynamics.seeds:
        return spec.dynamics.seeds[0]
    return spec.dynamics.seed if spec.dynamics.seed is not None else spec.grid.seeds[0]


def reference_model_path(spec: SweepSpec, steps: PreparedSteps, data: PreparedData, gpus: float | None) -> str:
    """Return the checkpoint to embed with: the given one, or the full-data fine-tune (trained once here)."""
    if spec.clustering.embedding_model:
        return spec.clustering.embedding_model
    key = reference_key(spec, data)
    if not steps.reuse(REFERENCE_MODEL, key):
        steps.start(REFERENCE_MODEL, gpus)
        reference_run(spec, steps.root / REFERENCE_MODEL, data, gpus)
        steps.finish(REFERENCE_MODEL, key)
    return str(steps.root / REFERENCE_MODEL)


def prepare_dynamics(spec: SweepSpec, steps: PreparedSteps, data: PreparedData, gpus: float | None) -> str | None:
    """Return the folder of the reference run's training dynamics when a sampler needs them (recorded once,
    by the same run that gives the embedding model), else None."""
    if not spec.needs_dynamics():
        return None
    out = steps.root / DYNAMICS
    if spec.dynamics.path:  # copied into the run directory: trials on other nodes read it there
        load_dynamics(spec.dynamics.path, data.train_fingerprint)  # refuses another dataset's
        shutil.copytree(spec.dynamics.path, out, dirs_exist_ok=True)
        steps.finish(DYNAMICS)
        return str(out)
    key = reference_key(spec, data)
    if not steps.reuse(DYNAMICS, key):  # one run gives both: its time is the reference model's
        steps.start(REFERENCE_MODEL, gpus)
        reference_run(spec, steps.root / REFERENCE_MODEL, data, gpus, dynamics_out=out)
        steps.finish(REFERENCE_MODEL, key)
        steps.finish(DYNAMICS, key)
    for seed in spec.dynamics.seeds[1:]:  # further reference runs: their dynamics only
        rel = f"{DYNAMICS}/{SEEDS_DIR}/{seed}"
        seed_key = step_key(reference=key, seed=seed)
        if not steps.reuse(rel, seed_key):
            steps.start(rel, gpus)
            reference_run(spec, None, data, gpus, dynamics_out=steps.root / rel, seed=seed)
            steps.finish(rel, seed_key)
    return str(out)


def embeddings_key(spec: SweepSpec, model: str, data: PreparedData) -> str:
    """Return the key of the embeddings: the model that embeds (a reference run's key, or a given checkpoint),
    pooling, precision and the tokenized training set."""
    return step_key(model=model, pooling=spec.clustering.pooling, precision=spec.clustering.embedding_precision,
                    data=data.train_fingerprint, max_len=spec.data.max_seq_length)


def spec_embeddings_key(spec: SweepSpec, data: PreparedData) -> str:
    """Return the key of the embeddings a spec uses: a given folder's path, or the model that embeds and how."""
    if spec.clustering.embeddings_path:
        return step_key(path=spec.clustering.embeddings_path)
    return embeddings_key(spec, spec.clustering.embedding_model or reference_key(spec, data), data)


def prepare_embeddings(spec: SweepSpec, steps: PreparedSteps, shared: SharedData, gpus: float | None) -> Path:
    """Return the folder of the training set's embeddings: given, already computed, or computed now."""
    sweep_data = shared.for_model(spec.model.name, spec.model.tokenizer)
    if spec.clustering.embeddings_path:
        load_embeddings(spec.clustering.embeddings_path, sweep_data.train_fingerprint)  # refuses another dataset's
        return Path(spec.clustering.embeddings_path)
    key = spec_embeddings_key(spec, sweep_data)
    out = steps.root / EMBEDDINGS
    if steps.reuse(EMBEDDINGS, key):
        return out
    model_path = reference_model_path(spec, steps, sweep_data, gpus)
    steps.start(EMBEDDINGS, gpus)
    if spec.clustering.embedding_model:  # a given checkpoint reads the pairs through its own tokenizer
        data, tokenizer = shared.for_model(model_path), load_tokenizer(model_path)
    else:  # the reference run was trained with the sweep's tokenizer
        data, tokenizer = sweep_data, load_tokenizer(spec.model.name, spec.model.tokenizer)
    where = placement("embedding", gpus, spec.clustering.embedding_precision)
    embed_dataset(load_encoder_model(model_path), data.train, tokenizer.pad_token_id, out, placement=where,
                  pooling=spec.clustering.pooling, batch_size=spec.train.eval_batch_size, model_name=model_path,
                  fingerprint=data.train_fingerprint)
    steps.finish(EMBEDDINGS, key)
    return out


def prepare_clusterings(spec: SweepSpec, steps: PreparedSteps, shared: SharedData, gpus: float | None) -> dict[str, str]:
    """Return {sampler key: clustering folder} for every cluster sampler of the grid (empty without any)."""
    needs = spec.clusterings()
    if not needs:
        return {}
    data = shared.for_model(spec.model.name, spec.model.tokenizer)
    if spec.clustering.labels_path:  # copied into the run directory: trials on other nodes read it there
        given = load_clusters(spec.clustering.labels_path, len(data.train), data.train_fingerprint)
        save_clusters(given, steps.root / "clusters" / "given")
        steps.finish("clusters/given")
        return dict.fromkeys(needs, str(steps.root / "clusters" / "given"))
    embeddings = None  # loaded only when a clustering is not in the run directory yet
    embedded = spec_embeddings_key(spec, data)
    folders: dict[str, str] = {}
    for key, params in needs.items():
        rel = f"clusters/{clustering_key(params)}"
        seed = params.get("seed", spec.grid.seeds[0])
        again = spec.clustering.stability_seeds if params["algorithm"] == "kmeans" else []
        step = step_key(params=params, embeddings=embedded, seed=seed, **({"stability": again} if again else {}))
        if not steps.reuse(rel, step):
            if embeddings is None:
                embeddings = load_embeddings(prepare_embeddings(spec, steps, shared, gpus), data.train_fingerprint)
                release_gpu_memory()  # the embedding model's cached memory goes back before cuML clusters
            steps.start(rel, gpus)
            result = fit_clusters(embeddings, params, spec.clustering.backend, seed=seed,
                                  fingerprint=data.train_fingerprint)
            if params["algorithm"] == "dbscan":
                result.extra.update(dbscan_k_distance(embeddings, params, steps.root / rel))
            if again:  # timed apart: the report lists them beside the samplers' cost, not in it
                refit_start = time.perf_counter()
                refits = [fit_clusters(embeddings, params, spec.clustering.backend, seed=s).labels_ for s in again]
                result.extra["stability"] = {"seeds": again,
                                             "adjusted_rand": cluster_agreement(result.labels_, refits),
                                             "seconds": time.perf_counter() - refit_start}
            save_clusters(result, steps.root / rel)
            steps.finish(rel, step)  # written before the noise check, so the plot it names exists
        check_noise(read_json(steps.root / rel / "meta.json"), steps.where(f"{rel}/k_distance.png"))
        folders[key] = str(steps.root / rel)
    log.info("clusterings: %d distinct for %d cluster samplers", len(set(folders.values())), len(needs))
    return folders


INDICES = "indices"  # RUN_DIR/prepared/indices/<file>-<hash>/: the files of samplers that read one


def prepare_indices(spec: SweepSpec, steps: PreparedSteps, data: PreparedData) -> dict[str, str]:
    """Copy the file of each sampler that reads one (indices, score), with the manifest.json beside it if any,
    into the run directory, where every node reads it; returns {sampler key: its copy}. Scores made for another
    training set are refused here, before any trial."""
    copies = {}
    for entry in spec.grid.samplers:
        if reads_file(entry):
            sampler = sampler_from_entry(entry)
            if hasattr(sampler, "scores"):
                sampler.scores(SamplingPool(data.train_labels, fingerprint=data.train_fingerprint))
            source = Path(entry["path"])
            digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
            target = steps.root / INDICES / f"{source.stem}-{digest}" / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            if source.with_name("manifest.json").is_file():
                shutil.copyfile(source.with_name("manifest.json"), target.with_name("manifest.json"))
            copies[sampler_key(entry)] = str(target)
    if copies:
        steps.finish(INDICES)
    return copies


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
        steps = PreparedSteps(storage, local_run / PREPARED)
        steps.fetch_existing("data")  # tokenization is keyed by content: what is there is reused
        shared = SharedData(spec, steps.root)
        for name, tokenizer_name in sorted(spec.trial_models(), key=str):
            data = shared.for_model(name, tokenizer_name)
        log.info("prepared data: %d training examples, eval sets %s, %d tokenizer(s)", len(data.train),
                 ", ".join(data.eval_sets), len(shared.folders))
        try:
            sweep_data = shared.for_model(spec.model.name, spec.model.tokenizer)
            steps.finish("data")
            tokenizers = len(shared.folders)
            dynamics = prepare_dynamics(spec, steps, sweep_data, gpus)  # before embeddings: one reference run
            clusters = prepare_clusterings(spec, steps, shared, gpus)
            embeddings = prepare_embeddings(spec, steps, shared, gpus) if spec.needs_embeddings() else None
            if len(shared.folders) > tokenizers:  # a given embedding model's own tokenization
                steps.finish("data")
        finally:
            release_gpu_memory()

        indices = prepare_indices(spec, steps, sweep_data)

        def relative(folder: str) -> str:
            return os.path.relpath(folder, local_run)

        return {"revisions": source_revisions(spec, sweep_data.revisions),
                "data_by_tokenizer": {key: relative(f) for key, f in shared.folders.items()},
                "clusters_by_sampler": {key: relative(f) for key, f in clusters.items()},
                "dynamics": relative(dynamics) if dynamics else None,
                "embeddings": relative(str(embeddings)) if embeddings else None,
                "indices_by_sampler": {key: relative(f) for key, f in indices.items()}}


def source_revisions(spec: SweepSpec, data_revisions: dict[str, str] | None = None) -> dict[str, str]:
    """Return the revision of every source a sweep reads: the training data ('train'), each evaluation set (by
    name), the model ('model'; 'model:<name>' for each other model of the grid). `data_revisions`: the loaded
    data's, when at hand (else they are read from the sources, without reading the data)."""
    from tis_ray.data.loaders import data_revisions as read_revisions
    from tis_ray.models import model_revision

    revisions = dict(data_revisions if data_revisions is not None else read_revisions(spec.data, spec.eval_sets))
    revisions["model"] = model_revision(spec.model.name)
    for name in sorted({name for name, _ in spec.trial_models()} - {spec.model.name}):
        revisions[f"model:{name}"] = model_revision(name)
    return revisions


def changed_revision(recorded: dict[str, str], current: dict[str, str]) -> str | None:
    """Return a line naming the sources whose revision differs from the recorded one, with the first one's
    revisions then and now; None when none does."""
    changed = [source for source in sorted(set(recorded) | set(current)) if recorded.get(source) != current.get(source)]
    if not changed:
        return None
    first = changed[0]
    return (f"{' and '.join(changed)} changed since the run started ({first} was read at "
            f"{recorded.get(first, 'no revision')}, is now at {current.get(first, 'no revision')})")


def trial_inputs(prepared: dict[str, Any], spec: SweepSpec, point: GridPoint,
                 run_dir: str | Path) -> dict[str, str | None]:
    """Return the local folders one trial reads: its model's data and what its sampler declares it needs (its
    clustering, the dynamics, the embeddings, an `indices` sampler's file), fetched once per node into a local
    cache when the run directory is on a URI."""
    storage = Storage(run_dir)
    trial = spec.for_point(point)
    data = prepared["data_by_tokenizer"][tokenizer_key(trial.model.name, trial.model.tokenizer)]
    clusters = prepared["clusters_by_sampler"].get(sampler_key(point.sampler))
    # this trial's tokenization and the cache entries its manifest names, not every tokenizer's
    manifest = storage.read_json(f"{data}/{MANIFEST}")
    entries = {os.path.normpath(os.path.join(Path(data).name, path))
               for path in [manifest["train"], *manifest["eval_sets"].values()]}
    data_root = storage.fetch(f"{PREPARED}/data", [Path(data).name, *sorted(entries)])
    dynamics = prepared.get("dynamics") if sampler_from_entry(point.sampler).needs_dynamics else None
    indices = prepared.get("indices_by_sampler", {}).get(sampler_key(point.sampler))
    embeddings = prepared.get("embeddings") if sampler_from_entry(point.sampler).needs_embeddings else None
    return {"data": str(data_root / Path(data).name),
            "embeddings": str(storage.fetch(embeddings)) if embeddings else None,
            "clusters": str(storage.fetch(clusters)) if clusters else None,
            "dynamics": str(storage.fetch(dynamics)) if dynamics else None,
            "indices": str(storage.fetch(str(Path(indices).parent)) / Path(indices).name) if indices else None}
