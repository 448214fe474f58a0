"""`tis-ray doctor`: the software and GPUs this machine (or cluster) offers, and what would break on them.

`collect()` gathers the facts, `problems()` judges them (a pure function, tested with facts passed in) and
`render()` prints one screen. A problem is a line that says what is wrong and how to fix it; any problem
makes the command exit 2.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import metadata

from tis_ray.device import (
    CUDA13_MIN_DRIVER,
    GpuFacts,
    below_cuda_floor,
    decide,
    gpu_facts,
    unusable_cuda_reason,
)

# pip distributions of the RAPIDS stack, by the CUDA major they are built for
CUML_DISTS = {"cuml-cu13": 13, "cuml-cu12": 12}
CUPY_DISTS = {"cupy-cuda13x": 13, "cupy-cuda12x": 12}
GPU_EXTRA_FOR_CUDA = {13: "gpu", 12: "gpu-cu12"}  # pyproject extras: tis-ray[gpu] is CUDA 13


@dataclass
class Environment:
    """What `tis-ray doctor` reports."""

    python: str
    torch: str
    gpu: GpuFacts
    gpus: list[dict] = field(default_factory=list)  # name, memory_gib, capability per visible device
    nvidia_smi_gpus: int | None = None  # GPUs the driver lists (None: no nvidia-smi)
    driver: str | None = None  # the NVIDIA driver's version (None: no nvidia-smi)
    cuml_error: str | None = None  # why an installed cuML / CuPy does not import
    cuml: tuple[str, int] | None = None  # (version, CUDA major) of the installed cuML wheel
    cupy: tuple[str, int] | None = None
    ray: str | None = None
    nodes: list[dict] | None = None  # with --address: alive nodes with their CPUs and GPUs


def _installed(dists: dict[str, int]) -> tuple[str, int] | None:
    for name, major in dists.items():
        try:
            return metadata.version(name), major
        except metadata.PackageNotFoundError:
            continue
    return None


def _nvidia_smi(*args: str) -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        return subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None


def nvidia_smi_gpus() -> int | None:
    """Return the number of GPUs the NVIDIA driver lists (None: no nvidia-smi here). Initialises no CUDA."""
    out = _nvidia_smi("-L")
    return None if out is None else sum(line.startswith("GPU ") for line in out.splitlines())


def driver_version() -> str | None:
    """Return the NVIDIA driver's version, e.g. '580.65.06' (None: no nvidia-smi here)."""
    out = _nvidia_smi("--query-gpu=driver_version", "--format=csv,noheader")
    return out.splitlines()[0].strip() if out and out.strip() else None


def cuml_import_error() -> str | None:
    """Return why cuML / CuPy do not import although installed (a broken RAPIDS install), else None."""
    from tis_ray.clustering import cuml_status

    return cuml_status()[1]


def cluster_nodes(address: str) -> list[dict]:
    """Return the alive nodes of the Ray cluster at `address`: ip, CPUs, GPUs, accelerator type."""
    import ray

    from tis_ray.sweep import connect

    connect(address)
    try:
        nodes = []
        for node in ray.nodes():
            if not node.get("Alive"):
                continue
            resources = node.get("Resources", {})
            accelerator = next((k.removeprefix("accelerator_type:") for k in resources
                                if k.startswith("accelerator_type:")), "")
            nodes.append({"ip": node.get("NodeManagerAddress"), "cpus": resources.get("CPU", 0),
                          "gpus": resources.get("GPU", 0), "accelerator": accelerator})
        return nodes
    finally:
        ray.shutdown()


def collect(address: str | None = None) -> Environment:
    """Return the facts of this process's environment (and of the cluster at `address`)."""
    import torch

    facts = gpu_facts()
    gpus = []
    for i in range(facts.device_count):
        props = torch.cuda.get_device_properties(i)
        gpus.append({"name": props.name, "memory_gib": props.total_memory / 2**30,
                     "capability": f"{props.major}.{props.minor}"})
    try:
        ray_version = metadata.version("ray")
    except metadata.PackageNotFoundError:
        ray_version = None
    return Environment(python=platform.python_version(), torch=torch.__version__, gpu=facts, gpus=gpus,
                       nvidia_smi_gpus=nvidia_smi_gpus(), driver=driver_version(), cuml=_installed(CUML_DISTS),
                       cupy=_installed(CUPY_DISTS), cuml_error=cuml_import_error(),
                       ray=ray_version, nodes=cluster_nodes(address) if address else None)


def _major(version: str | None) -> int | None:
    return int(version.split(".")[0]) if version else None


def problems(env: Environment) -> list[str]:
    """Return what is wrong with `env`, one line each with its fix (empty when all is well)."""
    found = []
    torch_major = _major(env.gpu.torch_cuda)
    majors = {f"torch (CUDA {env.gpu.torch_cuda})": torch_major}
    if env.cuml:
        majors[f"cuML {env.cuml[0]} (cuml-cu{env.cuml[1]})"] = env.cuml[1]
    if env.cupy:
        majors[f"CuPy {env.cupy[0]} (cupy-cuda{env.cupy[1]}x)"] = env.cupy[1]
    known = {k: v for k, v in majors.items() if v is not None}
    if len(set(known.values())) > 1:
        extra = GPU_EXTRA_FOR_CUDA.get(torch_major) if torch_major else None
        fix = (f"pip uninstall the others, then pip install 'tis-ray[{extra}]'" if extra else
               "install a CUDA build of torch (make install) and the matching extra: tis-ray[gpu] for CUDA 13, "
               "tis-ray[gpu-cu12] for CUDA 12")
        found.append(f"two CUDA majors in one process: {', '.join(known)}: {fix}")
    if (env.cuml or env.cupy) and env.gpu.device_count == 0:
        reason = unusable_cuda_reason(env.gpu) or "no GPU visible"
        found.append(f"cuML / CuPy are installed but no GPU is usable ({reason}); clustering backend auto falls "
                     "back to scikit-learn and backend cuml fails")
    elif env.gpu.torch_cuda is not None and env.gpu.device_count == 0 and env.gpu.init_error \
            and "too old" in env.gpu.init_error.lower():
        found.append(unusable_cuda_reason(env.gpu))
    if torch_major is not None and torch_major >= 13:
        for i, gpu in enumerate(env.gpus):
            reason = below_cuda_floor(env.gpu.torch_cuda, tuple(int(v) for v in gpu["capability"].split(".")))
            if reason:
                found.append(f"GPU {i} ({gpu['name']}): {reason}")
        if env.driver and int(env.driver.split(".")[0]) < CUDA13_MIN_DRIVER:
            found.append(f"NVIDIA driver {env.driver} is older than R{CUDA13_MIN_DRIVER}, which torch's CUDA "
                         f"{env.gpu.torch_cuda} and cuml-cu13 need: update the driver (an AMI with R580+), or "
                         "use a CUDA 12 torch with tis-ray[gpu-cu12]")
    if (env.cuml or env.cupy) and env.cuml_error:
        found.append(f"cuML / CuPy are installed but do not import ({env.cuml_error}): clustering would run on "
                     "the CPU; reinstall the extra that matches torch's CUDA (tis-ray[gpu] for CUDA 13)")
    if env.gpu.torch_cuda is None and env.nvidia_smi_gpus:
        found.append(f"the driver lists {env.nvidia_smi_gpus} GPU(s) but torch {env.torch} is a CPU-only build: "
                     "trials would run on the CPU; make install (PyPI's torch==2.13.0 is a CUDA 13 build)")
    return found


def render(env: Environment, found: list[str]) -> str:
    """Return the report of `env` and its problems as one screen of text."""
    cuda = f"CUDA {env.gpu.torch_cuda}" if env.gpu.torch_cuda else "CPU-only build"
    lines = [f"python     {env.python}", f"torch      {env.torch} ({cuda})"]
    if env.gpus:
        lines += [f"GPU {i}      {g['name']}, {g['memory_gib']:.0f} GiB, capability {g['capability']}"
                  for i, g in enumerate(env.gpus)]
    else:
        lines.append("GPUs       none visible to torch" + (f" ({env.gpu.init_error})" if env.gpu.init_error else ""))
    lines.append("cuML       " + (f"{env.cuml[0]} (CUDA {env.cuml[1]})" if env.cuml else "not installed"))
    lines.append("CuPy       " + (f"{env.cupy[0]} (CUDA {env.cupy[1]})" if env.cupy else "not installed"))
    if env.driver:
        lines.append(f"driver     NVIDIA {env.driver} (CUDA 13 needs R{CUDA13_MIN_DRIVER}+ and capability 7.5+)")
    lines.append(f"ray        {env.ray or 'not installed'}")
    for node in env.nodes or []:
        lines.append(f"  node {node['ip']}: {node['cpus']:g} CPU, {node['gpus']:g} GPU {node['accelerator']}".rstrip())
    if env.nodes is not None:
        lines.append(f"  {len(env.nodes)} node(s), {sum(n['gpus'] for n in env.nodes):g} GPU(s) in all")
    trial = decide("trial", None, "auto", env.gpu)
    clustering = ("cuML (GPU)" if env.cuml and env.cupy and env.gpu.device_count and not env.cuml_error
                  else "scikit-learn (CPU)")
    lines += ["", f"will run   trials on {trial.describe(env.gpu)}; clustering on {clustering}"]
    lines += [f"problem    {p}" for p in found] or ["ok         no problems found"]
    return "\n".join(lines)
