"""What a training subset holds for HANS: its pairs that the lexical-overlap heuristics would read as entailed.

McCoy et al. (2019) trace HANS failures to MNLI's rarity of pairs whose hypothesis is made of premise words
yet not entailed. Per training pair, after lower-casing and keeping runs of letters, digits and apostrophes
(punctuation dropped, as their finder scripts drop . ? !):

- lexical overlap: every hypothesis word occurs in the premise (heuristic_finder_scripts/lex_finder.py);
- subsequence: the hypothesis words occur in the premise as one contiguous run (subseq_finder.py tests a
  substring of the joined text; this tests whole words, so "cat" is not found in "concatenate").

A subset's composition is these shares per gold label and the count of high-overlap non-entailed pairs, the
minority that contradicts the heuristic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

WORD = re.compile(r"[a-z0-9']+")
LEXICAL, SUBSEQUENCE = 0, 1  # columns of the flags array


def words(text: str) -> list[str]:
    """Return the lower-cased words of `text`, punctuation dropped."""
    return WORD.findall(text.lower())


def is_contiguous(part: list[str], whole: list[str]) -> bool:
    """True when `part` occurs in `whole` as a contiguous run of words (an empty part does)."""
    k = len(part)
    return any(whole[i:i + k] == part for i in range(len(whole) - k + 1))


def overlap_flags(premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
    """Return a bool array [n, 2]: per pair, lexical overlap (all hypothesis words in the premise) and
    subsequence (the hypothesis a contiguous run of premise words)."""
    flags = np.zeros((len(premises), 2), dtype=bool)
    for i, (premise, hypothesis) in enumerate(zip(premises, hypotheses, strict=True)):
        p, h = words(premise), words(hypothesis)
        flags[i, LEXICAL] = set(h) <= set(p)
        flags[i, SUBSEQUENCE] = flags[i, LEXICAL] and is_contiguous(h, p)
    return flags


HIGH_OVERLAP_NON_ENTAILED = "high_overlap_non_entailed"  # the count a subset.json and a trial's row carry


def subset_composition(flags: np.ndarray, labels: np.ndarray, indices: np.ndarray, label_names: Sequence[str],
                       entailed: int = 0) -> dict:
    """Return the HANS-relevant composition of the subset `indices`: per gold label the share of its pairs
    with lexical overlap and with a subsequence hypothesis, and the count (and share of the subset) of
    lexical-overlap pairs whose label is not `entailed`."""
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
