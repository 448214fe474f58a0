"""Data: loaders for every source in one schema, the synthetic demo corpus, and the tokenization cache."""

from tis_ray.data.loaders import EVAL_SETS, HANS_LABELS, MNLI_LABELS, NLIData, load_data

__all__ = ["EVAL_SETS", "HANS_LABELS", "MNLI_LABELS", "NLIData", "load_data"]
