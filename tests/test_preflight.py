"""What a sweep checks before its preparation (tis_ray/preflight.py): trials that fit no node, subsets larger than
the training set, the local data read in full, a run directory that cannot be written."""

import os
from pathlib import Path

import pytest
import yaml
from conftest import small_spec_dict

from tis_ray.errors import DataError, SpecError, TisRayError
from tis_ray.preflight import (
    Node,
    check_before_preparation,
    check_budgets,
    check_trials_fit,
    local_eval_sets,
    local_node,
    training_set_size,
)
from tis_ray.spec import ResourcesSpec, build_spec
from tis_ray.storage import check_writable

GPU_NODE, CPU_NODE = Node("node type gpu", 8, 1), Node("node 10.0.0.2", 16, 0)


def test_a_trial_fits_when_one_node_has_both_its_cpus_and_its_gpus():
    check_trials_fit(ResourcesSpec(cpu=8, gpu=1), [CPU_NODE, GPU_NODE], "the cluster at auto")
    check_trials_fit(ResourcesSpec(cpu=16, gpu=0), [CPU_NODE, GPU_NODE], "the cluster at auto")
    check_trials_fit(ResourcesSpec(cpu=2, gpu=0.25), [GPU_NODE], "the cluster at auto")  # a quarter of one GPU
    # 16 CPUs exist, a GPU exists, but not on one node
    with pytest.raises(TisRayError, match=r"each trial asks for 16 CPU and 1 GPU, more than the cluster at auto "
                                          r"offers \(node 10\.0\.0\.2: 16 CPU, 0 GPU, node type gpu: 8 CPU, 1 GPU\)"):
        check_trials_fit(ResourcesSpec(cpu=16, gpu=1), [CPU_NODE, GPU_NODE], "the cluster at auto")


def test_fractional_gpus_need_a_whole_gpu_for_the_preparation():
    with pytest.raises(TisRayError, match=r"0\.5 GPU \(its preparation 1 whole GPU\), more than this machine"):
        check_trials_fit(ResourcesSpec(cpu=1, gpu=0.5), [Node("this machine", 2, 0.5)], "this machine")


def test_the_local_machine_counts_what_local_ray_would(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,3")
    assert local_node(num_cpus=3) == Node("this machine", 3.0, 2.0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert local_node().gpu == 0
    assert local_node().cpu == len(os.sched_getaffinity(0))
    with pytest.raises(TisRayError, match=r"asks for 4 CPU and 0 GPU, more than this machine offers \(this machine: "
                                          r"3 CPU, 0 GPU\).*at most 3 / 0, or run on a cluster with --address"):
        check_before_preparation(build_spec(small_spec_dict(storage_path=str(tmp_path), resources={"cpu": 4})),
                                 num_cpus=3)


def test_on_a_cluster_the_local_machine_is_not_compared(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    spec = build_spec(small_spec_dict(storage_path=str(tmp_path), resources={"cpu": 4096, "gpu": 8}))
    check_before_preparation(spec, on_cluster=True)


@pytest.mark.parametrize(("data", "size"), [
    ({}, 1200),  # small_spec_dict: synthetic n_train 1200
    ({"max_train_examples": 500}, 500),
    ({"max_train_examples": 5000}, 1200),
    ({"max_train_examples": 500, "pool_size": 100}, 100),
])
def test_the_synthetic_training_set_size_in_closed_form(data, size):
    assert training_set_size(build_spec(small_spec_dict(data=data))) == size


def test_a_pool_larger_than_the_capped_training_set_is_refused():
    with pytest.raises(DataError, match="data.pool_size 600 is more than the 500 training examples"):
        training_set_size(build_spec(small_spec_dict(data={"max_train_examples": 500, "pool_size": 600})))


def test_a_file_source_is_read_in_full_and_counted(tmp_path):
    rows = "".join(f"p{i}\th{i}\t{['entailment', 'neutral', 'contradiction'][i % 3]}\n" for i in range(37))
    (tmp_path / "train.tsv").write_text("premise\thypothesis\tlabel\n" + rows + "a\tb\t-\n")  # '-': no gold label
    spec = build_spec(small_spec_dict(data={"source": "files", "train_file": str(tmp_path / "train.tsv"),
                                            "matched_file": str(tmp_path / "train.tsv"), "hans": None, "synthetic": {}},
                                      eval_sets=["mnli_m"]))
    assert training_set_size(spec) == 37
    (tmp_path / "train.tsv").write_text("premise\thypothesis\tlabel\n" + rows + "a\tb\tmaybe\n")
    with pytest.raises(DataError, match=r"train\.tsv:39: unknown label 'maybe'"):
        training_set_size(spec)


def test_a_hub_training_set_is_not_downloaded():
    spec = build_spec(small_spec_dict(data={"source": "hub", "dataset": "stanfordnlp/sst2", "synthetic": {},
                                            "columns": {"text": ["sentence"]}},
                                      eval_sets=[{"name": "dev", "split": "validation"}]))
    assert training_set_size(spec) is None
    assert local_eval_sets(spec) == []


def test_only_local_eval_sets_are_read_in_a_dry_run(tmp_path):
    (tmp_path / "ood.csv").write_text("sentence,label\na,yes\n")
    spec = build_spec(small_spec_dict(data={"hans": "download"}, eval_sets=[
        "mnli_m", "hans", {"name": "ood", "file": str(tmp_path / "ood.csv")},
        {"name": "hub", "dataset": "facebook/anli", "split": "test_r1"}]))
    assert [e if isinstance(e, str) else e.name for e in local_eval_sets(spec)] == ["mnli_m", "ood"]


def test_subset_sizes_up_to_the_training_set():
    spec = build_spec(small_spec_dict(grid={"data_pct": None, "n_examples": [10, 1200]}))
    check_budgets(spec, 1200)
    with pytest.raises(SpecError, match=r"grid\.n_examples: 1200 is more than the training set's 1199 examples: "):
        check_budgets(spec, 1199)


def test_an_unwritable_run_directory_is_one_line_and_leaves_nothing(tmp_path):
    check_writable(tmp_path / "a" / "b")
    assert list(tmp_path.iterdir()) == []  # the probe folder is gone again
    (tmp_path / "file").write_text("x")
    with pytest.raises(TisRayError, match=r"cannot create .*/file/runs: .*/file is a file, not a folder"):
        check_writable(tmp_path / "file" / "runs")
    with pytest.raises(TisRayError, match=r"storage_path: cannot write in /proc \(to create /proc/x/y\)"):
        check_writable(Path("/proc/x/y"))


def test_the_dry_run_prints_the_resolved_paths(tmp_path, capsys):
    from tis_ray.cli import main

    (tmp_path / "exp").mkdir()
    (tmp_path / "data").mkdir()
    rows = "".join(f"p{i}\th{i}\t{i % 3}\n" for i in range(9))
    (tmp_path / "data" / "train.tsv").write_text("premise\thypothesis\tlabel\n" + rows)
    raw = small_spec_dict(storage_path="../runs", data={"source": "files", "train_file": "../data/train.tsv",
                                                         "matched_file": "../data/train.tsv", "hans": None,
                                                         "synthetic": {}}, eval_sets=["mnli_m"])
    (tmp_path / "exp" / "spec.yaml").write_text(yaml.safe_dump(raw))
    assert main(["sweep", str(tmp_path / "exp" / "spec.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"relative ones in the spec resolve against {tmp_path / 'exp'}" in out
    assert f"  run directory: {tmp_path / 'runs' / 't'}\n" in out
    assert f"  data.train_file: {tmp_path / 'data' / 'train.tsv'}\n" in out
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_cluster_nodes_are_the_alive_nodes_and_the_autoscalers_node_types(monkeypatch):
    import ray
    from ray._private import state as ray_state
    from ray.core.generated import autoscaler_pb2

    from tis_ray.preflight import cluster_nodes

    monkeypatch.setattr(ray, "nodes", lambda: [
        {"Alive": True, "NodeManagerAddress": "10.0.0.1", "Resources": {"CPU": 0.0}},  # a head without CPUs
        {"Alive": False, "NodeManagerAddress": "10.0.0.9", "Resources": {"CPU": 64.0, "GPU": 8.0}}])
    config = autoscaler_pb2.ClusterConfig()
    for name, count, cpu, gpu in (("gpu_a10g", 8, 8, 1), ("retired", 0, 64, 8)):
        group = config.node_group_configs.add(name=name, max_count=count)
        group.resources.update({"CPU": cpu, "GPU": gpu})
    monkeypatch.setattr(ray_state.state, "get_cluster_config", lambda: config)
    nodes = cluster_nodes()
    assert nodes == [Node("node 10.0.0.1", 0.0, 0.0), Node("node type gpu_a10g", 8, 1)]
    check_trials_fit(ResourcesSpec(cpu=8, gpu=1), nodes, "the cluster at auto")  # an autoscaler starts one
    with pytest.raises(TisRayError, match=r"asks for 9 CPU and 1 GPU, more than the cluster at auto offers"):
        check_trials_fit(ResourcesSpec(cpu=9, gpu=1), nodes, "the cluster at auto")
    monkeypatch.setattr(ray_state.state, "get_cluster_config", lambda: None)  # no autoscaler: the nodes there are
    assert cluster_nodes() == [Node("node 10.0.0.1", 0.0, 0.0)]
