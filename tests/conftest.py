"""Shared fixtures: every test module and every test gets its own tis_ray cache, offline; specs are small
versions of the demo."""

from __future__ import annotations

import os

import pytest

# Hugging Face libraries read these when imported, so they are set before any test module imports them:
# no test may reach the network.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
os.environ.update(OFFLINE)

from tis_ray.spec import build_spec  # noqa: E402


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
