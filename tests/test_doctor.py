"""`tis-ray doctor`: its mismatch logic with facts passed in, and its real output on this CPU machine."""

from tis_ray.cli import main
from tis_ray.device import GpuFacts
from tis_ray.doctor import Environment, problems, render

H100 = GpuFacts("13.0", 1, (9, 0), "NVIDIA H100 80GB HBM3")
GPUS = [{"name": "NVIDIA H100 80GB HBM3", "memory_gib": 79.2, "capability": "9.0"}]


def env(gpu=H100, **kw):
    return Environment(python="3.12.3", torch="2.13.0+cu130", gpu=gpu, gpus=GPUS if gpu.device_count else [],
                       ray="2.60.0", **kw)


def test_one_cuda_stack_is_fine_and_says_what_runs():
    good = env(cuml=("26.10.0", 13), cupy=("14.2.0", 13), nvidia_smi_gpus=1)
    assert problems(good) == []
    text = render(good, [])
    assert "GPU 0      NVIDIA H100 80GB HBM3, 79 GiB, capability 9.0" in text
    assert "trials on cuda (NVIDIA H100 80GB HBM3, capability 9.0), bf16; clustering on cuML (GPU)" in text


def test_two_cuda_majors_in_one_process_name_the_fix():
    found = problems(env(cuml=("25.10.0", 12), cupy=("13.6.0", 12)))
    assert len(found) == 1
    assert found[0].startswith("two CUDA majors in one process: torch (CUDA 13.0), cuML 25.10.0 (cuml-cu12), "
                               "CuPy 13.6.0 (cupy-cuda12x)")
    assert found[0].endswith("pip install 'tis-ray[gpu]'")
    cu12_torch = env(gpu=GpuFacts("12.8", 1, (8, 0), "NVIDIA A100"), cuml=("26.10.0", 13), cupy=("14.2.0", 13))
    assert problems(cu12_torch)[0].endswith("pip install 'tis-ray[gpu-cu12]'")


def test_cuml_without_a_gpu_and_an_old_driver():
    old = GpuFacts("13.0", 0, init_error="The NVIDIA driver on your system is too old (found version 12040).")
    found = problems(env(gpu=old, cuml=("26.10.0", 13), cupy=("14.2.0", 13)))
    assert len(found) == 1 and "cuML / CuPy are installed but no GPU is usable" in found[0]
    assert "driver is older than torch's CUDA 13.0" in found[0]
    assert problems(env(gpu=old))[0].startswith("the NVIDIA driver is older than torch's CUDA 13.0")


def test_cpu_torch_on_a_gpu_machine():
    found = problems(env(gpu=GpuFacts(None, 0), nvidia_smi_gpus=8))
    assert found == ["the driver lists 8 GPU(s) but torch 2.13.0+cu130 is a CPU-only build: trials would run on "
                     "the CPU; make install (PyPI's torch==2.13.0 is a CUDA 13 build)"]


def test_this_cpu_machine_says_which_cpu_backends_run(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "will run   trials on cpu, fp32; clustering on scikit-learn (CPU)" in out
    assert "ok         no problems found" in out and "torch      2.13.0" in out


def test_cuda13_floor_driver_and_capability():
    v100 = GpuFacts("13.0", 1, (7, 0), "Tesla V100-SXM2-16GB")
    found = problems(Environment(python="3.12.3", torch="2.13.0+cu130", gpu=v100, driver="580.65.06",
                                 gpus=[{"name": "Tesla V100-SXM2-16GB", "memory_gib": 16, "capability": "7.0"}]))
    assert len(found) == 1 and found[0].startswith("GPU 0 (Tesla V100-SXM2-16GB): torch's CUDA 13.0 needs compute "
                                                   "capability >= 7.5 (this GPU: 7.0")
    old = problems(env(driver="550.54.15"))
    assert old == ["NVIDIA driver 550.54.15 is older than R580, which torch's CUDA 13.0 and cuml-cu13 need: update "
                   "the driver (an AMI with R580+), or use a CUDA 12 torch with tis-ray[gpu-cu12]"]
    assert problems(env(driver="580.65.06")) == []
    assert "driver     NVIDIA 580.65.06" in render(env(driver="580.65.06"), [])


def test_a_broken_cuml_install_is_reported_not_hidden(monkeypatch, caplog, tmp_path):
    from tis_ray.clustering import cuml_status, resolve_backend

    broken = env(cuml=("26.10.0", 13), cupy=("14.2.0", 13), cuml_error="ImportError: libcuml++.so: cannot open")
    found = problems(broken)
    assert found == ["cuML / CuPy are installed but do not import (ImportError: libcuml++.so: cannot open): "
                     "clustering would run on the CPU; reinstall the extra that matches torch's CUDA (tis-ray[gpu] "
                     "for CUDA 13)"]
    assert "clustering on scikit-learn (CPU)" in render(broken, found)
    assert cuml_status() == (False, None)  # not installed here: the CPU backend, quietly
    # a RAPIDS install whose shared library is missing: the package is there, its import fails
    (tmp_path / "cuml").mkdir()
    (tmp_path / "cuml" / "__init__.py").write_text("raise ImportError('libcuml++.so: cannot open shared object file')")
    monkeypatch.syspath_prepend(str(tmp_path))
    usable, error = cuml_status()
    assert not usable and error == "ImportError: libcuml++.so: cannot open shared object file"
    with caplog.at_level("WARNING", logger="tis_ray.clustering"):
        assert resolve_backend("auto") == "sklearn"
    assert "cuML is installed but does not import: ImportError" in caplog.text
