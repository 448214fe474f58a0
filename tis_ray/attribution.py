"""`tis-ray attribute RUN_DIR`: datamodels from a run's random-subset trials, and the LDS of every score.

Reads the run's completed trials of the random sampler (their subsets of one pool, their metrics and their
per-example outcomes), fits a datamodel per target (tis_ray.datamodels), and writes into RUN_DIR/attribution:

    <target>.npy        the effect of including each pool example on the target (float32, pool order), refitted
                        on every trial
    <target>.per_example.npy  with --per-example: [the target's evaluation examples, pool], one row per example
    manifest.json       the pool's fingerprint and size, the trials (fitted_on_trials: every file here; fit_trials
                        and heldout_trials: the split every LDS uses), and per target its penalty, held-out fit
                        quality and top-k stability
    lds.csv / lds.md    per target, LDS kind (aggregate; per-example for margin targets) and score: the LDS on
                        held-out trials within each budget, a 95% bootstrap interval, and the score's provenance
    top_<target>.md     the most helpful and most harmful examples, with their text

Every LDS uses the held-out trials only: the datamodel's row is its fit on the other trials; an imported score
whose manifest.json lists the trials it was fitted on (`fitted_on_trials`) is scored on the held-out trials
outside that list (refused when none remain), one without such a list is labelled "provenance unknown".

Targets: a metric of the results table (mnli_m/acc, hans/acc, hans/lexical_overlap/non_entailed, ...), the mean
margin over an evaluation set or one of its groups (margin:mnli_m, margin:hans/lexical_overlap/non_entailed,
margin:ood/<group value>), or the mean margin of chosen examples (examples:mnli_m:3,17,42).
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tis_ray import datamodels
from tis_ray.errors import TisRayError
from tis_ray.io import save_npy, write_json, write_text, write_via
from tis_ray.storage import Storage

log = logging.getLogger(__name__)

ATTRIBUTION = "attribution"
OUTCOMES = "outcomes"  # in each trial folder: <eval set>.npy [n, 2] float16 (margin, correct) + manifest.json
MIN_TRIALS = 20
MIN_TRIALS_PER_BUDGET = 10  # the LDS compares subsets of one size: 20% of 10 leaves 3 to rank
TOP_ROWS = 10
LDS_BOOTSTRAP = 1000  # resamples of the held-out trials (within budgets) for each LDS's interval
AGGREGATE = "aggregate"  # the LDS of one target against a score that ignores which example it is about
PER_EXAMPLE = "per-example"  # Park et al. (2023): one correlation per evaluation example, averaged
BUILTIN_PROVENANCE = "prepared by the run, not from these trials"
UNKNOWN_PROVENANCE = "provenance unknown: may have seen these trials"


@dataclass
class RandomTrials:
    """The random-subset trials of a run: inclusion masks over the pool, their table rows, the pool."""

    storage: Storage
    table: pd.DataFrame  # one row per trial, aligned with masks
    masks: np.ndarray  # [trials, pool] bool
    pool_fingerprint: str

    @property
    def trial_ids(self) -> list[str]:
        return self.table["trial_id"].tolist()


def random_trials(run_dir: str, sampler: str = "random") -> RandomTrials:
    """Return the completed trials of sampler type `sampler` in `run_dir` with their subsets as masks; a run
    with fewer than MIN_TRIALS of them, or with subsets of different pools, raises a one-line error."""
    from tis_ray.export import export_table
    from tis_ray.report import final_rows

    table = final_rows(export_table(run_dir, per_epoch=True))
    done = table[(table["status"] == "completed") & (table["sampler"] == sampler)].reset_index(drop=True)
    if len(done) < MIN_TRIALS:
        raise TisRayError(f"{run_dir}: {len(done)} completed '{sampler}' trials; datamodels need at least "
                          f"{MIN_TRIALS} (hundreds for a stable fit): a grid of many seeds at one data_pct")
    storage = Storage(run_dir)
    pool = int(done["n_train_full"].max())
    records = [storage.read_json(f"{t}/subset.json") for t in done["trial_id"]]
    fingerprints = {r["train_fingerprint"] for r in records}
    if len(fingerprints) != 1 or done["n_train_full"].nunique() != 1:
        raise TisRayError(f"{run_dir}: the trials drew from {len(fingerprints)} different training sets")
    subsets = [storage.read_npy(f"{t}/subset_indices.npy") for t in done["trial_id"]]
    return RandomTrials(storage, done, datamodels.masks_from_subsets(subsets, pool), fingerprints.pop())


def default_targets(table: pd.DataFrame) -> list[str]:
    """Return the targets fitted when none are named: the metrics the report compares (MNLI-m, HANS overall and
    HANS non-entailed per heuristic on the MNLI sources; each set's accuracy otherwise), MNLI-mm left out."""
    from tis_ray.report import compared_metrics

    return [m for m in compared_metrics(table) if m != "mnli_mm/acc" and table[m].notna().all()]


def trial_outcomes(storage: Storage, trial_id: str, eval_set: str) -> np.ndarray:
    """Return a trial's per-example outcomes on `eval_set`: [n, 2] float32 (margin, correct)."""
    rel = f"{trial_id}/{OUTCOMES}/{eval_set}.npy"
    if not storage.exists(rel):
        raise TisRayError(f"{trial_id}: no per-example outcomes for {eval_set!r} (trials before tis_ray recorded "
                          "them have none; run the sweep again)")
    return storage.read_npy(rel).astype(np.float32)


def group_rows(storage: Storage, eval_set: str, group: str) -> np.ndarray:
    """Return the rows of `eval_set` in `group`: a value of one of its groups, or its first values (HANS:
    'lexical_overlap' or 'lexical_overlap/non_entailed'). Raises TisRayError naming the groups it has."""
    from tis_ray.data.prepare import MANIFEST
    from tis_ray.data.task import EvalDefinition
    from tis_ray.evaluation import group_keys
    from tis_ray.preparation import PREPARED_FILE

    data = next(iter(storage.read_json(PREPARED_FILE)["data_by_tokenizer"].values()))
    manifest = storage.read_json(f"{data}/{MANIFEST}")
    if eval_set not in manifest.get("definitions", {}):
        raise TisRayError(f"unknown evaluation set {eval_set!r}: the run has {', '.join(manifest['eval_sets'])}")
    definition = EvalDefinition.from_json(manifest["definitions"][eval_set])
    meta = pd.read_parquet(io.BytesIO(storage.read_bytes(f"{data}/{manifest['eval_meta'][eval_set]}")))
    gold = np.array(definition.labels)[meta["label"].to_numpy()]
    known: set[str] = set()
    for g in definition.groups:
        keys = group_keys(g, meta, gold)
        rows = np.flatnonzero((keys == group) | np.char.startswith(keys.astype(str), f"{group}/"))
        if len(rows):
            return rows
        known |= set(keys.tolist())
    raise TisRayError(f"unknown group {group!r} of {eval_set}: it has "
                      f"{', '.join(sorted(known)[:12]) or 'no groups'}{' ...' if len(known) > 12 else ''}")


def target_rows(trials: RandomTrials, target: str) -> tuple[str, np.ndarray] | None:
    """Return (evaluation set, its rows) a margin target averages over (margin:SET[/group], examples:SET:ids),
    None for a metric of the results table."""
    if target.startswith("examples:"):
        _, eval_set, ids = target.split(":", 2)
        return eval_set, np.array([int(i) for i in ids.split(",") if i.strip()])
    if target.startswith("margin:"):
        eval_set, _, group = target.removeprefix("margin:").partition("/")
        if group:
            return eval_set, group_rows(trials.storage, eval_set, group)
        size = len(trial_outcomes(trials.storage, trials.trial_ids[0], eval_set))
        return eval_set, np.arange(size)
    return None


def example_margins(trials: RandomTrials, eval_set: str, rows: np.ndarray) -> np.ndarray:
    """Return the margins of `rows` of `eval_set` in every trial: [trials, len(rows)]."""
    return np.stack([trial_outcomes(trials.storage, t, eval_set)[rows, 0] for t in trials.trial_ids])


def target_values(trials: RandomTrials, target: str) -> np.ndarray:
    """Return the value of `target` for every trial (see the module's docstring for the forms)."""
    located = target_rows(trials, target)
    if located is not None:
        return example_margins(trials, *located).mean(axis=1)
    if target not in trials.table:
        raise TisRayError(f"unknown target {target!r}: a metric of the results table (e.g. mnli_m/acc), "
                          "margin:SET[/group value] or examples:SET:i,j,k")
    return trials.table[target].to_numpy(dtype=np.float64)


def builtin_scores(storage: Storage) -> dict[str, np.ndarray]:
    """Return the per-example scores the run prepared: the dynamics scores (when a sampler needed them) and each
    KMeans clustering's distance to the example's center."""
    from tis_ray.dynamics import load_dynamics

    scores: dict[str, np.ndarray] = {}
    if storage.exists("prepared/dynamics/manifest.json"):
        dynamics = load_dynamics(storage.fetch("prepared/dynamics"))
        for name in ("confidence", "variability", "correctness", "forgetting", "mean_loss"):
            scores[name] = getattr(dynamics, name)()
        scores["el2n@1"] = dynamics.el2n(1)
    for key in storage.folders("prepared/clusters"):
        rel = f"prepared/clusters/{key}/distances.npy"
        if storage.exists(rel):
            scores[f"distance to center ({key})"] = storage.read_npy(rel)
    return scores


def slug(target: str) -> str:
    """Return a file-name form of a target name."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", target).strip("_")


@dataclass
class ImportedScore:
    """A score given with --score: one value per pool example ([pool]) or one row per evaluation example
    ([examples, pool]), and the trials it was fitted on (None: not recorded)."""

    values: np.ndarray
    fitted_trials: frozenset[str] | None

    def provenance(self, trial_ids: list[str]) -> str:
        """Return what the LDS table says of where the score comes from."""
        if self.fitted_trials is None:
            return UNKNOWN_PROVENANCE
        seen = len(self.fitted_trials & set(trial_ids))
        return f"fitted on {seen} of these trials, none scored" if seen else "fitted on none of these trials"


def fitted_trials_of(path: str | Path) -> frozenset[str] | None:
    """Return the trials a score file was fitted on, as its manifest.json records them (`fitted_on_trials` of the
    target whose file it is, or of the whole folder); None when no manifest records them."""
    from tis_ray.io import read_json

    manifest = Path(path).with_name("manifest.json")
    if not manifest.is_file():
        return None
    recorded = read_json(manifest)
    for entry in recorded.get("targets", {}).values():
        for kind in (entry, entry.get("per_example") or {}):
            if kind.get("file") == Path(path).name and "fitted_on_trials" in kind:
                return frozenset(kind["fitted_on_trials"])
    return frozenset(recorded["fitted_on_trials"]) if "fitted_on_trials" in recorded else None


def load_score(path: str, pool_size: int, pool_fingerprint: str) -> ImportedScore:
    """Return an imported score (.npy: one value per pool example, or [evaluation examples, pool]) with the
    trials it was fitted on; refused when its width differs from the pool's or a manifest.json beside it names
    another pool."""
    from tis_ray.io import load_npy, read_json

    scores = load_npy(path)
    if scores.ndim not in (1, 2) or scores.shape[-1] != pool_size:
        raise TisRayError(f"{path}: {scores.shape} scores for a pool of {pool_size} examples (expected "
                          f"[{pool_size}] or [evaluation examples, {pool_size}])")
    manifest = Path(path).with_name("manifest.json")
    if manifest.is_file():
        named = read_json(manifest).get("pool_fingerprint")
        if named and named != pool_fingerprint:
            raise TisRayError(f"{path}: scores of pool {named}, not of this run's pool {pool_fingerprint}")
    return ImportedScore(scores.astype(np.float64), fitted_trials_of(path))


def unseen_rows(name: str, score: ImportedScore, trial_ids: list[str], heldout: np.ndarray) -> np.ndarray:
    """Return the held-out rows whose trials `score` was not fitted on; refused when none remain."""
    if score.fitted_trials is None:
        return heldout
    rows = np.array([r for r in heldout if trial_ids[r] not in score.fitted_trials], dtype=int)
    if len(rows) == 0:
        raise TisRayError(f"score {name!r} was fitted on every held-out trial ({len(heldout)}) of this run: its LDS "
                          "would score trials it saw; fit it on the trials manifest.json lists as fit_trials")
    return rows


def check_budgets(budgets: np.ndarray) -> None:
    """Refuse trials with a budget too thin to compare subsets of one size (fewer than MIN_TRIALS_PER_BUDGET)."""
    values, counts = np.unique(budgets, return_counts=True)
    thin = [f"{v:g}" for v, c in zip(values, counts, strict=True) if c < MIN_TRIALS_PER_BUDGET]
    if thin:
        raise TisRayError(f"budget {', '.join(thin)} has fewer than {MIN_TRIALS_PER_BUDGET} trials: the LDS compares "
                          "subsets of one size, within each budget; add seeds there or leave it out of the run")


def per_example_score(score: np.ndarray, located: tuple[str, np.ndarray] | None, set_size: int | None):
    """Return the [target's examples, pool] rows of a per-example score for a margin target (rows of the whole
    evaluation set, or exactly the target's); None when it does not fit the target."""
    if score.ndim != 2 or located is None:
        return None
    if len(score) == set_size:
        return score[located[1]]
    return score if len(score) == len(located[1]) else None


@dataclass
class Candidate:
    """A score to rank by its LDS: its values ([pool] or [examples, pool]), where it comes from, and the held-out
    rows it may be scored on."""

    values: np.ndarray
    provenance: str
    rows: np.ndarray


@dataclass
class Target:
    """One target's outcomes per trial, and for a margin target its evaluation set, rows and their margins."""

    name: str
    values: np.ndarray  # [trials]
    located: tuple[str, np.ndarray] | None  # (evaluation set, rows) of a margin target
    margins: np.ndarray | None  # [trials, rows]
    set_size: int | None


def read_target(trials: RandomTrials, name: str) -> Target:
    """Return `name`'s outcomes in every trial (and its examples' margins for a margin target)."""
    located = target_rows(trials, name)
    if located is None:
        return Target(name, target_values(trials, name), None, None, None)
    margins = example_margins(trials, *located)
    return Target(name, margins.mean(axis=1), located, margins, set_size(trials, located))


def lds_row(target: str, kind: str, score: str, provenance: str, predicted: np.ndarray, actual: np.ndarray,
            budgets: np.ndarray, boot: int) -> dict:
    """Return one row of the LDS table: `kind` (aggregate or per-example) LDS of `score` on these subsets."""
    value, low, high = datamodels.lds_summary(predicted, actual, budgets, boot=boot)
    return {"target": target, "lds": kind, "score": score, "value": value, "ci_low": low, "ci_high": high,
            "trials": len(actual), "budgets": len(np.unique(budgets)), "provenance": provenance}


def target_lds_rows(target: Target, candidates: dict[str, Candidate], masks: np.ndarray, budgets: np.ndarray,
                    boot: int) -> list[dict]:
    """Return the LDS rows of every candidate for `target`: the aggregate LDS of each score of one vector (a
    per-example score: its rows' mean), and for a margin target the per-example LDS of each (a score of one
    vector ranks every example's subsets alike)."""
    rows = []
    for name, c in candidates.items():
        m, b = masks[c.rows], budgets[c.rows]
        per_example = per_example_score(c.values, target.located, target.set_size)
        if c.values.ndim == 1 and target.located is not None:
            per_example = np.broadcast_to(c.values, (len(target.located[1]), len(c.values)))
        if c.values.ndim == 1 or per_example is not None:
            vector = c.values if c.values.ndim == 1 else per_example.mean(axis=0)
            rows.append(lds_row(target.name, AGGREGATE, name, c.provenance, datamodels.subset_sums(vector, m),
                                target.values[c.rows], b, boot))
        if per_example is not None:
            rows.append(lds_row(target.name, PER_EXAMPLE, name, c.provenance, datamodels.subset_sums(per_example, m),
                                target.margins[c.rows], b, boot))
    return rows


def check_per_example_scores(imported: dict[str, ImportedScore], targets: list[Target]) -> None:
    """Refuse a per-example score ([examples, pool]) that fits none of the margin targets."""
    for name, score in imported.items():
        if score.values.ndim == 2 and all(per_example_score(score.values, t.located, t.set_size) is None
                                          for t in targets):
            raise TisRayError(f"score {name!r} has {len(score.values)} rows, one per evaluation example: it needs a "
                              "margin:SET or examples:SET target of as many examples (or of a set that size)")


def attribute(run_dir: str, targets: list[str] | None = None, scores: dict[str, str] | None = None,
              sampler: str = "random", top_k: int = datamodels.TOP_K, boot: int = datamodels.BOOTSTRAP,
              estimator: str = "ridge", per_example: bool = False, lds_boot: int = LDS_BOOTSTRAP) -> Path:
    """Fit datamodels for `targets` from the run's random-subset trials (with `per_example`: also one per
    evaluation example of each margin target, ridge), score every built-in and imported score by its aggregate
    and per-example LDS on held-out trials within each budget, and write RUN_DIR/attribution (for a URI: written
    in ./attribution/NAME, then uploaded there, where the report finds it); returns the local manifest's path."""
    if per_example and estimator != "ridge":
        raise TisRayError("--per-example fits ridge (one multi-output fit): leave out --estimator lasso")
    trials = random_trials(run_dir, sampler)
    budgets = trials.table["budget"].to_numpy(dtype=np.float64)
    check_budgets(budgets)
    ids, masks, pool = trials.trial_ids, trials.masks, trials.masks.shape[1]
    read = [read_target(trials, t) for t in targets or default_targets(trials.table)]
    imported = {name: load_score(path, pool, trials.pool_fingerprint) for name, path in (scores or {}).items()}
    check_per_example_scores(imported, read)
    fit_rows, held = datamodels.split_trials(len(ids), budgets=budgets)
    candidates = {name: Candidate(values, BUILTIN_PROVENANCE, held)
                  for name, values in builtin_scores(trials.storage).items()}
    candidates |= {name: Candidate(s.values, s.provenance(ids), unseen_rows(name, s, ids, held))
                   for name, s in imported.items()}
    out = Path(trials.storage.path(ATTRIBUTION)) if trials.storage.local else Path(ATTRIBUTION) / Path(
        str(run_dir).split("?")[0].rstrip("/")).name
    manifest = {"pool_fingerprint": trials.pool_fingerprint, "pool_size": pool, "n_trials": len(ids),
                "sampler": sampler, "estimator": estimator, "budgets": sorted(set(budgets.tolist())),
                "fitted_on_trials": ids,  # every .npy here is refitted on all of them
                "fit_trials": [ids[r] for r in fit_rows], "heldout_trials": [ids[r] for r in held], "targets": {}}
    fit_note = f"fitted on the {len(fit_rows)} fit trials"
    lds_rows = []
    for target in read:
        model = datamodels.fit_datamodel(masks, target.values, estimator=estimator, budgets=budgets)
        stability = datamodels.top_k_stability(masks, target.values, model.alpha, k=top_k, boot=boot,
                                               estimator=estimator, budgets=budgets)
        file = f"{slug(target.name)}.npy"
        save_npy(out / file, model.effects.astype(np.float32))
        entry = {"file": file, "alpha": model.alpha, "heldout_r2": model.heldout_r2,
                 "heldout_spearman": model.heldout_spearman, "n_fit": model.n_fit, "n_heldout": model.n_heldout,
                 "top_k": stability}
        log.info("%s: datamodel on %d trials, held-out R2 %.3f, Spearman %.3f", target.name, len(ids),
                 model.heldout_r2, model.heldout_spearman)
        lds_rows.append(lds_row(target.name, AGGREGATE, "datamodel", fit_note,
                                datamodels.subset_sums(model.fit_effects, masks[held]), target.values[held],
                                budgets[held], lds_boot))
        own = {}
        if per_example and target.located is not None:
            per_model = datamodels.fit_datamodel(masks, target.margins, budgets=budgets)
            per_file = f"{slug(target.name)}.per_example.npy"
            save_npy(out / per_file, per_model.effects.astype(np.float32))
            entry["per_example"] = {"file": per_file, "eval_set": target.located[0],
                                    "rows": target.located[1].tolist(), "alpha": per_model.alpha,
                                    "heldout_r2": per_model.heldout_r2}
            own["datamodel per example"] = Candidate(per_model.fit_effects, fit_note, held)
        manifest["targets"][target.name] = entry
        lds_rows += target_lds_rows(target, own | candidates, masks, budgets, lds_boot)
        write_text(out / f"top_{slug(target.name)}.md", top_examples_markdown(run_dir, target.name, model.effects))
    table = pd.DataFrame(lds_rows)
    write_via(out / "lds.csv", lambda tmp: table.to_csv(tmp, index=False))
    write_text(out / "lds.md", table.to_markdown(index=False, floatfmt=".3f") + "\n")
    path = write_json(out / "manifest.json", manifest)
    if not trials.storage.local:
        trials.storage.upload(out, ATTRIBUTION)
    return path


def set_size(trials: RandomTrials, located: tuple[str, np.ndarray] | None) -> int | None:
    """Return the number of examples of the evaluation set a margin target reads (None for a metric)."""
    if located is None:
        return None
    return len(trial_outcomes(trials.storage, trials.trial_ids[0], located[0]))


def pool_text(run_dir: str) -> pd.DataFrame | None:
    """Return the pool's text columns (premise and hypothesis, or text) and label name (the run's data loaded
    again: the cached hub copy, the files, or the synthetic corpus), or None when it cannot be loaded."""
    from tis_ray.data.loaders import load_data
    from tis_ray.spec import load_run_spec

    spec = load_run_spec(run_dir)
    if spec is None:
        log.warning("%s records no spec: the table names examples by index only", run_dir)
        return None
    try:
        data = load_data(spec.data, spec.eval_sets)
    except TisRayError as exc:
        log.warning("the pool's text is not available (%s): the table names examples by index only", exc)
        return None
    table = data.train.select_columns([*data.task.text_columns, "label"]).to_pandas()
    table["label"] = np.array(data.task.labels)[table["label"].to_numpy()]
    return table


def top_examples_markdown(run_dir: str, target: str, effects: np.ndarray, rows: int = TOP_ROWS) -> str:
    """Return the Markdown tables of the `rows` most helpful and most harmful pool examples for `target`."""
    text = pool_text(run_dir)
    parts = [f"# {target}: the examples whose inclusion changes it most", ""]
    for title, order in (("Most helpful", np.argsort(-effects, kind="stable")),
                         ("Most harmful", np.argsort(effects, kind="stable"))):
        chosen = order[:rows]
        table = pd.DataFrame({"example": chosen, "effect": effects[chosen]})
        if text is not None:
            for column in text.columns:
                table[column] = text[column].to_numpy()[chosen]
        parts += [f"## {title}", "", table.to_markdown(index=False, floatfmt=".4g"), ""]
    return "\n".join(parts)
