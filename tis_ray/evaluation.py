"""Accuracy of any evaluation set, overall and per subgroup, through its label mapping; HANS's predictions in
its official format.

Predictions are mapped to labels through the model's own id2label, never by position: published MNLI
checkpoints disagree on label order. A set's gold label counts a prediction right when the predicted label
is one its EvalDefinition maps it to (HANS's non-entailment: neutral or contradiction).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from tis_ray.data.schema import HANS_HEURISTICS, MNLI_LABELS
from tis_ray.data.task import EvalDefinition, Group
from tis_ray.io import write_text


def predicted_names(pred_ids: np.ndarray, id2label: dict) -> np.ndarray:
    """Return the lower-case label name of each predicted model id."""
    names = {int(k): str(v).lower() for k, v in id2label.items()}
    return np.array([names[int(i)] for i in pred_ids])


def mnli_metrics(prefix: str, pred_ids: np.ndarray, gold: np.ndarray, id2label: dict) -> Iterator[tuple[str, float]]:
    """Yield (f'{prefix}/acc', accuracy) for 3-way predictions against gold MNLI label ids."""
    gold_names = np.array(MNLI_LABELS)[np.asarray(gold)]
    yield f"{prefix}/acc", float(np.mean(predicted_names(pred_ids, id2label) == gold_names))


def hans_metrics(pred_ids: np.ndarray, gold: np.ndarray, heuristics: list[str], subcases: list[str],
                 id2label: dict) -> Iterator[tuple[str, float]]:
    """Yield HANS accuracies: overall, per heuristic on gold-entailed and gold-non-entailed, per subcase.

    A 3-way prediction counts as entailment when its label name is 'entailment', else non-entailment.
    Gold labels are 0 entailment, 1 non-entailment.
    """
    correct = (predicted_names(pred_ids, id2label) != "entailment").astype(int) == np.asarray(gold)
    heuristics, subcases, gold = np.asarray(heuristics), np.asarray(subcases), np.asarray(gold)
    yield "hans/acc", float(correct.mean())
    for heuristic in HANS_HEURISTICS:
        for gold_id, kind in ((0, "entailed"), (1, "non_entailed")):
            mask = (heuristics == heuristic) & (gold == gold_id)
            if mask.any():
                yield f"hans/{heuristic}/{kind}", float(correct[mask].mean())
    for subcase in sorted(set(subcases.tolist())):
        yield f"hans_subcase/{subcase}", float(correct[subcases == subcase].mean())


def hans_prediction_labels(pred_ids: np.ndarray, id2label: dict) -> list[str]:
    """Return entailment / non-entailment for each 3-way prediction."""
    return ["entailment" if n == "entailment" else "non-entailment" for n in predicted_names(pred_ids, id2label)]


def write_hans_predictions(path: str | Path, pair_ids: list[str], pred_ids: np.ndarray, id2label: dict) -> Path:
    """Write predictions as HANS's evaluate_heur_output.py reads them: 'pairID,gold_label' then a line per pair."""
    lines = ["pairID,gold_label"] + [f"{pid},{label}" for pid, label in
                                     zip(pair_ids, hans_prediction_labels(pred_ids, id2label), strict=True)]
    return write_text(path, "\n".join(lines) + "\n")


def label_ids(id2label: dict) -> dict[str, int]:
    """Return {lower-case label name: model output id}."""
    return {str(v).lower(): int(k) for k, v in id2label.items()}


def example_margins(logits: np.ndarray, gold: np.ndarray, id2label: dict, two_way: bool = False) -> np.ndarray:
    """Return each example's margin: the gold class's logit minus the best other class's (positive = right).

    `gold`: MNLI label ids (entailment, neutral, contradiction), mapped to the model's outputs by name. With
    `two_way` (HANS: gold 0 entailment, 1 non-entailment), the entailment logit against the best of the others,
    signed so that positive is right.
    """
    ids = label_ids(id2label)
    logits, gold = np.asarray(logits, dtype=np.float64), np.asarray(gold)
    if two_way:
        entail = logits[:, ids["entailment"]]
        others = np.delete(logits, ids["entailment"], axis=1).max(axis=1)
        return np.where(gold == 0, entail - others, others - entail)
    columns = np.array([ids[MNLI_LABELS[g]] for g in gold])
    rows = np.arange(len(gold))
    picked = logits[rows, columns]
    rest = logits.copy()
    rest[rows, columns] = -np.inf
    return picked - rest.max(axis=1)


def _right_outputs(definition: EvalDefinition, id2label: dict) -> np.ndarray:
    """Return a bool [set labels, model outputs] matrix: which outputs are right for each gold label."""
    ids = label_ids(id2label)
    right = np.zeros((len(definition.labels), len(ids)), dtype=bool)
    for row, label in enumerate(definition.labels):
        for name in definition.label_map[label]:
            if name not in ids:
                raise ValueError(f"the model's id2label {id2label} names no {name!r} label: tis_ray maps "
                                 "predictions to labels by name, never by position")
            right[row, ids[name]] = True
    return right


def correct_predictions(definition: EvalDefinition, pred_ids: np.ndarray, gold: np.ndarray,
                        id2label: dict) -> np.ndarray:
    """Return a bool per example: the predicted model output is one the gold label (a set label id) maps to."""
    return _right_outputs(definition, id2label)[np.asarray(gold), np.asarray(pred_ids)]


def group_keys(group: Group, meta: pd.DataFrame, gold_names: np.ndarray) -> np.ndarray:
    """Return each example's value in `group`: its values of the group's columns joined by '/' ('label' is the
    gold label's name, `gold_names`), e.g. 'lexical_overlap/non_entailed'."""
    values = [gold_names if c == "label" else meta[c].astype(str).to_numpy() for c in group.columns]
    return np.array(["/".join(parts) for parts in zip(*values, strict=True)])


def set_metrics(definition: EvalDefinition, pred_ids: np.ndarray, gold: np.ndarray, meta: pd.DataFrame,
                id2label: dict) -> dict[str, float]:
    """Return '<set>/acc' and each group's accuracy '<prefix>/<value>[/<value>]' (groups of `meta`'s columns;
    'label' is the gold label's name), groups in sorted order."""
    correct = correct_predictions(definition, pred_ids, gold, id2label)
    metrics = {f"{definition.name}/acc": float(correct.mean())}
    gold_names = np.array(definition.labels)[np.asarray(gold)]
    for group in definition.groups:
        keys = group_keys(group, meta, gold_names)
        for key in sorted(set(keys.tolist())):
            metrics[f"{group.prefix}/{key}"] = float(correct[keys == key].mean())
    return metrics


def set_margins(definition: EvalDefinition, logits: np.ndarray, gold: np.ndarray, id2label: dict) -> np.ndarray:
    """Return each example's margin: the best logit among the outputs its gold label maps to minus the best
    of the others (positive = right). One mapped label: the gold logit against the best other class."""
    right = _right_outputs(definition, id2label)[np.asarray(gold)]
    logits = np.asarray(logits, dtype=np.float64)
    return np.where(right, logits, -np.inf).max(axis=1) - np.where(right, -np.inf, logits).max(axis=1)
