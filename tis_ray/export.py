"""A run directory -> one tidy table (a row per trial, or per trial-epoch), with no live Ray.

Reads Tune's per-trial JSON files (params.json, result.json, error.txt) directly: Tune's own
ExperimentAnalysis would unpickle trial state, and the run directory alone must be enough.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from tis_ray.errors import SpecError, TisRayError
from tis_ray.io import write_via
from tis_ray.spec import GridPoint, load_run_spec
from tis_ray.storage import Storage, is_uri

log = logging.getLogger(__name__)

KEY_COLUMNS = ["trial_id", "status", "setting", "sampler", "sampler_params", "overrides", "seed", "budget_kind",
               "data_pct", "n_examples", "n_train", "epoch"]
TUNE_BOOKKEEPING = {"timestamp", "checkpoint_dir_name", "done", "training_iteration", "date", "time_this_iter_s",
                    "time_total_s", "pid", "hostname", "time_since_restore", "iterations_since_restore", "final",
                    "trial_id", "config", "logdir"}


def _read_results(storage: Storage, rel: str) -> list[dict]:
    rows = []
    if storage.exists(rel):
        for line in storage.read_text(rel).splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a killed process
                continue
    return rows


def _last_error(storage: Storage, trial: str) -> str | None:
    if not storage.exists(f"{trial}/error.txt"):
        return None
    lines = [line.strip() for line in storage.read_text(f"{trial}/error.txt").splitlines() if line.strip()]
    return lines[-1] if lines else "failed"


def point_of(params: dict) -> GridPoint:
    """Return the grid point of a trial's params.json (also the flat layout of runs before GridPoint)."""
    if "point" in params:
        return GridPoint.model_validate(params["point"])
    return GridPoint(seed=params.get("seed", 42), **(params.get("budget") or {}),
                     sampler=params.get("sampler") or {"type": "random"}, overrides=params.get("overrides") or {})


def _base_row(trial_id: str | None, point: GridPoint, status: str, error: str | None) -> dict:
    return {"trial_id": trial_id, "status": status, "error": error, **point.row_fields()}


def _recorded_spec(run_dir: str | Path):
    try:
        return load_run_spec(run_dir)
    except SpecError as exc:
        log.warning("%s; trials that never started are not listed", exc)
        return None


def _trial_rows(storage: Storage, trial: str, per_epoch: bool) -> list[dict]:
    point = point_of(storage.read_json(f"{trial}/params.json"))
    results = _read_results(storage, f"{trial}/result.json")
    by_epoch: dict[int, dict] = {}
    for row in results:  # a retried trial reports its epochs again: the last attempt wins
        if "epoch" in row:
            by_epoch[int(row["epoch"])] = row
    completed = any(row.get("final") for row in by_epoch.values())
    error = None if completed else _last_error(storage, trial)
    status = "completed" if completed else ("failed" if error else "incomplete")
    base = {**_base_row(trial, point, status, error), "_grid_key": point.key()}
    if results:  # when the trial reported first and last, and how long it has trained (Tune's own clock)
        base.update(first_report_time=results[0].get("timestamp"), last_report_time=results[-1].get("timestamp"),
                    trial_time_s=results[-1].get("time_total_s"))
    epochs = [by_epoch[e] for e in sorted(by_epoch)]
    if not per_epoch:
        epochs = epochs[-1:]
    if not epochs:
        return [base]
    return [{**base, **{k: v for k, v in row.items() if k not in TUNE_BOOKKEEPING and k not in base}}
            for row in epochs]


def trial_dirs(storage: Storage) -> list[str]:
    """Return the names of the trial folders of a run directory (those holding Tune's params.json)."""
    if not storage.exists():
        raise TisRayError(f"{storage.location}: no such run directory")
    return [name for name in storage.folders() if storage.exists(f"{name}/params.json")]


def export_table(run_dir: str | Path, per_epoch: bool = False) -> pd.DataFrame:
    """Return the tidy results table of a finished, interrupted or resumed run directory.

    Trials of the spec's grid that never started (an interrupted sweep) get a row with status not_started.
    Columns revision/<source> hold the revision of the model and of each data source the run read.
    """
    storage = Storage(run_dir)
    trials = trial_dirs(storage)
    spec = _recorded_spec(run_dir)
    expected = spec.grid_points() if spec is not None else []
    if not trials and not expected:
        raise TisRayError(f"{run_dir}: no trials found (expected */params.json written by Ray Tune)")
    rows = [row for trial in trials for row in _trial_rows(storage, trial, per_epoch)]
    seen = {row["_grid_key"] for row in rows}
    rows += [_base_row(None, point, "not_started", None) for point in expected if point.key() not in seen]
    table = pd.DataFrame(rows).drop(columns="_grid_key", errors="ignore")
    for source, revision in (spec.provenance.items() if spec is not None else ()):  # what every trial read
        table[f"revision/{source}"] = revision
    for column in KEY_COLUMNS:
        if column not in table:
            table[column] = None
    order = [c for c in ["setting", "data_pct", "n_examples", "seed", "epoch"] if table[c].notna().any()]
    table = table.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)
    rest = [c for c in table.columns if c not in KEY_COLUMNS]
    if spec is not None:  # each evaluation set's metrics together, in the spec's order (the report's order)
        sets = spec.eval_set_names()
        position = {name: i for i, name in enumerate(sets)}
        rest.sort(key=lambda c: position.get(c.split("/")[0], len(sets)))  # stable: the rest keep their order
    return table[KEY_COLUMNS + rest]


def _suffix(path: str | Path) -> str:
    return Path(str(path).split("?")[0]).suffix


def write_table(table: pd.DataFrame, path: str | Path) -> str:
    """Write `table` as Parquet or CSV (by suffix) to a local path (via write-then-rename) or a URI; returns it."""
    suffix = _suffix(path)
    if suffix not in (".csv", ".parquet"):
        raise TisRayError(f"{path}: export writes .parquet or .csv")
    if not is_uri(str(path)):
        if suffix == ".csv":
            return str(write_via(path, lambda tmp: table.to_csv(tmp, index=False)))
        return str(write_via(path, lambda tmp: table.to_parquet(tmp, index=False)))
    target = Storage(path)
    with target.fs.open_output_stream(target.root) as handle:
        if suffix == ".csv":
            handle.write(table.to_csv(index=False).encode())
        else:
            table.to_parquet(handle, index=False)
    return str(path)


def read_table(path: str | Path) -> pd.DataFrame:
    """Return an exported table (.parquet or .csv, local or a URI), or the export of a run directory."""
    suffix = _suffix(path)
    if suffix not in (".parquet", ".csv"):
        return export_table(path, per_epoch=True)
    source = Storage(path)
    if not source.exists():
        raise TisRayError(f"{path}: no such table")
    with source.fs.open_input_file(source.root) as handle:
        return pd.read_parquet(handle) if suffix == ".parquet" else pd.read_csv(handle)

