"""The one decision of where a stage runs: device and precision, from the GPU share it holds and the facts.

Every stage that runs a model (a trial, the reference fine-tune, embedding, evaluation) asks `placement()`.
The decision itself, `decide()`, is a pure function of facts passed in, so every case is tested on a CPU:

- a stage that holds no GPU runs on the CPU in fp32;
- a stage that holds a GPU (or a share of one) runs on it, and stops with one line naming the cause when
  CUDA is not usable there (a CPU build of torch, a driver older than torch's CUDA, no visible device):
  never a silent CPU run;
- `auto` precision is bf16 on compute capability >= 8.0 (Ampere and newer: native bf16) and fp16 below;
  bf16 is never chosen or allowed on older GPUs, where torch would emulate it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from tis_ray.errors import TisRayError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
BF16_MIN_CAPABILITY = (8, 0)  # native bf16 tensor cores: A100, A10G, L4, H100, ...
# CUDA 13 (PyPI's torch 2.13, cuml-cu13) dropped Volta and older: it needs compute capability >= 7.5 (T4 and
# newer) and an NVIDIA driver of the R580 branch or newer
CUDA13_MIN_CAPABILITY = (7, 5)
CUDA13_MIN_DRIVER = 580


@dataclass(frozen=True)
class GpuFacts:
    """What this process can see of CUDA."""

    torch_cuda: str | None  # torch.version.cuda: None for a CPU build of torch
    device_count: int  # CUDA devices this process sees (0 when CUDA cannot initialise)
    capability: tuple[int, int] | None = None  # of device 0
    name: str | None = None  # of device 0
    init_error: str | None = None  # why CUDA did not initialise, as torch said it
    visible_devices: str | None = None  # CUDA_VISIBLE_DEVICES as set (Ray sets it per worker)


@dataclass(frozen=True)
class Placement:
    """Where a stage runs: 'cpu' or 'cuda', and fp32 / fp16 / bf16."""

    device: str
    precision: str

    @property
    def on_gpu(self) -> bool:
        return self.device == "cuda"

    def describe(self, facts: GpuFacts | None = None) -> str:
        """Return e.g. 'cuda (NVIDIA H100, capability 9.0), bf16' or 'cpu, fp32'."""
        if self.on_gpu and facts is not None and facts.name:
            return f"cuda ({facts.name}, capability {facts.capability[0]}.{facts.capability[1]}), {self.precision}"
        return f"{self.device}, {self.precision}"


def unusable_cuda_reason(facts: GpuFacts) -> str | None:
    """Return why a stage holding a GPU cannot use CUDA here, with the fix; None when CUDA is usable."""
    if facts.torch_cuda is None:
        return ("this torch is a CPU-only build (torch.version.cuda is None): install a CUDA build, e.g. "
                "make install TORCH=\"torch==2.13.0\" on a GPU machine")
    if facts.device_count > 0:
        return None
    error = facts.init_error or ""
    if "too old" in error.lower() or "driver version is insufficient" in error.lower():
        return (f"the NVIDIA driver is older than torch's CUDA {facts.torch_cuda} ({error.strip()}): update the "
                "driver or install a torch built for an older CUDA (make install TORCH=... --index-url ...)")
    if facts.visible_devices is not None and facts.visible_devices.strip() in ("", "-1"):
        return (f"no visible CUDA device (CUDA_VISIBLE_DEVICES={facts.visible_devices!r}): the stage was given "
                "no GPU; check resources.gpu and that the Ray node advertises its GPUs")
    detail = f" ({error.strip()})" if error else ""
    return f"no visible CUDA device{detail}: is the NVIDIA driver installed and a GPU attached? (nvidia-smi)"


def below_cuda_floor(torch_cuda: str | None, capability: tuple[int, int] | None) -> str | None:
    """Return why a CUDA 13 build cannot run on a GPU of `capability` (below 7.5: V100, P100), or None."""
    if not torch_cuda or capability is None or int(torch_cuda.split(".")[0]) < 13:
        return None
    if tuple(capability) >= CUDA13_MIN_CAPABILITY:
        return None
    return (f"torch's CUDA {torch_cuda} needs compute capability >= 7.5 (this GPU: {capability[0]}.{capability[1]}, "
            "e.g. a V100): install a CUDA 12 torch (make install TORCH=\"torch==2.13.0 --index-url "
            "https://download.pytorch.org/whl/cu128\") with tis-ray[gpu-cu12]")


def single_gpu_devices(visible: str | None, gpus_listed: int | None) -> str | None:
    """Return the CUDA_VISIBLE_DEVICES value that leaves a process outside Ray exactly one GPU, or None to leave it.

    `visible` is CUDA_VISIBLE_DEVICES as set (None: unset), `gpus_listed` the GPUs the driver lists
    (nvidia-smi; None when there is none). With several GPUs visible the Trainer would wrap the model in
    DataParallel and multiply the batch by their number: the first visible GPU is kept, as on a Ray worker.
    """
    if visible is not None:
        first = visible.split(",")[0].strip()
        return first if "," in visible and first else None
    return "0" if gpus_listed and gpus_listed > 1 else None


def pin_single_gpu() -> None:
    """Leave this process one GPU (see `single_gpu_devices`); call it before torch initialises CUDA."""
    from tis_ray.doctor import nvidia_smi_gpus

    value = single_gpu_devices(os.environ.get("CUDA_VISIBLE_DEVICES"), nvidia_smi_gpus())
    if value is not None:
        log.info("using one GPU: CUDA_VISIBLE_DEVICES=%s (was %s)", value,
                 os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
        os.environ["CUDA_VISIBLE_DEVICES"] = value


def loader_workers(where: Placement, cpus: float) -> int:
    """Return the DataLoader worker processes for a stage: on a GPU, the stage's CPUs but one (at most 4) prepare
    batches while the GPU computes; on the CPU, none (every CPU computes)."""
    return min(4, max(0, int(cpus) - 1)) if where.on_gpu else 0


def memory_fraction(gpus: float | None) -> float | None:
    """Return the share of the GPU's memory a trial holding a fraction of a GPU may allocate (None: no cap)."""
    return float(gpus) if gpus is not None and 0 < gpus < 1 else None


def decide(stage: str, gpus: float | None, precision: str, facts: GpuFacts) -> Placement:
    """Return the placement of `stage` holding `gpus` GPUs (None: outside Ray, use a GPU when one is visible).

    `precision` is auto / fp32 / fp16 / bf16. Raises TisRayError (one line, naming the stage) when the stage
    holds a GPU it cannot use, or asks for a precision its device cannot run natively.
    """
    if precision not in PRECISIONS:
        raise TisRayError(f"{stage}: unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if gpus is None:
        gpus = 1.0 if facts.torch_cuda is not None and facts.device_count > 0 else 0.0
    if gpus <= 0:
        if precision in ("fp16", "bf16"):
            raise TisRayError(f"{stage}: precision {precision} needs a GPU, and this stage holds none "
                              "(set resources.gpu, or precision auto / fp32)")
        return Placement("cpu", "fp32")
    reason = unusable_cuda_reason(facts) or below_cuda_floor(facts.torch_cuda, facts.capability)
    if reason is not None:
        raise TisRayError(f"{stage} holds {gpus:g} GPU but cannot use CUDA: {reason}")
    native_bf16 = facts.capability is not None and tuple(facts.capability) >= BF16_MIN_CAPABILITY
    if precision == "auto":
        precision = "bf16" if native_bf16 else "fp16"
    elif precision == "bf16" and not native_bf16:
        cap = ".".join(map(str, facts.capability)) if facts.capability else "unknown"
        raise TisRayError(f"{stage}: bf16 needs compute capability >= 8.0 for native support (this GPU: {cap}); "
                          "use precision fp16 or auto")
    return Placement("cuda", precision)


def gpu_facts() -> GpuFacts:
    """Return what this process sees of CUDA (probes torch; initialises CUDA when torch is a CUDA build)."""
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if torch.version.cuda is None:
        return GpuFacts(None, 0, visible_devices=visible)
    if not torch.cuda.is_available():
        return GpuFacts(torch.version.cuda, 0, init_error=_cuda_init_error(), visible_devices=visible)
    return GpuFacts(torch.version.cuda, torch.cuda.device_count(), tuple(torch.cuda.get_device_capability(0)),
                    torch.cuda.get_device_name(0), visible_devices=visible)


def _cuda_init_error() -> str | None:
    """torch.cuda.is_available() only warns about an old driver; initialising says why."""
    import torch

    try:
        torch.cuda.init()
    except Exception as exc:  # noqa: BLE001 - the message is the fact we want
        return str(exc).splitlines()[0]
    return None


def placement(stage: str, gpus: float | None, precision: str = "auto") -> Placement:
    """Return `decide()` for this process's own GPU facts."""
    return decide(stage, gpus, precision, gpu_facts())


def release_gpu_memory() -> None:
    """Hand torch's cached GPU memory back, so the trials that follow can use it (a no-op without CUDA)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
