"""Data: loaders for every source in one schema, the synthetic demo corpus, and the tokenization cache."""

from tis_ray.data.loaders import NLIData, load_data
from tis_ray.data.schema import EVAL_SETS, HANS_HEURISTICS, HANS_LABELS, MNLI_LABELS

__all__ = ["EVAL_SETS", "HANS_HEURISTICS", "HANS_LABELS", "MNLI_LABELS", "NLIData", "load_data"]
