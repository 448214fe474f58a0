"""Selection cost from hand-written step.json files: every dynamics seed's run charged, stability refits
listed apart and not charged, inputs given by path marked as not recorded."""

import json

import numpy as np
import pytest
from conftest import small_spec_dict

from tis_ray.cost import selection_costs, stability_costs
from tis_ray.samplers import sampler_key
from tis_ray.spec import build_spec

LOSS, KMEANS, RANDOM = {"type": "loss"}, {"type": "kmeans", "n_clusters": 4}, {"type": "random"}
CLUSTERS = "clusters/kmeans-abc"


def write(path, record):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


@pytest.fixture
def run_dir(tmp_path):
    """A run directory's timed steps, GPU-seconds half the seconds (a 0.5 GPU share): the reference run
    (seed 1) 100 s, the runs of seeds 2 and 3 80 s and 90 s, embeddings 10 s, the clustering 30 s of which
    its two stability refits took 20 s."""
    prepared = tmp_path / "prepared"
    for step, seconds in (("reference_model", 100.0), ("dynamics/seeds/2", 80.0), ("dynamics/seeds/3", 90.0),
                          ("embeddings", 10.0), (CLUSTERS, 30.0)):
        write(prepared / step / "step.json", {"key": "k", "seconds": seconds, "gpu_seconds": seconds / 2})
    write(prepared / "dynamics" / "step.json", {"key": "k"})  # recorded by the reference run: no time of its own
    write(prepared / CLUSTERS / "meta.json", {"stability": {"seeds": [5, 6], "adjusted_rand": [0.9, 0.8],
                                                             "seconds": 20.0}})
    write(tmp_path / "prepared.json", {"clusters_by_sampler": {sampler_key(KMEANS): f"prepared/{CLUSTERS}"}})
    return tmp_path


def spec(dynamics=None, clustering=None, samplers=(RANDOM, LOSS, KMEANS)):
    """The fixture's spec: three dynamics seeds and two stability seeds unless given otherwise."""
    return build_spec(small_spec_dict(dynamics=dynamics or {"seeds": [1, 2, 3]},
                                      clustering=clustering or {"stability_seeds": [5, 6]},
                                      grid={"samplers": list(samplers)}))


def test_every_seed_charged_and_refits_apart_by_hand(run_dir):
    costs = selection_costs(str(run_dir), spec(), [RANDOM, LOSS, KMEANS]).set_index("setting")
    assert costs.loc["loss", "steps"] == "reference_model, dynamics/seeds/2, dynamics/seeds/3"
    assert costs.loc["loss", "selection_s"] == 100 + 80 + 90  # the mean of three runs: all three paid
    assert costs.loc["loss", "selection_gpu_s"] == (100 + 80 + 90) / 2
    kmeans = costs.loc["kmeans(n_clusters=4)"]
    assert kmeans["steps"] == f"reference_model, embeddings, {CLUSTERS}"
    assert kmeans["selection_s"] == 100 + 10 + (30 - 20) and kmeans["selection_gpu_s"] == (100 + 10 + 10) / 2
    assert costs.loc["random", "selection_s"] == 0 and costs.loc["random", "steps"] == "none"
    assert costs["timed"].all() and (costs["cost_not_recorded"] == "").all()
    refits = stability_costs(str(run_dir))
    assert refits.to_dict("records") == [{"clustering": CLUSTERS, "stability_seeds": 2, "seconds": 20.0,
                                          "gpu_seconds": 10.0}]


def test_refits_not_timed_apart_are_flagged(run_dir):
    write(run_dir / "prepared" / CLUSTERS / "meta.json", {"stability": {"seeds": [5, 6], "adjusted_rand": [0.9, 0.8]}})
    costs = selection_costs(str(run_dir), spec(), [KMEANS, LOSS]).set_index("setting")
    assert costs.loc["kmeans(n_clusters=4)", "selection_s"] == 100 + 10 + 30  # cannot be split: all of it
    assert not costs.loc["kmeans(n_clusters=4)", "timed"] and costs.loc["loss", "timed"]
    assert np.isnan(stability_costs(str(run_dir))["seconds"].iloc[0])


def test_inputs_given_by_path_are_marked_not_recorded(run_dir, tmp_path):
    score = {"type": "score", "path": str(tmp_path / "s.npy")}
    np.save(score["path"], np.zeros(1200))
    given = spec(dynamics={"path": str(tmp_path / "dyn")}, clustering={"embeddings_path": str(tmp_path / "emb")},
                 samplers=[LOSS, KMEANS, score])
    costs = selection_costs(str(run_dir), given, [LOSS, KMEANS, score]).set_index("setting")
    assert costs.loc["loss", "steps"] == "none" and costs.loc["loss", "cost_not_recorded"] == "dynamics.path"
    kmeans = costs.loc["kmeans(n_clusters=4)"]
    assert kmeans["steps"] == CLUSTERS and kmeans["selection_s"] == 10  # the clustering only, refits apart
    assert kmeans["cost_not_recorded"] == "clustering.embeddings_path"
    assert costs.loc[f"score(path={score['path']})", "cost_not_recorded"] == "score.path"
    checkpoint = spec(clustering={"embedding_model": str(tmp_path / "ckpt")}, samplers=[KMEANS])
    row = selection_costs(str(run_dir), checkpoint, [KMEANS]).iloc[0]
    assert row["steps"] == f"embeddings, {CLUSTERS}" and row["cost_not_recorded"] == "clustering.embedding_model"


def test_report_section_lists_refits_apart_and_names_unrecorded_costs(run_dir, tmp_path):
    import pandas as pd

    from tis_ray.report_sections import compute_section

    score = {"type": "score", "path": str(tmp_path / "s.npy")}
    np.save(score["path"], np.zeros(1200))
    entries = [RANDOM, LOSS, KMEANS, score]
    done = pd.DataFrame({"sampler": [e["type"] for e in entries],
                         "sampler_params": [json.dumps({k: v for k, v in e.items() if k != "type"}) for e in entries],
                         "setting": ["random", "loss", "kmeans", "score"], "budget": 10.0, "n_train": 120,
                         "train_time_s": 5.0, "mnli_m/acc": [0.5, 0.6, 0.7, 0.8]})
    out = tmp_path / "report"
    text = "\n".join(compute_section(done, str(run_dir), spec(samplers=entries), out, "budget"))
    assert f"Cost not recorded for score(path={score['path']})" in text
    refits = pd.read_csv(out / "tables" / "stability_cost.csv")
    assert refits["seconds"].tolist() == [20.0] and "not charged to any sampler" in text
    per_trial = pd.read_csv(out / "tables" / "compute_per_trial.csv").set_index("setting")
    assert per_trial.loc["loss", "total_s"] == 5 + 270 and per_trial.loc["kmeans", "total_s"] == 5 + 120
