import numpy as np
import pytest

from tis_ray.evaluation import hans_metrics, mnli_metrics, write_hans_predictions

MNLI_ORDER = {0: "entailment", 1: "neutral", 2: "contradiction"}
# The label order of e.g. textattack/roberta MNLI checkpoints: positions differ, names decide.
OTHER_ORDER = {0: "contradiction", 1: "entailment", 2: "neutral"}


def test_mnli_accuracy_goes_through_id2label():
    gold = np.array([0, 1, 2, 0])  # entailment, neutral, contradiction, entailment
    # the same predictions expressed in each model's own ids
    assert dict(mnli_metrics("mnli_m", np.array([0, 1, 2, 2]), gold, MNLI_ORDER)) == {"mnli_m/acc": 0.75}
    assert dict(mnli_metrics("mnli_m", np.array([1, 2, 0, 0]), gold, OTHER_ORDER)) == {"mnli_m/acc": 0.75}


def test_hans_metrics_by_heuristic_and_subcase_hand_computed():
    heuristics = ["lexical_overlap"] * 4 + ["subsequence"] * 2 + ["constituent"] * 2
    subcases = ["le_a", "le_a", "ln_b", "ln_b", "se_c", "sn_d", "ce_e", "cn_f"]
    gold = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    # predicted names: ent, neu, ent, con | ent, ent | con, con  (OTHER_ORDER ids)
    pred = np.array([1, 2, 1, 0, 1, 1, 0, 0])
    m = dict(hans_metrics(pred, gold, heuristics, subcases, OTHER_ORDER))
    # correct: 1,0,0,1 | 1,0 | 0,1
    assert m["hans/acc"] == 4 / 8
    assert m["hans/lexical_overlap/entailed"] == 0.5
    assert m["hans/lexical_overlap/non_entailed"] == 0.5
    assert m["hans/subsequence/entailed"] == 1.0
    assert m["hans/subsequence/non_entailed"] == 0.0
    assert m["hans/constituent/entailed"] == 0.0
    assert m["hans/constituent/non_entailed"] == 1.0
    assert m["hans_subcase/le_a"] == 0.5 and m["hans_subcase/cn_f"] == 1.0


def test_predictions_file_in_official_format(tmp_path):
    path = write_hans_predictions(tmp_path / "p.txt", ["ex0", "ex1", "ex2"], np.array([1, 0, 2]), OTHER_ORDER)
    assert path.read_text().splitlines() == ["pairID,gold_label", "ex0,entailment", "ex1,non-entailment",
                                             "ex2,non-entailment"]


def test_example_margins_by_hand_through_the_models_label_order():
    from tis_ray.evaluation import example_margins

    # a model whose outputs are (contradiction, entailment, neutral), as the original's checkpoints
    id2label = {0: "CONTRADICTION", 1: "ENTAILMENT", 2: "NEUTRAL"}
    logits = np.array([[0.0, 3.0, 1.0], [2.0, 1.0, 0.5], [0.2, 0.1, 0.4]])
    gold = np.array([0, 1, 2])  # MNLI ids: entailment, neutral, contradiction
    # entailment = output 1: 3 - 1; neutral = output 2: 0.5 - 2; contradiction = output 0: 0.2 - 0.4
    np.testing.assert_allclose(example_margins(logits, gold, id2label), [2.0, -1.5, -0.2])
    # HANS: entailment logit against the best other; gold 1 (non-entailment) flips the sign
    np.testing.assert_allclose(example_margins(logits, np.array([0, 1, 1]), id2label, two_way=True),
                               [2.0, 1.0, 0.3])


def test_any_sets_metrics_and_margins_agree_with_the_hans_and_mnli_paths():
    """The general path (label map, groups) against the HANS- and MNLI-specific functions on random data."""
    import pandas as pd

    from tis_ray.data.task import hans_set, mnli_set
    from tis_ray.evaluation import example_margins, set_margins, set_metrics

    rng = np.random.default_rng(0)
    n = 400
    logits = rng.normal(size=(n, 3))
    heuristics = rng.choice(["lexical_overlap", "subsequence", "constituent"], n)
    subcases = rng.choice(["le_a", "ln_b", "cn_f"], n)
    gold = rng.integers(0, 2, n)
    meta = pd.DataFrame({"heuristic": heuristics, "subcase": subcases,
                         "gold": np.where(gold == 0, "entailed", "non_entailed")})
    general = set_metrics(hans_set(), logits.argmax(-1), gold, meta, OTHER_ORDER)
    assert general == pytest.approx(dict(hans_metrics(logits.argmax(-1), gold, list(heuristics), list(subcases),
                                                      OTHER_ORDER)))
    np.testing.assert_allclose(set_margins(hans_set(), logits, gold, OTHER_ORDER),
                               example_margins(logits, gold, OTHER_ORDER, two_way=True))
    mnli_gold = rng.integers(0, 3, n)
    assert set_metrics(mnli_set("mnli_m"), logits.argmax(-1), mnli_gold, meta, OTHER_ORDER) == pytest.approx(
        dict(mnli_metrics("mnli_m", logits.argmax(-1), mnli_gold, OTHER_ORDER)))
    np.testing.assert_allclose(set_margins(mnli_set("mnli_m"), logits, mnli_gold, OTHER_ORDER),
                               example_margins(logits, mnli_gold, OTHER_ORDER))


def test_a_two_label_set_with_its_own_label_names_and_a_grouping_column_by_hand():
    import pandas as pd

    from tis_ray.data.task import EvalDefinition, Group, Task, resolve_label_map
    from tis_ray.evaluation import set_margins, set_metrics

    task = Task(("negative", "positive"), ("text",), nli=False)
    labels = ("neg", "pos")  # the set's own names, mapped by name
    definition = EvalDefinition("imdb", labels, resolve_label_map("imdb", labels, task, {"neg": "negative",
                                                                                       "pos": "positive"}),
                                groups=(Group(("genre",), "imdb"), Group(("genre", "label"), "imdb")))
    id2label = {0: "POSITIVE", 1: "NEGATIVE"}  # the model's outputs in another order
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 3.0], [0.5, 0.0]])  # predicts pos, neg, neg, pos
    gold = np.array([1, 0, 1, 0])  # pos, neg, pos, neg -> right, right, wrong, wrong
    meta = pd.DataFrame({"genre": ["a", "a", "b", "b"]})
    assert set_metrics(definition, logits.argmax(-1), gold, meta, id2label) == {
        "imdb/acc": 0.5, "imdb/a": 1.0, "imdb/b": 0.0, "imdb/a/neg": 1.0, "imdb/a/pos": 1.0, "imdb/b/neg": 0.0,
        "imdb/b/pos": 0.0}
    # gold pos = output 0: 2 - 0; gold neg = output 1: 1 - 0; pos: 1 - 3; neg: 0 - 0.5
    np.testing.assert_allclose(set_margins(definition, logits, gold, id2label), [2.0, 1.0, -2.0, -0.5])
