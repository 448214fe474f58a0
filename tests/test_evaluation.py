import numpy as np

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
