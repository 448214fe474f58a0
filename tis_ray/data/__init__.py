"""Data: loaders for every source in one schema, the synthetic demo corpus, and the tokenization cache."""

from tis_ray.data.schema import EVAL_SETS, HANS_HEURISTICS, HANS_LABELS, MNLI_LABELS

__all__ = ["EVAL_SETS", "HANS_HEURISTICS", "HANS_LABELS", "MNLI_LABELS", "NLIData", "TaskData", "load_data"]


def __getattr__(name):  # the loaders import the spec, which imports the schema: loaded on first use
    if name in ("NLIData", "TaskData", "load_data"):
        from tis_ray.data import loaders

        return getattr(loaders, name)
    raise AttributeError(name)
