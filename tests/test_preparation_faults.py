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


def test_a_step_whose_upload_fails_is_not_marked_and_a_marker_without_its_data_is_recomputed(s3, monkeypatch):
    """S3 through a proxy that fails every PUT of embeddings.npy: the step's marker must not reach the bucket
    (it used to be uploaded beside the data, so it could land first); a rerun reuses the reference model and
    computes the embeddings; a marker whose data file is gone is a step to compute again, never an error."""
    from conftest import Calls
    from s3_faults import FaultyS3Proxy

    from tis_ray.preparation import prepare_shared
    from tis_ray.storage import Storage, join

    calls = Calls(monkeypatch)
    spec = build_spec(small_spec_dict(name="marker", storage_path=s3, train={"epochs": 1},
                                      data={"synthetic": {"n_train": 400, "n_eval": 60, "hans_per_cell": 6}},
                                      clustering={"embedding_epochs": 1},
                                      grid={"samplers": [{"type": "kmeans", "n_clusters": 4}]}))
    direct = Storage(join(s3, "marker"))
    moto = s3.split("endpoint_override=")[1].split("&")[0]
    with FaultyS3Proxy(moto) as proxy:
        run_dir = join(s3.replace(moto, f"127.0.0.1:{proxy.port}"), "marker")
        proxy.fail_when("embeddings.npy", lambda method, path: method in ("PUT", "POST") and "embeddings.npy" in path)
        with pytest.raises(OSError):
            prepare_shared(spec, run_dir, gpus=0)
        assert proxy.faults["embeddings.npy"] >= 1
        assert direct.exists("prepared/reference_model/step.json")  # the step before it is finished ...
        assert not direct.exists("prepared/embeddings/step.json")  # ... this one is not marked
        assert (calls.fits, calls.embeds) == (1, 1)

        proxy.clear()
        prepare_shared(spec, run_dir, gpus=0)  # the rerun: the reference model is reused, embeddings computed
        assert (calls.fits, calls.embeds) == (1, 2)
        marker = direct.read_json("prepared/embeddings/step.json")
        assert marker["files"]["embeddings.npy"] == direct.fs.get_file_info(
            direct.path("prepared/embeddings/embeddings.npy")).size == 400 * 128 * 4 + 128  # 400 rows of tiny-albert's 128 floats, the .npy header

    # markers there, their data not: the clustering's labels and the embeddings it is computed from
    (clusters,) = direct.folders("prepared/clusters")
    direct.delete_file(f"prepared/clusters/{clusters}/labels.npy")
    direct.delete_file("prepared/embeddings/embeddings.npy")
    prepare_shared(spec, join(s3, "marker"), gpus=0)
    assert (calls.fits, calls.embeds) == (1, 3)  # both computed again, no FileNotFoundError
    assert direct.exists("prepared/embeddings/embeddings.npy")
    assert direct.exists(f"prepared/clusters/{clusters}/labels.npy")
    assert direct.read_json("prepared/embeddings/step.json")["key"] == marker["key"]
