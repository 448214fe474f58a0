"""Seeds before GPU-hours: how many seeds each comparison of a spec needs to detect a given difference.

For every sampler of the spec's grid against its baseline, every budget and every compared metric, the std of
the paired differences comes from a pilot run when one is given (that comparison's pooled paired std at that
budget; else the pilot's other comparisons at that budget; else pooled over the pilot's budgets), else from the
seed spread of 100 full-data BERT-base MNLI fine-tunes (tis_ray.statistics.SEED_STD_POINTS, sqrt(2) x for a
paired difference of uncorrelated arms), the same at every budget.

The report Holm-corrects its verdicts over a family of comparisons (report.holm), so each test is planned at
alpha / m for the m comparisons of its family: Holm's first, strictest step (the Bonferroni bound), conservative
for every later step. 100% budgets are left out of the plan and of m: there every sampler takes the whole
training set, and the report reads the arms 'identical' without a test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tis_ray.spec import SweepSpec
from tis_ray.statistics import (
    ALPHA,
    POWER,
    SEED_STD_POINTS,
    SEED_STD_SOURCE,
    minimum_detectable_difference,
    paired_std_from_seed_std,
    paired_t_power,
    seeds_needed,
)

PLAN_COLUMNS = ["comparison", "metric", "budget", "difference", "paired_std", "std_from", "family", "alpha_per_test",
                "seeds_needed", "seeds_in_spec", "power_with_spec_seeds", "mde_with_spec_seeds"]
DEFAULT_STD_FROM = "full-data BERT-base (McCoy et al. 2020)"


def pooled_paired_std(paired: pd.DataFrame, by=("setting", "metric", "budget")) -> pd.Series:
    """Return the pooled std of paired differences per group of `by` (columns of a paired table): the root of
    the df-weighted mean of the cells' variances (cells with at least 2 pairs and a spread: a cell of identical
    arms, std 0, is left out as the report leaves it untested)."""
    usable = paired[(paired["n"] > 1) & (paired["std"] > 0)]
    df = usable["n"] - 1
    keys = [usable[column] for column in by]
    return np.sqrt((usable["std"] ** 2 * df).groupby(keys).sum() / df.groupby(keys).sum())


def planned_budgets(spec: SweepSpec) -> list[float]:
    """Return the budgets the report will test, as its budget column gives them (data % or n examples; NaN for a
    grid without a budget axis), without the full set (data_pct 1.0), where every sampler is the same subset."""
    budgets = spec.budgets()
    if "data_pct" in budgets[0]:
        return [round(100 * b["data_pct"], 4) for b in budgets if b["data_pct"] < 1.0]
    return [float(b.get("n_examples", np.nan)) for b in budgets]


def holm_family_size(spec: SweepSpec, n_metrics: int) -> int:
    """Return the number of comparisons in one Holm family of the report on a sweep of `spec`: every
    (non-baseline setting, extra-axis value, budget, metric) with report.holm 'table', one setting's budgets
    with 'sampler'; 100% budgets excluded (their arms are identical: no test)."""
    from tis_ray.report import baseline_setting
    from tis_ray.samplers import sampler_label

    labels = [sampler_label(entry) for entry in spec.grid.samplers]
    base = baseline_setting(labels, spec.report.baseline)
    budgets = len(planned_budgets(spec))
    if spec.report.holm == "sampler":
        return budgets
    compared = sum(label != base for label in labels) * len(spec.extra_overrides())
    return compared * budgets * n_metrics


def _pilot_std(stds: dict[str, pd.Series], setting: str, metric: str, budget: float) -> tuple[float, str]:
    """Return the pilot's paired std for one planned cell and where it came from (NaN, '' when it has none)."""
    candidates = (("cell", (setting, metric, budget), "pilot (this comparison, this budget)"),
                  ("budget", (metric, budget), "pilot (all comparisons, this budget)"),
                  ("comparison", (setting, metric), "pilot (this comparison, pooled over budgets)"),
                  ("metric", metric, "pilot (all comparisons, pooled over budgets)"))
    for level, key, source in candidates:
        table = stds.get(level)
        if table is not None and key in table.index and float(table[key]) > 0:
            return float(table[key]), source
    return float("nan"), ""


def pilot_paired_table(pilot: str, baseline: str) -> pd.DataFrame:
    """Return the paired comparisons of a pilot run directory or exported table (every compared metric)."""
    from tis_ray.export import read_table
    from tis_ray.report import final_rows, paired_vs_random

    rows = final_rows(read_table(pilot))
    return paired_vs_random(rows[rows["status"] == "completed"], baseline=baseline)


def planned_metrics(spec: SweepSpec) -> list[str]:
    """Return the metrics a sweep of `spec` compares: MNLI both ways, HANS overall and non-entailed per heuristic
    for the MNLI sources' sets; each other set's accuracy and the compare entries that name a metric."""
    from tis_ray.data.schema import HANS_HEURISTICS

    metrics = []
    for entry in spec.eval_sets:
        if entry == "hans":
            metrics += ["hans/acc", *(f"hans/{h}/non_entailed" for h in HANS_HEURISTICS)]
        elif isinstance(entry, str):
            metrics.append(f"{entry}/acc")
        else:
            metrics += [p for p in entry.compare or [f"{entry.name}/acc"] if not set("*?[") & set(p)]
    return metrics


def seed_plan(spec: SweepSpec, mnli_difference: float = 1.0, hans_difference: float = 5.0,
              pilot: pd.DataFrame | None = None, alpha: float = ALPHA, power: float = POWER) -> pd.DataFrame:
    """Return one row per (comparison, metric, budget): the difference to detect (points), the paired std used
    and where it came from, the Holm family size m and the level each test is planned at (alpha / m), the seeds
    needed at `power`, the spec's seeds, the power they give and the difference they can detect.

    `pilot`: a paired table (`pilot_paired_table`) whose observed stds replace the defaults."""
    from tis_ray.errors import TisRayError
    from tis_ray.report import baseline_setting

    if not alpha < power < 1:
        raise TisRayError(f"--power must be between alpha ({alpha:g}) and 1, got {power:g}")
    if not (mnli_difference > 0 and hans_difference > 0):
        raise TisRayError(f"the difference to detect must be positive, got {mnli_difference:g} (--difference) and "
                          f"{hans_difference:g} (--hans-difference)")
    from tis_ray.samplers import sampler_label

    labels = [sampler_label(entry) for entry in spec.grid.samplers]
    baseline = spec.report.baseline
    base = baseline_setting(labels, baseline)
    stds = {}
    if pilot is not None and not pilot.empty:
        stds = {"cell": pooled_paired_std(pilot), "budget": pooled_paired_std(pilot, ("metric", "budget")),
                "comparison": pooled_paired_std(pilot, ("setting", "metric")),
                "metric": pooled_paired_std(pilot, ("metric",))}
        stds["metric"].index = stds["metric"].index.get_level_values(0)
    metrics = planned_metrics(spec)
    family = holm_family_size(spec, len(metrics))
    level = alpha / max(family, 1)
    n_spec = len(spec.grid.seeds)
    rows = []
    for setting in labels:
        if setting == base:
            continue
        for metric in metrics:
            difference = hans_difference if metric.startswith("hans") else mnli_difference
            for budget in planned_budgets(spec):
                std, source = _pilot_std(stds, setting, metric, budget)
                if not std > 0:
                    default = SEED_STD_POINTS.get(metric)
                    std = paired_std_from_seed_std(default or SEED_STD_POINTS["hans/acc"])
                    source = DEFAULT_STD_FROM if default else f"{DEFAULT_STD_FROM}, HANS overall's (no set's own)"
                rows.append({"comparison": f"{setting} vs {base or baseline}", "metric": metric, "budget": budget,
                             "difference": difference, "paired_std": std, "std_from": source, "family": family,
                             "alpha_per_test": level, "seeds_needed": seeds_needed(difference, std, level, power),
                             "seeds_in_spec": n_spec,
                             "power_with_spec_seeds": paired_t_power(difference / std, n_spec, level)
                             if n_spec > 1 else float("nan"),
                             "mde_with_spec_seeds": minimum_detectable_difference(std, n_spec, level, power)})
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def render_plan(plan: pd.DataFrame, power: float = POWER, alpha: float = ALPHA, holm: str = "table") -> str:
    """Return the plan as text: a line of what it assumes (level, Holm family, stds), the table, and what the
    largest need is."""
    if plan.empty:
        return "nothing to plan: the grid has no sampler besides the baseline, or only the full-set budget"
    family = int(plan["family"].iloc[0])
    scope = ("every comparison of the report's table (settings x budgets x metrics)" if holm == "table"
             else "each setting's budgets, per metric")
    head = (f"Seeds per arm for a two-sided paired t-test with {power:.0%} power. The report Holm-corrects its "
            f"verdicts at alpha {alpha:g} over {scope} (report.holm: {holm}): a family of {family} comparisons, so "
            f"each test is planned at alpha / {family} = {alpha / max(family, 1):.3g}, Holm's first step (the "
            "Bonferroni bound, conservative for every later step). 100% budgets are left out: every sampler takes "
            f"the whole set there. Default stds: {SEED_STD_SOURCE}, the same at every budget.")
    worst = plan.loc[plan["seeds_needed"].idxmax()]
    tail = (f"most demanding: {worst['metric']} ({worst['comparison']}) needs {worst['seeds_needed']} seeds to detect "
            f"{worst['difference']:g} points at alpha {worst['alpha_per_test']:.3g}; the spec has "
            f"{worst['seeds_in_spec']}")
    formats = [".3g" if column == "alpha_per_test" else ".2f" for column in plan.columns]
    return "\n".join([head, "", plan.to_markdown(index=False, floatfmt=formats), "", tail])
