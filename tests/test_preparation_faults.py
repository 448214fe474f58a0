"""A preparation task whose worker dies (a spot node going away) is retried by Ray and reuses the steps its first
attempt finished: the reference fine-tune is not trained again."""

import threading
import time

import psutil
import pytest
from conftest import small_spec_dict

from tis_ray.spec import build_spec
from tis_ray.sweep import connect, prepare_on_cluster

pytestmark = pytest.mark.slow


def preparation_worker():
    """Return the process running the preparation task (Ray titles it ray::_prepare_task), or None."""
    for child in psutil.Process().children(recursive=True):
        try:
            if "_prepare_task" in " ".join(child.cmdline()):
                return child
        except psutil.Error:
            continue
    return None


def test_a_killed_preparation_task_is_retried_and_reuses_its_finished_steps(tmp_path):
    import ray

    raw = small_spec_dict(name="prep", storage_path=str(tmp_path / "runs"), train={"epochs": 1},
                          data={"synthetic": {"n_train": 4000, "n_eval": 100, "hans_per_cell": 10}},
                          clustering={"embedding_epochs": 1},
                          grid={"data_pct": [0.5], "samplers": [{"type": "kmeans", "n_clusters": 4}]})
    spec = build_spec(raw)
    prepared = tmp_path / "runs" / "prep" / "prepared"
    outcome = {}
    connect(None, num_cpus=2)
    try:
        runner = threading.Thread(target=lambda: outcome.update(result=prepare_on_cluster(spec, str(prepared.parent))))
        runner.start()
        deadline = time.monotonic() + 240
        while not (prepared / "reference_model" / "step.json").is_file():  # the first step finished ...
            assert time.monotonic() < deadline and runner.is_alive(), "the reference fine-tune never finished"
            time.sleep(0.05)
        trained_at = (prepared / "reference_model" / "step.json").stat().st_mtime_ns
        worker = preparation_worker()
        assert worker is not None, "no preparation task running"
        worker.kill()  # ... and its node goes away before the preparation ends
        runner.join(timeout=300)
        assert not runner.is_alive()
    finally:
        ray.shutdown()
    assert outcome["result"]["clusters_by_sampler"], "the retried task did not finish the preparation"
    assert (prepared / "reference_model" / "step.json").stat().st_mtime_ns == trained_at  # not trained again
    assert (prepared / "embeddings" / "step.json").is_file()
