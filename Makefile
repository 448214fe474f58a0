# tis_ray: `make demo` runs the offline demo sweep and its report; `make test` runs the test suite.
# Both set up .venv first. TORCH picks the torch build: torch==2.13.0 is the CPU build on machines that
# carry it locally and PyPI's CUDA build elsewhere; for a specific CUDA version use e.g.
#   make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install demo test bench lint gpu-check

$(BIN)/tis-ray: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/tis-ray

demo: install
	$(BIN)/tis-ray sweep experiments/demo.yaml --resume
	$(BIN)/tis-ray report runs/demo

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check tis_ray tests bench

bench: install
	cd bench && ../$(BIN)/python bench_clustering.py && ../$(BIN)/python bench_embed.py \
	  && ../$(BIN)/python bench_trial.py && ../$(BIN)/python bench_sweep.py && ../$(BIN)/python bench_memory.py \
	  && ../$(BIN)/python bench_storage.py && ../$(BIN)/python bench_dynamics.py --repeats 5 \
	  && ../$(BIN)/python bench_preparation_reuse.py && ../$(BIN)/python bench_datamodels.py --trials 600 \
	  && ../$(BIN)/python bench_datamodels.py --trials 1000 --n-train 60 --planted 6 --epochs 1 --skip-attribution \
	  && ../$(BIN)/python bench_tasks.py && ../$(BIN)/python bench_statistics.py

# On a GPU machine: the matching GPU extra, tis-ray doctor, the GPU tests, bench/RESULTS-gpu.md (< 10 min on an
# H100). Without a GPU: one line, exit 0, nothing installed.
gpu-check:
	bash bench/gpu_check.sh
