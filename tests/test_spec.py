import os

import numpy as np
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
    assert spec_error({"trian": {}}) == "s.yaml: trian: unknown field; did you mean 'train'?"
    assert spec_error({"data": {"colums": {}}}) == "s.yaml: data.colums: unknown field; did you mean 'columns'?"
    assert spec_error({"eval_sets": [{"name": "a", "file": "/x", "lable_map": {}}]}) == \
        "s.yaml: eval_sets.0.lable_map: unknown field; did you mean 'label_map'?"  # not the union's other branch
    assert spec_error({"xyzzy": 1}).startswith("s.yaml: xyzzy: unknown field; known: name, storage_path, model, ")
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


def test_every_shipped_experiment_validates_and_dry_runs(capsys, tmp_path, monkeypatch):
    from pathlib import Path

    from tis_ray.cli import main
    from tis_ray.data.synthetic_tasks import write_demo_task

    # a copy of the repository's layout: experiments/ beside demo-task/, which the task demos read as ../demo-task
    write_demo_task(tmp_path / "demo-task", n_train=20, n_eval=12)
    (tmp_path / "experiments").mkdir()
    for shipped in Path(__file__).parents[1].glob("experiments/*.yaml"):
        (tmp_path / "experiments" / shipped.name).write_text(shipped.read_text())
    monkeypatch.chdir(tmp_path / "demo-task")  # relative paths follow the spec file, not the current folder
    specs = sorted((tmp_path / "experiments").glob("*.yaml"))
    assert len(specs) >= 10
    for path in specs:
        text = path.read_text()
        assert text.startswith("# ") and "tis-ray sweep experiments/" in text and "Expected" in text, path
        # a spec for a cluster (GPU nodes, a bucket) is dry-run as for one: its trials would fit no laptop
        on_cluster = ["--address", "auto"] if "s3://" in text else []
        assert main(["sweep", str(path), "--dry-run", *on_cluster]) == 0, path
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
    with pytest.raises(SpecError, match="retired_field: unknown field.*written by another tis_ray version"):
        load_run_spec(tmp_path)


def _entries(spec):
    from tis_ray.samplers import canonical_entry

    return [canonical_entry(e) for e in spec.grid.samplers]


def test_shipped_specs_run_what_the_original_ran():
    """Each spec's samplers and budgets are the original's rules, or an arm its header labels an extension."""
    from pathlib import Path

    from tis_ray.samplers import canonical_entry

    root = Path(__file__).parents[1] / "experiments"
    load = lambda name: load_spec(root / f"{name}.yaml")  # noqa: E731
    nested = canonical_entry({"type": "random", "nested": True})
    for name in ("mnli_random_v1", "mnli_random_v2"):
        spec = load(name)
        assert _entries(spec) == [nested] and spec.grid.budget_rounding == "floor"
    assert load("mnli_random_v1").grid.seeds == [42, 0, 250, 500, 999] and load("mnli_random_v1").train.batch_size == 512
    assert load("mnli_random_v2").train.batch_size == 256 and len(load("mnli_random_v2").grid.data_pct) == 16
    whole_dbscan = canonical_entry({"type": "dbscan", "mode": "whole_clusters", "eps": 0.2, "min_samples": 50,
                                    "noise": "exclude"})
    for name in ("clustering_vs_random", "cluster_2pct_epochs", "clustering_v1"):
        spec = load(name)
        assert spec.grid.budget_rounding == "floor" and whole_dbscan in _entries(spec) and nested in _entries(spec)
        text = (root / f"{name}.yaml").read_text()
        for entry in spec.grid.samplers:  # every other arm is labelled an extension on its line
            mode = canonical_entry(entry).get("mode")
            if canonical_entry(entry) not in (whole_dbscan, nested) and mode != "whole_clusters":
                line = next(line for line in text.splitlines() if f"mode: {mode}" in line
                            and line.strip().startswith("- {type: " + entry["type"]))
                assert "# extension" in line, (name, entry)
    assert load("cluster_2pct_epochs").grid.extra == {"train.epochs": [3, 4, 5, 6, 7, 8, 9, 10]}
    v1 = load("clustering_v1")
    assert (v1.clustering.kmeans_method, v1.clustering.kmeans_batch_size, v1.clustering.seed) == ("minibatch", 2048, 0)
    c16 = load("clusters_16")
    assert _entries(c16)[0] == canonical_entry({"type": "dbscan", "mode": "num_clusters", "clusters_to_take": 16,
                                                "cluster_order": "label", "noise": "exclude", "eps": 0.2,
                                                "min_samples": 50})
    assert c16.grid.extra == {"train.epochs": [1, 2, 3, 4, 5, 6, 7]}
    cen = load("centroids_512")
    assert _entries(cen)[:2] == [canonical_entry({"type": "random"}),
                                 canonical_entry({"type": "kmeans", "mode": "centroid_overall", "n_clusters": 512})]
    assert cen.grid.n_examples == [512] and cen.train.batch_size == 256
    assert (cen.clustering.kmeans_method, cen.clustering.kmeans_batch_size, cen.clustering.seed) == ("minibatch", 2048, 0)
    assert cen.grid.extra == {"train.epochs": list(range(1, 16))}
    frozen = load("freezing")
    assert frozen.model.freeze_base and frozen.grid.seeds == [999] and frozen.grid.extra == {"train.epochs": list(range(1, 11))}
    assert load("evaluate_only").train.epochs == 0


def test_expected_numbers_are_the_originals_and_match_a_grid_setting():
    """The `expected:` rows name settings the grid runs; a few cells checked against the original's README."""
    from pathlib import Path

    from tis_ray.samplers import canonical_entry

    root = Path(__file__).parents[1] / "experiments"
    cells = {}
    for path in root.glob("*.yaml"):
        spec = load_spec(path)
        entries = _entries(spec)
        for row in spec.expected.rows:
            assert canonical_entry(row.sampler) in entries, (path.name, row.sampler)
            for key, value in row.overrides.items():
                assert value in spec.grid.extra[key], (path.name, key)
            if row.epochs is not None and "train.epochs" in spec.grid.extra:
                assert row.epochs in spec.grid.extra["train.epochs"]
            cells[(spec.name, row.seed, row.data_pct, row.n_examples, row.epochs, row.sampler["type"])] = row
    assert cells[("mnli_random_v1", 42, 0.1, None, None, "random")].mnli_m == 70.99337
    assert cells[("mnli_random_v1", 500, 1.0, None, None, "random")].flag.startswith("columns swapped")
    assert cells[("mnli_random_v2", 42, 1.0, None, None, "random")].mnli_mm == 85.51668
    assert cells[("cluster_2pct_epochs", 42, 0.02, None, 7, "dbscan")].mnli_m == 72.28
    assert "with bug" in cells[("clusters_16", 42, None, None, 3, "dbscan")].flag
    assert cells[("centroids_512", 42, None, 512, 15, "kmeans")].mnli_mm == 43.44
    assert cells[("freezing", 999, 1.0, None, 10, "random")].mnli_m == 50.56


def test_floored_budgets_as_the_original():
    from tis_ray.spec import GridPoint

    assert GridPoint(data_pct=0.29).subset_size(100, "floor") == 28  # int(0.29 * 100) = int(28.999...) = 28
    assert GridPoint(data_pct=0.29).subset_size(100) == 29
    assert GridPoint(data_pct=0.1).subset_size(392_702, "floor") == 39_270


def test_a_dry_run_piped_into_head_ends_quietly():
    import subprocess
    import sys
    from pathlib import Path

    spec = Path(__file__).parents[1] / "experiments" / "mnli_random_v1.yaml"
    seeds = ",".join(map(str, range(400)))  # 4,000 lines: more than a pipe's buffer, so head closes it early
    done = subprocess.run(f"'{sys.executable}' -m tis_ray.cli sweep '{spec}' --dry-run --address auto "
                          f"--set 'grid.seeds=[{seeds}]' "
                          "| head -1", shell=True, capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("sweep mnli_random_v1: 4000 trials") and len(done.stdout.splitlines()) == 1
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr


def test_folder_names_read_like_the_grid_point():
    from tis_ray.spec import GridPoint

    assert GridPoint(seed=42, data_pct=0.1, sampler={"type": "kmeans", "n_clusters": 8}).folder_name() == \
        "s42-pct0.1-kmeans_k=8"
    assert GridPoint(seed=0, n_examples=512, sampler={"type": "random"},
                     overrides={"model.name": "prajjwal1/albert-base-v2-mnli"}).folder_name() == \
        "s0-n512-random-name=prajjwal1_albert-base-v2-mnli"
    assert GridPoint(sampler={"type": "dbscan", "mode": "num_clusters", "clusters_to_take": 16}).folder_name() == \
        "s42-own-dbscan_take=16_mode=num_clusters"


def test_equal_samplers_are_one_entry_one_label_and_written_twice_is_refused():
    spec = build_spec({"grid": {"data_pct": [0.5], "samplers": [
        {"type": "kmeans", "mode": "proportional", "n_clusters": 8, "cluster_order": "label"}]}})
    assert spec.grid.samplers == [{"type": "kmeans", "n_clusters": 8}]  # defaults left out once, at load
    assert spec.grid_points()[0].label() == "kmeans(n_clusters=8)"
    with pytest.raises(SpecError, match=r"grid\.samplers: sampler kmeans\(n_clusters=8\) is in the grid twice"):
        build_spec({"grid": {"data_pct": [0.5], "samplers": [{"type": "kmeans", "n_clusters": 8},
                                                             {"type": "kmeans", "mode": "proportional", "n_clusters": 8}]}})


def test_schema_types_every_sampler_entry(capsys):
    import json

    from tis_ray.cli import main
    from tis_ray.samplers import SAMPLERS

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    items = schema["$defs"]["GridSpec"]["properties"]["samplers"]["items"]
    assert set(items["discriminator"]["mapping"]) == set(SAMPLERS)
    kmeans = schema["$defs"]["KMeansSamplerEntry"]
    assert kmeans["properties"]["mode"]["enum"] == ["proportional", "centroid", "round_robin", "whole_clusters",
                                                    "num_clusters", "centroid_overall"]
    assert kmeans["properties"]["n_clusters"]["default"] == 16 and kmeans["additionalProperties"] is False
    assert schema["properties"]["tracking"]["$ref"] == "#/$defs/TrackingSpec"


def test_seeds_by_range():
    grid = {"data_pct": [0.5]}
    assert build_spec({"grid": {**grid, "seeds": {"range": 3}}}).grid.seeds == [0, 1, 2]
    assert build_spec({"grid": {**grid, "seeds": {"range": [5, 8]}}}).grid.seeds == [5, 6, 7]
    with pytest.raises(SpecError, match=r"seeds: range takes N or \[start, stop\]"):
        build_spec({"grid": {**grid, "seeds": {"range": [8, 5]}}})


def test_relative_paths_in_a_spec_follow_its_folder_and_overrides_the_current_one(tmp_path, monkeypatch):
    (tmp_path / "exp").mkdir()
    (tmp_path / "elsewhere").mkdir()
    np.save(tmp_path / "exp" / "scores.npy", np.zeros(1200))
    (tmp_path / "exp" / "s.yaml").write_text(
        "data: {source: files, train_file: data/train.tsv, matched_file: ../shared/dev.tsv, hans: null}\n"
        "eval_sets: [mnli_m]\nclustering: {labels_path: ~/labels}\n"
        "grid: {data_pct: [0.5], samplers: [{type: score, path: scores.npy}]}\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    spec = load_spec(tmp_path / "exp" / "s.yaml")
    assert spec.data.train_file == str(tmp_path / "exp" / "data" / "train.tsv")
    assert spec.data.matched_file == str(tmp_path / "shared" / "dev.tsv")
    assert spec.clustering.labels_path == os.path.expanduser("~/labels")
    assert spec.grid.samplers[0]["path"] == str(tmp_path / "exp" / "scores.npy")
    # not written in the file: storage_path's default (runs) is the current folder's, as --set paths are
    assert spec.storage_path == str(tmp_path / "elsewhere" / "runs")
    spec = load_spec(tmp_path / "exp" / "s.yaml", ["data.train_file=mine.tsv", "storage_path=out",
                                                   "model.name=./ckpt", "clustering.labels_path=lab"])
    assert spec.data.train_file == str(tmp_path / "elsewhere" / "mine.tsv")
    assert spec.storage_path == str(tmp_path / "elsewhere" / "out")
    assert spec.model.name == str(tmp_path / "elsewhere" / "ckpt")
    assert spec.clustering.labels_path == str(tmp_path / "elsewhere" / "lab")
    assert spec.data.matched_file == str(tmp_path / "shared" / "dev.tsv")  # the file's own still follow the file
    # a spec in the current folder resolves as before; a spec built in Python against the current folder
    assert build_spec({"storage_path": "r"}).storage_path == str(tmp_path / "elsewhere" / "r")


def test_a_hub_id_stays_a_hub_id_unless_the_spec_folder_holds_it(tmp_path, monkeypatch):
    (tmp_path / "exp" / "org" / "model").mkdir(parents=True)
    (tmp_path / "exp" / "s.yaml").write_text("model: {name: org/model, tokenizer: org/other}\n")
    monkeypatch.chdir(tmp_path)
    spec = load_spec(tmp_path / "exp" / "s.yaml")
    assert spec.model.name == str(tmp_path / "exp" / "org" / "model")  # a folder beside the spec
    assert spec.model.tokenizer == "org/other"  # no such folder: a hub id


@pytest.mark.parametrize(("text", "where"), [
    ("name: t\ngrid: {data_pct: [0.5\nseeds: [1]}\n",
     "s.yaml:3:6: expected ',' or ']', but got ':' (while parsing a flow sequence at 2:18)"),
    ("name: t\ngrid:\n\tseeds: [1]\n", "s.yaml:3:1: found character '\\t' that cannot start any token"),
    ("a: 'open\n", "s.yaml:2:1: found unexpected end of stream (while scanning a quoted scalar at 1:4)"),
])
def test_yaml_syntax_errors_give_line_and_column(tmp_path, text, where):
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(SpecError) as err:
        load_spec(tmp_path / "s.yaml")
    assert str(err.value).startswith(str(tmp_path / where.split(":")[0]) + where[len("s.yaml"):])


def test_report_baseline_must_name_a_sampler_of_the_grid():
    grid = {"data_pct": [0.5], "samplers": [{"type": "random", "nested": True}, {"type": "kmeans"}]}
    assert "did you mean 'kmeans'?" in spec_error({"grid": grid, "report": {"baseline": "kmaens"}})
    for named in ("kmeans", "random", "random(nested=True)"):
        assert build_spec({"grid": grid, "report": {"baseline": named}}).report.baseline == named
    build_spec({"grid": {"data_pct": [0.5], "samplers": [{"type": "kmeans"}]}})  # the default needs no random


def test_did_you_mean_names_the_closest_known_word_or_nothing():
    from tis_ray.errors import did_you_mean

    assert did_you_mean("trian", ["name", "train", "grid"]) == "; did you mean 'train'?"
    assert did_you_mean("n_cluster", ["mode", "n_clusters", "clusters_to_take"]) == "; did you mean 'n_clusters'?"
    assert did_you_mean("xyzzy", ["name", "train"]) == ""
