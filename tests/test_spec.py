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


def test_every_shipped_experiment_validates_and_dry_runs(capsys):
    from pathlib import Path

    from tis_ray.cli import main

    specs = sorted(Path(__file__).parents[1].glob("experiments/*.yaml"))
    assert len(specs) >= 10
    for path in specs:
        text = path.read_text()
        assert text.startswith("# ") and "tis-ray sweep experiments/" in text and "Expected" in text, path
        assert main(["sweep", str(path), "--dry-run"]) == 0, path
        assert capsys.readouterr().out.startswith(f"sweep {load_spec(path).name}: ")


def test_grid_points_are_typed_in_grid_order_with_one_set_of_defaults():
    from tis_ray.spec import GridPoint

    spec = build_spec({"grid": {"seeds": [1, 2], "data_pct": [0.1, 0.5],
                                "samplers": [{"type": "random"}, {"type": "kmeans", "n_clusters": 4}],
                                "extra": {"model.freeze_base": [False, True]}}})
    points = spec.grid_points()
    assert len(points) == spec.n_trials() == 16
    assert points[0] == GridPoint(seed=1, data_pct=0.1, sampler={"type": "random"},
                                  overrides={"model.freeze_base": False})
    assert points[-1] == GridPoint(seed=2, data_pct=0.5, sampler={"type": "kmeans", "n_clusters": 4},
                                   overrides={"model.freeze_base": True})
    last = points[-1]
    assert last.budget_kind == "data_pct" and last.subset_size(1200) == 600 and last.subset_size(3) == 2
    assert last.label() == "kmeans(n_clusters=4) model.freeze_base=true"
    assert last.row_fields() == {"setting": "kmeans(n_clusters=4) model.freeze_base=true", "sampler": "kmeans",
                                 "sampler_params": '{"n_clusters": 4}', "overrides": '{"model.freeze_base": true}',
                                 "seed": 2, "budget_kind": "data_pct", "data_pct": 0.5, "n_examples": None}
    assert spec.for_point(last).model.freeze_base is True and spec.model.freeze_base is False
    one = spec.one_point(last)
    assert one.grid_points() == [last] and one.model.freeze_base is False  # overrides stay on the point


def test_grid_point_budget_kinds_and_errors(tmp_path):
    import numpy as np

    from tis_ray.errors import SamplingError
    from tis_ray.spec import GridPoint, grid_point

    assert GridPoint().budget_kind == "sampler" and GridPoint().sampler == {"type": "random"}
    assert GridPoint(seed=1, n_examples=7).subset_size(10) == 7
    with pytest.raises(SamplingError, match="n_examples=11 but the training set has 10"):
        GridPoint(n_examples=11).subset_size(10)
    np.save(tmp_path / "i.npy", np.array([4, 2, 2]), allow_pickle=False)
    explicit = GridPoint(n_examples=2, sampler={"type": "indices", "path": str(tmp_path / "i.npy")})
    assert explicit.budget_kind == "indices" and explicit.row_fields()["sampler"] == "indices"
    with pytest.raises(SpecError, match="p: data_pct: data_pct must be in"):
        grid_point("p", data_pct=2.0)
    with pytest.raises(SpecError, match="not both"):
        grid_point("p", data_pct=0.5, n_examples=3)
    with pytest.raises(SpecError, match="sampler 'indices': no such .npy file"):
        grid_point("p", n_examples=3, sampler={"type": "indices", "path": str(tmp_path / "none.npy")})


def test_run_spec_is_loaded_validated_and_an_outdated_one_says_so(tmp_path):
    from tis_ray.spec import SPEC_FILE, dump_spec, load_run_spec

    assert load_run_spec(tmp_path) is None
    spec = build_spec({"name": "r", "grid": {"seeds": [3], "data_pct": [0.5]}})
    (tmp_path / SPEC_FILE).write_text(dump_spec(spec))
    assert load_run_spec(tmp_path) == spec
    (tmp_path / SPEC_FILE).write_text(dump_spec(spec) + "retired_field: 1\n")
    with pytest.raises(SpecError, match="retired_field: unknown field .*written by another tis_ray version"):
        load_run_spec(tmp_path)
