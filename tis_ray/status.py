"""`tis-ray status RUN_DIR`: the live view of a sweep from its run directory alone (local or a URI), no Ray.

Each trial by state (pending, running with its epoch, interrupted when no driver runs the sweep any more,
done, failed with the last line of its error) and its latest metrics; the sweep's elapsed time and, while a
driver runs it, an ETA from the finished trials' durations.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta

import pandas as pd

from tis_ray.export import export_table
from tis_ray.storage import Storage, join

log = logging.getLogger(__name__)

DRIVER_FILE = "driver.json"  # in the run directory: whether a `tis-ray sweep` driver runs the sweep now

STATES = {"completed": "done", "incomplete": "running", "failed": "failed", "not_started": "pending"}
SHOWN = [("mnli_m/acc", "MNLI-m"), ("mnli_mm/acc", "MNLI-mm"), ("hans/acc", "HANS"), ("train/loss", "loss")]


@dataclass
class SweepStatus:
    """What `tis-ray status` prints: one row per trial, and the sweep's counts, elapsed time and ETA."""

    trials: pd.DataFrame  # state, trial, epoch, the latest accuracy of each evaluation set and the training loss
    counts: dict[str, int]
    elapsed_s: float | None  # from the first trial's first report to the newest report (or now, while running)
    eta_s: float | None  # None until a trial has finished, when nothing is left, or when no driver runs
    notes: list[str] = field(default_factory=list)  # lines after the table: where failed trials' errors are

    def render(self) -> str:
        """Return the status as text: a summary line, then the trials table, then the notes."""
        shown = ("done", "running", *(["interrupted"] if self.counts.get("interrupted") else []), "failed", "pending")
        counts = ", ".join(f"{self.counts.get(s, 0)} {s}" for s in shown)
        parts = [f"{sum(self.counts.values())} trials: {counts}"]
        if self.elapsed_s is not None:
            parts.append(f"elapsed {timedelta(seconds=round(self.elapsed_s))}")
        if self.eta_s is not None:
            parts.append(f"ETA ~{timedelta(seconds=round(self.eta_s))} (from the finished trials' durations)")
        table = self.trials.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}")
        return "\n".join(["; ".join(parts), table, *self.notes])


def driver_started(storage: Storage) -> None:
    """Record in the run directory that a driver (this process, on this host) runs the sweep now."""
    storage.write_json(DRIVER_FILE, {"state": "running", "host": socket.gethostname(), "pid": os.getpid(),
                                     "pid_started": _process_start(os.getpid()), "since": time.time()})


def driver_ended(storage: Storage) -> None:
    """Record that the driver stopped (finished, interrupted or failed); a storage that cannot be written to any
    more only costs the status its 'interrupted' (a warning)."""
    try:
        storage.write_json(DRIVER_FILE, {"state": "ended", "at": time.time()})
    except OSError as exc:
        log.warning("could not record the driver's end in %s: %s", storage.location, str(exc).splitlines()[0])


def driver_running(storage: Storage) -> bool | None:
    """Return whether a driver runs the sweep: False once it ended, or when it ran on this host and its process
    is gone (killed); True while it runs (or ran on another host, which cannot be asked); None for a run
    directory without a driver record (an older tis_ray)."""
    if not storage.exists(DRIVER_FILE):
        return None
    record = storage.read_json(DRIVER_FILE)
    if record.get("state") != "running":
        return False
    if record.get("host") != socket.gethostname():
        return True
    started = record.get("pid_started")
    return started is not None and _process_start(record.get("pid")) == started


def _process_start(pid: int | None) -> float | None:
    """Return the start time of process `pid` (None when there is none): a PID reused later starts later."""
    import psutil

    try:
        return psutil.Process(pid).create_time() if pid else None
    except psutil.Error:
        return None


def sweep_status(run_dir: str, now: float | None = None) -> SweepStatus:
    """Return the status of the sweep in `run_dir` (finished, running or interrupted)."""
    table = export_table(run_dir)
    driver = driver_running(Storage(run_dir))
    now = time.time() if now is None else now
    states = STATES if driver is not False else {**STATES, "incomplete": "interrupted"}
    rows = pd.DataFrame({"state": table["status"].map(states).fillna(table["status"]),
                         "trial": table["trial_id"].fillna(table["setting"]), "seed": table["seed"],
                         "epoch": table["epoch"]})
    from tis_ray.report import METRIC_LABELS, eval_set_names

    sets = eval_set_names(table)
    shown = (SHOWN if not sets or {"mnli_m", "hans"} & set(sets) else  # the MNLI sources' columns, as ever
             [(f"{name}/acc", METRIC_LABELS.get(f"{name}/acc", name)) for name in sets] + [SHOWN[-1]])
    for column, label in shown:
        rows[label] = table[column] if column in table else float("nan")
    rows["error"] = table["error"].fillna("") if "error" in table else ""
    order = {"running": 0, "interrupted": 0, "failed": 1, "pending": 2, "done": 3}
    rows = rows.sort_values("state", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    counts = rows["state"].value_counts().to_dict()
    first, last = table.get("first_report_time"), table.get("last_report_time")
    elapsed = None
    if first is not None and first.notna().any():
        end = now if counts.get("running") else float(last.max())
        elapsed = end - float(first.min())
    eta = None
    left = counts.get("pending", 0) + counts.get("running", 0) + counts.get("interrupted", 0)
    durations = table.loc[table["status"] == "completed", "trial_time_s"] if "trial_time_s" in table else None
    if left and driver is not False and durations is not None and durations.notna().any():
        at_once = max(1, counts.get("running", 0))
        eta = float(durations.mean()) * (counts.get("pending", 0) + 0.5 * counts.get("running", 0)) / at_once
    notes = [f"failed: {row['trial']}: {join(run_dir, row['trial'], 'error.txt')}"
             for _, row in rows[rows["state"] == "failed"].iterrows()]
    if driver is False and left:
        notes.append(f"interrupted: no driver runs this sweep; {left} trials unfinished: continue it with "
                     "tis-ray sweep SPEC --resume")
    return SweepStatus(rows, counts, elapsed, eta, notes)
