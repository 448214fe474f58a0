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
