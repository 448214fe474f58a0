"""`tis-ray attribute RUN_DIR`: datamodels from a run's random-subset trials, and the LDS of every score.

Reads the run's completed trials of the random sampler (their subsets of one pool, their metrics and their
per-example outcomes), fits a datamodel per target (tis_ray.datamodels), and writes into RUN_DIR/attribution:

    <target>.npy        the effect of including each pool example on the target (float32, pool order)
    manifest.json       the pool's fingerprint and size, the trials, and per target its penalty, held-out fit
                        quality and top-k stability
    lds.csv / lds.md    per target and score: the LDS on held-out trials, with a 95% bootstrap interval
    top_<target>.md     the most helpful and most harmful examples, with their text

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
TOP_ROWS = 10


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


def target_values(trials: RandomTrials, target: str) -> np.ndarray:
    """Return the value of `target` for every trial (see the module's docstring for the forms)."""
    if target.startswith("examples:"):
        _, eval_set, ids = target.split(":", 2)
        rows = np.array([int(i) for i in ids.split(",") if i.strip()])
        return np.array([trial_outcomes(trials.storage, t, eval_set)[rows, 0].mean() for t in trials.trial_ids])
    if target.startswith("margin:"):
        name = target.removeprefix("margin:")
        eval_set, _, group = name.partition("/")
        rows = group_rows(trials.storage, eval_set, group) if group else None
        values = []
        for t in trials.trial_ids:
            margins = trial_outcomes(trials.storage, t, eval_set)[:, 0]
            values.append(margins[rows].mean() if rows is not None else margins.mean())
        return np.array(values)
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


def load_score(path: str, pool_size: int, pool_fingerprint: str) -> np.ndarray:
    """Return an imported per-example score (.npy, one value per pool example), refused when its length differs
    from the pool's or a manifest.json beside it names another pool."""
    from tis_ray.io import load_npy, read_json

    scores = load_npy(path)
    if scores.ndim != 1 or len(scores) != pool_size:
        raise TisRayError(f"{path}: {scores.shape} scores for a pool of {pool_size} examples")
    manifest = Path(path).with_name("manifest.json")
    if manifest.is_file():
        named = read_json(manifest).get("pool_fingerprint")
        if named and named != pool_fingerprint:
            raise TisRayError(f"{path}: scores of pool {named}, not of this run's pool {pool_fingerprint}")
    return scores.astype(np.float64)


def attribute(run_dir: str, targets: list[str] | None = None, scores: dict[str, str] | None = None,
              sampler: str = "random", top_k: int = datamodels.TOP_K, boot: int = datamodels.BOOTSTRAP,
              estimator: str = "ridge") -> Path:
    """Fit datamodels for `targets` from the run's random-subset trials, score every built-in and imported
    per-example score by its LDS, and write RUN_DIR/attribution (for a URI: written in ./attribution/NAME, then
    uploaded there, where the report finds it); returns the local manifest's path."""
    trials = random_trials(run_dir, sampler)
    targets = targets or default_targets(trials.table)
    pool = trials.masks.shape[1]
    candidates = builtin_scores(trials.storage)
    for name, path in (scores or {}).items():
        candidates[name] = load_score(path, pool, trials.pool_fingerprint)
    out = Path(trials.storage.path(ATTRIBUTION)) if trials.storage.local else Path(ATTRIBUTION) / Path(
        str(run_dir).split("?")[0].rstrip("/")).name
    fit_rows, test_rows = datamodels.split_trials(len(trials.table))
    manifest = {"pool_fingerprint": trials.pool_fingerprint, "pool_size": pool, "n_trials": len(trials.table),
                "sampler": sampler, "estimator": estimator, "targets": {}}
    lds_rows = []
    for target in targets:
        y = target_values(trials, target)
        model = datamodels.fit_datamodel(trials.masks, y, estimator=estimator)
        stability = datamodels.top_k_stability(trials.masks, y, model.alpha, k=top_k, boot=boot,
                                               estimator=estimator)
        file = f"{slug(target)}.npy"
        save_npy(out / file, model.effects.astype(np.float32))
        manifest["targets"][target] = {"file": file, "alpha": model.alpha, "heldout_r2": model.heldout_r2,
                                       "heldout_spearman": model.heldout_spearman, "n_fit": model.n_fit,
                                       "n_heldout": model.n_heldout, "top_k": stability}
        log.info("%s: datamodel on %d trials, held-out R2 %.3f, Spearman %.3f", target, len(y), model.heldout_r2,
                 model.heldout_spearman)
        predicted = datamodels.cross_fitted_predictions(trials.masks, y, estimator=estimator)
        value, low, high = datamodels.correlation_with_interval(predicted, y)
        lds_rows.append({"target": target, "score": "datamodel (cross-fitted)", "lds": value, "ci_low": low,
                         "ci_high": high, "trials": len(y)})
        for name, score in candidates.items():
            value, low, high = datamodels.lds_with_interval(score, trials.masks[test_rows], y[test_rows])
            lds_rows.append({"target": target, "score": name, "lds": value, "ci_low": low, "ci_high": high,
                             "trials": len(test_rows)})
        write_text(out / f"top_{slug(target)}.md", top_examples_markdown(run_dir, target, model.effects))
    table = pd.DataFrame(lds_rows)
    write_via(out / "lds.csv", lambda tmp: table.to_csv(tmp, index=False))
    write_text(out / "lds.md", table.to_markdown(index=False, floatfmt=".3f") + "\n")
    path = write_json(out / "manifest.json", manifest)
    if not trials.storage.local:
        trials.storage.upload(out, ATTRIBUTION)
    return path


def pool_text(run_dir: str) -> pd.DataFrame | None:
    """Return the pool's text columns (premise and hypothesis, or text) and label name (the run's data loaded
    again: the cached hub copy, the files, or the synthetic corpus), or None when it cannot be loaded."""
    from tis_ray.data.loaders import load_data
    from tis_ray.spec import load_run_spec

    spec = load_run_spec(run_dir)
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
