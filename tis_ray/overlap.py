"""What a training subset holds for HANS: its pairs that the lexical-overlap heuristics would read as entailed.

McCoy et al. (2019) trace HANS failures to MNLI's rarity of pairs whose hypothesis is made of premise words
yet not entailed. Per training pair, the words are read as their finder scripts read MNLI's sentence1 and
sentence2 (heuristic_finder_scripts/lex_finder.py, subseq_finder.py): the text split on whitespace,
lower-cased, standalone '.', '?' and '!' tokens dropped, punctuation attached to a word kept with it ('lawyer.'
is not 'lawyer', so "The doctor saw the lawyer." / "The lawyer saw the doctor." is no lexical overlap). Then

- lexical overlap: every hypothesis word is one of the premise's words;
- subsequence: the hypothesis words joined by spaces occur in the premise words joined by spaces, a plain
  substring test as theirs (not bounded by words: "cat" is found in "concatenate").

A subset's composition is these shares per gold label and the count of high-overlap pairs whose gold label is
not the one named entailment, the minority that contradicts the heuristic. Labels are matched by name, never
by id: a task's label ids follow its own order (a file's sorted label values put contradiction first).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tis_ray.errors import DataError

DROPPED = (".", "?", "!")  # standalone tokens the finder scripts skip
LEXICAL, SUBSEQUENCE = 0, 1  # columns of the flags array
ENTAILMENT = "entailment"  # the label name the heuristics predict
# the rule the flags were computed under, recorded beside them (flags prepared before it was recorded stripped
# attached punctuation and tested whole-word runs)
OVERLAP_RULE = "mccoy2019-whitespace"


def words(text: str) -> list[str]:
    """Return the words of `text` as McCoy et al.'s finder scripts read them: split on whitespace,
    lower-cased, standalone '.', '?', '!' left out."""
    return [word.lower() for word in text.split() if word not in DROPPED]


def overlap_flags(premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
    """Return a bool array [n, 2]: per pair, lexical overlap (every hypothesis word a premise word) and
    subsequence (the joined hypothesis words a substring of the joined premise words)."""
    flags = np.zeros((len(premises), 2), dtype=bool)
    for i, (premise, hypothesis) in enumerate(zip(premises, hypotheses, strict=True)):
        p, h = words(premise), words(hypothesis)
        flags[i, LEXICAL] = all(word in p for word in h)
        flags[i, SUBSEQUENCE] = " ".join(h) in " ".join(p)
    return flags


def entailment_id(label_names: Sequence[str]) -> int:
    """Return the id of the label named entailment; raises DataError naming the labels when there is none."""
    names = [str(name).lower() for name in label_names]
    if ENTAILMENT not in names:
        raise DataError(f"the HANS overlap statistics need a label named {ENTAILMENT!r}; the task's labels are "
                        f"{', '.join(map(str, label_names))}: label the entailed pairs {ENTAILMENT!r}, or set data.nli: false")
    return names.index(ENTAILMENT)


HIGH_OVERLAP_NON_ENTAILED = "high_overlap_non_entailed"  # the count a subset.json and a trial's row carry


def subset_composition(flags: np.ndarray, labels: np.ndarray, indices: np.ndarray,
                       label_names: Sequence[str]) -> dict:
    """Return the HANS-relevant composition of the subset `indices` (`labels`: ids into `label_names`): per
    gold label the share of its pairs with lexical overlap and with a subsequence hypothesis, and the count
    (and share of the subset) of lexical-overlap pairs whose label is not the one named entailment."""
    entailed = entailment_id(label_names)
    flags, labels = flags[indices], labels[indices]
    record: dict = {"lexical_overlap": {}, "subsequence": {}}
    for label, name in enumerate(label_names):
        of_label = labels == label
        for key, column in (("lexical_overlap", LEXICAL), ("subsequence", SUBSEQUENCE)):
            record[key][name] = float(flags[of_label, column].mean()) if of_label.any() else None
    count = int((flags[:, LEXICAL] & (labels != entailed)).sum())
    record[HIGH_OVERLAP_NON_ENTAILED] = count
    record[f"{HIGH_OVERLAP_NON_ENTAILED}_share"] = count / len(indices) if len(indices) else 0.0
    return record
