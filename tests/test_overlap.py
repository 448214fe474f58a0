"""HANS composition of subsets: the heuristics' flags by hand, per-label shares, planted counter-examples."""

import numpy as np
import pytest

from tis_ray.data.synthetic import counter_example_rows, generate_nli
from tis_ray.overlap import overlap_flags, subset_composition

LABELS = ("entailment", "neutral", "contradiction")


def test_flags_by_hand():
    premises = ["The doctor saw the lawyer.", "The doctor saw the lawyer.", "The doctor, who slept, saw a cat.",
                "Concatenate the files!", "The judge left."]
    hypotheses = ["The lawyer saw the doctor.", "the doctor saw", "The doctor saw a cat", "cat", "The judge left early"]
    flags = overlap_flags(premises, hypotheses)
    # swap: all words in, not contiguous; prefix: both; words in but "who slept" between; "cat" is not a word of
    # "concatenate"; a new word
    assert flags.tolist() == [[True, False], [True, True], [True, False], [False, False], [False, False]]


def test_subset_composition_by_hand():
    flags = np.array([[1, 1], [1, 0], [1, 0], [0, 0], [1, 1], [0, 0]], dtype=bool)
    labels = np.array([0, 0, 1, 1, 2, 2])
    record = subset_composition(flags, labels, np.array([0, 1, 2, 3, 4, 5]), LABELS)
    assert record["lexical_overlap"] == {"entailment": 1.0, "neutral": 0.5, "contradiction": 0.5}
    assert record["subsequence"] == {"entailment": 0.5, "neutral": 0.0, "contradiction": 0.5}
    assert record["high_overlap_non_entailed"] == 2 and record["high_overlap_non_entailed_share"] == pytest.approx(2 / 6)
    part = subset_composition(flags, labels, np.array([0, 3]), LABELS)
    assert part["lexical_overlap"]["contradiction"] is None and part["high_overlap_non_entailed"] == 0


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
