"""cluster.yaml passes Ray's own cluster-config schema."""

from pathlib import Path

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).parents[1] / "cluster.yaml"


def test_cluster_yaml_passes_rays_schema():
    config = prepare_config(yaml.safe_load(CLUSTER_YAML.read_text()))
    validate_config(config)
    assert config["head_node_type"] in config["available_node_types"]
    workers = {k: v for k, v in config["available_node_types"].items() if k != config["head_node_type"]}
    assert workers and all(v["resources"]["GPU"] >= 1 for v in workers.values())
    assert config["available_node_types"]["head"]["resources"]["CPU"] == 0
    assert any("tis_ray[gpu]" in cmd for cmd in config["setup_commands"])
