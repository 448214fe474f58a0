"""The one device / precision decision, over every case, from facts passed in (no GPU needed)."""

import pytest

from tis_ray.device import GpuFacts, Placement, decide, placement
from tis_ray.errors import TisRayError

CPU_BUILD = GpuFacts(torch_cuda=None, device_count=0)
H100 = GpuFacts("13.0", 1, (9, 0), "NVIDIA H100 80GB HBM3")
A10G = GpuFacts("13.0", 1, (8, 6), "NVIDIA A10G")
V100 = GpuFacts("13.0", 1, (7, 0), "Tesla V100-SXM2-16GB")
T4 = GpuFacts("13.0", 1, (7, 5), "Tesla T4")
OLD_DRIVER = GpuFacts("13.0", 0, init_error="The NVIDIA driver on your system is too old (found version 12040).")
HIDDEN = GpuFacts("13.0", 0, init_error="No CUDA GPUs are available", visible_devices="")
NO_DRIVER = GpuFacts("13.0", 0, init_error="Found no NVIDIA driver on your system.")


@pytest.mark.parametrize("facts", [CPU_BUILD, H100, OLD_DRIVER])
def test_a_stage_without_a_gpu_runs_on_the_cpu_in_fp32(facts):
    assert decide("trial", 0, "auto", facts) == Placement("cpu", "fp32")
    assert decide("trial", 0, "fp32", facts) == Placement("cpu", "fp32")


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_without_a_gpu_is_refused(precision):
    with pytest.raises(TisRayError, match=f"trial: precision {precision} needs a GPU, and this stage holds none"):
        decide("trial", 0, precision, CPU_BUILD)


@pytest.mark.parametrize(("facts", "auto"), [(H100, "bf16"), (A10G, "bf16"), (V100, "fp16"), (T4, "fp16")])
def test_auto_is_bf16_only_from_capability_8(facts, auto):
    assert decide("trial", 1, "auto", facts) == Placement("cuda", auto)
    assert decide("trial", 1, "fp16", facts) == Placement("cuda", "fp16")
    assert decide("trial", 1, "fp32", facts) == Placement("cuda", "fp32")


@pytest.mark.parametrize("facts", [V100, T4])
def test_emulated_bf16_is_refused(facts):
    cap = f"{facts.capability[0]}.{facts.capability[1]}"
    with pytest.raises(TisRayError, match=rf"bf16 needs compute capability >= 8.0 .*this GPU: {cap}"):
        decide("trial", 1, "bf16", facts)


def test_a_fractional_gpu_is_a_gpu():
    assert decide("trial", 0.25, "auto", H100) == Placement("cuda", "bf16")
    assert decide("trial", 0.25, "auto", T4) == Placement("cuda", "fp16")


@pytest.mark.parametrize(("facts", "cause"), [
    (CPU_BUILD, "CPU-only build"),
    (OLD_DRIVER, "driver is older than torch's CUDA 13.0"),
    (HIDDEN, "no visible CUDA device \\(CUDA_VISIBLE_DEVICES=''\\)"),
    (NO_DRIVER, "no visible CUDA device \\(Found no NVIDIA driver"),
])
@pytest.mark.parametrize("gpus", [1, 0.5])
def test_a_stage_holding_an_unusable_gpu_stops_naming_the_cause(facts, cause, gpus):
    with pytest.raises(TisRayError, match=f"^embedding holds {gpus:g} GPU but cannot use CUDA: .*{cause}") as info:
        decide("embedding", gpus, "auto", facts)
    assert "\n" not in str(info.value)


def test_outside_ray_a_visible_gpu_is_used_and_none_means_cpu():
    assert decide("tis-ray embed", None, "fp32", H100) == Placement("cuda", "fp32")
    assert decide("tis-ray embed", None, "auto", CPU_BUILD) == Placement("cpu", "fp32")
    assert decide("tis-ray embed", None, "auto", OLD_DRIVER) == Placement("cpu", "fp32")


def test_unknown_precision_and_this_machine():
    with pytest.raises(TisRayError, match="unknown precision 'fp8'"):
        decide("trial", 0, "fp8", H100)
    assert placement("trial", 0) == Placement("cpu", "fp32")  # this CPU machine, from its real facts
    assert Placement("cuda", "bf16").describe(H100) == "cuda (NVIDIA H100 80GB HBM3, capability 9.0), bf16"
