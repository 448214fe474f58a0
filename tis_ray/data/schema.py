"""The one home of the data schema's constants: label orders, HANS columns and heuristics, evaluation sets."""

MNLI_LABELS = ("entailment", "neutral", "contradiction")  # dataset label ids 0, 1, 2
HANS_LABELS = ("entailment", "non-entailment")  # HANS gold ids 0, 1
HANS_COLUMNS = ("heuristic", "subcase", "template", "pair_id")
HANS_HEURISTICS = ("lexical_overlap", "subsequence", "constituent")
HANS_HEURISTIC_SHORT = {"lexical_overlap": "LO", "subsequence": "SUB", "constituent": "CONS"}  # report columns
EVAL_SETS = ("mnli_m", "mnli_mm", "hans")
SYNTHETIC_HANS_SEED_OFFSET = 3  # synthetic HANS is drawn with data.synthetic.seed + 3, whatever the source
