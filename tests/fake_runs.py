"""A run directory of random-subset trials written by hand, with outcomes from a planted linear model: what
`tis-ray attribute` reads (params.json, result.json, subset.json, subset_indices.npy, outcomes/<set>.npy),
without Ray or training, so the attribution's numbers can be checked against a known truth in milliseconds."""

import json

import numpy as np

from tis_ray.spec import GridPoint

FINGERPRINT = "0123456789abcdef"


def planted_run(run_dir, budgets=(0.5,), seeds=24, pool=60, n_eval=8, noise=0.3, size_effect=0.0, seed=0):
    """Write `seeds` trials at each of `budgets` (data_pct) into `run_dir`; return (trial ids, masks, the
    per-example effects [n_eval, pool], the margins [trials, n_eval]).

    Each example's margin is a linear function of the subset's mask plus noise; `size_effect` adds a shift per
    included example (so a subset's size moves every outcome: what mixing budgets confounds). mnli_m/acc is the
    mean margin."""
    rng = np.random.default_rng(seed)
    effects = rng.normal(0, 0.1, (n_eval, pool)) * (rng.random((n_eval, pool)) < 0.2)
    trial_ids, masks, margins = [], [], []
    for pct in budgets:
        size = int(round(pct * pool))
        for s in range(seeds):
            trial = f"trial_{len(trial_ids):05d}"
            chosen = np.sort(rng.choice(pool, size, replace=False))
            mask = np.zeros(pool, dtype=bool)
            mask[chosen] = True
            margin = effects @ mask + size_effect * size + rng.normal(0, noise, n_eval)
            folder = run_dir / trial
            (folder / "outcomes").mkdir(parents=True)
            point = GridPoint(seed=s, data_pct=pct)
            (folder / "params.json").write_text(json.dumps({"point": point.model_dump(mode="json")}))
            (folder / "result.json").write_text(json.dumps(
                {"epoch": 1, "final": True, "mnli_m/acc": float(margin.mean()), "n_train": size,
                 "n_train_full": pool}) + "\n")
            (folder / "subset.json").write_text(json.dumps({"train_fingerprint": FINGERPRINT}))
            np.save(folder / "subset_indices.npy", chosen)
            outcomes = np.stack([margin, (margin > 0).astype(float)], axis=1).astype(np.float16)
            np.save(folder / "outcomes" / "mnli_m.npy", outcomes)
            trial_ids.append(trial)
            masks.append(mask)
            margins.append(outcomes[:, 0].astype(np.float32))
    return trial_ids, np.array(masks), effects, np.array(margins)
