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
from tis_ray.io import read_json, write_via
from tis_ray.spec import GridPoint, load_run_spec

log = logging.getLogger(__name__)

KEY_COLUMNS = ["trial_id", "status", "setting", "sampler", "sampler_params", "overrides", "seed", "budget_kind",
               "data_pct", "n_examples", "n_train", "epoch"]
TUNE_BOOKKEEPING = {"timestamp", "checkpoint_dir_name", "done", "training_iteration", "date", "time_this_iter_s",
                    "time_total_s", "pid", "hostname", "time_since_restore", "iterations_since_restore", "final",
                    "trial_id", "config", "logdir"}


def _read_results(path: Path) -> list[dict]:
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a killed process
                continue
    return rows


def _last_error(trial_dir: Path) -> str | None:
    error = trial_dir / "error.txt"
    if not error.is_file():
        return None
    lines = [line.strip() for line in error.read_text().splitlines() if line.strip()]
    return lines[-1] if lines else "failed"


def point_of(params: dict) -> GridPoint:
    """Return the grid point of a trial's params.json (also the flat layout of runs before GridPoint)."""
    if "point" in params:
        return GridPoint.model_validate(params["point"])
    return GridPoint(seed=params.get("seed", 42), **(params.get("budget") or {}),
                     sampler=params.get("sampler") or {"type": "random"}, overrides=params.get("overrides") or {})


def _base_row(trial_id: str | None, point: GridPoint, status: str, error: str | None) -> dict:
    return {"trial_id": trial_id, "status": status, "error": error, **point.row_fields()}


def expected_grid(run_dir: Path) -> list[GridPoint]:
    """Return the grid points of the run's recorded spec (empty without one, or when it no longer validates)."""
    try:
        spec = load_run_spec(run_dir)
    except SpecError as exc:
        log.warning("%s; trials that never started are not listed", exc)
        return []
    return spec.grid_points() if spec is not None else []


def _trial_rows(trial_dir: Path, per_epoch: bool) -> list[dict]:
    point = point_of(read_json(trial_dir / "params.json"))
    results = _read_results(trial_dir / "result.json")
    by_epoch: dict[int, dict] = {}
    for row in results:  # a retried trial reports its epochs again: the last attempt wins
        if "epoch" in row:
            by_epoch[int(row["epoch"])] = row
    completed = any(row.get("final") for row in by_epoch.values())
    error = None if completed else _last_error(trial_dir)
    status = "completed" if completed else ("failed" if error else "incomplete")
    base = {**_base_row(trial_dir.name, point, status, error), "_grid_key": point.key()}
    epochs = [by_epoch[e] for e in sorted(by_epoch)]
    if not per_epoch:
        epochs = epochs[-1:]
    if not epochs:
        return [base]
    return [{**base, **{k: v for k, v in row.items() if k not in TUNE_BOOKKEEPING and k not in base}}
            for row in epochs]


def trial_dirs(run_dir: str | Path) -> list[Path]:
    """Return the trial folders of a run directory (those holding Tune's params.json)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TisRayError(f"{run_dir}: no such run directory")
    return sorted(p.parent for p in run_dir.glob("*/params.json"))


def export_table(run_dir: str | Path, per_epoch: bool = False) -> pd.DataFrame:
    """Return the tidy results table of a finished, interrupted or resumed run directory.

    Trials of the spec's grid that never started (an interrupted sweep) get a row with status not_started.
    """
    run_dir = Path(run_dir)
    dirs = trial_dirs(run_dir)
    expected = expected_grid(run_dir)
    if not dirs and not expected:
        raise TisRayError(f"{run_dir}: no trials found (expected */params.json written by Ray Tune)")
    rows = [row for d in dirs for row in _trial_rows(d, per_epoch)]
    seen = {row["_grid_key"] for row in rows}
    rows += [_base_row(None, point, "not_started", None) for point in expected if point.key() not in seen]
    table = pd.DataFrame(rows).drop(columns="_grid_key", errors="ignore")
    for column in KEY_COLUMNS:
        if column not in table:
            table[column] = None
    order = [c for c in ["setting", "data_pct", "n_examples", "seed", "epoch"] if table[c].notna().any()]
    table = table.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)
    return table[KEY_COLUMNS + [c for c in table.columns if c not in KEY_COLUMNS]]


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write `table` as Parquet or CSV (by suffix) via write-then-rename; returns the path."""
    path = Path(path)
    if path.suffix == ".csv":
        return write_via(path, lambda tmp: table.to_csv(tmp, index=False))
    if path.suffix == ".parquet":
        return write_via(path, lambda tmp: table.to_parquet(tmp, index=False))
    raise TisRayError(f"{path}: export writes .parquet or .csv")


def read_table(path: str | Path) -> pd.DataFrame:
    """Return an exported table (.parquet or .csv), or the export of a run directory."""
    path = Path(path)
    if path.is_dir():
        return export_table(path, per_epoch=True)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    raise TisRayError(f"{path}: expected a run directory, a .parquet or a .csv table")

