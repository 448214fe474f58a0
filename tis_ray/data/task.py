"""What a task is, as data: its label names and text columns, and how each evaluation set is scored.

Every source (the MNLI sources, a hub dataset, local files) is read into one canonical form: text columns
`premise` and `hypothesis` for pairs, `text` for single sentences, and `label` holding ids into a set's own
label names. An EvalDefinition says how a set's labels map to the task's (HANS's `non-entailment` counts a
neutral or contradiction prediction right), which columns group its examples into subgroups with their own
accuracy, and which of its metrics the report's paired comparisons test.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field

from tis_ray.data.schema import HANS_LABELS, MNLI_LABELS
from tis_ray.errors import DataError

PAIR_COLUMNS = ("premise", "hypothesis")  # canonical text columns of a pair task
SINGLE_COLUMNS = ("text",)  # of a single-sentence task


def canonical_text_columns(n: int) -> tuple[str, ...]:
    """Return the canonical text columns of a task with `n` (1 or 2) text inputs."""
    return PAIR_COLUMNS if n == 2 else SINGLE_COLUMNS


def text_columns_of(column_names) -> tuple[str, ...]:
    """Return the canonical text columns a dataset with `column_names` holds: the pair's, or the sentence's."""
    return PAIR_COLUMNS if "hypothesis" in column_names else SINGLE_COLUMNS


@dataclass(frozen=True)
class Task:
    """The training task: label names in id order (what the model's head outputs), its text columns, and
    whether the NLI-only statistics (HANS lexical-overlap composition of the training pairs) apply."""

    labels: tuple[str, ...]
    text_columns: tuple[str, ...] = PAIR_COLUMNS
    nli: bool = True

    def to_json(self) -> dict:
        return {"labels": list(self.labels), "text_columns": list(self.text_columns), "nli": self.nli}

    @classmethod
    def from_json(cls, raw: dict) -> Task:
        return cls(tuple(raw["labels"]), tuple(raw["text_columns"]), bool(raw["nli"]))


MNLI_TASK = Task(MNLI_LABELS)


@dataclass(frozen=True)
class Group:
    """Examples grouped by the values of `columns` ('label' is the gold label's name); each group's accuracy
    is the metric '<prefix>/<value>[/<value>...]'."""

    columns: tuple[str, ...]
    prefix: str


@dataclass(frozen=True)
class EvalDefinition:
    """How one evaluation set is scored; see the module docstring."""

    name: str
    labels: tuple[str, ...]  # the set's own label names: ids in its `label` column
    label_map: dict[str, tuple[str, ...]]  # every set label -> the task labels a prediction may have to be right
    groups: tuple[Group, ...] = ()
    compare: tuple[str, ...] = ()  # glob patterns over its metric names; () means '<name>/acc'
    equivalence_margin: float | None = None  # TOST margin in points; None: the report's default for the set
    predictions: str | None = None  # 'hans': write hans_predictions.txt for HANS's own evaluator
    meta_columns: tuple[str, ...] = field(default=())  # columns kept beside the labels (groups, pair ids)

    def compared(self, metrics) -> list[str]:
        """Return the metrics among `metrics` that the paired comparisons test."""
        patterns = self.compare or (f"{self.name}/acc",)
        return [m for m in metrics if any(fnmatch.fnmatchcase(m, p) for p in patterns)]

    def to_json(self) -> dict:
        raw = asdict(self)
        raw["groups"] = [{"columns": list(g.columns), "prefix": g.prefix} for g in self.groups]
        raw["label_map"] = {k: list(v) for k, v in self.label_map.items()}
        return raw

    @classmethod
    def from_json(cls, raw: dict) -> EvalDefinition:
        return cls(name=raw["name"], labels=tuple(raw["labels"]),
                   label_map={k: tuple(v) for k, v in raw["label_map"].items()},
                   groups=tuple(Group(tuple(g["columns"]), g["prefix"]) for g in raw["groups"]),
                   compare=tuple(raw["compare"]), equivalence_margin=raw.get("equivalence_margin"),
                   predictions=raw.get("predictions"), meta_columns=tuple(raw.get("meta_columns", ())))


def resolve_label_map(name: str, set_labels: tuple[str, ...], task: Task,
                      given: dict[str, str | list[str]]) -> dict[str, tuple[str, ...]]:
    """Return every set label's task labels: `given` ones as given, the others themselves. Raises DataError
    naming the set and label when a label maps to no task label."""
    unknown = sorted(set(given) - set(set_labels))
    if unknown:
        raise DataError(f"eval set {name}: label_map names {unknown[0]!r}, which is not one of the set's labels "
                        f"({', '.join(set_labels)})")
    resolved = {}
    for label in set_labels:
        target = given.get(label, label)
        targets = tuple(str(t).lower() for t in ([target] if isinstance(target, str) else target))
        outside = [t for t in targets if t not in task.labels]
        if outside or not targets:
            raise DataError(f"eval set {name}: its label {label!r} maps to {outside[0] if outside else 'nothing'!r}, "
                            f"which is not a label of the task ({', '.join(task.labels)}): give it in "
                            f"label_map, e.g. {{{label}: {task.labels[0]}}}")
        resolved[label] = targets
    return resolved


# The MNLI sources' evaluation sets, written in the general form
MNLI_COMPARED_HANS = ("hans/acc", "hans/*/non_entailed")  # HANS overall and its non-entailed half per heuristic


def mnli_set(name: str) -> EvalDefinition:
    """Return MNLI matched or mismatched dev: the task's own labels, no groups."""
    return EvalDefinition(name, MNLI_LABELS, {label: (label,) for label in MNLI_LABELS})


def hans_set() -> EvalDefinition:
    """Return HANS: two-way gold (non-entailment = neutral or contradiction), accuracy per heuristic on the
    entailed and non-entailed halves (hans/<heuristic>/<entailed|non_entailed>) and per subcase
    (hans_subcase/<subcase>), its predictions written for the authors' evaluator."""
    return EvalDefinition(
        "hans", HANS_LABELS, {"entailment": ("entailment",), "non-entailment": ("neutral", "contradiction")},
        groups=(Group(("heuristic", "gold"), "hans"), Group(("subcase",), "hans_subcase")),
        compare=MNLI_COMPARED_HANS, predictions="hans",
        meta_columns=("heuristic", "subcase", "template", "pair_id", "gold"))
