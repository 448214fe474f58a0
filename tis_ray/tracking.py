"""The experiment trackers researchers already use, as Ray Tune callbacks (spec block `tracking:`): MLflow and
Weights & Biases, one run per trial named by its folder; its parameters are the grid point's fields and what
the trial says about itself (model, device, precision, node), its metrics what it measured each epoch, at
step = epoch (`split_result`). Both are optional extras (`pip install 'tis-ray[tracking]'`)."""

from __future__ import annotations

import os
from typing import Any

from tis_ray.errors import TisRayError
from tis_ray.spec import GridPoint, SweepSpec

# trial config keys that are not the grid point: the spec, the prepared paths, resources
NOT_THE_POINT = ["spec", "prepared", "run_dir", "gpus", "num_threads"]


def point_params(config: dict) -> dict[str, Any]:
    """Return a trial's parameters for a tracker: the grid point's row fields (seed, budget, sampler, its
    parameters, the extra-axis values), each a scalar."""
    point = GridPoint.model_validate(config["point"])
    return {k: v for k, v in point.row_fields().items() if v is not None}


# what Tune adds to every result (its counters, clocks, host, the trial's whole config) and tis_ray's flag
# for the last epoch: neither a parameter nor a metric of the trial
NOT_TRACKED = ("done", "should_checkpoint", "trial_id", "experiment_tag", "experiment_id", "final")


def split_result(result: dict) -> tuple[dict[str, Any], dict[str, float]]:
    """Return one reported result as (params, metrics) for a tracker. params: the grid point's fields (from
    result['config']) and every text or true/false value the trial reported (model, device, precision,
    node_id, subset_sha256, freeze_base); metrics: every other number the trial reported (accuracies, losses,
    n_train, timings, epoch). Tune's own keys (ray.tune.result.AUTO_RESULT_KEYS: the config, counters, clocks,
    host) are in neither."""
    from ray.tune.result import AUTO_RESULT_KEYS

    dropped = {*AUTO_RESULT_KEYS, *NOT_TRACKED}
    params = point_params(result["config"]) if "point" in result.get("config", {}) else {}
    metrics = {}
    for key, value in result.items():
        if key in dropped or key in params:
            continue
        if isinstance(value, (str, bool)):
            params[key] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[key] = float(value)
    return params, metrics


def _epoch_step(result: dict) -> int:
    return int(result.get("epoch") or result.get("training_iteration") or 0)


def tracking_callbacks(spec: SweepSpec) -> list:
    """Return the Tune logger callbacks the spec's `tracking:` block asks for (empty without one)."""
    from tis_ray.sweep import trial_name

    t = spec.tracking
    callbacks = []
    if t.mlflow:
        try:
            import mlflow  # noqa: F401
            from ray.air.integrations.mlflow import MLflowLoggerCallback
        except ImportError:
            raise TisRayError("tracking.mlflow needs MLflow: pip install 'tis-ray[tracking]' (or mlflow-skinny)") from None

        class GridPointMLflow(MLflowLoggerCallback):
            """Ray's MLflow callback with parameters and metrics apart (`split_result`; Ray's logs the whole
            result, the trial config's numbers included, as metrics) and the epoch as each metric's step."""

            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self._params_logged: set[str] = set()  # runs that have the trial's own parameters

            def log_trial_start(self, trial):
                if trial not in self._trial_runs:
                    run = self.mlflow_util.start_run(tags={**self.tags, "trial_name": str(trial)},
                                                     run_name=trial_name(trial))
                    self._trial_runs[trial] = run.info.run_id
                    self.mlflow_util.log_params(run_id=run.info.run_id, params_to_log=point_params(trial.config))

            def log_trial_result(self, iteration, trial, result):
                run_id = self._trial_runs[trial]
                params, metrics = split_result(result)
                # MLflow refuses to change a parameter: the trial's own are logged with its first result only
                if run_id not in self._params_logged:
                    self._params_logged.add(run_id)
                    point = point_params(trial.config)
                    self.mlflow_util.log_params(run_id=run_id,
                                                params_to_log={k: v for k, v in params.items() if k not in point})
                self.mlflow_util.log_metrics(run_id=run_id, metrics_to_log=metrics, step=_epoch_step(result))

        callbacks.append(GridPointMLflow(tracking_uri=t.mlflow, experiment_name=t.mlflow_experiment or spec.name,
                                         tags={"sweep": spec.name}))
    if t.wandb is not None:
        try:
            import wandb  # noqa: F401
            from ray.air.integrations.wandb import WandbLoggerCallback
        except ImportError:
            raise TisRayError("tracking.wandb needs Weights & Biases: pip install 'tis-ray[tracking]'") from None
        # read by Ray's callback before it asks for an API key, and by W&B in the logging actors
        os.environ.setdefault("WANDB_MODE", t.wandb.mode)

        class GridPointWandb(WandbLoggerCallback):
            """Ray's W&B callback with parameters in the run's config and metrics in its log (`split_result`;
            Ray's logs every number of the result and puts the whole trial config, the spec included, in the
            run's config)."""

            def log_trial_result(self, iteration, trial, result):
                params, metrics = split_result(result)
                # W&B's step: Ray's logging actor reads training_iteration; the epoch, as on MLflow
                super().log_trial_result(iteration, trial, {**metrics, "training_iteration": _epoch_step(result),
                                                            "config": params})

        # the run starts with the setting alone in its config; the first result adds the parameters
        callbacks.append(GridPointWandb(project=t.wandb.project or spec.name, group=spec.name,
                                        entity=t.wandb.entity, mode=t.wandb.mode, excludes=[*NOT_THE_POINT, "point"],
                                        log_config=False))
    return callbacks


def check_trackers(spec: SweepSpec) -> list:
    """Return the spec's tracker callbacks after checking, before anything is prepared or written, that each
    one can start: its package imports, MLflow's tracking URI has a store this MLflow opens (MLflow 3 opens a
    file store only with MLFLOW_ALLOW_FILE_STORE=true), W&B online has an API key. Raises TisRayError."""
    callbacks = tracking_callbacks(spec)
    t = spec.tracking
    if t.mlflow:
        _check_mlflow_uri(t.mlflow)
    if t.wandb is not None and t.wandb.mode == "online":
        from ray.air.integrations.wandb import _set_api_key  # the lookup Ray's callback does in its setup

        try:
            _set_api_key()
        except ValueError:
            raise TisRayError("tracking.wandb mode online needs a W&B API key: run `wandb login` or set "
                              "WANDB_API_KEY (or use mode: offline)") from None
    return callbacks


def _check_mlflow_uri(uri: str) -> None:
    from urllib.parse import urlsplit

    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    scheme = urlsplit(uri).scheme
    try:
        _tracking_store_registry.get_store_builder(uri)
    except Exception:  # noqa: BLE001 - MLflow raises its own exception types for a scheme it has no store for
        raise TisRayError(f"tracking.mlflow {uri}: the installed MLflow has no tracking store for {scheme}:// URIs "
                          "(database stores need the full mlflow package, not mlflow-skinny)") from None
    try:
        from mlflow.environment_variables import MLFLOW_ALLOW_FILE_STORE
    except ImportError:  # an MLflow before 3 opens file stores as it always did
        return
    if scheme in ("", "file") and not MLFLOW_ALLOW_FILE_STORE.get():
        raise TisRayError(f"tracking.mlflow {uri}: MLflow {_mlflow_version()} opens a file store only with "
                          "MLFLOW_ALLOW_FILE_STORE=true; set it, or point it at an MLflow server "
                          "(http://HOST:PORT)")


def _mlflow_version() -> str:
    import mlflow

    return mlflow.__version__
