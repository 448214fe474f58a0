import pytest

from tis_ray.errors import SpecError
from tis_ray.spec import build_spec, load_spec


def spec_error(raw):
    with pytest.raises(SpecError) as info:
        build_spec(raw, source="s.yaml")
    return str(info.value)


@pytest.mark.parametrize("pct", [0, 1.5, -0.1])
def test_data_pct_outside_unit_interval_names_field(pct):
    msg = spec_error({"grid": {"data_pct": [0.5, pct]}})
    assert msg.startswith("s.yaml: grid.data_pct.1: data_pct must be in (0, 1]")


def test_unknown_sampler_and_parameter_list_known_ones():
    assert "unknown sampler 'kmean'; known: random, stratified, kmeans, dbscan" in spec_error(
        {"grid": {"data_pct": [0.1], "samplers": [{"type": "kmean"}]}})
    msg = spec_error({"grid": {"data_pct": [0.1], "samplers": [{"type": "kmeans", "clusters": 3}]}})
    assert "grid.samplers" in msg and "unknown parameter 'clusters'" in msg and "n_clusters" in msg


def test_exclusive_modes_are_rejected():
    assert "exclude each other" in spec_error({"grid": {"data_pct": [0.1], "n_examples": [5]}})
    msg = spec_error({"grid": {"data_pct": [0.1], "samplers": [
        {"type": "kmeans", "mode": "num_clusters", "clusters_to_take": 2}]}})
    assert "num_clusters picks its own subset size" in msg
    assert "clusters_to_take goes with mode num_clusters" in spec_error(
        {"grid": {"data_pct": [0.1], "samplers": [{"type": "kmeans", "clusters_to_take": 2}]}})


def test_unknown_field_and_bad_extra_axis():
    assert spec_error({"trian": {}}) == "s.yaml: trian: unknown field"
    assert "train.epochs" in spec_error({"grid": {"data_pct": [1.0], "extra": {"train.epochs": ["many"]}}})


def test_load_spec_with_overrides(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\ngrid: {data_pct: [0.5], seeds: [1, 2]}\n")
    spec = load_spec(path, ["train.epochs=7", "model.freeze_base=true"])
    assert (spec.train.epochs, spec.model.freeze_base, spec.n_trials()) == (7, True, 2)
    with pytest.raises(SpecError, match="not of the form"):
        load_spec(path, ["train.epochs"])
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "missing.yaml")


def test_every_shipped_experiment_validates():
    from pathlib import Path

    specs = sorted(Path(__file__).parents[1].glob("experiments/*.yaml"))
    assert len(specs) >= 5
    for path in specs:
        load_spec(path)
