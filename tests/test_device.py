"""The one device / precision decision, over every case, from facts passed in (no GPU needed)."""

import pytest

from tis_ray.device import GpuFacts, Placement, decide, placement
from tis_ray.errors import TisRayError

CPU_BUILD = GpuFacts(torch_cuda=None, device_count=0)
H100 = GpuFacts("13.0", 1, (9, 0), "NVIDIA H100 80GB HBM3")
A10G = GpuFacts("13.0", 1, (8, 6), "NVIDIA A10G")
V100 = GpuFacts("12.8", 1, (7, 0), "Tesla V100-SXM2-16GB")  # Volta runs CUDA 12 builds only
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


def test_cuda13_floor_refuses_volta_in_one_line():
    from tis_ray.device import below_cuda_floor

    v100 = GpuFacts("13.0", 1, (7, 0), "Tesla V100-SXM2-16GB")
    with pytest.raises(TisRayError, match=r"trial holds 1 GPU but cannot use CUDA: torch's CUDA 13.0 needs compute "
                                          r"capability >= 7.5 \(this GPU: 7.0, e.g. a V100\)"):
        decide("trial", 1, "auto", v100)
    assert below_cuda_floor("13.0", (7, 5)) is None  # T4
    assert below_cuda_floor("12.8", (7, 0)) is None  # a CUDA 12 build still runs on Volta
    assert decide("trial", 1, "auto", GpuFacts("13.0", 1, (7, 5), "Tesla T4")).precision == "fp16"


@pytest.mark.parametrize("visible,listed,expected", [
    (None, 8, "0"),        # 8 GPUs, nothing set: the first one only
    (None, 1, None),       # one GPU: nothing to change
    (None, None, None),    # no driver here (this CPU machine): nothing to change
    ("3,5", 8, "3"),       # a list: its first entry
    ("GPU-1a2b,GPU-3c4d", 2, "GPU-1a2b"),
    ("2", 8, None),        # already one
    ("", 8, None),         # none on purpose: left as is
])
def test_one_gpu_per_process_outside_ray(visible, listed, expected):
    from tis_ray.device import single_gpu_devices

    assert single_gpu_devices(visible, listed) == expected


def test_loader_workers_and_memory_share_follow_the_stage():
    from tis_ray.device import Placement, loader_workers, memory_fraction

    gpu, cpu = Placement("cuda", "bf16"), Placement("cpu", "fp32")
    assert [loader_workers(gpu, c) for c in (1, 2, 4, 16)] == [0, 1, 3, 4]
    assert loader_workers(cpu, 16) == 0
    assert memory_fraction(0.25) == 0.25 and memory_fraction(1) is None and memory_fraction(None) is None


def test_training_arguments_skip_the_nan_sync_and_use_no_loader_workers_on_the_cpu(tmp_path, small_spec):
    from tis_ray.device import Placement
    from tis_ray.training import training_arguments

    spec = small_spec.model_copy(update={"resources": small_spec.resources.model_copy(update={"cpu": 4})})
    args = training_arguments(spec, tmp_path, 0, Placement("cpu", "fp32"))
    assert args.dataloader_num_workers == 0 and args.logging_nan_inf_filter is False
