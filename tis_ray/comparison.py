"""Accuracy per epoch under both protocols, and our numbers beside the original's (the spec's `expected:`).

The original's per-epoch numbers come from separate runs, one per epoch count, each with its own learning-rate
schedule decaying to 0 (its scripts evaluate once, after training); reading epoch k of one long run is another
protocol. A spec gets the original's by an axis over `train.epochs`; every table here says which protocol a
row is, so the two are never mixed up.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tis_ray.samplers import sampler_key
from tis_ray.spec import ExpectedSpec, GridPoint

EPOCHS_AXIS = "train.epochs"
SEPARATE = "separate runs (the original's)"  # epoch k = the final epoch of a k-epoch run
ONE_RUN = "one run"  # epoch k of the longest run of the setting (an extension of the original)
MNLI_PERCENT = (("mnli_m/acc", "MNLI-m"), ("mnli_mm/acc", "MNLI-mm"))


def sampler_entries(table: pd.DataFrame) -> list[dict]:
    """Return each row's sampler entry {'type': ..., params} from its `sampler` and `sampler_params` columns."""
    params = table["sampler_params"] if "sampler_params" in table else pd.Series("{}", index=table.index)
    return [{"type": t, **json.loads(p or "{}")} for t, p in zip(table["sampler"], params, strict=True)]


def budget_of(row) -> float:
    """Return a row's budget as a number: data % (0.1 -> 10.0), n_examples, or NaN for a budget-free sampler."""
    if pd.notna(row.get("data_pct")):
        return round(100 * float(row["data_pct"]), 4)
    return float(row["n_examples"]) if pd.notna(row.get("n_examples")) else float("nan")


def with_run_epochs(table: pd.DataFrame, default_epochs: int | None) -> pd.DataFrame:
    """Return the per-epoch rows of `table` with `base` (the setting without its train.epochs value),
    `run_epochs` (the epochs its trial was set to train; the spec's train.epochs without an axis, else the
    trial's last reported epoch) and `budget` columns."""
    rows = table[table["epoch"].notna()].copy()
    if rows.empty:
        return rows.assign(base=[], run_epochs=[], budget=[])
    overrides = [json.loads(o or "{}") for o in rows["overrides"]]
    rows["base"] = [GridPoint(sampler=entry, overrides={k: v for k, v in o.items() if k != EPOCHS_AXIS}).label()
                    if EPOCHS_AXIS in o else setting
                    for entry, setting, o in zip(sampler_entries(rows), rows["setting"], overrides, strict=True)]
    last = rows.groupby("trial_id")["epoch"].transform("max")
    fallback = last if default_epochs is None else pd.Series(default_epochs, index=rows.index)
    rows["run_epochs"] = [o.get(EPOCHS_AXIS, f) for o, f in zip(overrides, fallback, strict=True)]
    rows["budget"] = rows.apply(budget_of, axis=1)
    return rows


def protocol_rows(table: pd.DataFrame, default_epochs: int | None) -> pd.DataFrame:
    """Return per-epoch accuracy rows labelled by protocol.

    'separate runs': for a setting with an axis over train.epochs, each completed trial's final epoch, at
    epoch = its epoch count. 'one run': every epoch of the setting's longest run (per budget and seed).
    """
    rows = with_run_epochs(table, default_epochs)
    if rows.empty:
        return rows.assign(protocol=[])
    keys = ["base", "budget", "seed"]
    axis = rows.groupby(["base", "budget"], dropna=False)["run_epochs"].transform("nunique") > 1
    separate = rows[axis & (rows["epoch"] == rows["run_epochs"]) & (rows["status"] == "completed")]
    longest = rows.groupby(keys, dropna=False)["run_epochs"].transform("max")
    one_run = rows[rows["run_epochs"] == longest]
    return pd.concat([separate.assign(protocol=SEPARATE), one_run.assign(protocol=ONE_RUN)], ignore_index=True)


def epoch_table(table: pd.DataFrame, default_epochs: int | None, metrics=MNLI_PERCENT) -> pd.DataFrame:
    """Return accuracy in % (`metrics`: (column, label) pairs, default MNLI's) per (setting, budget, protocol,
    epoch): mean, std and seeds."""
    rows = protocol_rows(table, default_epochs)
    cols = [(c, label) for c, label in metrics if c in rows and rows[c].notna().any()]
    grouped = rows.groupby(["base", "budget", "protocol", "epoch"], dropna=False)
    out = pd.concat({label: grouped[c].agg(["mean", "std"]) * 100 for c, label in cols}, axis=1)
    out[("seeds", "n")] = grouped["seed"].nunique()
    return out.rename_axis(["setting", "budget", "protocol", "epoch"]).sort_index()


def epoch_table_per_seed(table: pd.DataFrame, default_epochs: int | None, metric: str = "mnli_m/acc") -> pd.DataFrame:
    """Return `metric` in % per (setting, budget, protocol, epoch), one column per seed."""
    rows = protocol_rows(table, default_epochs)
    out = rows.pivot_table(index=["base", "budget", "protocol", "epoch"], columns="seed", values=metric,
                           aggfunc="mean", dropna=False) * 100
    out.columns = [f"seed {int(s)}" for s in out.columns]
    return out.rename_axis(["setting", "budget", "protocol", "epoch"]).dropna(how="all").sort_index()


COMPARISON_COLUMNS = ["setting", "budget", "seed", "epochs", "protocol", "seeds", "MNLI-m ours", "MNLI-m original",
                      "MNLI-m diff", "MNLI-mm ours", "MNLI-mm original", "MNLI-mm diff", "flag"]


def compare_with_expected(table: pd.DataFrame, expected: ExpectedSpec, default_epochs: int) -> pd.DataFrame:
    """Return one row per expected cell: our accuracy in % (mean over the matching seeds, or that seed) beside
    the original's, the difference (ours - original), the protocol it was read under and the row's flag.

    A cell matches trials of the same sampler (defaults filled in), extra-axis values and budget; at
    `epochs`, the separate run of that many epochs where the spec has one, else epoch `epochs` of one run.
    Cells without any matching result keep a row with empty ours.
    """
    rows = protocol_rows(table, default_epochs)
    if not rows.empty:
        rows["_sampler"] = [sampler_key(entry) for entry in sampler_entries(rows)]
        rows["_overrides"] = [json.dumps({k: v for k, v in json.loads(o or "{}").items() if k != EPOCHS_AXIS},
                                         sort_keys=True) for o in rows["overrides"]]
    out = []
    for cell in expected.rows:
        budget = (round(100 * cell.data_pct, 4) if cell.data_pct is not None
                  else float(cell.n_examples) if cell.n_examples is not None else float("nan"))
        epochs = cell.epochs if cell.epochs is not None else default_epochs
        match = rows.iloc[0:0] if rows.empty else rows[
            (rows["_sampler"] == sampler_key(cell.sampler))
            & (rows["_overrides"] == json.dumps(cell.overrides, sort_keys=True))
            & (np.isclose(rows["budget"], budget) | (rows["budget"].isna() & np.isnan(budget)))
            & (rows["epoch"] == epochs)]
        if cell.seed is not None:
            match = match[match["seed"] == cell.seed]
        protocol = SEPARATE if (match["protocol"] == SEPARATE).any() else ONE_RUN
        match = match[match["protocol"] == protocol]
        setting = GridPoint(sampler=cell.sampler, overrides=cell.overrides).label()
        result = {"setting": setting, "budget": budget, "seed": cell.seed if cell.seed is not None else "mean",
                  "epochs": epochs, "protocol": protocol if len(match) else "—", "seeds": match["seed"].nunique(),
                  "flag": cell.flag or ""}
        for column, label in MNLI_PERCENT:
            original = cell.mnli_m if column == "mnli_m/acc" else cell.mnli_mm
            ours = 100 * match[column].mean() if len(match) and column in match else float("nan")
            result[f"{label} ours"] = ours
            result[f"{label} original"] = original if original is not None else float("nan")
            result[f"{label} diff"] = ours - original if original is not None else float("nan")
        out.append(result)
    return pd.DataFrame(out, columns=COMPARISON_COLUMNS)
