"""cluster.yaml passes Ray's own cluster-config schema and keeps GPU packages on the GPU workers."""

from pathlib import Path

import yaml
from ray import __version__ as ray_version
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).parents[1] / "cluster.yaml"


def config() -> dict:
    config = prepare_config(yaml.safe_load(CLUSTER_YAML.read_text()))
    validate_config(config)
    return config


def test_cluster_yaml_passes_rays_schema():
    c = config()
    assert c["head_node_type"] in c["available_node_types"]
    workers = {k: v for k, v in c["available_node_types"].items() if k != c["head_node_type"]}
    assert workers and all(v["resources"]["GPU"] >= 1 for v in workers.values())
    assert any("H100" in key for v in workers.values() for key in v["resources"])
    assert c["available_node_types"]["head"]["resources"]["CPU"] == 0


def test_images_pin_the_drivers_ray_on_python_3_12():
    docker = config()["docker"]
    for image in (docker["head_image"], docker["worker_image"]):
        assert image.startswith(f"rayproject/ray:{ray_version}-py312-"), image
    assert docker["worker_image"].endswith("-gpu") and docker["head_image"].endswith("-cpu")


def test_gpu_packages_on_gpu_workers_only_and_nothing_local_shipped():
    c = config()
    assert not c["setup_commands"]
    assert all("[gpu]" not in cmd and "cuml" not in cmd for cmd in c["head_setup_commands"])
    assert any("whl/cpu" in cmd for cmd in c["head_setup_commands"])
    assert any('"/home/ray/tis_ray[gpu]"' in cmd for cmd in c["worker_setup_commands"])
    for excluded in (".venv", "runs", ".git"):
        assert excluded in c["rsync_exclude"]
    for node in c["available_node_types"].values():  # every node may read and write the S3 run directory
        assert "instance-profile" in node["node_config"]["IamInstanceProfile"]["Arn"]


IAM = Path(__file__).parents[1] / "iam"


def _actions(policy: dict) -> set[str]:
    return {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def test_iam_policies_let_the_head_launch_workers_and_every_node_use_the_bucket():
    import json

    head = json.loads((IAM / "head-autoscaler-policy.json").read_text())
    s3 = json.loads((IAM / "s3-runs-policy.json").read_text())
    # what Ray's AWS node provider calls from the head to scale workers up and down
    assert {"ec2:RunInstances", "ec2:CreateTags", "ec2:DescribeInstances", "ec2:TerminateInstances"} <= _actions(head)
    pass_role = next(s for s in head["Statement"] if "iam:PassRole" in s["Action"])
    assert "arn:aws:iam::123456789012:role/tis-ray-worker" in pass_role["Resource"]
    # what storage.py does in a run directory: list, read, write, delete (checkpoints are replaced)
    assert {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= _actions(s3)
    script = (IAM / "create-roles.sh").read_text()
    for name in ("head-autoscaler-policy.json", "s3-runs-policy.json", "ec2-trust-policy.json"):
        assert name in script
    c = config()
    profiles = {k: v["node_config"]["IamInstanceProfile"]["Arn"] for k, v in c["available_node_types"].items()}
    assert profiles.pop(c["head_node_type"]).endswith("instance-profile/tis-ray-head")
    assert all(arn.endswith("instance-profile/tis-ray-worker") for arn in profiles.values())
    assert "--instance-profile-name \"$role\"" in script and "for role in tis-ray-head tis-ray-worker" in script


def test_token_auth_as_ray_documents_it_for_ray_up():
    c = config()
    # the token generated on the user's machine is mounted on every node, in the container's home
    assert c["file_mounts"]["/home/ray/.ray/auth_token"] == "~/.ray/auth_token"
    # RAY_AUTH_MODE=token inside every container: `ray start` runs there (head and workers share run_options)
    docker = c["docker"]
    assert "--env RAY_AUTH_MODE=token" in docker["run_options"]
    for key in ("head_run_options", "worker_run_options"):
        assert "RAY_AUTH_MODE" not in " ".join(docker.get(key, [])) or "--env RAY_AUTH_MODE=token" in docker[key]


def test_preparation_can_be_pinned_to_on_demand_gpu_nodes():
    c = config()
    on_demand = [k for k, v in c["available_node_types"].items() if v["resources"].get("on_demand")]
    assert on_demand and all(c["available_node_types"][k]["resources"].get("GPU", 0) >= 1 for k in on_demand)
    for k in on_demand:
        assert c["available_node_types"][k]["node_config"].get("InstanceMarketOptions", {}).get("MarketType") != "spot"
    dockerfile = (Path(__file__).parents[1] / "docker" / "worker.Dockerfile").read_text()
    assert dockerfile.startswith("#") and f"FROM rayproject/ray:{ray_version}-py312-gpu" in dockerfile
