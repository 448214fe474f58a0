"""Arms that learned nothing. An arm (a setting at a budget) is at chance level on an evaluation set when its
accuracy, averaged over seeds, is within binomial noise of always answering the set's most common label:

    mean accuracy <= p + Z * sqrt(p * (1 - p) / n)

p: the share of the set's most common label, n: its examples. The right side is the upper end of the 95%
(normal-approximation) interval of the accuracy a majority-label answer gets on n examples; an arm below it is
indistinguishable from that answer, or worse. A verdict between two such arms compares models that learned
nothing, whatever its p-value.
"""

from __future__ import annotations

import io
import math

import pandas as pd

from tis_ray.storage import Storage

Z = 1.96  # two-sided 95%
ARM = ["setting", "budget"]
ARM_COLUMNS = ["setting", "budget", "set", "accuracy", "seeds", "majority", "n_eval", "ceiling", "chance_level"]


def chance_ceiling(majority: float, n_eval: int) -> float:
    """Return the highest mean accuracy still at chance level on a set of `n_eval` examples whose most common
    label has share `majority`: majority + Z * sqrt(majority * (1 - majority) / n_eval)."""
    return majority + Z * math.sqrt(majority * (1 - majority) / n_eval)


def majority_shares(source: str) -> dict[str, tuple[float, int]]:
    """Return {evaluation set: (share of its most common gold label, its number of examples)} from a run
    directory's prepared data (local or a URI); {} when it has none (an exported table, a run not prepared)."""
    storage = Storage(source)
    for key in storage.folders("prepared/data"):
        manifest = f"prepared/data/{key}/data.json"
        if not storage.exists(manifest):
            continue
        shares = {}
        for name, rel in storage.read_json(manifest).get("eval_meta", {}).items():
            labels = pd.read_parquet(io.BytesIO(storage.read_bytes(f"prepared/data/{key}/{rel}")))["label"]
            if len(labels):
                shares[name] = (float(labels.value_counts(normalize=True).max()), len(labels))
        return shares  # every tokenizer's copy holds the same labels
    return {}


def chance_level_arms(done: pd.DataFrame, shares: dict[str, tuple[float, int]]) -> pd.DataFrame:
    """Return one row per arm (setting, budget) and evaluation set of `shares` that `done` has '<set>/acc' for:
    its mean accuracy over seeds, the set's majority share and size, the chance ceiling and whether the arm is
    at chance level (mean accuracy <= ceiling)."""
    rows = []
    for name, (majority, n_eval) in shares.items():
        column = f"{name}/acc"
        if column not in done or done[column].isna().all():
            continue
        ceiling = chance_ceiling(majority, n_eval)
        for (setting, budget), part in done.groupby(ARM, dropna=False):
            accuracy = part[column].mean()
            if pd.notna(accuracy):
                rows.append({"setting": setting, "budget": budget, "set": name, "accuracy": float(accuracy),
                             "seeds": int(part[column].notna().sum()), "majority": majority, "n_eval": n_eval,
                             "ceiling": ceiling, "chance_level": bool(accuracy <= ceiling)})
    return pd.DataFrame(rows, columns=ARM_COLUMNS)


def chance_level_comparisons(paired: pd.DataFrame, done: pd.DataFrame, baseline_rows: pd.Series,
                             arms: pd.DataFrame) -> pd.Series:
    """Return, per row of the paired table, whether it compares a chance-level arm: the setting's arm at that
    budget, or the baseline's (`baseline_rows`: which rows of `done` are the baseline sampler), is at chance
    level on the metric's evaluation set."""
    if arms.empty or paired.empty:
        return pd.Series(False, index=paired.index)
    at_chance = {(r.setting, _key(r.budget), r.set) for r in arms.itertuples() if r.chance_level}
    base = done[baseline_rows]
    ceilings = arms.drop_duplicates("set").set_index("set")["ceiling"]
    base_at_chance = {(_key(budget), name) for name in ceilings.index if f"{name}/acc" in base
                      for budget, part in base.groupby("budget", dropna=False)
                      if part[f"{name}/acc"].mean() <= ceilings[name]}
    flags = []
    for row in paired.itertuples():
        name = str(row.metric).split("/")[0]
        flags.append((row.setting, _key(row.budget), name) in at_chance or (_key(row.budget), name) in base_at_chance)
    return pd.Series(flags, index=paired.index)


def _key(budget) -> float | str:
    return "own size" if pd.isna(budget) else float(budget)
