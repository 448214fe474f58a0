"""The experiment trackers researchers already use, as Ray Tune callbacks (spec block `tracking:`): MLflow and
Weights & Biases, one run per trial named by its folder, the grid point's fields as its parameters, every
epoch's metrics at step = epoch. Both are optional extras (`pip install 'tis-ray[tracking]'`)."""

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


def _epoch_step(result: dict) -> int:
    return int(result.get("epoch") or result.get("training_iteration") or 0)


def tracking_callbacks(spec: SweepSpec) -> list:
    """Return the Tune logger callbacks the spec's `tracking:` block asks for (empty without one)."""
    from tis_ray.sweep import trial_folder

    t = spec.tracking
    callbacks = []
    if t.mlflow:
        try:
            import mlflow  # noqa: F401
            from ray.air.integrations.mlflow import MLflowLoggerCallback
        except ImportError:
            raise TisRayError("tracking.mlflow needs MLflow: pip install 'tis-ray[tracking]' (or mlflow-skinny)") from None

        class GridPointMLflow(MLflowLoggerCallback):
            """Ray's MLflow callback with the grid point's fields as parameters (not the whole trial config,
            which holds the spec and paths) and the epoch as each metric's step."""

            def log_trial_start(self, trial):
                if trial not in self._trial_runs:
                    run = self.mlflow_util.start_run(tags={**self.tags, "trial_name": str(trial)},
                                                     run_name=trial_folder(trial.config["point"], trial.trial_id))
                    self._trial_runs[trial] = run.info.run_id
                    self.mlflow_util.log_params(run_id=run.info.run_id, params_to_log=point_params(trial.config))

            def log_trial_result(self, iteration, trial, result):
                self.mlflow_util.log_metrics(run_id=self._trial_runs[trial], metrics_to_log=result,
                                             step=_epoch_step(result))

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
        callbacks.append(WandbLoggerCallback(project=t.wandb.project or spec.name, group=spec.name,
                                             entity=t.wandb.entity, mode=t.wandb.mode, excludes=NOT_THE_POINT,
                                             log_config=False))
    return callbacks
