"""A sweep: the spec's grid points scheduled by Ray Tune as trials, with their resources, and resume.

The grid points (`SweepSpec.grid_points`) become one `grid_search` axis of Tune's param space. What trials
share is prepared once first (`preparation.prepare_shared`: in the driver for local Ray, as one Ray task with
a trial's resources on a cluster); each trial (`trial.run_trial`) then writes its files next to Tune's
result.json in RUN_DIR/<trial_id>/.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any

import yaml

from tis_ray import logs
from tis_ray.clustering import clustering_key, describe_summary
from tis_ray.errors import TisRayError
from tis_ray.hub import check_hub_models
from tis_ray.io import read_json, write_text
from tis_ray.preflight import check_before_preparation, check_trials_fit, cluster_nodes
from tis_ray.preparation import PREPARED_FILE, changed_revision, source_revisions
from tis_ray.spec import SPEC_FILE, GridPoint, SweepSpec, check_local_inputs, dump_spec, run_location
from tis_ray.storage import Storage, is_uri, join

log = logging.getLogger(__name__)

# What the console progress table shows besides trial status and parameters.
PROGRESS_COLUMNS = ["epoch", "n_train", "train/loss"]


def progress_metrics(spec: SweepSpec) -> list[str]:
    """Return the columns of the live progress table: epoch, subset size, training loss, each set's accuracy."""
    return [*PROGRESS_COLUMNS, *(f"{name}/acc" for name in spec.eval_set_names())]


def tune_trial(config: dict) -> None:
    """The Ray Tune trainable: one grid point, its files in RUN_DIR/<trial_id>, every epoch reported to Tune
    (all but the last with an epoch checkpoint, which a retried or restored trial resumes from)."""
    from ray import tune

    from tis_ray.preparation import trial_inputs
    from tis_ray.spec import build_spec
    from tis_ray.trial import run_trial  # torch + transformers: not needed by --dry-run or a cluster driver

    point = GridPoint.model_validate(config["point"])
    logs.setup(point.folder_name())  # a Ray worker has no logging of its own: its lines would not arrive
    logs.quiet_third_party()
    logs.quiet_ray_tune()
    spec = build_spec(config["spec"], source="trial config")
    storage = Storage(config["run_dir"])
    inputs = trial_inputs(config["prepared"], spec, point, config["run_dir"])
    trial_id = trial_folder(config["point"], tune.get_context().get_trial_id())

    def report(metrics: dict, checkpoint_dir: Path | None = None) -> None:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None)

    done = finished_metrics(storage, trial_id)
    if done is not None:  # finished before its driver died, unrecorded by Tune: reported again, not trained again
        log.info("trial %s had finished (%s): its final metrics are reported again, it is not trained again",
                 trial_id, join(storage.location, trial_id, METRICS_FILE))
        tune.report(done)
        return
    with tempfile.TemporaryDirectory(prefix="tis_ray_trial_") as scratch:
        checkpoint = tune.get_checkpoint()  # set when Tune retries or restores this trial
        resume_from = checkpoint.to_directory(str(Path(scratch) / "resume")) if checkpoint else None
        if resume_from:
            log.info("trial %s resumes from its checkpoint", trial_id)
        # a local run directory takes the trial's files in place; a URI gets them uploaded when the trial ends
        out = Path(storage.path(trial_id)) if storage.local else Path(scratch) / "out"
        run_trial({**config, "prepared": inputs, "checkpoints": True, "resume_from": resume_from}, out, report=report)
        if not storage.local:  # metrics.json, which says the trial finished, goes up after every other file
            held = Path(scratch) / METRICS_FILE
            os.replace(out / METRICS_FILE, held)
            storage.upload(out, trial_id)
            storage.write_text(f"{trial_id}/{METRICS_FILE}", held.read_text())
    if not spec.for_point(point).train.save_model:  # a finished trial keeps no checkpoint's weights
        for folder in storage.folders(trial_id):
            if folder.startswith("checkpoint_"):
                empty_checkpoint(storage, f"{trial_id}/{folder}")


CHECKPOINT_NOTE = "finished.txt"  # all that a finished trial keeps of its last checkpoint


def empty_checkpoint(storage: Storage, rel: str) -> None:
    """Delete what the checkpoint folder `rel` holds, leaving a note in it: the folder stays, so Tune can restore a
    trial whose driver died before it recorded the trial's end (tune_trial then finds metrics.json and reports
    the finished trial again, without training it)."""
    storage.write_text(f"{rel}/{CHECKPOINT_NOTE}", "the trial finished; its metrics.json holds its results\n")
    for folder in storage.folders(rel):
        storage.delete(f"{rel}/{folder}")
    for name in storage.file_names(rel):
        if name != CHECKPOINT_NOTE:
            storage.delete_file(f"{rel}/{name}")


METRICS_FILE = "metrics.json"  # in a trial's folder, written by run_trial once the trial has finished


def finished_metrics(storage: Storage, trial_id: str) -> dict | None:
    """Return the final metrics of a trial whose folder holds its metrics.json (it finished), else None."""
    if not storage.exists(f"{trial_id}/{METRICS_FILE}"):
        return None
    return storage.read_json(f"{trial_id}/{METRICS_FILE}")["final"]


def check_visible_from_nodes(run_dir: str, probe=None) -> None:
    """Raise TisRayError naming the first alive node that cannot see the local run directory `run_dir`.

    A marker file is written there, and a zero-CPU task pinned to each node looks for it. `probe(path)`
    returns {node ip: seen} (tests pass their own).
    """
    marker = Path(run_dir).parent / f".tis_ray_visible_{uuid.uuid4().hex}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_text(marker, "")
    try:
        seen = (probe or _probe_nodes)(str(marker))
    finally:
        marker.unlink(missing_ok=True)
    missing = [ip for ip, ok in seen.items() if not ok]
    if missing:
        raise TisRayError(f"run directory {run_dir} is not visible from node {missing[0]}: use a filesystem "
                          "mounted at the same path on every node (NFS / EFS), or an s3:// storage_path")


def _probe_nodes(path: str) -> dict[str, bool]:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    exists = ray.remote(num_cpus=0)(os.path.exists)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    futures = [exists.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(path)
               for n in nodes]
    return {n["NodeManagerAddress"]: ok for n, ok in zip(nodes, ray.get(futures), strict=True)}


def describe_sweep(spec: SweepSpec, trials: bool = True) -> str:
    """Return what `tis-ray sweep` runs, as text: run directory, grid, resources, shared steps (and each trial)."""
    location, r = run_location(spec), spec.resources
    axes = [_count(len(spec.grid.seeds), "seed"), _count(len(spec.budgets()), "budget"),
            _count(len(spec.grid.samplers), "sampler"),
            *(f"{len(values)} {field}" for field, values in spec.grid.extra.items())]
    model = "the trial's model" if "model.name" in spec.grid.extra else spec.model.name
    if is_uri(location):  # a dry run reaches no network
        state = "on remote storage"
    else:
        state = "exists: --resume continues it" if Path(location).exists() else "new"
    epoch_axis = spec.grid.extra.get("train.epochs")
    epochs = (f"{min(epoch_axis)}-{max(epoch_axis)} epochs (one run per count)" if epoch_axis
              else f"{spec.train.epochs} epochs")
    size = ""
    if spec.grid.data_pct:
        size = (" on int(N x data_pct) examples (floored, as the original)" if spec.grid.budget_rounding == "floor"
                else " on round(N x data_pct) examples")
    lines = [f"sweep {spec.name}: {spec.n_trials()} trials = {' x '.join(axes)} -> {location} ({state})",
             f"each trial: {r.cpu:g} CPU, {r.gpu:g} GPU, {epochs} of {model}{size}; "
             f"{r.max_concurrent or 'as many as fit'} at a time; a trial whose worker dies is retried "
             f"{_count(r.max_failures, 'time')}",
             f"prepared once: {data_source(spec)} tokenized for {', '.join(['train', *spec.eval_set_names()])}"]
    clusterings = sorted({clustering_key(params) for params in spec.clusterings().values()})
    if clusterings and not spec.clustering.labels_path:
        source = (spec.clustering.embeddings_path or spec.clustering.embedding_model
                  or f"{spec.model.name} fine-tuned for {spec.reference_epochs()} epochs on the full training set")
        lines.append(f"  embeddings from {source}; {_count(len(clusterings), 'clustering')}: "
                     f"{', '.join(clusterings)}")
        for key in clusterings:  # a run directory that was prepared already: say what each clustering found
            meta = Path(location, "prepared", "clusters", key, "meta.json")
            if not is_uri(location) and meta.is_file():
                lines.append(f"    {key}: {describe_summary(read_json(meta))}")
    elif clusterings:
        lines.append(f"  cluster labels from {spec.clustering.labels_path}")
    if spec.needs_dynamics():
        source = spec.dynamics.path or (f"{spec.model.name} fine-tuned once on the full training set, recording "
                                        f"{spec.reference_epochs()} epochs from its own forward passes")
        lines.append(f"  training dynamics from {source}")
    if not trials:
        return "\n".join(lines)
    lines.append(f"{'trial':>5}  {'seed':>6}  {'budget':<16}  sampler")
    for i, point in enumerate(spec.grid_points(), 1):
        lines.append(f"{i:>5}  {point.seed:>6}  {point.budget_label():<16}  {point.label()}")
    return "\n".join(lines)


def data_source(spec: SweepSpec) -> str:
    """Return the training data's source in words: 'synthetic data', 'hub dataset stanfordnlp/sst2 (train)'."""
    d = spec.data
    if d.source == "hub":
        return (f"hub dataset {d.dataset}" + (f" config {d.config}" if d.config else "")
                + (f" at {d.revision}" if d.revision else "") + f" ({d.train_split})")
    return f"{d.source} data"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def trial_folder(point: dict, trial_id: str) -> str:
    """Return a trial's folder in the run directory: its grid point in words, then Tune's trial id, e.g.
    's42-pct0.1-kmeans_k=8-468b5_00001'."""
    return f"{GridPoint.model_validate(point).folder_name()}-{trial_id}"


def trial_name(trial) -> str:
    """Return the name of a Tune trial wherever Tune shows it (its progress table, its log lines, the trackers'
    runs): the trial's folder name, as `tis-ray status` shows it."""
    return trial_folder(trial.config["point"], trial.trial_id)


def _setting_of(config: dict) -> str:
    return GridPoint.model_validate(config["point"]).label()


def param_space(spec: SweepSpec, run_dir: str, prepared: dict[str, Any]) -> dict[str, Any]:
    """Return the Tuner's param space: the grid points as one grid_search axis, the point's setting label (in
    each trial's params.json), everything else as constants."""
    from ray import tune

    return {
        "point": tune.grid_search([point.model_dump(mode="json") for point in spec.grid_points()]),
        "setting": tune.sample_from(_setting_of),
        "spec": spec.model_dump(mode="json"),
        "run_dir": str(run_dir),
        "prepared": prepared,
        "gpus": spec.resources.gpu,
        "num_threads": max(1, int(spec.resources.cpu)),
    }


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Start local Ray (address None) or connect to a running cluster; unreachable addresses raise TisRayError."""
    import ray

    if address and address != "auto" and ":" in address and not address.startswith("ray://"):
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except (OSError, ValueError):
            raise TisRayError(f"cannot reach a Ray cluster at {address} (is `ray up` / `ray start --head` running?)") from None
    logs.every_trial_line()  # set when tis_ray was imported; again for a Ray imported before tis_ray
    try:
        # "local" always starts a fresh single-node Ray: a bare init would join any cluster whose address
        # file (/tmp/ray/ray_current_cluster) a `ray start` left on this machine.
        ray.init(address=address or "local", num_cpus=num_cpus if not address else None, include_dashboard=False,
                 ignore_reinit_error=True, log_to_driver=True)
    except ConnectionError as exc:
        raise TisRayError(f"cannot connect to Ray at {address}: {str(exc).splitlines()[0]}") from None


def preparation_gpus(spec: SweepSpec) -> int:
    """Return the GPUs the shared preparation holds: one whole GPU when trials use GPUs, else none."""
    return 1 if spec.resources.gpu else 0


PREPARATION_RETRIES = 2  # a preparation task whose node or worker dies (a spot interruption) starts again


def prepare_on_cluster(spec: SweepSpec, run_dir: str) -> dict[str, Any]:
    """Run `prepare_shared` as one Ray task with a trial's CPUs and a whole GPU (a GPU node on a GPU cluster),
    on a node with `resources.preparation_resource` when the spec names one. A task whose worker dies is
    retried and reuses the steps its earlier attempt finished; an error of the preparation itself is not."""
    import ray

    r = spec.resources
    custom = {r.preparation_resource: 0.001} if r.preparation_resource else None
    if custom:
        log.info("the preparation waits for a node with the custom resource %r", r.preparation_resource)
    task = ray.remote(num_cpus=r.cpu, num_gpus=preparation_gpus(spec), resources=custom,
                      max_retries=PREPARATION_RETRIES, retry_exceptions=False)(_prepare_task)
    try:
        return ray.get(task.remote(spec.model_dump(mode="json"), str(run_dir)))
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, TisRayError):
            raise exc.cause from None
        raise


def _prepare_task(raw_spec: dict, run_dir: str) -> dict[str, Any]:
    from tis_ray.preparation import prepare_shared
    from tis_ray.spec import build_spec

    logs.setup("preparation")
    logs.quiet_third_party()
    spec = build_spec(raw_spec)
    return prepare_shared(spec, run_dir, preparation_gpus(spec))


READER_ONLY = ("expected", "report", "tracking", "provenance")  # not what a trial runs: may change on --resume


def same_run(recorded: str, spec: SweepSpec) -> bool:
    """True when a run directory's recorded spec text and `spec` describe the same runs. The recorded spec is
    validated again first, so fields added since it was written take their defaults on both sides; they may
    differ in what only readers of the results use (expected numbers, the report, the trackers) and in the
    provenance the run recorded. False when the recorded spec no longer validates."""
    from tis_ray.spec import build_spec

    try:
        raw = yaml.safe_load(recorded)
        before = build_spec(raw if isinstance(raw, dict) else {}, source=SPEC_FILE).model_dump(mode="json")
    except (yaml.YAMLError, TisRayError):
        return False
    now = spec.model_dump(mode="json")
    for reader_only in READER_ONLY:
        before.pop(reader_only, None)
        now.pop(reader_only, None)
    return before == now


def check_revisions(location: str, recorded: dict[str, str] | None, spec: SweepSpec) -> None:
    """Raise TisRayError when a source the run at `location` read (`recorded`, from prepared.json) is now at
    another revision; a run prepared before revisions were recorded is not checked."""
    if recorded is None:
        log.warning("%s recorded no revisions of its data and model (an older tis_ray): not checked", location)
        return
    changed = changed_revision(recorded, source_revisions(spec))
    if changed:
        raise TisRayError(f"cannot resume {location}: {changed}; its trials would mix two versions: pin the "
                          "revision (data.revision, an eval set's revision) or start a new run under another name")


def run_sweep(spec: SweepSpec, *, address: str | None = None, resume: bool = False, num_cpus: int | None = None):
    """Run (or resume) the sweep of `spec`; returns Tune's ResultGrid. The run directory is storage_path/name,
    a local path or a URI."""
    from ray import tune

    from tis_ray.preparation import finished_steps, prepare_shared
    from tis_ray.status import driver_ended, driver_started
    from tis_ray.tracking import check_trackers

    check_local_inputs(spec)
    check_hub_models(spec, on_cluster=bool(address))  # stops here in seconds, not after minutes of retries
    check_before_preparation(spec, num_cpus, on_cluster=bool(address))  # resources, local data, subset sizes
    callbacks = check_trackers(spec)  # a tracker that cannot start stops here, not after the preparation
    location = run_location(spec)
    storage = Storage(location)
    storage.check()  # an unknown scheme, an unreachable endpoint or a missing bucket stops here
    exists = storage.exists()
    started = exists and trials_scheduled(storage)
    resuming = resume and started
    if started and not resume:
        raise TisRayError(f"run directory {location} exists: pass --resume to continue it, or set another name "
                          "(--set name=...)")
    if exists and not started:
        log.info("%s holds no trials yet: its finished preparation steps (%s) are reused where they still fit "
                 "the spec", location, ", ".join(finished_steps(storage)) or "none")
    if resuming:  # before Ray starts: a resume that cannot be taken says so at once
        if not same_run(storage.read_text(SPEC_FILE), spec):
            raise TisRayError(f"the spec differs from the one {location} was started with ({SPEC_FILE}): "
                              "resume with that spec, or start a new run under another name")
        prepared = storage.read_json(PREPARED_FILE)
        check_revisions(location, prepared.get("revisions"), spec)
        tracking_change = changed_tracking(storage.read_text(SPEC_FILE), spec)
    if resume and not started:
        log.info("%s has no trials scheduled yet: --resume starts its sweep (reusing the finished preparation "
                 "steps)", location)
    log.info("%s", describe_sweep(spec, trials=False))
    logs.quiet_ray_tune()
    connect(address, num_cpus)
    if address:  # a request no node (or node type) can meet would wait for ever
        check_trials_fit(spec.resources, cluster_nodes(), f"the cluster at {address}")
    if address and storage.local:
        check_visible_from_nodes(storage.path())
    # a preparation that fails keeps the steps it finished (a reference run, embeddings): a rerun reuses them
    with storage.removed_on_failure(keep=lambda: bool(finished_steps(storage))):
        storage.write_text(SPEC_FILE, dump_spec(spec))
        if resuming:
            pass  # prepared.json was read above, with the revisions checked
        elif address or preparation_gpus(spec):
            # on a cluster the preparation runs where trials run (a GPU node); on one machine with GPUs too, as a
            # task that holds exactly one of them (Ray sets its CUDA_VISIBLE_DEVICES)
            prepared = prepare_on_cluster(spec, location)
        else:  # locally on the CPU, right here
            prepared = prepare_shared(spec, location, preparation_gpus(spec))
        storage.write_json(PREPARED_FILE, prepared)
        # the spec as run: with the revision of the model and of every data source it read
        storage.write_text(SPEC_FILE, dump_spec(spec.model_copy(update={"provenance": prepared.get("revisions", {})})))

    # Tune's newer console output prints every trial's full config; the classic reporter shows one table of
    # trial status counts and the chosen metrics, refreshed every 30 s.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    r = spec.resources
    trainable = tune.with_resources(tune_trial, {"cpu": r.cpu, "gpu": r.gpu})
    if resuming:
        tuner = tune.Tuner.restore(location, trainable=trainable, resume_unfinished=True, resume_errored=True)
        # Tune restores the callbacks pickled when the run started; the spec's trackers replace them
        tuner._local_tuner.get_run_config().callbacks = callbacks
        if tracking_change:
            log.info("%s", tracking_change)
    else:
        # the trial's name says its seed, budget and sampler in full; one short column keeps Tune from adding
        # every parameter (an empty list means all), each cut to max_column_length
        reporter = tune.CLIReporter(metric_columns=progress_metrics(spec), parameter_columns={"point/seed": "seed"},
                                    max_report_frequency=30, sort_by_metric=False,
                                    # else Tune decides from a process-wide verbosity an earlier sweep may have set
                                    print_intermediate_tables=True)
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(spec, location, prepared),
            # reuse_actors: a worker imports torch and transformers once, not once per trial
            tune_config=tune.TuneConfig(max_concurrent_trials=r.max_concurrent, reuse_actors=True,
                                        trial_name_creator=trial_name, trial_dirname_creator=trial_name),
            run_config=tune.RunConfig(name=spec.name, storage_path=spec.storage_path, verbose=1,
                                      progress_reporter=reporter, callbacks=callbacks,
                                      failure_config=tune.FailureConfig(max_failures=r.max_failures),
                                      # the newest epoch checkpoint: a retried or restored trial resumes there
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
        )
    driver_started(storage)
    try:
        return tuner.fit()
    finally:  # `tis-ray status` then shows the trials left unfinished as interrupted, not running
        driver_ended(storage)


def trials_scheduled(storage: Storage) -> bool:
    """True when Tune recorded trials in the run directory (an experiment_state-*.json beside its tuner.pkl):
    then only --resume continues it. A tuner.pkl alone, from a sweep stopped before Tune saved its first
    state, is not a started sweep: a rerun or --resume starts the trials afresh."""
    from ray import tune

    return tune.Tuner.can_restore(storage.location) and any(
        name.startswith("experiment_state-") and name.endswith(".json") for name in storage.file_names())


def changed_tracking(recorded: str, spec: SweepSpec) -> str | None:
    """Return the line that says a resumed sweep's `tracking:` differs from the one its run started with and is
    applied from now on; None when it is the same."""
    from tis_ray.spec import TrackingSpec

    raw = yaml.safe_load(recorded)
    before = TrackingSpec.model_validate((raw.get("tracking") if isinstance(raw, dict) else None) or {})
    before, now = before.model_dump(mode="json"), spec.tracking.model_dump(mode="json")
    if before == now:
        return None
    return (f"tracking: applied as the spec now says ({_trackers(now)}; the run started with "
            f"{_trackers(before)}): trials that report from now on are logged there, earlier epochs stay where "
            "they were logged")


def _trackers(tracking: dict) -> str:
    named = [f"MLflow {tracking['mlflow']}" if tracking.get("mlflow") else "",
             f"W&B {tracking['wandb'].get('project') or 'project = the sweep name'} ({tracking['wandb'].get('mode')})"
             if tracking.get("wandb") else ""]
    return ", ".join(n for n in named if n) or "no trackers"
