"""The report's sections on what a subset saves, costs and holds, and how stable its choice is.

- learning curves per sampler and "the baseline needs X% of the data to match S at B%" (tis_ray.curves);
- selection cost: each sampler charged the preparation steps it needs, accuracy against total compute
  (selection + training) beside accuracy against data (tis_ray.cost);
- what each subset holds for HANS: its high-overlap non-entailed pairs, and HANS non-entailed accuracy
  against their count across trials (tis_ray.overlap);
- stability of scores and clusters under other seeds (tis_ray.stability).

Each returns Markdown lines (empty when the results lack what it needs) and writes its tables and figures.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tis_ray.curves import BOOTSTRAP, learning_curves, saturating_power_law
from tis_ray.overlap import HIGH_OVERLAP_NON_ENTAILED
from tis_ray.report import _save, _write, copy_from_run, markdown, metric_label, primary_metric
from tis_ray.storage import Storage

COUNT = f"subset/{HIGH_OVERLAP_NON_ENTAILED}"
HANS_NE = {"hans/lexical_overlap/non_entailed": "lexical overlap", "hans/subsequence/non_entailed": "subsequence",
           "hans/constituent/non_entailed": "constituent"}


def training_set_size(done: pd.DataFrame) -> int | None:
    """Return the size of the full training set the subsets came from (None when the table does not say)."""
    if "n_train_full" in done and done["n_train_full"].notna().any():
        return int(done["n_train_full"].dropna().iloc[0])
    with_pct = done[done["data_pct"].notna() & done["n_train"].notna()]
    return int(round((with_pct["n_train"] / with_pct["data_pct"]).median())) if not with_pct.empty else None


def _points(done: pd.DataFrame, x: str, metric: str) -> pd.DataFrame:
    return done.groupby(["setting", x])[metric].agg(["mean", "std"]).reset_index()


def learning_curve_section(done: pd.DataFrame, baseline: str | None, out: Path) -> list[str]:
    """Return the lines of the learning curves and data savings against `baseline` (a setting)."""
    if baseline is None or primary_metric(done) not in done or "n_train" not in done or done["n_train"].isna().all():
        return []
    n_full = training_set_size(done)
    if n_full is None:
        return []
    curves, savings = learning_curves(done, primary_metric(done), n_full, baseline)
    if curves[["a", "b", "c"]].isna().all().all():
        return ["## Learning curves", "", "No sampler has trials at 3 or more subset sizes: no curve to fit.", ""]
    lines = [f"## Learning curves and data savings ({metric_label(primary_metric(done))})", "",
             "Accuracy against the share x of the training set, fitted per sampler as a saturating power law "
             "acc(x) = a − b·x^(−c) (data scaling of fine-tuned networks: Hestness et al., 2017; a is where the "
             "sampler saturates; rmse: the trials' spread around the curve, in accuracy; notes: 'exact' when a "
             "sampler has no more budgets than the curve's 3 parameters, so the curve passes through the means and "
             "nothing checks its shape, and any parameter stuck at its bound). 'baseline needs' inverts the "
             "baseline's curve at the sampler's mean accuracy; its 95% interval is a parametric bootstrap "
             f"({BOOTSTRAP} draws: trials redrawn around the baseline's curve with its seed noise, the curve refitted, "
             "the sampler's mean redrawn from its seeds; coverage measured in bench/RESULTS.md). Above 100%: beyond "
             "the data there is, an extrapolation; ∞: above what the baseline's curve ever reaches.", ""]
    curve_text = curves.to_markdown(index=False, floatfmt=".4g")
    _write(out, "learning_curves", curves, curve_text)
    lines += [curve_text, ""]
    if not savings.empty:
        shown = savings.assign(**{"share %": 100 * savings["share"], "accuracy %": 100 * savings["accuracy"],
                                  "baseline needs %": 100 * savings["baseline_share_needed"],
                                  "95% CI": [_interval(lo, hi) for lo, hi in
                                             zip(savings["ci_low"], savings["ci_high"], strict=True)]})
        text = shown[["setting", "n_train", "share %", "accuracy %", "baseline needs %", "95% CI", "baseline_fit"]].to_markdown(
            index=False, floatfmt=".1f")
        link = _write(out, "data_savings", savings, text)
        caveat = savings["baseline_fit"].iloc[0]
        sentences = [f"- {baseline} needs {100 * r.baseline_share_needed:.1f}% of the data (95% CI "
                     f"{_interval(r.ci_low, r.ci_high)}) to match {r.setting} at {100 * r.share:.1f}%"
                     for r in savings.itertuples() if np.isfinite(r.baseline_share_needed)]
        warning = ([f"**Read with care**: {baseline}'s curve is {caveat}; the shares below lean on its assumed "
                    "shape more than on the data.", ""] if caveat else [])
        lines += [text, "", *warning, *sentences, "", f"([{link}]({link}))", ""]
    figure = figure_learning_curves(done, curves, n_full, out / "figures" / "learning_curves.png")
    return [*lines, f"![learning curves](figures/{figure.name})", ""]


def _interval(low: float, high: float) -> str:
    """Return a share interval as 'lo–hi%' (∞ for a bound the curve never reaches), '—' without one."""
    if not (pd.notna(low) and pd.notna(high)):
        return "— (no seed noise to draw from: one seed per budget and an exact fit)"
    return "–".join("∞" if np.isinf(v) else f"{100 * v:.1f}" for v in (low, high)) + "%"


def figure_learning_curves(done: pd.DataFrame, curves: pd.DataFrame, n_full: int, path: Path) -> Path:
    """Mean ± std accuracy per subset size and each setting's fitted curve, x on a log scale."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = _points(done.assign(share=done["n_train"] / n_full), "share", primary_metric(done))
    fitted = curves.set_index("setting")
    for setting, part in points.groupby("setting"):
        line = ax.errorbar(100 * part["share"], part["mean"], yerr=part["std"].fillna(0), fmt="o", capsize=3,
                           label=setting)
        params = fitted.loc[setting, ["a", "b", "c"]].astype(float).to_numpy()
        if np.isfinite(params).all():
            x = np.geomspace(part["share"].min(), 1.0, 100)
            ax.plot(100 * x, saturating_power_law(x, *params), color=line[0].get_color(), linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("training examples, % of the full set (log)")
    ax.set_ylabel(f"{metric_label(primary_metric(done))} accuracy")
    ax.set_title("Learning curves: a − b·x^(−c) per sampler")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def compute_section(done: pd.DataFrame, source: str, spec, out: Path, xlabel: str) -> list[str]:
    """Return the lines of the selection cost per sampler and accuracy against data and total compute."""
    from tis_ray.comparison import sampler_entries
    from tis_ray.cost import selection_costs, stability_costs

    if spec is None or "train_time_s" not in done:
        return []
    costs = selection_costs(source, spec, sampler_entries(done))
    by_setting = costs.set_index("setting")["selection_s"]
    from tis_ray.report import sampler_settings

    trials = done.assign(sampler_setting=sampler_settings(done).to_numpy())
    trials["selection_s"] = trials["sampler_setting"].map(by_setting).fillna(0.0)
    trials["total_s"] = trials["selection_s"] + trials["train_time_s"]
    text = costs.to_markdown(index=False, floatfmt=".1f")
    link = _write(out, "selection_cost", costs, text)
    per_budget = trials.groupby(["setting", "budget"])[["train_time_s", "selection_s", "total_s"]].mean()
    budget_text = markdown(per_budget, ".1f", xlabel)
    _write(out, "compute_per_trial", per_budget, budget_text)
    figure = figure_compute(trials, out / "figures" / "accuracy_vs_compute.png")
    untimed = "" if costs["timed"].all() else (
        " timed: False: a step reused from a run directory prepared before tis_ray timed its steps counts 0, and "
        "stability refits not timed apart from their clustering are counted in it.")
    given = costs.loc[costs["cost_not_recorded"] != "", "setting"].tolist()
    not_recorded = f" Cost not recorded for {', '.join(given)}: their subsets are made from inputs given by path " \
                   "(cost_not_recorded), whose making no step timed; their selection cost here is a lower bound." \
        if given else ""
    lines = ["## Selection cost and total compute", "",
             "Each sampler is charged the preparation steps its subset needs (a full-data reference fine-tune for "
             "dynamics scores, one per seed of dynamics.seeds when their mean is used, and for the embeddings "
             "clusters are computed on, the embedding pass, the clustering), in seconds as they ran, once per "
             "sweep; a trial's total compute is that plus its own training time." + untimed + not_recorded, "",
             text, "", f"([{link}]({link}))", ""]
    refits = stability_costs(source)
    if not refits.empty:
        refit_text = refits.to_markdown(index=False, floatfmt=".1f")
        _write(out, "stability_cost", refits, refit_text)
        lines += ["KMeans refits under clustering.stability_seeds check the clustering and choose no subset: not "
                  "charged to any sampler, their seconds apart:", "", refit_text, ""]
    return [*lines, "Mean seconds per trial:", "", budget_text, "",
            f"![accuracy vs compute](figures/{figure.name})", ""]


def figure_compute(trials: pd.DataFrame, path: Path) -> Path:
    """The primary metric's accuracy (MNLI-m, else the first evaluation set's) against training examples (left)
    and against total seconds, selection included (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, x, label in ((axes[0], "n_train", "training examples"),
                         (axes[1], "total_s", "total compute: selection + training (s, log)")):
        means = trials.groupby(["setting", "budget"]).agg(x=(x, "mean"), acc=(primary_metric(trials), "mean")).reset_index()
        for setting, part in means.groupby("setting"):
            part = part.sort_values("x")
            ax.plot(part["x"], part["acc"], marker="o", label=setting)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[1].set_xscale("log")
    axes[0].set_ylabel(f"{metric_label(primary_metric(trials))} accuracy")
    axes[0].set_title("Accuracy vs data")
    axes[1].set_title("Accuracy vs compute")
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def hans_composition_section(done: pd.DataFrame, out: Path, xlabel: str) -> list[str]:
    """Return the lines of each subset's high-overlap non-entailed pairs and HANS non-entailed accuracy
    against their count."""
    if COUNT not in done or done[COUNT].isna().all():
        return []
    cols = [c for c in HANS_NE if c in done]
    table = done.groupby(["setting", "budget"], dropna=False).agg(
        n_train=("n_train", "mean"), high_overlap_non_entailed=(COUNT, "mean"),
        **{HANS_NE[c]: (c, "mean") for c in cols})
    table["share %"] = 100 * table["high_overlap_non_entailed"] / table["n_train"]
    table["n_train"] = table["n_train"].round().astype(int)
    text = markdown(table, ".3g", xlabel)
    link = _write(out, "hans_composition", table, text)
    lines = ["## What each subset holds for HANS", "",
             "High-overlap non-entailed pairs: every hypothesis word is in the premise, yet the label is not "
             "entailment, the MNLI minority that contradicts the lexical-overlap heuristic (McCoy et al., 2019; "
             "words as their finder scripts read them: split on whitespace, lower-cased, standalone . ? ! dropped, "
             "punctuation attached to a word kept with it). "
             "Mean count per subset (and its share), beside HANS non-entailed accuracy per heuristic where HANS is "
             "evaluated; each trial's subset.json holds the shares per label (lexical overlap, subsequence).", "",
             text, "", f"([{link}]({link}))", ""]
    if cols:
        figure = figure_hans_composition(done, cols, out / "figures" / "hans_vs_composition.png")
        lines += [f"![HANS vs composition](figures/{figure.name})", ""]
    return lines


def figure_hans_composition(done: pd.DataFrame, cols: list[str], path: Path) -> Path:
    """HANS non-entailed accuracy per heuristic against the subset's high-overlap non-entailed count, a point
    per trial, coloured by setting."""
    fig, axes = plt.subplots(1, len(cols), figsize=(5.5 * len(cols), 4.2), squeeze=False, sharey=True)
    for ax, column in zip(axes[0], cols, strict=True):
        for setting, part in done.groupby("setting"):
            ax.scatter(part[COUNT], part[column], s=18, alpha=0.8, label=setting)
        ax.set_title(f"HANS non-entailed: {HANS_NE[column]}")
        ax.set_xlabel("high-overlap non-entailed pairs in the subset")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy")
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


def stability_section(source: str, done: pd.DataFrame, out: Path) -> list[str]:
    """Return the lines of the scores' rank stability across reference seeds, each dynamics sampler's subset
    overlap, and the clusterings' adjusted Rand index under other seeds."""
    from tis_ray.comparison import sampler_entries
    from tis_ray.dynamics import DynamicsEnsemble, load_dynamics
    from tis_ray.report import sampler_settings
    from tis_ray.samplers import sampler_from_entry, sampler_label
    from tis_ray.stability import rank_stability, subset_overlap

    storage = Storage(source)
    lines = []
    if storage.exists("prepared/dynamics/manifest.json"):
        dynamics = load_dynamics(storage.fetch("prepared/dynamics"))
        if isinstance(dynamics, DynamicsEnsemble):
            ranks = rank_stability(dynamics)
            text = ranks.to_markdown(index=False, floatfmt=".3f")
            _write(out, "rank_stability", ranks, text)
            lines += ["## Stability of scores across reference seeds", "",
                      f"Dynamics recorded by {len(dynamics.members)} reference runs (seeds "
                      f"{', '.join(map(str, dynamics.seeds))}); samplers rank by the mean of their scores. "
                      "Spearman correlation of each score between runs:", "", text, ""]
            rows = []
            settings = sampler_settings(done)
            for label, entry in {sampler_label(e): e for e in sampler_entries(done)}.items():
                if not sampler_from_entry(entry).needs_dynamics:
                    continue
                smallest = done[settings == label].sort_values("n_train").iloc[0]
                budget = int(smallest["n_train"])
                rows.append({"setting": sampler_label(entry), "n_train": budget,
                             **subset_overlap(entry, dynamics, dynamics.labels, budget, int(smallest["seed"]))})
            if rows:
                table = pd.DataFrame(rows)
                text = table.to_markdown(index=False, floatfmt=".3f")
                _write(out, "subset_stability", table, text)
                lines += ["Overlap (Jaccard) of the subsets each sampler takes from one run's scores alone, between "
                          "runs and with the subset of the mean scores (smallest budget):", "", text, ""]
    agreement = []
    for key in storage.folders("prepared/clusters"):
        rel = f"prepared/clusters/{key}/meta.json"
        meta = storage.read_json(rel) if storage.exists(rel) else {}
        if "stability" in meta:
            ari = meta["stability"]["adjusted_rand"]
            agreement.append({"clustering": key, "seeds": len(ari), "ari_mean": float(np.mean(ari)),
                              "ari_min": float(np.min(ari))})
    if agreement:
        table = pd.DataFrame(agreement)
        text = table.to_markdown(index=False, floatfmt=".3f")
        _write(out, "cluster_stability", table, text)
        lines += ["## Stability of clusters across KMeans seeds", "",
                  "Adjusted Rand index of KMeans refitted under clustering.stability_seeds with the clustering the "
                  "samplers used (1: the same partition; 0: chance agreement):", "", text, ""]
    return lines


def attribution_section(source: str, out: Path) -> list[str]:
    """Return the lines of a run's datamodels (written by tis-ray attribute): the fit per target, which score
    predicts what retraining does (LDS), and links to the most helpful and harmful examples."""
    from tis_ray.attribution import ATTRIBUTION, slug

    storage = Storage(source)
    if not storage.exists(f"{ATTRIBUTION}/manifest.json"):
        return []
    manifest = storage.read_json(f"{ATTRIBUTION}/manifest.json")
    fits = pd.DataFrame([{"target": t, "held-out R² (within budgets)": m["heldout_r2"],
                          "held-out Spearman": m["heldout_spearman"],
                          "trials (fit / held out)": f"{m['n_fit']} / {m['n_heldout']}",
                          f"top-{m['top_k']['k']} overlap under resampling": m["top_k"]["jaccard_mean"]}
                         for t, m in manifest["targets"].items()])
    lds = pd.read_csv(io.BytesIO(storage.read_bytes(f"{ATTRIBUTION}/lds.csv")))
    lds_text = lds.to_markdown(index=False, floatfmt=".3f")
    _write(out, "lds", lds, lds_text)
    links = []
    for target in manifest["targets"]:
        rel = f"{ATTRIBUTION}/top_{slug(target)}.md"
        if storage.exists(rel):
            copy = copy_from_run(storage, rel, out / "tables" / f"top_{slug(target)}.md")
            links.append(f"- {target}: [tables/{copy.name}](tables/{copy.name})")
    return ["## Which examples matter, by retraining (datamodels)", "",
            f"Datamodels (Ilyas et al., 2022) fitted on {manifest['n_trials']} random subsets of a pool of "
            f"{manifest['pool_size']:,} examples (pool {manifest['pool_fingerprint']}): per target, the effect of "
            "including each example, judged on trials the fit never saw.", "",
            fits.to_markdown(index=False, floatfmt=".3f"), "",
            "Which score predicts what retraining does, on the held-out trials (the datamodel's row: its fit on "
            "the other trials), within each budget and pooled by a trial-weighted average (a 95% bootstrap "
            "interval within budgets). The **aggregate LDS**: Spearman's rho between a subset's summed score and "
            "the target measured after retraining on it. The **per-example LDS** (Park et al., 2023, TRAK's; "
            "margin targets): per evaluation example, Spearman's rho between the subset's summed attribution row "
            "and the example's margin, averaged over the examples. A score whose high values hurt has a negative "
            "LDS; near 0, it says nothing about what retraining does. An imported score is scored only on trials "
            "its manifest says it was not fitted on; 'provenance unknown' may have seen them.", "", lds_text, "",
            "The most helpful and harmful examples:", "", *links, ""]
