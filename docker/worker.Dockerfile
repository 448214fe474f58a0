# A GPU worker image with the GPU stack baked in, so a new (or replaced spot) node pulls one image instead of
# installing ~4 GB of wheels in its setup commands. Build it where the registry is, from the repository root:
#   docker build -f docker/worker.Dockerfile -t YOUR-REGISTRY/tis-ray-worker:2.60.0 . && docker push ...
# then set docker.worker_image in cluster.yaml to it. Ray's GPU image, the same Ray and Python as the head.
FROM rayproject/ray:2.60.0-py312-gpu

# PyPI's torch 2.13.0 is a CUDA 13 build; the gpu extra is cuML / CuPy for CUDA 13 (driver R580+, sm >= 7.5).
RUN pip install --no-cache-dir "torch==2.13.0"
COPY --chown=ray:users pyproject.toml README.md /tmp/tis_ray/
COPY --chown=ray:users tis_ray /tmp/tis_ray/tis_ray
# Every dependency of tis_ray[gpu], then tis_ray itself removed again: the cluster's file mount
# (/home/ray/tis_ray) brings the code of the sweep being run, and worker_setup_commands installs it editable.
RUN pip install --no-cache-dir "/tmp/tis_ray[gpu]" && pip uninstall -y tis-ray && rm -rf /tmp/tis_ray
