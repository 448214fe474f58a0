"""The original study's tables and figures from any sweep: per seed, mean +- std, paired vs random, epochs.

Seed variance is shown, never hidden: every mean carries its std and the number of seeds behind it, a cell
with fewer seeds than the grid says so, and the paired table tells whether a sampler's gain over random
at the same budget and seed stands out from seed noise.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tis_ray.comparison import (  # noqa: E402
    ONE_RUN,
    SEPARATE,
    budget_of,
    compare_with_expected,
    epoch_table,
    epoch_table_per_seed,
    sampler_entries,
)
from tis_ray.data.schema import HANS_HEURISTIC_SHORT, HANS_HEURISTICS  # noqa: E402
from tis_ray.data.task import EvalDefinition, hans_set, mnli_set  # noqa: E402
from tis_ray.errors import SpecError, TisRayError, did_you_mean  # noqa: E402
from tis_ray.export import read_table  # noqa: E402
from tis_ray.io import write_text, write_via  # noqa: E402
from tis_ray.spec import ReportSpec, load_run_spec  # noqa: E402
from tis_ray.statistics import (  # noqa: E402
    ALPHA,
    bonferroni_interval,
    compare_paired,
    holm,
    minimum_detectable_difference,
    verdict,
)
from tis_ray.storage import Storage  # noqa: E402

log = logging.getLogger(__name__)

MNLI = (("mnli_m/acc", "MNLI-m"), ("mnli_mm/acc", "MNLI-mm"))
HANS = tuple((f"hans/{h}/{kind}", f"HANS {'E' if kind == 'entailed' else 'NE'} {HANS_HEURISTIC_SHORT[h]}")
             for kind in ("entailed", "non_entailed") for h in HANS_HEURISTICS)
GROUP = ["setting", "budget"]


def budget_name(table: pd.DataFrame) -> str:
    """Return the label of the budget axis: data % or n examples."""
    return "data %" if table["data_pct"].notna().any() else "n examples" if table["n_examples"].notna().any() else "subset"


def final_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Return one row per trial (its last epoch) with a numeric `budget` column."""
    table = table.copy()
    if "epoch" in table and table["epoch"].notna().any():
        reported = table[table["epoch"].notna()]
        last = reported.sort_values("epoch").groupby("trial_id", sort=False).tail(1)
        table = pd.concat([last, table[table["epoch"].isna()]])
    table["budget"] = table.apply(budget_of, axis=1)
    return table


def metrics_present(table: pd.DataFrame, metrics) -> list[tuple[str, str]]:
    """Return the (column, label) pairs of `metrics` that the table has."""
    return [(c, label) for c, label in metrics if c in table and table[c].notna().any()]


NOT_EVAL_SETS = ("train", "subset")  # prefixes of result columns that are not evaluation sets


def eval_set_names(table: pd.DataFrame) -> list[str]:
    """Return the evaluation sets of a results table, in its column order: every '<set>/acc' column's set (and
    HANS wherever a hans/ column is)."""
    columns = [c for c in table.columns if isinstance(c, str)]
    sets = [c[:-4] for c in columns if c.endswith("/acc") and "/" not in c[:-4] and c[:-4] not in NOT_EVAL_SETS]
    if "hans" not in sets and any(c.startswith("hans/") for c in columns):  # HANS's groups without its overall
        sets.append("hans")
    return sets


def eval_metrics(table: pd.DataFrame) -> list[tuple[str, str]]:
    """Return (column, label) of every evaluation metric the table has: the MNLI and HANS ones first in their
    usual order and names, then each other set's accuracy and its groups' ('<set>/<group value>')."""
    sets = eval_set_names(table)
    known = [(c, label) for c, label in (*MNLI, ("hans/acc", "HANS"), *HANS) if c.split("/")[0] in sets]
    others = [(c, c) for name in sets if name not in ("mnli_m", "mnli_mm", "hans")
              for c in [f"{name}/acc", *(c for c in table.columns if isinstance(c, str) and c.startswith(f"{name}/")
                                         and c != f"{name}/acc")]]
    return metrics_present(table, known + others)


def in_percent(label: str) -> bool:
    """True for a metric shown in % (every accuracy but HANS's, which the original's tables gave as fractions)."""
    return not label.startswith("HANS")


def per_seed_tables(done: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """Return {seed: table of (setting, budget) x metrics} for completed trials."""
    cols = eval_metrics(done)
    out = {}
    for seed, part in done.groupby("seed"):
        t = part.set_index(GROUP)[[c for c, _ in cols] + (["n_train"] if "n_train" in part else [])].sort_index()
        out[int(seed)] = t.rename(columns=dict(cols))
    return out


def mean_std_table(done: pd.DataFrame, n_seeds_expected: int) -> pd.DataFrame:
    """Return mean, std and n seeds per (setting, budget) for every metric (std NaN with one seed)."""
    cols = eval_metrics(done)
    grouped = done.groupby(GROUP, dropna=False)  # budget-free settings (num_clusters) have no budget
    table = pd.concat({label: grouped[c].agg(["mean", "std"]) for c, label in cols}, axis=1)
    if "n_train" in done:  # a budget-free sampler's subset size can change from seed to seed
        table[("n_train", "min")] = grouped["n_train"].min()
        table[("n_train", "max")] = grouped["n_train"].max()
    table[("seeds", "n")] = grouped["seed"].nunique()
    table[("seeds", "expected")] = n_seeds_expected
    return table.sort_index()


PAIRED_COLUMNS = ["setting", "budget", "metric", "n", "mean", "std", "ci_low", "ci_high", "t", "p", "p_holm",
                  "p_equivalence", "p_equivalence_holm", "margin", "family", "ci_low_bonferroni", "ci_high_bonferroni",
                  "mde", "verdict"]
ADDED_BY_FAMILY = ("p_holm", "p_equivalence_holm", "family", "ci_low_bonferroni", "ci_high_bonferroni", "verdict")
METRIC_LABELS = {**dict(MNLI), **dict(HANS), "hans/acc": "HANS"}


def comparison_rules(spec) -> dict[str, EvalDefinition]:
    """Return {set name: the definition whose `compare` and `equivalence_margin` the paired comparisons follow}
    for a run's spec (None, an exported table: the MNLI sources' own sets)."""
    rules = {"mnli_m": mnli_set("mnli_m"), "mnli_mm": mnli_set("mnli_mm"), "hans": hans_set()}
    for entry in (spec.eval_sets if spec is not None else []):
        if not isinstance(entry, str):
            rules[entry.name] = EvalDefinition(entry.name, (), {}, compare=tuple(entry.compare or ()),
                                               equivalence_margin=entry.equivalence_margin)
    return rules


def compared_metrics(done: pd.DataFrame, rules: dict[str, EvalDefinition] | None = None) -> list[str]:
    """Return the metrics the paired comparisons test: per evaluation set, those its definition's `compare`
    names (default '<set>/acc'; HANS: overall and its non-entailed half per heuristic)."""
    rules = rules or comparison_rules(None)
    columns = [c for c in done.columns if isinstance(c, str)]
    builtin = ("mnli_m", "mnli_mm", "hans")  # the MNLI sources' sets first, in their usual order
    sets = eval_set_names(done)
    metrics = []
    for name in [n for n in builtin if n in sets] + [n for n in sets if n not in builtin]:
        rule = rules.get(name, EvalDefinition(name, (), {}))
        metrics += rule.compared([c for c in columns if c.startswith(f"{name}/")])
    return metrics


def equivalence_margins(metrics, rules: dict[str, EvalDefinition], margin: float, hans_margin: float) -> dict:
    """Return each metric's TOST margin in points: its set's equivalence_margin, HANS's `hans_margin`, else
    `margin`."""
    def of(metric: str) -> float:
        name = metric.split("/")[0]
        rule = rules.get(name)
        if rule is not None and rule.equivalence_margin is not None:
            return rule.equivalence_margin
        return hans_margin if name == "hans" else margin
    return {metric: of(metric) for metric in metrics}


def sampler_settings(done: pd.DataFrame) -> pd.Series:
    """Return each row's sampler with its parameters as text ('random(nested=True)'), without extra-axis values."""
    from tis_ray.samplers import sampler_label

    return pd.Series([sampler_label(entry) for entry in sampler_entries(done)], index=done.index, dtype=object)


def baseline_sampler(done: pd.DataFrame, baseline: str = "random") -> str | None:
    """Return the sampler setting that is the baseline: the one named `baseline` exactly, else the one setting of
    sampler type `baseline`; None when the results have none. Several of that type raise a one-line error."""
    return baseline_setting(sampler_settings(done), baseline)


def baseline_setting(settings, baseline: str = "random") -> str | None:
    """Return, among sampler `settings` (labels), the baseline: the one named `baseline` exactly, else the one of
    sampler type `baseline`; None when there is none. Several of that type raise a one-line error."""
    settings = sorted(set(settings))
    if baseline in settings:
        return baseline
    typed = [s for s in settings if s.split("(")[0] == baseline]
    if len(typed) > 1:
        raise TisRayError(f"report baseline {baseline!r} matches {len(typed)} samplers ({', '.join(typed)}): name "
                          "one, with report.baseline in the spec or tis-ray report --baseline")
    return typed[0] if typed else None


def check_baseline(settings, baseline: str) -> None:
    """Raise TisRayError when `baseline` is neither one of the sampler `settings` (labels) nor the type of one,
    naming the settings there are and the closest."""
    settings = sorted(set(settings))
    types = sorted({s.split("(")[0] for s in settings})
    if baseline in settings or baseline in types:
        return
    raise TisRayError(f"report baseline {baseline!r} is not a sampler of these results; they have "
                      f"{', '.join(settings)}{did_you_mean(baseline, [*types, *settings])}")


def paired_vs_random(done: pd.DataFrame, metrics=None, baseline: str = "random", mnli_margin: float = 1.0,
                     hans_margin: float = 5.0, holm_family: str = "table", alpha: float = ALPHA,
                     rules: dict[str, EvalDefinition] | None = None) -> pd.DataFrame:
    """Return, per non-baseline setting, budget and metric, its paired difference to the baseline sampler
    (`baseline`: a setting such as 'random(nested=True)' or a sampler type; see `baseline_sampler`) at the same
    budget, seed and extra-axis values, with a verdict.

    `metrics`: default every compared metric (`compared_metrics` under `rules`, the evaluation sets'
    definitions). Differences are in accuracy points (x 100): n pairs, mean, std, the cell's own (unadjusted)
    95% confidence interval, the paired t-test, TOST against the metric's equivalence margin (its set's, else
    `hans_margin` for HANS and `mnli_margin` for every other set, in points). Both p-values are Holm-corrected
    over `holm_family`: 'table' (every comparison of the table) or 'sampler' (one setting and metric across its
    budgets); `family` is the number of tested comparisons in the cell's family (m), and the Bonferroni interval
    (level 1 - alpha / m: all of a family's intervals hold together) and the minimum difference detectable at
    80% power are at alpha / m, Holm's first step. Verdict: better / worse / equivalent within ±m / better (or
    worse), within ±m (equivalent) / identical / inconclusive / one seed (tis_ray.statistics.verdict).
    """
    rules = rules or comparison_rules(None)
    metrics = list(metrics) if metrics is not None else compared_metrics(done, rules)
    margins = equivalence_margins(metrics, rules, mnli_margin, hans_margin)
    base = baseline_sampler(done, baseline)
    is_base = sampler_settings(done) == base
    reference = done[is_base].set_index(["overrides", "budget", "seed"])
    rows = []
    for (setting, budget), part in done[~is_base].groupby(GROUP):
        keys = list(zip(part["overrides"], part["budget"], part["seed"], strict=True))
        matched = [i for i, k in enumerate(keys) if k in reference.index]
        for metric in metrics:
            if metric not in part or metric not in reference or not matched:
                continue
            ours = 100 * part[metric].to_numpy(dtype=float)[matched]
            theirs = 100 * np.array([reference.loc[keys[i], metric] for i in matched], dtype=float).ravel()
            if np.isnan(ours).all() or np.isnan(theirs).all():
                continue
            margin = margins[metric]
            rows.append({"setting": setting, "budget": budget, "metric": metric,
                         **compare_paired(ours, theirs, margin, alpha).as_dict()})
    table = pd.DataFrame(rows, columns=[c for c in PAIRED_COLUMNS if c not in ADDED_BY_FAMILY])
    families = [table.index] if holm_family == "table" else [p.index for _, p in table.groupby(["setting", "metric"])]
    table["p_holm"] = table["p_equivalence_holm"] = np.nan
    table["family"] = 0
    for family in families:
        table.loc[family, "p_holm"] = holm(table.loc[family, "p"])
        table.loc[family, "p_equivalence_holm"] = holm(table.loc[family, "p_equivalence"])
        table.loc[family, "family"] = int(table.loc[family, "p"].notna().sum())  # untested cells do not count
    # at alpha / m, Holm's first step: the interval and the detectable difference of the verdict's own test
    level = alpha / table["family"].clip(lower=1)
    bounds = [bonferroni_interval(r.mean, r.std, r.n, alpha, max(r.family, 1)) for r in table.itertuples()]
    table["ci_low_bonferroni"] = [low for low, _ in bounds]
    table["ci_high_bonferroni"] = [high for _, high in bounds]
    table["mde"] = [minimum_detectable_difference(r.std, r.n, a) for r, a in zip(table.itertuples(), level, strict=True)]
    table["verdict"] = [verdict(r.n, r.mean, r.p_holm, r.p_equivalence_holm, r.margin, alpha, r.std)
                        for r in table.itertuples()]
    return table[PAIRED_COLUMNS]


CHANCE_MARK = "‡"  # a verdict cell that compares a chance-level arm (tis_ray.chance)


def verdict_matrix(paired: pd.DataFrame) -> pd.DataFrame:
    """Return one row per (setting, budget) and one column per compared metric: 'mean (verdict)', marked ‡ where
    the paired table's `chance_level` says the comparison involves a chance-level arm."""
    chance = paired["chance_level"] if "chance_level" in paired else pd.Series(False, index=paired.index)
    cells = paired.assign(cell=[f"{m:+.2f} ({v})" + (f" {CHANCE_MARK}" if at_chance else "")
                                for m, v, at_chance in zip(paired["mean"], paired["verdict"], chance, strict=True)])
    matrix = cells.pivot_table(index=GROUP, columns="metric", values="cell", aggfunc="first", dropna=False)
    ordered = [m for m in dict.fromkeys(paired["metric"]) if m in matrix.columns]
    return matrix[ordered].rename(columns=METRIC_LABELS).fillna("—")


def paired_section(paired: pd.DataFrame, settings, out: Path, xlabel: str) -> list[str]:
    """Return the report lines of the paired comparisons: the verdicts of every metric, then MNLI-m in full."""
    family = "every comparison in the table" if settings.holm == "table" else "each sampler's budgets, per metric"
    full = markdown(paired.set_index(GROUP), budget_label=xlabel)
    link = _write(out, "paired_vs_random", paired, full)
    matrix = markdown(verdict_matrix(paired), budget_label=xlabel)
    _write(out, "verdicts", verdict_matrix(paired), matrix)
    primary = paired["metric"].iloc[0]
    mnli = paired[paired["metric"] == primary].drop(columns="metric")
    by_set = paired.assign(set=paired["metric"].str.split("/").str[0]).groupby("set", sort=False)["margin"].first()
    margins = "; ".join(f"±{m:g} points on " + ", ".join(METRIC_LABELS.get(f"{n}/acc", n) for n in names)
                        for m, names in by_set.index.groupby(by_set.to_numpy()).items())
    m = int(paired["family"].max()) if paired["family"].notna().any() else 0
    lines = ["## Sampler − baseline at the same budget and seed (points)", "",
             f"Paired over seeds. Each cell: mean difference and its verdict. *better* / *worse*: the paired t-test "
             f"(scipy.stats.ttest_rel) rejects no difference; *equivalent within ±m*: TOST (statsmodels) shows the "
             f"difference inside the margin ({margins}; report.equivalence_margin, "
             f"report.hans_equivalence_margin, an eval set's equivalence_margin); *better, within ±m (equivalent)*: "
             f"both, a real difference too small to matter; *identical*: every paired difference is 0 (the same "
             f"subset, as every sampler at 100%, or models that score the same either way), not tested; "
             f"*inconclusive*: neither. Both p-values "
             f"Holm-corrected over {family} (report.holm; {m} tested comparisons in the largest family), "
             f"family-wise at alpha {ALPHA:g}.", "",
             matrix, ""]
    if not mnli.empty:
        lines += [f"{METRIC_LABELS.get(primary, primary)} in full. ci_low / ci_high: the cell's own 95% interval, "
                  "unadjusted for the family; ci_low_bonferroni / ci_high_bonferroni: at level 1 − alpha/m (m = "
                  "family), all of a family's intervals hold together with 95% probability. mde: the smallest true "
                  "difference this cell's test would detect with 80% power at alpha/m (Holm's first step), from its "
                  "paired std and n; an inconclusive cell with a large mde needs more seeds (`tis-ray plan`), not a "
                  "conclusion.", "",
                  markdown(mnli.set_index(GROUP), budget_label=xlabel), ""]
    return [*lines, f"(Every metric: [{link}]({link}))", ""]


def chance_section(done: pd.DataFrame, paired: pd.DataFrame, baseline: str, source: str, out: Path,
                   xlabel: str) -> list[str]:
    """Return the report lines of the arms at chance level (tis_ray.chance) and add `chance_level` to `paired`
    (in place): True where a verdict compares a chance-level arm."""
    from tis_ray.chance import Z, chance_level_arms, chance_level_comparisons, majority_shares

    arms = chance_level_arms(done, majority_shares(source))
    if arms.empty:
        return []
    base = baseline_sampler(done, baseline)
    paired["chance_level"] = chance_level_comparisons(paired, done, sampler_settings(done) == base, arms)
    flagged = arms[arms["chance_level"]]
    rule = (f"An arm (a setting at a budget) is at chance level on an evaluation set when its accuracy, averaged "
            f"over seeds, is at most p + {Z}·√(p(1−p)/n), p the share of the set's most common label and n its "
            "examples: within the 95% binomial noise of always answering that label, or below it.")
    link = _write(out, "chance_level", arms.set_index(GROUP), markdown(arms.set_index(GROUP), ".3f", xlabel))
    if flagged.empty:
        return ["## Chance level", "", f"{rule} No arm is at chance level ([{link}]({link})).", ""]
    text = markdown(flagged.drop(columns="chance_level").set_index(GROUP), ".3f", xlabel)
    compared = int(paired["chance_level"].sum())
    verdicts = (f" The {compared} verdicts marked {CHANCE_MARK} below compare chance-level models (the sampler's arm "
                "or the baseline's at that budget): they say nothing about the samplers." if compared else "")
    return ["## Chance level", "",
            f"**{len(flagged)} of {len(arms)} arms are at chance level.** {rule} Their models learned nothing "
            f"measurable on that set.{verdicts}", "",
            text, "", f"(Every arm: [{link}]({link}))", ""]


def _fmt(value, scale=100.0, digits=2) -> str:
    return "—" if pd.isna(value) else f"{scale * value:.{digits}f}"


BUDGET_FREE = "own size"  # what the budget column says for samplers that pick their subset size


def markdown(table: pd.DataFrame, floatfmt: str = ".2f", budget_label: str = "budget") -> str:
    """Return `table` as a GitHub Markdown table, index levels as leading columns."""
    flat = table.reset_index() if any(name is not None for name in table.index.names) else table
    if "budget" in flat and flat["budget"].isna().any():
        flat = flat.assign(budget=[BUDGET_FREE if pd.isna(b) else f"{b:{floatfmt}}" for b in flat["budget"]])
    return flat.rename(columns={"budget": budget_label}).to_markdown(index=False, floatfmt=floatfmt)


def _mean_std_markdown(table: pd.DataFrame, mnli_scale: float = 100.0) -> pd.DataFrame:
    """Return `table`'s (metric, mean/std) columns as 'mean ± std' text (MNLI times `mnli_scale`), with seeds."""
    labels = [c for c in table.columns.get_level_values(0).unique() if c not in ("seeds", "n_train")]
    shown = pd.DataFrame(index=table.index)
    for label in labels:
        scale, digits = (mnli_scale, 2) if in_percent(label) else (1.0, 3)
        shown[label] = [f"{_fmt(m, scale, digits)} ± {_fmt(s, scale, digits)}"
                        for m, s in zip(table[(label, "mean")], table[(label, "std")], strict=True)]
    if ("n_train", "min") in table:
        shown["n_train"] = [f"{lo:.0f}" if lo == hi else f"{lo:.0f}–{hi:.0f}"
                            for lo, hi in zip(table[("n_train", "min")], table[("n_train", "max")], strict=True)]
    n, expected = table[("seeds", "n")], table[("seeds", "expected")]
    shown["seeds"] = [f"{a}/{b}" + ("" if a >= b else " (missing)") for a, b in zip(n, expected, strict=True)]
    return shown


def _plot_lines(ax, stats: pd.DataFrame, label_col: str, ylabel: str) -> None:
    for setting, part in stats.groupby("setting"):
        part = part.sort_values("budget")
        ax.plot(part["budget"], part["mean"], marker="o", label=setting)
        ax.fill_between(part["budget"], part["mean"] - part["std"].fillna(0), part["mean"] + part["std"].fillna(0),
                        alpha=0.2)
    ax.set_xlabel(label_col)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def _stats(done: pd.DataFrame, column: str) -> pd.DataFrame:
    return done.groupby(GROUP, dropna=False)[column].agg(["mean", "std"]).reset_index()


def figure_accuracy(done: pd.DataFrame, path: Path, xlabel: str, metrics=MNLI) -> Path | None:
    """Accuracy (`metrics`: (column, label) pairs, default MNLI-m / MNLI-mm) vs budget, a panel per metric and a
    line per setting, mean across seeds with a +-std band; None when the table has none of them."""
    cols = metrics_present(done, metrics)
    if not cols:
        return None
    fig, axes = plt.subplots(1, len(cols), figsize=(6 * len(cols), 4.5), squeeze=False)
    for ax, (column, label) in zip(axes[0], cols, strict=True):
        name = metric_label(label)  # an evaluation set of one's own by its name: 'test', not 'test/acc'
        _plot_lines(ax, _stats(done, column), xlabel, f"{name} accuracy")
        ax.set_title(f"{name} accuracy vs {xlabel} (mean ± std over seeds)")
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


def figure_hans(done: pd.DataFrame, kind: str, path: Path, xlabel: str) -> Path:
    """HANS accuracy on gold-`kind` examples per heuristic vs budget, a line per setting."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), squeeze=False, sharey=True)
    for ax, heuristic in zip(axes[0], HANS_HEURISTICS, strict=True):
        column = f"hans/{heuristic}/{kind}"
        if column in done:
            _plot_lines(ax, _stats(done, column), xlabel, "accuracy")
        ax.set_title(f"HANS {heuristic.replace('_', ' ')}: {kind.replace('_', '-')}")
        ax.set_ylim(-0.05, 1.05)
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


def figure_epochs(table: pd.DataFrame, path: Path, xlabel: str, metric: str = "mnli_m/acc",
                  label: str = "MNLI-m accuracy") -> Path | None:
    """`metric` (MNLI-m accuracy, or the mean training loss) vs epoch for each setting, one panel per budget
    (up to the 4 smallest), mean ± std over seeds."""
    if metric not in table:
        return None
    rows = table[table["epoch"].notna() & table[metric].notna()].copy()
    if rows.empty or rows["epoch"].nunique() < 2:
        return None
    rows["budget"] = rows.apply(budget_of, axis=1)
    budgets = sorted(rows["budget"].dropna().unique())[:4] or [np.nan]
    fig, axes = plt.subplots(1, len(budgets), figsize=(5.5 * len(budgets), 4.2), squeeze=False, sharey=True)
    for ax, budget in zip(axes[0], budgets, strict=True):
        part = rows[rows["budget"] == budget] if not np.isnan(budget) else rows
        for setting, s in part.groupby("setting"):
            stats = s.groupby("epoch")[metric].agg(["mean", "std"]).reset_index()
            ax.plot(stats["epoch"], stats["mean"], marker="o", label=setting)
            ax.fill_between(stats["epoch"], stats["mean"] - stats["std"].fillna(0),
                            stats["mean"] + stats["std"].fillna(0), alpha=0.2)
        ax.set_title(f"{label} vs epoch ({xlabel} = {budget:g})")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(label)
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


def metric_label(metric: str) -> str:
    """Return a metric's name on the report's axes and headings: 'MNLI-m', 'HANS NE LO' on the MNLI sources'
    sets, else the evaluation set's own ('test' for test/acc, 'test/negative' for a group)."""
    return METRIC_LABELS.get(metric, metric.removesuffix("/acc"))


def primary_metric(table: pd.DataFrame) -> str:
    """Return the metric the report's single-metric figures and tables follow: MNLI-m, else the first
    evaluation set's accuracy."""
    sets = eval_set_names(table)
    return "mnli_m/acc" if "mnli_m" in sets or not sets else f"{sets[0]}/acc"


def figure_vs_random(paired: pd.DataFrame, path: Path, xlabel: str, label: str = "MNLI-m") -> Path | None:
    """Paired difference in `label` accuracy (sampler - random, same budget and seed) vs budget, error bars the
    Bonferroni intervals of the verdicts' family (95% together)."""
    if paired.empty:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for setting, part in paired.groupby("setting"):
        part = part.sort_values("budget")
        yerr = np.vstack([(part["mean"] - part["ci_low_bonferroni"]).fillna(0),
                          (part["ci_high_bonferroni"] - part["mean"]).fillna(0)])
        ax.errorbar(part["budget"], part["mean"], yerr=yerr, marker="o", capsize=4, label=setting)
    ax.axhline(0, color="black", linewidth=1, linestyle="--", label="random")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{label} accuracy − random (points)")
    ax.set_title("Sampler vs random, paired by seed (mean, 95% simultaneous CI, Bonferroni)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    write_via(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def source_name(source: str | Path) -> str:
    """Return the last path component of a local path or URI (query options dropped): the run's name."""
    return Path(str(source).split("?")[0].rstrip("/")).name


def is_table(source: str | Path) -> bool:
    """True for an exported table (.parquet / .csv), False for a run directory (local or URI)."""
    return Path(str(source).split("?")[0]).suffix in (".parquet", ".csv")


def run_spec(source: str):
    """Return the validated spec of a run directory, or None for an exported table, a run without one, or a
    spec that no longer validates (then with a warning)."""
    if is_table(source):
        return None
    try:
        return load_run_spec(source)
    except SpecError as exc:
        log.warning("%s; reading the results without it", exc)
        return None


HANS_NOTE = (
    "HANS columns: a model that learned MNLI's lexical-overlap shortcut is right on entailed HANS pairs and wrong "
    "on non-entailed ones (McCoy et al., 2019), so E near 1 and NE near 0 is the expected pattern. The original "
    "project's tables read the reverse (E ~0, NE ~1) even for its 84.9% model. Its label order was right "
    "(its HANS processor lists contradiction, entailment, neutral, the order its models were trained in); its "
    "HANS evaluation set ALBERT's token_type_ids to None (test_hans.py at prajjwal1/generalize_lm_nli@e84ab5a), "
    "so every HANS pair was read as one segment. tis_ray encodes pairs with their segment ids at training and "
    "evaluation alike, so its HANS columns are not comparable to the original's.")

DBSCAN_NOTE = (
    "The original's DBSCAN tables (\"with bug and DBSCAN\", committed 2020-05-27) were clustered on embeddings "
    "from get_embeddings.py before its fix of 2020-05-29 (commit 9697c59), which re-embedded the first batch at "
    "every step: the 392,702 vectors were the first 512 tiled, on which DBSCAN(eps 0.2, min_samples 50) finds "
    "one noise-free cluster per distinct vector, i.e. per batch position. Those rows are flagged below; eps 0.2 "
    "worked there because of that, not because of a property of [CLS] vectors.")


def copy_from_run(storage: Storage, rel: str, target: Path) -> Path:
    """Copy the run directory's file `rel` (local or remote) into the report at `target`; returns it."""
    data = storage.read_bytes(rel)
    return write_via(target, lambda tmp: Path(tmp).write_bytes(data))


def clustering_section(run_dir: str, out: Path) -> list[str]:
    """Return the report lines that summarise each prepared clustering (with its k-distance plot, if any)."""
    storage = Storage(run_dir)
    keys = [k for k in storage.folders("prepared/clusters") if storage.exists(f"prepared/clusters/{k}/meta.json")]
    if not keys:
        return []
    rows, figures = [], []
    for key in keys:
        meta = storage.read_json(f"prepared/clusters/{key}/meta.json")
        rows.append({"clustering": key, "backend": meta.get("backend"), "rows": meta.get("n_rows"),
                     "clusters": meta.get("n_clusters"), "noise %": 100 * meta.get("noise_fraction", 0.0),
                     "largest": meta.get("largest"), "median size": meta.get("median_size"),
                     "knee eps": meta.get("knee_eps"), "seconds": meta.get("seconds")})
        plot = f"prepared/clusters/{key}/k_distance.png"
        if storage.exists(plot):
            target = copy_from_run(storage, plot, out / "figures" / f"k_distance_{key}.png")
            figures.append(f"![k-distance {key}](figures/{target.name})")
    table = pd.DataFrame(rows).set_index("clustering")
    text = table.to_markdown(floatfmt=".3g")
    link = _write(out, "clusterings", table, text)
    return ["## Clusterings", "", "Shared by every trial whose sampler uses them; DBSCAN's knee eps is read from "
            "its k-distance curve (see the plot).", "", text, "", f"([{link}]({link}))", "", *figures, ""]


REGION_FRACTION = 1 / 3  # a data-map region: the top third of its ranking


def data_map_regions(dynamics) -> dict[str, np.ndarray]:
    """Return boolean masks of the three data-map regions: the third most variable (ambiguous), least
    confident (hard to learn) and most confident (easy to learn) examples."""
    n = len(dynamics)
    k = max(1, round(REGION_FRACTION * n))
    confidence, variability = dynamics.confidence(), dynamics.variability()
    masks = {}
    for region, order in (("ambiguous", np.argsort(-variability, kind="stable")),
                          ("hard", np.argsort(confidence, kind="stable")),
                          ("easy", np.argsort(-confidence, kind="stable"))):
        mask = np.zeros(n, dtype=bool)
        mask[order[:k]] = True
        masks[region] = mask
    return masks


def figure_data_map(dynamics, path: Path, title: str, highlight: np.ndarray | None = None,
                    max_points: int = 20_000) -> Path:
    """Confidence vs variability of every example (a sample past `max_points`), coloured by correctness,
    the regions named; `highlight`: indices of a subset drawn on top."""
    confidence, variability, correctness = dynamics.confidence(), dynamics.variability(), dynamics.correctness()
    rows = np.arange(len(dynamics))
    if len(rows) > max_points:
        rows = np.sort(np.random.default_rng(0).choice(rows, max_points, replace=False))
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    points = ax.scatter(variability[rows], confidence[rows], c=correctness[rows], cmap="viridis", s=6,
                        alpha=0.35 if highlight is not None else 0.7, vmin=0, vmax=1)
    fig.colorbar(points, ax=ax, label="correctness (fraction of epochs right)")
    if highlight is not None:
        ax.scatter(variability[highlight], confidence[highlight], s=10, facecolors="none", edgecolors="tab:red",
                   linewidths=0.7, label=f"subset ({len(highlight)} examples)")
        ax.legend(loc="lower right", fontsize=8)
    for text, (x, y) in (("easy to learn", (0.02, 0.95)), ("hard to learn", (0.02, 0.03)),
                         ("ambiguous", (0.62, 0.5))):
        ax.text(x, y, text, transform=ax.transAxes, fontsize=10, weight="bold", color="tab:gray")
    ax.set_xlabel("variability (std of the gold-label probability over epochs)")
    ax.set_ylabel("confidence (mean gold-label probability)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def data_map_section(run_dir: str, done: pd.DataFrame, out: Path) -> list[str]:
    """Return the report lines of the reference run's data map and of each dynamics sampler's subset on it."""
    from tis_ray.dynamics import load_dynamics

    storage = Storage(run_dir)
    if not storage.exists("prepared/dynamics/manifest.json"):
        return []
    dynamics = load_dynamics(storage.fetch("prepared/dynamics"))
    regions = data_map_regions(dynamics)
    lines = ["## Data map of the reference run", "",
             f"Training dynamics of {len(dynamics):,} examples over {dynamics.epochs} epochs (Swayamdipta et al., "
             "2020): confidence = mean gold-label probability, variability = its standard deviation, colour = "
             "fraction of epochs right. Regions below are the third most variable (ambiguous), least confident "
             "(hard to learn) and most confident (easy to learn) examples.", "",
             f"![data map](figures/{figure_data_map(dynamics, out / 'figures' / 'data_map.png', 'Data map').name})",
             ""]
    rows = []
    from tis_ray.samplers import sampler_from_entry

    declared = [sampler_from_entry(entry).needs_dynamics for entry in sampler_entries(done)]
    dynamic_settings = done[declared]  # every sampler that declares it reads the dynamics
    for setting, part in dynamic_settings.groupby("setting"):
        first = part.sort_values(["budget", "seed"]).iloc[0]
        indices_file = f"{first['trial_id']}/subset_indices.npy"
        if not storage.exists(indices_file):
            continue
        indices = storage.read_npy(indices_file)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", setting).strip("_")
        figure = figure_data_map(dynamics, out / "figures" / f"data_map_{name}.png",
                                 f"{setting}, seed {first['seed']:.0f}", highlight=indices)
        lines += [f"![{setting}](figures/{figure.name})", ""]
        rows.append({"setting": setting, "seed": int(first["seed"]), "n": len(indices),
                     **{region: int(mask[indices].sum()) for region, mask in regions.items()}})
    if rows:
        table = pd.DataFrame(rows).set_index("setting")
        text = table.to_markdown()
        link = _write(out, "data_map_regions", table, text)
        lines += ["Examples of each subset (smallest budget, first seed) in each region:", "", text, "",
                  f"([{link}]({link}))", ""]
    return lines


def epoch_section(table: pd.DataFrame, default_epochs: int | None, out: Path, xlabel: str) -> list[str]:
    """Return the report lines of accuracy per epoch: mean ± std across seeds and per seed, each row under
    the protocol it was read with."""
    primary = primary_metric(table)
    metrics = MNLI if primary == "mnli_m/acc" else ((primary, primary),)
    epochs = epoch_table(table, default_epochs, metrics)
    epochs[("seeds", "expected")] = epochs[("seeds", "n")].groupby(level=["setting", "budget", "protocol"]).transform("max")
    shown = _mean_std_markdown(epochs, mnli_scale=1.0)
    text = markdown(shown, budget_label=xlabel)
    _write(out, "epochs", epochs, text)
    per_seed = epoch_table_per_seed(table, default_epochs, primary)
    link = _write(out, "epochs_per_seed", per_seed, markdown(per_seed, ".2f", xlabel))
    name = "MNLI" if primary == "mnli_m/acc" else primary
    return [f"## Accuracy per epoch ({name}, %)", "",
            f"'{SEPARATE}': epoch k is a separate run trained for k epochs, with its own learning-rate schedule "
            f"(a grid axis over train.epochs), which is what the original's epoch tables hold. '{ONE_RUN}': epoch k "
            "of the setting's longest run, read before its schedule ends (an extension).", "",
            text, "", f"Per seed: [{link}]({link})", ""]


def original_section(table: pd.DataFrame, spec, out: Path, xlabel: str) -> list[str]:
    """Return the report lines that set our accuracies beside the original's (the spec's expected numbers)."""
    compared = compare_with_expected(table, spec.expected, spec.train.epochs)
    text = compared.to_markdown(index=False, floatfmt=".2f")
    link = _write(out, "vs_original", compared, text)
    notes = [f"- {note}" for note in spec.expected.notes]
    return ["## Ours beside the original", "",
            f"The original's numbers ({spec.expected.source or 'the spec'}), MNLI accuracy in %; diff = ours − "
            "original. 'seed mean' compares our mean over seeds with the original's seed-less row; a row without "
            "ours has no finished trial yet. Rows the original itself flagged say so.", "",
            text, "", f"([{link}]({link}))", "", *notes, *([""] if notes else [])]


def _write(out: Path, name: str, table: pd.DataFrame, text: str) -> str:
    write_via(out / "tables" / f"{name}.csv", table.to_csv)
    write_text(out / "tables" / f"{name}.md", text + "\n")
    return f"tables/{name}.md"


def schedule_lines(done: pd.DataFrame, spec) -> list[str]:
    """Return the line that says how much training each trial got: epochs over its subset, or fixed steps."""
    schedules = set(done["schedule"].dropna()) if "schedule" in done else set()
    if spec is not None:
        schedules = schedules or {spec.train.schedule}
    if schedules == {"steps"}:
        steps = sorted(set(done["train_steps"].dropna().astype(int))) if "train_steps" in done else []
        return [f"Schedule: steps. Every trial took the same optimizer steps ({', '.join(map(str, steps))}), "
                "cycling its subset: budgets compare data at equal compute.", ""]
    if schedules == {"epochs"}:
        return ["Schedule: epochs. Each trial trained its epochs over its own subset, so a smaller budget also "
                "got fewer optimizer steps (train.schedule: steps compares budgets at equal compute).", ""]
    return [f"Schedules: {', '.join(sorted(schedules))} (mixed across trials)." , ""] if schedules else []


def build_report(source: str | Path, out_dir: str | Path, baseline: str | None = None) -> Path:
    """Write tables (Markdown + CSV), figures (PNG) and index.md for a run directory (a local path or a URI)
    or an exported table; returns index.md. `baseline`: the sampler each other is compared with (default: the
    spec's report.baseline, else random)."""
    source, out = str(source), Path(out_dir)
    table = read_table(source)
    if table.empty:
        raise TisRayError(f"{source}: no trials to report")
    trials = final_rows(table)
    done = trials[trials["status"] == "completed"]
    if done.empty:
        raise TisRayError(f"{source}: no completed trials yet ({len(trials)} trials, none finished)")
    if baseline is not None:  # a baseline asked for by name must exist: without it the verdicts would be missing
        check_baseline(sampler_settings(done), baseline)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    xlabel = budget_name(trials)
    spec = run_spec(source)
    expected = len(spec.grid.seeds) if spec is not None else int(trials["seed"].nunique())
    default_epochs = spec.train.epochs if spec is not None else None
    unfinished = trials["status"].isin(["incomplete", "not_started"]).sum()
    partial = ([f"**Partial report**: {unfinished} of {len(trials)} trials are still running or have not "
                "started (the sweep is running, or was interrupted: `tis-ray sweep SPEC --resume`). Every table "
                "below holds the finished trials only.", ""] if unfinished else [])
    lines = [f"# Report: {source_name(source)}", "", *partial,
             f"{len(done)} of {len(trials)} trials completed; {len(trials) - len(done)} failed or unfinished. "
             f"Budget axis: {xlabel}. Accuracies in %"
             + (", HANS accuracies as fractions (entailed E / non-entailed NE; LO lexical overlap, SUB subsequence, "
                "CONS constituent)." if "hans" in eval_set_names(done) else ".") + "", "",
             *schedule_lines(done, spec)]

    mean = mean_std_table(done, expected)
    text = markdown(_mean_std_markdown(mean), budget_label=xlabel)
    lines += ["## Mean ± std across seeds", "", text, ""]
    _write(out, "mean_std", mean, text)

    baseline = baseline or (spec.report.baseline if spec is not None else "random")
    settings = spec.report if spec is not None else ReportSpec()
    rules = comparison_rules(spec)
    primary = primary_metric(done)
    paired = paired_vs_random(done, baseline=baseline, mnli_margin=settings.equivalence_margin,
                              hans_margin=settings.hans_equivalence_margin, holm_family=settings.holm, rules=rules)
    if not is_table(source):  # an exported table holds no evaluation labels: no majority share to compare with
        lines += chance_section(done, paired, baseline, source, out, xlabel)
    if not paired.empty:
        lines += paired_section(paired, settings, out, xlabel)
    lines += ["## Figures", ""]
    other_sets = [(c, label) for c, label in eval_metrics(done) if c.split("/")[0] not in ("mnli_m", "mnli_mm", "hans")]
    figures = [figure_accuracy(done, out / "figures" / "mnli_accuracy.png", xlabel),
               figure_accuracy(done, out / "figures" / "accuracy.png", xlabel,
                               [(c, label) for c, label in other_sets if c.endswith("/acc")]),
               *(figure_accuracy(done, out / "figures" / f"{name}_groups.png", xlabel,
                                 [(c, label) for c, label in other_sets if c.startswith(f"{name}/")
                                  and not c.endswith("/acc")][:8])
                 for name in eval_set_names(done) if name not in ("mnli_m", "mnli_mm", "hans")),
               *(figure_hans(done, kind, out / "figures" / f"hans_{kind}.png", xlabel)
                 for kind in ("entailed", "non_entailed") if any(c.startswith("hans/") for c, _ in eval_metrics(done))),
               figure_vs_random(paired[paired["metric"] == primary], out / "figures" / "sampler_vs_random.png", xlabel,
                                metric_label(primary)),
               figure_epochs(table, out / "figures" / "accuracy_vs_epoch.png", xlabel, primary,
                             f"{metric_label(primary)} accuracy"),
               figure_epochs(table, out / "figures" / "training_loss.png", xlabel, "train/loss",
                             "mean training loss")]
    for fig in figures:
        if fig is not None:
            lines += [f"![{fig.stem}](figures/{fig.name})", ""]

    lines += ["## Per seed", ""]
    for seed, t in per_seed_tables(done).items():
        text = markdown(t.apply(lambda c: c * 100 if in_percent(c.name) and c.name != "n_train" else c).round(4),
                        ".4g", xlabel)
        link = _write(out, f"seed_{seed}", t, text)
        lines += [f"- seed {seed}: [{link}]({link})"]
    lines.append("")

    if table["epoch"].notna().any() and table["epoch"].nunique() > 1:
        lines += epoch_section(table, default_epochs, out, xlabel)
    if spec is not None and spec.expected.rows:
        lines += original_section(table, spec, out, xlabel)

    from tis_ray.report_sections import (
        attribution_section,
        compute_section,
        hans_composition_section,
        learning_curve_section,
        stability_section,
    )

    lines += learning_curve_section(done, baseline_sampler(done, baseline), out)
    lines += hans_composition_section(done, out, xlabel)
    if not is_table(source):
        lines += compute_section(done, source, spec, out, xlabel)
        lines += clustering_section(source, out)
        lines += data_map_section(source, done, out)
        lines += stability_section(source, done, out)
        lines += attribution_section(source, out)

    lines += ["## Notes", "", HANS_NOTE, ""] if "hans" in eval_set_names(done) else []
    if spec is not None and any(cell.flag and "bug" in cell.flag for cell in spec.expected.rows):
        lines += [DBSCAN_NOTE, ""]

    missing = trials[trials["status"] != "completed"]
    if not missing.empty:
        cols = ["trial_id", "setting", "budget", "seed", "status", "error"]
        lines += ["## Failed or unfinished trials (left out of every mean above)", "",
                  markdown(missing[cols].set_index("trial_id"), budget_label=xlabel), ""]
    return write_text(out / "index.md", "\n".join(lines) + "\n")
