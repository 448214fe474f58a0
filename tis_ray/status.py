"""`tis-ray status RUN_DIR`: the live view of a sweep from its run directory alone (local or a URI), no Ray.

Each trial by state (pending, running with its epoch, done, failed with the last line of its error) and its
latest metrics; the sweep's elapsed time and an ETA from the finished trials' durations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

from tis_ray.export import export_table

STATES = {"completed": "done", "incomplete": "running", "failed": "failed", "not_started": "pending"}
SHOWN = [("mnli_m/acc", "MNLI-m"), ("mnli_mm/acc", "MNLI-mm"), ("hans/acc", "HANS"), ("train/loss", "loss")]


@dataclass
class SweepStatus:
    """What `tis-ray status` prints: one row per trial, and the sweep's counts, elapsed time and ETA."""

    trials: pd.DataFrame  # state, trial, epoch, the latest accuracy of each evaluation set and the training loss
    counts: dict[str, int]
    elapsed_s: float | None  # from the first trial's first report to the newest report (or now, while running)
    eta_s: float | None  # None until a trial has finished, or when nothing is left

    def render(self) -> str:
        """Return the status as text: a summary line, then the trials table."""
        counts = ", ".join(f"{self.counts.get(s, 0)} {s}" for s in ("done", "running", "failed", "pending"))
        parts = [f"{sum(self.counts.values())} trials: {counts}"]
        if self.elapsed_s is not None:
            parts.append(f"elapsed {timedelta(seconds=round(self.elapsed_s))}")
        if self.eta_s is not None:
            parts.append(f"ETA ~{timedelta(seconds=round(self.eta_s))} (from the finished trials' durations)")
        table = self.trials.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}")
        return "; ".join(parts) + "\n" + table


def sweep_status(run_dir: str, now: float | None = None) -> SweepStatus:
    """Return the status of the sweep in `run_dir` (finished, running or interrupted)."""
    table = export_table(run_dir)
    now = time.time() if now is None else now
    rows = pd.DataFrame({"state": table["status"].map(STATES).fillna(table["status"]),
                         "trial": table["trial_id"].fillna(table["setting"]), "seed": table["seed"],
                         "epoch": table["epoch"]})
    from tis_ray.report import METRIC_LABELS, eval_set_names

    sets = eval_set_names(table)
    shown = (SHOWN if not sets or {"mnli_m", "hans"} & set(sets) else  # the MNLI sources' columns, as ever
             [(f"{name}/acc", METRIC_LABELS.get(f"{name}/acc", name)) for name in sets] + [SHOWN[-1]])
    for column, label in shown:
        rows[label] = table[column] if column in table else float("nan")
    rows["error"] = table["error"].fillna("") if "error" in table else ""
    order = {"running": 0, "failed": 1, "pending": 2, "done": 3}
    rows = rows.sort_values("state", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    counts = rows["state"].value_counts().to_dict()
    first, last = table.get("first_report_time"), table.get("last_report_time")
    elapsed = None
    if first is not None and first.notna().any():
        end = now if counts.get("running") else float(last.max())
        elapsed = end - float(first.min())
    eta = None
    left = counts.get("pending", 0) + counts.get("running", 0)
    durations = table.loc[table["status"] == "completed", "trial_time_s"] if "trial_time_s" in table else None
    if left and durations is not None and durations.notna().any():
        at_once = max(1, counts.get("running", 0))
        eta = float(durations.mean()) * (counts.get("pending", 0) + 0.5 * counts.get("running", 0)) / at_once
    return SweepStatus(rows, counts, elapsed, eta)
