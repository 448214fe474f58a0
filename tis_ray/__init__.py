"""tis_ray: which training examples matter? Data-subset sweeps for transformers on Ray Tune.

From a notebook:

    import tis_ray
    table = tis_ray.load("runs/demo")                  # one row per trial (per_epoch=True: per trial-epoch)
    spec = tis_ray.load_spec("experiments/demo.yaml", ["train.epochs=2"])
    tis_ray.run_sweep(spec)                            # local Ray; address="auto" for a running cluster
    tis_ray.sweep_status("runs/demo").trials           # the live view, as a DataFrame
    tis_ray.plan(spec, pilot="runs/demo")              # seeds each comparison needs, as a DataFrame
    tis_ray.attribute("runs/datamodels_demo")          # datamodels + LDS into RUN_DIR/attribution
"""

from __future__ import annotations

from tis_ray import logs as _logs

_logs.every_trial_line()  # before anything imports Ray, which reads RAY_DEDUP_LOGS at import

__version__ = "0.1.0"
__all__ = ["attribute", "load", "load_spec", "plan", "run_sweep", "sweep_status"]


def load(run_dir_or_table, per_epoch: bool = False):
    """Return a sweep's results as a pandas DataFrame: a run directory (local path or URI; trials that never
    started included, with status not_started) or an exported .parquet / .csv table."""
    from tis_ray.export import export_table, read_table

    source = str(run_dir_or_table)
    if source.split("?")[0].endswith((".parquet", ".csv")):
        return read_table(source)
    return export_table(source, per_epoch=per_epoch)


def load_spec(path, overrides: list[str] | None = None):
    """Return the validated spec in a YAML file, with dotted `overrides` ('train.epochs=2') applied."""
    from tis_ray.spec import load_spec as _load_spec

    return _load_spec(path, overrides)


def run_sweep(spec, *, address: str | None = None, resume: bool = False, num_cpus: int | None = None):
    """Run (or resume) a sweep of a spec; returns Ray Tune's ResultGrid. `tis-ray sweep` without the export."""
    from tis_ray.sweep import run_sweep as _run_sweep

    return _run_sweep(spec, address=address, resume=resume, num_cpus=num_cpus)


def sweep_status(run_dir):
    """Return the live status of a sweep (its trials by state, elapsed time, ETA) from its run directory."""
    from tis_ray.status import sweep_status as _sweep_status

    return _sweep_status(str(run_dir))


def plan(spec, pilot=None, difference: float = 1.0, hans_difference: float = 5.0, power: float = 0.8):
    """Return the seeds each comparison of `spec` needs to detect `difference` points on MNLI and
    `hans_difference` on HANS: from a pilot run directory's spread when given, else the documented defaults."""
    from tis_ray.planning import pilot_paired_table, seed_plan

    table = pilot_paired_table(str(pilot), spec.report.baseline) if pilot else None
    return seed_plan(spec, difference, hans_difference, table, power=power)


def attribute(run_dir, targets: list[str] | None = None, scores: dict[str, str] | None = None,
              estimator: str = "ridge", per_example: bool = False):
    """Fit datamodels from a run's random-subset trials and score every score by its aggregate and per-example
    LDS (held-out trials, within budgets), into RUN_DIR/attribution; returns the manifest's path. `tis-ray
    attribute` in a notebook."""
    from tis_ray.attribution import attribute as _attribute

    return _attribute(str(run_dir), targets, scores, estimator=estimator, per_example=per_example)
