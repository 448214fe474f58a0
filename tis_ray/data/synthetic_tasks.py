"""Synthetic tasks of other shapes than 3-way NLI, in the demo corpus's vocabulary (so tiny-albert reads them):
a 2-label single-sentence task, a 4-label pair task, and out-of-distribution sets for the NLI demo, written
as the files a researcher brings (CSV, JSONL, TSV, and a folder `datasets.load_dataset` opens).

`tis-ray demo-task DIR` writes them; experiments/own_task_demo.yaml and the tests read them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from tis_ray.data import synthetic
from tis_ray.data.schema import MNLI_LABELS

SENTENCE_LABELS = ("negative", "positive")  # a hypothesis that denies (did not, never) or affirms
FOUR_WAY_LABELS = (*MNLI_LABELS, "unrelated")  # a hypothesis about other people entirely: unrelated


def sentence_task(n: int, seed: int, domain: str = "people") -> dict[str, list]:
    """Return `n` single sentences with labels negative / positive: the hypotheses of the NLI corpus, where a
    contradiction's negation makes it negative, and a `domain` column (people or animals)."""
    pairs = synthetic.generate_nli(n, seed, domain)
    return {"sentence": pairs["hypothesis"],
            "label": [SENTENCE_LABELS[0] if label == synthetic.CONTRADICTION else SENTENCE_LABELS[1]
                      for label in pairs["label"]],
            "domain": [domain] * n}


def four_way_task(n: int, seed: int) -> dict[str, list]:
    """Return `n` pairs labelled entailment / neutral / contradiction / unrelated: a quarter of the NLI corpus's
    hypotheses replaced by hypotheses about the animals domain, which the premise says nothing of."""
    pairs = synthetic.generate_nli(n, seed, "people")
    strangers = synthetic.generate_nli(n, seed + 100, "animals")["hypothesis"]
    rng = np.random.default_rng([seed, 4])
    unrelated = rng.random(n) < 0.25
    return {"premise": pairs["premise"],
            "hypothesis": [strangers[i] if unrelated[i] else h for i, h in enumerate(pairs["hypothesis"])],
            "label": ["unrelated" if unrelated[i] else MNLI_LABELS[label] for i, label in enumerate(pairs["label"])]}


def _write_csv(path: Path, columns: dict[str, list], delimiter: str = ",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))
    return path


def _write_jsonl(path: Path, columns: dict[str, list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_demo_task(folder: str | Path, n_train: int = 800, n_eval: int = 200, seed: int = 0) -> dict[str, Path]:
    """Write the synthetic tasks' files into `folder`; returns {name: path}:

    - sentences/ (train.csv, test.csv: sentence, label, domain), a folder `load_dataset` opens (data.source: hub);
    - sentences_animals.csv: the single-sentence task on the other domain (an out-of-distribution set);
    - four_way_train.jsonl, four_way_dev.jsonl: the 4-label pair task (premise, hypothesis, label);
    - nli_animals.jsonl: 3-way NLI pairs about animals (premise, hypothesis, label), out of the demo's domain;
    - hans_style.tsv: HANS-style pairs (sentence1, sentence2, gold_label entailment / non-entailment, heuristic).
    """
    folder = Path(folder)
    hans = synthetic.generate_hans(max(1, n_eval // 6), seed + 7)
    animals = synthetic.generate_nli(n_eval, seed + 8, "animals")
    return {
        "sentences": _write_csv(folder / "sentences" / "train.csv", sentence_task(n_train, seed)).parent,
        "sentences_test": _write_csv(folder / "sentences" / "test.csv", sentence_task(n_eval, seed + 1)),
        "sentences_animals": _write_csv(folder / "sentences_animals.csv", sentence_task(n_eval, seed + 2, "animals")),
        "four_way_train": _write_jsonl(folder / "four_way_train.jsonl", four_way_task(n_train, seed + 3)),
        "four_way_dev": _write_jsonl(folder / "four_way_dev.jsonl", four_way_task(n_eval, seed + 4)),
        "nli_animals": _write_jsonl(folder / "nli_animals.jsonl", {
            "premise": animals["premise"], "hypothesis": animals["hypothesis"],
            "label": [MNLI_LABELS[label] for label in animals["label"]]}),
        "hans_style": _write_csv(folder / "hans_style.tsv", {
            "sentence1": hans["premise"], "sentence2": hans["hypothesis"],
            "gold_label": ["entailment" if label == 0 else "non-entailment" for label in hans["label"]],
            "heuristic": hans["heuristic"]}, delimiter="\t"),
    }
