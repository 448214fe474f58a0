"""HANS composition of subsets: the heuristics' flags by hand and against McCoy et al.'s finder rule, per-label
shares by label name in any label order, planted counter-examples."""

import numpy as np
import pytest

from tis_ray.data.loaders import load_data
from tis_ray.data.synthetic import counter_example_rows, generate_nli
from tis_ray.errors import DataError
from tis_ray.overlap import overlap_flags, subset_composition
from tis_ray.spec import DataSpec

LABELS = ("entailment", "neutral", "contradiction")
SORTED_LABELS = ("contradiction", "entailment", "neutral")  # a file's label values, sorted


def test_flags_by_hand_follow_mccoys_finder():
    pairs = [("The doctor saw the lawyer.", "The lawyer saw the doctor."),  # 'doctor.' is no premise word
             ("The doctor saw the lawyer .", "The lawyer saw the doctor ."),  # HANS's spacing: '.' dropped
             ("The doctor saw the lawyer.", "the doctor saw"),  # a prefix: both
             ("The doctor saw the lawyer.", "The lawyer"),  # 'lawyer' is not 'lawyer.', yet a substring
             ("The doctor, who slept, saw a cat.", "The doctor saw a cat"),  # 'doctor,' and 'cat.' stay whole
             ("Concatenate the files!", "cat"),  # the finder's substring test: found in 'concatenate'
             ("Did the judge leave ?", "the judge"),  # standalone '?' dropped
             ("The judge left.", "The judge left early")]  # a new word
    flags = overlap_flags(*zip(*pairs, strict=True))
    assert flags.tolist() == [[False, False], [True, False], [True, True], [False, True], [False, False],
                              [False, True], [True, True], [False, False]]


def finder_flags(premise, hypothesis):
    """lex_finder.py / subseq_finder.py's loop, as their text reads (tommccoy1/hans heuristic_finder_scripts)."""
    prem_words, hyp_words = [], []
    for word in premise.split():
        if word not in [".", "?", "!"]:
            prem_words.append(word.lower())
    for word in hypothesis.split():
        if word not in [".", "?", "!"]:
            hyp_words.append(word.lower())
    all_in = True
    for word in hyp_words:
        if word not in prem_words:
            all_in = False
            break
    return all_in, " ".join(hyp_words) in " ".join(prem_words)


def test_flags_match_the_finder_scripts_on_random_punctuated_pairs():
    rng = np.random.default_rng(0)
    vocab = ["The", "the", "doctor", "lawyer", "saw", "cat", "concat", ".", "?", "!", ",", "doctor.", "Saw",
             "lawyer,", "cat!", "a"]
    premises = [" ".join(rng.choice(vocab, size=rng.integers(1, 9))) for _ in range(600)]
    hypotheses = [" ".join(rng.choice(p.split(), size=rng.integers(0, 4))) if rng.random() < 0.6 else
                  " ".join(rng.choice(vocab, size=rng.integers(1, 4))) for p in premises]
    expected = [finder_flags(p, h) for p, h in zip(premises, hypotheses, strict=True)]
    assert overlap_flags(premises, hypotheses).tolist() == [list(e) for e in expected]
    assert {e for e in expected} == {(True, True), (True, False), (False, True), (False, False)}  # every case met


def test_subset_composition_by_hand():
    flags = np.array([[1, 1], [1, 0], [1, 0], [0, 0], [1, 1], [0, 0]], dtype=bool)
    labels = np.array([0, 0, 1, 1, 2, 2])
    record = subset_composition(flags, labels, np.array([0, 1, 2, 3, 4, 5]), LABELS)
    assert record["lexical_overlap"] == {"entailment": 1.0, "neutral": 0.5, "contradiction": 0.5}
    assert record["subsequence"] == {"entailment": 0.5, "neutral": 0.0, "contradiction": 0.5}
    assert record["high_overlap_non_entailed"] == 2 and record["high_overlap_non_entailed_share"] == pytest.approx(2 / 6)
    part = subset_composition(flags, labels, np.array([0, 3]), LABELS)
    assert part["lexical_overlap"]["contradiction"] is None and part["high_overlap_non_entailed"] == 0


def test_subset_composition_counts_by_label_name_in_another_label_order():
    # the same pairs as above, their labels given as ids into contradiction < entailment < neutral
    flags = np.array([[1, 1], [1, 0], [1, 0], [0, 0], [1, 1], [0, 0]], dtype=bool)
    labels = np.array([1, 1, 2, 2, 0, 0])
    record = subset_composition(flags, labels, np.arange(6), SORTED_LABELS)
    assert record["lexical_overlap"] == {"entailment": 1.0, "neutral": 0.5, "contradiction": 0.5}
    assert record["high_overlap_non_entailed"] == 2  # id 0 taken as entailment would count 3
    with pytest.raises(DataError, match="need a label named 'entailment'; the task's labels are yes, no: label the entailed pairs"):
        subset_composition(flags, labels % 2, np.arange(6), ("yes", "no"))


def test_composition_of_a_file_whose_labels_sort_contradiction_first(tmp_path):
    # 60 pairs: 4 of 20 entailed, 3 of 20 neutral and 2 of 20 contradiction pairs with every hypothesis word in
    # the premise; 5 high-overlap non-entailed pairs (id 0 read as entailment counted 4 + 3 = 7)
    rows = []
    for label, overlapping in (("entailment", 4), ("neutral", 3), ("contradiction", 2)):
        for i in range(20):
            hypothesis = "the doctor saw the lawyer" if i < overlapping else f"someone else {label} {i}"
            rows.append(f"the lawyer saw the doctor in room {i},{hypothesis},{label}")
    path = tmp_path / "train.csv"
    path.write_text("premise,hypothesis,label\n" + "\n".join(rows) + "\n")
    data = load_data(DataSpec(source="files", train_file=str(path), hans=None), eval_sets=())
    assert data.task.labels == SORTED_LABELS and data.task.nli
    flags = overlap_flags(data.train["premise"], data.train["hypothesis"])
    record = subset_composition(flags, np.asarray(data.train["label"]), np.arange(60), data.task.labels)
    assert record["high_overlap_non_entailed"] == 5
    assert record["lexical_overlap"] == {"contradiction": 0.1, "entailment": 0.2, "neutral": 0.15}


def test_planted_counter_examples_are_exactly_the_high_overlap_non_entailed_pairs():
    plain, planted = generate_nli(2000, 5), generate_nli(2000, 5, counter_examples=40)
    rows = counter_example_rows(2000, 40, 5)
    flags = overlap_flags(planted["premise"], planted["hypothesis"])
    labels = np.asarray(planted["label"])
    np.testing.assert_array_equal(np.flatnonzero(flags[:, 0] & (labels != 0)), rows)
    assert (labels[rows] == 1).all()
    kept = np.setdiff1d(np.arange(2000), rows)  # every other pair is the plain corpus's
    assert all(planted["premise"][i] == plain["premise"][i] for i in kept)
    plain_flags = overlap_flags(plain["premise"], plain["hypothesis"])
    assert not (plain_flags[:, 0] & (np.asarray(plain["label"]) != 0)).any()
