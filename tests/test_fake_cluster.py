"""End to end on a local fake multi-node autoscaling cluster built from cluster.yaml's worker node types.

The head starts as `ray start --head --block` under RAY_FAKE_CLUSTER=1; the demo sweep is submitted with
`ray job submit`, as after `ray up`. Teardown ends only the processes this test started: the head by its
PID (it takes its own processes down on SIGTERM) and the fake worker nodes by the PIDs collected from the
head's process tree while it ran.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import small_spec_dict
from process_tree import ProcessTree

from tis_ray.export import export_table
from tis_ray.storage import join

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[1]
RAY = str(Path(sys.executable).parent / "ray")
DASHBOARD = "http://127.0.0.1:8265"
HEAD_NODE_ID = "fffffffffffffffffffffffffffffffffffffffffffffffffff00000"  # the fake provider's head


def fake_autoscaling_config() -> dict:
    """cluster.yaml with provider fake_multinode; each GPU worker type keeps its name, gets 1 CPU, and its
    GPUs become a custom resource (the machine has none); the autoscaler keeps two workers of the first type."""
    real = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    workers = {}
    for name, node in real["available_node_types"].items():
        if name == real["head_node_type"]:
            continue
        gpus = node["resources"].get("GPU", 0)
        # the first type starts with both workers the cluster may hold: whether the trials spread over two nodes
        # must not hang on how fast the autoscaler reacts on a loaded 2-core machine (it did not, once in CI)
        workers[name] = {"resources": {"CPU": 1, f"fake_gpu_{name}": gpus}, "node_config": {},
                         "min_workers": 0 if workers else 2, "max_workers": 2}
    return {
        "cluster_name": "tis-ray-fake", "max_workers": 2, "upscaling_speed": 2.0, "idle_timeout_minutes": 5,
        "provider": {"type": "fake_multinode", "disable_node_updaters": True, "disable_launch_config_check": True},
        "auth": {"ssh_user": "ubuntu"},
        "available_node_types": {"ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
                                 **workers},
        "head_node_type": "ray.head.default",
        "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
        "rsync_exclude": [], "rsync_filter": [], "initialization_commands": [], "setup_commands": [],
        "head_setup_commands": [], "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def end_head(head: subprocess.Popen, tree: ProcessTree) -> None:
    """Terminate the head this test started, then every process of its tree still running (the nodes a fake
    autoscaler launched outlive the head's SIGTERM)."""
    head.terminate()
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        head.kill()
    tree.end()
    # Ray's own stop command would remove the cluster's address file; without it a later bare ray.init() on this
    # machine would try to join the cluster just ended.
    address_file = Path("/tmp/ray/ray_current_cluster")
    if address_file.is_file() and address_file.read_text().strip().endswith(":6379"):
        address_file.unlink()


def wait_for_job_agent(env: dict, deadline: float) -> None:
    """Return once the head's job agent runs a job: a no-op job is submitted until one succeeds. The Jobs API
    answers `ray job list` before that agent is up, and a submission then fails with "No available agent to
    submit job, please try again later" (seen on a loaded 2-core machine)."""
    while True:
        probe = subprocess.run([RAY, "job", "submit", "--address", DASHBOARD, "--", "true"], capture_output=True,
                               text=True, env=env)
        if probe.returncode == 0:
            return
        said = probe.stdout[-2000:] + probe.stderr[-2000:]
        assert "No available agent" in said, f"the readiness probe job failed:\n{said}"
        assert time.monotonic() < deadline, "the head's job agent did not come up"
        time.sleep(1)


@pytest.fixture
def fake_cluster(tmp_path):
    if not (port_free(6379) and port_free(8265)):
        pytest.skip("ports 6379 / 8265 are taken: the fake provider needs the default GCS and dashboard ports")
    config = tmp_path / "fake_cluster.yaml"
    config.write_text(yaml.safe_dump(fake_autoscaling_config()))
    env = {**os.environ, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1"}
    head = subprocess.Popen([RAY, "start", "--head", "--block", "--port=6379", "--num-cpus=0",
                             f"--autoscaling-config={config}", "--include-dashboard=true",
                             "--dashboard-host=127.0.0.1", "--dashboard-port=8265"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tree = ProcessTree(head.pid)
    try:
        # Local clusters use token authentication; clients of the cluster carry its token.
        token = subprocess.run([RAY, "get-auth-token"], capture_output=True, text=True, env=env)
        if token.returncode == 0 and token.stdout.strip():
            env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token.stdout.strip().splitlines()[-1])
        deadline = time.monotonic() + 180
        while subprocess.run([RAY, "job", "list", "--address", DASHBOARD], capture_output=True,
                             env=env).returncode != 0:
            assert head.poll() is None, "ray start --head exited"
            assert time.monotonic() < deadline, "the fake cluster's Jobs API did not come up"
            time.sleep(1)
        wait_for_job_agent(env, deadline)
        yield env
    finally:
        end_head(head, tree)


def test_demo_sweep_via_ray_job_submit_runs_on_two_worker_nodes(fake_cluster, tmp_path):
    # 8 trials of a few seconds each over the cluster's two 1-CPU workers
    raw = small_spec_dict(name="fake", storage_path=str(tmp_path / "runs"), train={"epochs": 3},
                          resources={"cpu": 1},
                          grid={"seeds": [1, 2, 3, 4], "data_pct": [0.5, 1.0], "samplers": [{"type": "random"}]})
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw))
    submit = subprocess.run(
        [RAY, "job", "submit", "--address", DASHBOARD, "--", sys.executable, "-m", "tis_ray.cli", "sweep",
         str(spec), "--address", "auto"],
        capture_output=True, text=True, env=fake_cluster, timeout=600)
    assert submit.returncode == 0, submit.stdout[-4000:] + submit.stderr[-4000:]
    assert "succeeded" in submit.stdout

    table = export_table(tmp_path / "runs" / "fake")  # a new reader, no live Ray needed
    assert len(table) == 8 and set(table["status"]) == {"completed"}
    assert table["mnli_m/acc"].notna().all()
    nodes = set(table["node_id"])
    assert HEAD_NODE_ID not in nodes  # the head has CPU 0: trials run on workers only
    assert len(nodes) >= 2, json.dumps(sorted(nodes))


def test_sweep_with_s3_storage_shares_nothing_but_the_bucket(s3, fake_cluster, tmp_path):
    # the job runs in its own working directory; the workers read the prepared data from the bucket only
    raw = small_spec_dict(name="fake_s3", storage_path=s3, train={"epochs": 3}, resources={"cpu": 1},
                          clustering={"embedding_epochs": 1},
                          grid={"seeds": [1, 2, 3, 4], "data_pct": [0.5, 1.0],
                                "samplers": [{"type": "random"}, {"type": "kmeans", "n_clusters": 4}]})
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(raw))
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    submit = subprocess.run(
        [RAY, "job", "submit", "--address", DASHBOARD, "--", sys.executable, "-m", "tis_ray.cli", "sweep",
         str(spec), "--address", "auto"],
        capture_output=True, text=True, env=fake_cluster, timeout=600, cwd=job_dir)
    assert submit.returncode == 0, submit.stdout[-4000:] + submit.stderr[-4000:]
    table = export_table(join(s3, "fake_s3"))
    assert len(table) == 16 and set(table["status"]) == {"completed"}
    nodes = set(table["node_id"])
    assert HEAD_NODE_ID not in nodes and len(nodes) >= 2, json.dumps(sorted(nodes))
    # no local run directory anywhere: not beside the spec, not in the job's working directory; the nodes'
    # cache (this test's TIS_RAY_CACHE) holds only what they fetched from the bucket
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "fake_cluster.yaml", "job", "spec.yaml"]
    assert not any(job_dir.iterdir())
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["storage"]
    assert len(list((tmp_path / "cache" / "storage").iterdir())) >= 2  # prepared data + the kmeans labels
