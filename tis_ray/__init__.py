"""tis_ray: which training examples matter? Data-subset sweeps for transformers on Ray Tune."""

__version__ = "0.1.0"
