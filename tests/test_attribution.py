"""Datamodels from a sweep of random subsets of one pool, end to end: per-example outcomes, tis-ray attribute,
the LDS table and top examples in the report, and a score sampler built from the effect vector in a sweep."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import small_spec_dict

from tis_ray.cli import main

pytestmark = pytest.mark.slow

POOL = 160


def spec_file(tmp, name, **overrides):
    raw = small_spec_dict(name=name, storage_path=str(tmp / "runs"), train={"epochs": 1}, **overrides)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def attributed(tmp_path_factory):
    import ray

    tmp = tmp_path_factory.mktemp("attribution")
    data = {"synthetic": {"n_train": 400, "n_eval": 60, "hans_per_cell": 10, "counter_examples": 40},
            "pool_size": POOL, "pool_seed": 7}
    spec = spec_file(tmp, "dm", data=data,
                     grid={"seeds": list(range(24)), "data_pct": [0.5], "samplers": [{"type": "random"}]})
    try:
        assert main(["sweep", str(spec), "--num-cpus", "2"]) == 0
    finally:
        ray.shutdown()
    run_dir = tmp / "runs" / "dm"
    shuffled = tmp / "shuffled.npy"
    np.save(shuffled, np.random.default_rng(0).random(POOL))
    assert main(["attribute", str(run_dir), "--target", "mnli_m/acc", "--target",
                 "margin:hans/lexical_overlap/non_entailed", "--score", f"shuffled={shuffled}"]) == 0
    assert main(["report", str(run_dir)]) == 0
    return tmp, run_dir, data


def test_every_trial_draws_from_the_pool_and_records_its_outcomes(attributed):
    _, run_dir, _ = attributed
    table = pd.read_parquet(run_dir / "results.parquet")
    assert len(table) == 24 and (table["n_train_full"] == POOL).all() and (table["n_train"] == POOL // 2).all()
    for trial in table["trial_id"][:3]:
        hans = np.load(run_dir / trial / "outcomes" / "hans.npy")
        assert hans.shape == (60, 2)  # 10 per (heuristic, half) x 6


def test_attribute_writes_effects_manifest_and_lds(attributed):
    _, run_dir, _ = attributed
    out = run_dir / "attribution"
    manifest = json.loads((out / "manifest.json").read_text())
    fingerprint = json.loads((run_dir / table_trial(run_dir) / "subset.json").read_text())["train_fingerprint"]
    assert manifest["pool_fingerprint"] == fingerprint and manifest["pool_size"] == POOL
    assert manifest["n_trials"] == 24 and set(manifest["targets"]) == {"mnli_m/acc",
                                                                        "margin:hans/lexical_overlap/non_entailed"}
    for entry in manifest["targets"].values():
        effects = np.load(out / entry["file"], allow_pickle=False)
        assert effects.shape == (POOL,) and effects.dtype == np.float32
        assert entry["n_fit"] + entry["n_heldout"] == 24
    lds = pd.read_csv(out / "lds.csv")
    assert {"datamodel", "shuffled"} <= set(lds["score"]) and set(lds["lds"]) == {"aggregate", "per-example"}
    assert ((lds["value"].isna()) | lds["value"].between(-1, 1)).all()
    assert (lds["trials"] == 5).all()  # every row on the same held-out fifth of the 24 trials
    top = (out / "top_margin_hans_lexical_overlap_non_entailed.md").read_text()
    assert "## Most helpful" in top and "## Most harmful" in top and "| premise" in top


def test_report_has_the_lds_table_and_the_top_examples(attributed):
    _, run_dir, _ = attributed
    text = (run_dir / "report" / "index.md").read_text()
    assert "## Which examples matter, by retraining (datamodels)" in text
    assert "aggregate LDS" in text and "per-example LDS" in text and "| per-example |" in text
    assert (run_dir / "report" / "tables" / "top_mnli_m_acc.md").is_file()


def test_the_target_margin_is_the_mean_of_the_recorded_margins(attributed):
    from tis_ray.attribution import random_trials, target_values

    _, run_dir, _ = attributed
    trials = random_trials(str(run_dir))
    values = target_values(trials, "examples:mnli_m:0,5")
    first = np.load(run_dir / trials.trial_ids[0] / "outcomes" / "mnli_m.npy").astype(np.float32)
    assert values[0] == pytest.approx(first[[0, 5], 0].mean())
    np.testing.assert_allclose(target_values(trials, "mnli_m/acc"), trials.table["mnli_m/acc"])


def test_a_score_sampler_from_the_effect_vector_runs_in_a_sweep(attributed):
    import ray

    tmp, run_dir, data = attributed
    effects = run_dir / "attribution" / "margin_hans_lexical_overlap_non_entailed.npy"
    spec = spec_file(tmp, "follow", data=data, grid={"seeds": [1], "data_pct": [0.25], "samplers": [
        {"type": "random"}, {"type": "score", "path": str(effects)}]})
    try:
        assert main(["sweep", str(spec), "--num-cpus", "2"]) == 0
    finally:
        ray.shutdown()
    table = pd.read_parquet(tmp / "runs" / "follow" / "results.parquet").set_index("setting")
    scored = [s for s in table.index if s.startswith("score(")]
    assert len(scored) == 1 and table.loc[scored[0], "status"] == "completed"
    trial = table.loc[scored[0], "trial_id"]
    chosen = np.load(tmp / "runs" / "follow" / trial / "subset_indices.npy")
    values = np.load(effects)
    # 25% of 160: 40 examples, none less helpful than the 40th most helpful (a Lasso ties many at 0)
    assert len(chosen) == 40 and values[chosen].min() >= np.sort(values)[-40]


def test_a_score_file_of_another_pool_is_refused_before_any_trial(attributed, capsys):
    tmp, run_dir, data = attributed
    effects = run_dir / "attribution" / "mnli_m_acc.npy"
    other = {**data, "pool_seed": 8}
    spec = spec_file(tmp, "other", data=other, grid={"seeds": [1], "data_pct": [0.25], "samplers": [
        {"type": "score", "path": str(effects)}]})
    assert main(["sweep", str(spec), "--num-cpus", "2"]) != 0
    assert "not of this one" in capsys.readouterr().err


def table_trial(run_dir):
    return pd.read_parquet(run_dir / "results.parquet")["trial_id"].iloc[0]


# Without Ray or training: hand-written runs whose outcomes come from a planted linear model (tests/fake_runs.py)

def attribute_fake(tmp_path, scores=None, **options):
    from fake_runs import planted_run

    from tis_ray.attribution import attribute

    run_dir = tmp_path / "run"
    world = planted_run(run_dir, **{"budgets": (0.3, 0.7), "seeds": 30, **options.pop("world", {})})
    attribute(str(run_dir), options.pop("targets", ["mnli_m/acc", "margin:mnli_m"]), scores, boot=3, **options)
    table = pd.read_csv(run_dir / "attribution" / "lds.csv")
    return run_dir, world, table.set_index(["target", "lds", "score"])


def test_a_random_score_on_mixed_budgets_scores_near_0_and_the_datamodel_on_held_out_trials(tmp_path):
    # every example's margin grows with the subset's size: mixing 30% and 70% would make any positive score look
    # predictive; within budgets a uniform random score has nothing to rank
    np.save(tmp_path / "uniform.npy", np.random.default_rng(5).random(60))
    run_dir, _, table = attribute_fake(tmp_path, {"uniform": str(tmp_path / "uniform.npy")},
                                       world={"size_effect": 0.05})
    row = table.loc[("mnli_m/acc", "aggregate", "uniform")]
    assert row["ci_low"] < 0 < row["ci_high"] and row["budgets"] == 2
    assert row["provenance"] == "provenance unknown: may have seen these trials"
    manifest = json.loads((run_dir / "attribution" / "manifest.json").read_text())
    datamodel = table.loc[("mnli_m/acc", "aggregate", "datamodel")]
    assert datamodel["trials"] == len(manifest["heldout_trials"]) == 12  # 20% of each budget's 30
    assert not set(manifest["fit_trials"]) & set(manifest["heldout_trials"])
    assert sorted(manifest["fitted_on_trials"]) == sorted(manifest["fit_trials"] + manifest["heldout_trials"])


def test_a_score_fitted_on_the_held_out_trials_is_refused_and_one_fitted_elsewhere_is_labelled(tmp_path):
    from tis_ray.attribution import attribute
    from tis_ray.errors import TisRayError

    run_dir, _, _ = attribute_fake(tmp_path, targets=["mnli_m/acc"])
    out = run_dir / "attribution"
    with pytest.raises(TisRayError, match="fitted on every held-out trial"):  # refitted on all trials
        attribute(str(run_dir), ["mnli_m/acc"], {"leaked": str(out / "mnli_m_acc.npy")}, boot=3)
    manifest = json.loads((out / "manifest.json").read_text())
    honest = tmp_path / "honest"
    honest.mkdir()
    np.save(honest / "score.npy", np.load(out / "mnli_m_acc.npy"))
    (honest / "manifest.json").write_text(json.dumps({"fitted_on_trials": manifest["fit_trials"]}))
    attribute(str(run_dir), ["mnli_m/acc"], {"honest": str(honest / "score.npy")}, boot=3)
    row = pd.read_csv(out / "lds.csv").set_index("score").loc["honest"]
    assert row["provenance"] == "fitted on 48 of these trials, none scored" and row["trials"] == 12


def test_per_example_lds_of_the_planted_attributions_and_of_the_per_example_datamodel(tmp_path):
    from fake_runs import planted_run

    rng_world = planted_run(tmp_path / "probe", budgets=(0.3, 0.7), seeds=30, noise=0.05)
    np.save(tmp_path / "planted.npy", rng_world[2])  # [8 evaluation examples, 60]: the truth
    run_dir, world, table = attribute_fake(tmp_path, {"planted": str(tmp_path / "planted.npy")},
                                           per_example=True, world={"noise": 0.05})
    np.testing.assert_array_equal(world[2], rng_world[2])  # the same planted world
    planted = table.loc[("margin:mnli_m", "per-example", "planted")]
    assert planted["value"] > 0.8 and planted["provenance"] == "provenance unknown: may have seen these trials"
    assert ("mnli_m/acc", "per-example", "planted") not in table.index  # a metric has no examples
    fitted = table.loc[("margin:mnli_m", "per-example", "datamodel per example")]
    assert fitted["provenance"] == "fitted on the 48 fit trials" and fitted["value"] < planted["value"]
    effects = np.load(run_dir / "attribution" / "margin_mnli_m.per_example.npy")
    assert effects.shape == (8, 60)
