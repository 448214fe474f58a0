"""What the trackers get of a trial's result: parameters apart from metrics (no tracker, no Ray session)."""

from tis_ray.spec import GridPoint
from tis_ray.tracking import split_result


def test_a_result_splits_into_the_trials_parameters_and_its_measured_metrics():
    point = GridPoint(seed=3, data_pct=0.5, sampler={"type": "kmeans", "n_clusters": 4})
    config = {"point": point.model_dump(mode="json"), "setting": point.label(), "gpus": 0, "num_threads": 2,
              "spec": {"train": {"epochs": 2, "learning_rate": 3e-4}}, "run_dir": "/runs/s", "prepared": {}}
    # as Tune hands a result to a logger callback: the trial's report, then Tune's own keys and the config
    result = {**point.row_fields(), "epoch": 2, "mnli_m/acc": 0.75, "train/loss": 0.5, "n_train": 600,
              "n_train_full": 1200, "train_time_s": 12.5, "model": "tiny-albert", "device": "cpu",
              "freeze_base": False, "node_id": "abc", "final": 1,
              "training_iteration": 2, "time_total_s": 30.0, "timestamp": 1_700_000_000, "pid": 123,
              "hostname": "h", "node_ip": "127.0.0.1", "done": False, "trial_id": "468b5_00001",
              "date": "2026-12-04", "time_this_iter_s": 15.0, "iterations_since_restore": 2, "config": config}
    params, metrics = split_result(result)
    assert params == {"setting": "kmeans(n_clusters=4)", "sampler": "kmeans", "sampler_params": '{"n_clusters": 4}',
                      "overrides": "{}", "seed": 3, "budget_kind": "data_pct", "data_pct": 0.5,
                      "model": "tiny-albert", "device": "cpu", "freeze_base": False, "node_id": "abc"}
    assert metrics == {"epoch": 2.0, "mnli_m/acc": 0.75, "train/loss": 0.5, "n_train": 600.0,
                       "n_train_full": 1200.0, "train_time_s": 12.5}
