"""Shared fixtures: every test module and every test gets its own tis_ray cache, offline; specs are small
versions of the demo."""

from __future__ import annotations

import logging
import os
import socket

import pytest
from pyarrow import fs as pafs

# Hugging Face libraries read these when imported, so they are set before any test module imports them:
# no test may reach the network.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
os.environ.update(OFFLINE)

from tis_ray.spec import build_spec  # noqa: E402

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """An S3 API on 127.0.0.1 (moto's standalone server) with a bucket; yields s3://bucket/runs?... ."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per S3 request otherwise
    with pytest.MonkeyPatch.context() as patch:
        for key, value in CREDENTIALS.items():
            patch.setenv(key, value)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            endpoint = f"endpoint_override=127.0.0.1:{port}&scheme=http"
            fs, _ = pafs.FileSystem.from_uri(f"s3://bucket?{endpoint}&allow_bucket_creation=true")
            fs.create_dir("bucket")
            yield f"s3://bucket/runs?{endpoint}"
        finally:
            server.stop()




@pytest.fixture(scope="module", autouse=True)
def module_cache(tmp_path_factory):
    """The module's own cache, also for module-scoped fixtures (which run before function-scoped ones)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIS_RAY_CACHE", str(tmp_path_factory.mktemp("module_cache")))
        for key, value in OFFLINE.items():
            patch.setenv(key, value)
        yield


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TIS_RAY_CACHE", str(tmp_path / "cache"))


def small_spec_dict(**overrides) -> dict:
    """The demo at test size: 1,200 training pairs, fast tiny-albert settings."""
    raw = {
        "name": "t",
        "data": {"synthetic": {"n_train": 1200, "n_eval": 300, "hans_per_cell": 30}},
        # group_by_length off: the synthetic corpus ties length to label, so length buckets are label buckets
        "train": {"epochs": 3, "learning_rate": 3.0e-4, "warmup_ratio": 0.1, "batch_size": 32,
                  "group_by_length": False},
        "grid": {"seeds": [42], "data_pct": [1.0], "samplers": [{"type": "random"}]},
    }
    for key, value in overrides.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return raw


@pytest.fixture
def small_spec():
    return build_spec(small_spec_dict())


def trial_config(prepared_root, raw_spec: dict, **point) -> dict:
    """A trial's config for `run_trial`: the spec's shared preparation done once into `prepared_root`."""
    from tis_ray.preparation import prepare_shared, trial_inputs
    from tis_ray.spec import GridPoint

    spec = build_spec(raw_spec)
    grid_point = GridPoint(**point)
    prepared = prepare_shared(spec, prepared_root, gpus=0)
    return {"spec": raw_spec, "point": grid_point.model_dump(), "gpus": 0, "num_threads": 2,
            "prepared": trial_inputs(prepared, spec, grid_point, prepared_root)}


class Calls:
    """Counts the expensive preparation steps: reference fine-tunes and embedding passes."""

    def __init__(self, monkeypatch):
        from tis_ray import preparation

        self.fits = self.embeds = 0
        real_run, real_embed = preparation.reference_run, preparation.embed_dataset

        def run(*args, **kwargs):
            self.fits += 1
            return real_run(*args, **kwargs)

        def embed(*args, **kwargs):
            self.embeds += 1
            return real_embed(*args, **kwargs)

        monkeypatch.setattr(preparation, "reference_run", run)
        monkeypatch.setattr(preparation, "embed_dataset", embed)


# the one line of a DBSCAN clustering left all noise, with the plot it names as group 1
NOISE_STOP = (r"DBSCAN \(eps=1e-09, min_samples=50\) leaves 100\.0% of 1200 points as noise, so no trial was started: "
              r"the k-distance knee suggests eps ~ \S+ \((\S+k_distance\.png[^)\s]*)\)")
