"""What a sweep checks before it prepares anything, and what `tis-ray sweep --dry-run` checks: that a trial fits
on some node (a request no node can meet would wait for ever), that the local data reads (columns, labels,
label maps, evaluation splits) and that every subset size fits the training set.

Each check raises a one-line TisRayError; none writes anything or starts Ray.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from tis_ray.errors import DataError, SpecError, TisRayError
from tis_ray.spec import EvalSetSpec, ResourcesSpec, SweepSpec, looks_like_path, run_location
from tis_ray.storage import check_writable, is_uri


class Node(NamedTuple):
    """One machine, or one node type of a cluster, with the CPUs and GPUs a trial can ask for on it."""

    name: str
    cpu: float
    gpu: float


def local_node(num_cpus: int | None = None) -> Node:
    """Return this machine as local Ray sees it: `num_cpus` (--num-cpus) or the CPUs this process may use, and
    the GPUs CUDA_VISIBLE_DEVICES leaves visible (else those nvidia-smi lists)."""
    if num_cpus is None:
        num_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        gpus = len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    else:
        from tis_ray.doctor import nvidia_smi_gpus

        gpus = nvidia_smi_gpus() or 0
    return Node("this machine", float(num_cpus), float(gpus))


def cluster_nodes() -> list[Node]:
    """Return the alive nodes of the connected Ray cluster and the node types its autoscaler may start."""
    import ray

    nodes = [Node(f"node {n['NodeManagerAddress']}", n["Resources"].get("CPU", 0.0), n["Resources"].get("GPU", 0.0))
             for n in ray.nodes() if n.get("Alive")]
    try:  # the autoscaler's node types (cluster.yaml's available_node_types); a private Ray API, so optional
        from ray._private.state import state

        config = state.get_cluster_config()
        groups = config.node_group_configs if config is not None else []
        nodes += [Node(f"node type {g.name}", g.resources.get("CPU", 0), g.resources.get("GPU", 0))
                  for g in groups if g.max_count != 0]
    except Exception:  # noqa: BLE001 - without it, the alive nodes are what is compared
        pass
    return nodes


def check_trials_fit(resources: ResourcesSpec, nodes: list[Node], where: str) -> None:
    """Raise TisRayError when no node in `nodes` offers a trial's CPUs and GPUs (and the shared preparation's
    whole GPU when trials use GPUs): such a sweep would wait for ever without starting a trial."""
    need_gpu = max(resources.gpu, 1.0) if resources.gpu else 0.0  # the preparation holds one whole GPU
    if any(node.cpu >= resources.cpu and node.gpu >= need_gpu for node in nodes):
        return
    largest = max(nodes, key=lambda n: (n.gpu, n.cpu), default=Node("none", 0.0, 0.0))
    shown = ", ".join(f"{n.name}: {n.cpu:g} CPU, {n.gpu:g} GPU" for n in sorted(set(nodes), key=lambda n: -n.cpu)[:4])
    raise TisRayError(f"resources: each trial asks for {resources.cpu:g} CPU and {resources.gpu:g} GPU"
                      + (" (its preparation 1 whole GPU)" if 0 < resources.gpu < 1 else "")
                      + f", more than {where} offers ({shown or 'no nodes'}): no trial would ever start; lower "
                      f"resources.cpu / resources.gpu to at most {largest.cpu:g} / {largest.gpu:g}"
                      + ("" if where.startswith("the cluster") else ", or run on a cluster with --address"))


def local_eval_sets(spec: SweepSpec) -> list[str | EvalSetSpec]:
    """Return the evaluation sets that are read from this machine without a download: local files and folders,
    the synthetic sets, and the splits of a local dataset folder."""
    d, local = spec.data, []
    train_local = d.source == "hub" and looks_like_path(d.dataset)
    for entry in spec.eval_sets:
        if isinstance(entry, str):
            if (entry == "hans" and d.hans == "download") or d.source == "mnli_hub":
                continue
            local.append(entry)
        elif entry.file or (entry.dataset and looks_like_path(entry.dataset)) or (not entry.dataset and train_local):
            local.append(entry)
    return local


def training_set_size(spec: SweepSpec) -> int | None:
    """Return the size of the training set trials draw from (after data.max_train_examples and data.pool_size),
    reading every local source in full on the way, which raises the loaders' one-line DataErrors (a missing
    column, an unknown label, a label_map to no task label, a split that does not exist). None for a training
    set on the hub: a dry run downloads nothing."""
    d = spec.data
    if d.source == "synthetic":
        n = min(d.synthetic.n_train, d.max_train_examples or d.synthetic.n_train)
        if d.pool_size and d.pool_size > n:
            raise DataError(f"data.pool_size {d.pool_size} is more than the {n} training examples")
        return d.pool_size or n
    if d.source in ("files", "glue_dir") or (d.source == "hub" and looks_like_path(d.dataset)):
        from tis_ray.data.loaders import load_data

        return len(load_data(d, local_eval_sets(spec)).train)
    return None


def check_budgets(spec: SweepSpec, n_train: int) -> None:
    """Raise SpecError when a subset size of grid.n_examples exceeds the training set's `n_train` examples."""
    too_large = [k for k in spec.grid.n_examples or [] if k > n_train]
    if too_large:
        capped = " (after data.max_train_examples / data.pool_size)" if (
            spec.data.max_train_examples or spec.data.pool_size) else ""
        raise SpecError(f"grid.n_examples: {too_large[0]} is more than the training set's {n_train} examples"
                        f"{capped}: every such trial would fail; give sizes up to {n_train}, or grid.data_pct")


def check_before_preparation(spec: SweepSpec, num_cpus: int | None = None, on_cluster: bool = False) -> None:
    """Run every check that needs neither Ray nor the preparation: a local run directory can be written, the
    trial's resources fit this machine (unless the sweep runs `on_cluster`, which `check_trials_fit` checks once
    connected), the local data reads, and the grid's subset sizes fit the training set."""
    location = run_location(spec)
    if not is_uri(location):  # a bucket is checked where the sweep reaches it: a dry run reaches no network
        check_writable(Path(location))
    if not on_cluster:
        check_trials_fit(spec.resources, [local_node(num_cpus)], "this machine")
    n_train = training_set_size(spec)
    if n_train is not None:
        check_budgets(spec, n_train)

