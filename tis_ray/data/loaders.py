"""Every data source read into one canonical form (tis_ray.data.task): text columns, label ids, idx, and the
columns an evaluation set groups its examples by; with the revision of what was read.

The MNLI sources are instances of the general form: mnli_hub is nyu-mll/glue (config mnli) on the hub,
glue_dir and files are local files, synthetic is generated; their evaluation sets mnli_m, mnli_mm and
hans are EvalDefinitions like any other (tis_ray.data.task.mnli_set, hans_set).
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from datasets import Dataset

from tis_ray.data import synthetic
from tis_ray.data.schema import HANS_COLUMNS, HANS_LABELS, MNLI_LABELS, SYNTHETIC_HANS_SEED_OFFSET
from tis_ray.data.tables import parse_label, read_rows, require_columns
from tis_ray.data.task import (
    PAIR_COLUMNS,
    EvalDefinition,
    Group,
    Task,
    canonical_text_columns,
    hans_set,
    mnli_set,
    resolve_label_map,
)
from tis_ray.errors import DataError
from tis_ray.io import write_text
from tis_ray.spec import BUILTIN_EVAL_SETS, ColumnsSpec, DataSpec, EvalSetSpec

log = logging.getLogger(__name__)

HANS_URL = "https://raw.githubusercontent.com/tommccoy1/hans/master/heuristics_evaluation_set.txt"
MNLI_HUB = ("nyu-mll/glue", "mnli")
MNLI_HUB_SPLITS = {"mnli_m": "validation_matched", "mnli_mm": "validation_mismatched"}


@dataclass
class TaskData:
    """The training set, the evaluation sets by name with how each is scored, the task, and the revision of
    every source read ('train', each set's name)."""

    train: Dataset
    eval_sets: dict[str, Dataset] = field(default_factory=dict)
    task: Task = field(default_factory=lambda: Task(MNLI_LABELS))
    definitions: dict[str, EvalDefinition] = field(default_factory=dict)
    revisions: dict[str, str] = field(default_factory=dict)


NLIData = TaskData  # the name of tis_ray <= 0.21


def cache_dir() -> Path:
    """Return tis_ray's cache folder ($TIS_RAY_CACHE, else ~/.cache/tis_ray)."""
    return Path(os.environ.get("TIS_RAY_CACHE", Path.home() / ".cache" / "tis_ray"))


def sha256_of_files(path: str | Path) -> str:
    """Return 'sha256:<hex>' of a file's bytes, or of a folder's files (names and bytes, in sorted order)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\x00")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def _label_names_of(values: list[str]) -> tuple[str, ...]:
    """Return the label names of a column without given names: its values sorted (numerically when ids)."""
    distinct = set(values)
    if all(v.lstrip("-").isdigit() for v in distinct):
        return tuple(str(v) for v in sorted(map(int, distinct)))
    return tuple(sorted(distinct))


def read_file_source(path: str | Path, columns: ColumnsSpec, labels: tuple[str, ...] | None,
                     keep: tuple[str, ...] = ()) -> tuple[Dataset, tuple[str, ...]]:
    """Return a CSV / TSV / JSONL file in the canonical form and its label names (`labels`, else the label
    column's values sorted), keeping the `keep` columns as text. Rows labelled '-' (no consensus) are skipped."""
    names = canonical_text_columns(len(columns.text))
    cols: dict[str, list] = {k: [] for k in (*names, "raw_label", *keep)}
    skipped = 0
    for lineno, row in read_rows(path):
        require_columns(path, lineno, row, [*columns.text, columns.label, *keep])
        value = str(row[columns.label]).strip()
        if value in ("-", ""):
            skipped += 1
            continue
        for name, source in zip(names, columns.text, strict=True):
            cols[name].append(str(row[source]))
        cols["raw_label"].append((value.lower(), lineno))
        for key in keep:
            cols[key].append(str(row[key]))
    if skipped:
        log.warning("%s: skipped %d rows without a gold label ('-')", path, skipped)
    raw = cols.pop("raw_label")
    labels = labels or _label_names_of([v for v, _ in raw])
    cols["label"] = [parse_label(v, labels, f"{path}:{lineno}") for v, lineno in raw]
    cols["idx"] = list(range(len(raw)))
    return Dataset.from_dict(cols), labels


def load_nli_file(path: str | Path, premise: str = "premise", hypothesis: str = "hypothesis",
                  label: str = "label") -> Dataset:
    """Return a CSV / TSV / JSONL file of NLI pairs in the canonical schema (MNLI label names or ids)."""
    dataset, _ = read_file_source(path, ColumnsSpec(text=[premise, hypothesis], label=label), MNLI_LABELS)
    return dataset


def _hub_error(where: str, exc: Exception) -> DataError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    offline = os.environ.get("HF_DATASETS_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1"
    hint = (" (offline, and nothing of it is cached: run once with network access)" if offline else
            " (no network? with HF_DATASETS_OFFLINE=1 a cached copy is used)")
    return DataError(f"{where}: cannot open it: {first}{hint}")


def _hub_where(dataset: str, config: str | None) -> str:
    return f"dataset {dataset!r}" + (f" config {config!r}" if config else "")


def _hub_builder(dataset: str, config: str | None, revision: str | None, prepare: bool = True):
    """Return the dataset's builder (its data downloaded and prepared, unless `prepare` is False); whatever
    `datasets` raises (not found, offline with nothing cached, a bad config) becomes one DataError line."""
    from datasets import load_dataset_builder

    try:
        builder = load_dataset_builder(dataset, config, revision=revision)
        if prepare:
            builder.download_and_prepare()
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds
        raise _hub_error(_hub_where(dataset, config), exc) from None
    return builder


def hub_revision(dataset: str, config: str | None, revision: str | None) -> str:
    """Return what a hub dataset's data is at: 'dataset@<commit>' on the hub, a local folder's sha256."""
    if Path(dataset).exists():
        return sha256_of_files(dataset)
    return f"{dataset}@{_hub_builder(dataset, config, revision, prepare=False).hash}"


def read_hub_source(dataset: str, config: str | None, split: str, revision: str | None, columns: ColumnsSpec,
                    labels: tuple[str, ...] | None, keep: tuple[str, ...] = ()) -> tuple[Dataset, tuple[str, ...]]:
    """Return a split of a dataset `load_dataset` opens in the canonical form and its label names (`labels`, a
    ClassLabel's names, else the label column's values sorted)."""
    from datasets import ClassLabel

    where = _hub_where(dataset, config)
    builder = _hub_builder(dataset, config, revision)
    splits = list(builder.info.splits or {})
    if split not in splits:
        raise DataError(f"{where}: no split {split!r}; it has {', '.join(splits) or 'none'}")
    ds = builder.as_dataset(split=split)
    for column in [*columns.text, columns.label, *keep]:
        if column not in ds.column_names:
            raise DataError(f"{where} split {split}: no column {column!r} (it has {', '.join(ds.column_names)})")
    feature = ds.features[columns.label]
    names = canonical_text_columns(len(columns.text))
    ds = ds.select_columns([*columns.text, columns.label, *keep])
    if isinstance(feature, ClassLabel):
        own = tuple(n.lower() for n in feature.names)
        labels = labels or own
        outside = [n for n in own if n not in labels]
        if outside:
            raise DataError(f"{where} split {split}: label {outside[0]!r} is not one of data.labels "
                            f"({', '.join(labels)})")
        lookup = np.array([labels.index(n) for n in own] + [-1])  # -1: GLUE's unlabelled test rows
        raw_labels = np.asarray(ds[columns.label])
        ids = lookup[np.where(raw_labels < 0, len(own), raw_labels)]
    else:
        values = [str(v).strip().lower() for v in ds[columns.label]]
        labels = labels or _label_names_of([v for v in values if v not in ("-", "", "-1")])
        ids = np.array([-1 if v in ("-", "", "-1") else parse_label(v, labels, f"{where} split {split} row {i}")
                        for i, v in enumerate(values)])
    keep_rows = np.flatnonzero(ids >= 0)
    if len(keep_rows) < len(ids):
        log.warning("%s split %s: skipped %d rows without a gold label", where, split, len(ids) - len(keep_rows))
    table = {name: ds[source] for name, source in zip(names, columns.text, strict=True)}
    table.update({key: [str(v) for v in ds[key]] for key in keep})
    table["label"] = ids.tolist()
    out = Dataset.from_dict(table).select(keep_rows) if len(keep_rows) < len(ids) else Dataset.from_dict(table)
    return out.add_column("idx", list(range(len(out)))), labels


def load_glue_mnli(glue_dir: str | Path) -> dict[str, Dataset]:
    """Return train / mnli_m / mnli_mm from a GLUE MNLI folder (sentence1, sentence2, gold_label)."""
    glue_dir = Path(glue_dir)
    files = {"train": "train.tsv", "mnli_m": "dev_matched.tsv", "mnli_mm": "dev_mismatched.tsv"}
    return {name: load_nli_file(glue_dir / f, "sentence1", "sentence2", "gold_label") for name, f in files.items()}


def load_hans_file(path: str | Path) -> Dataset:
    """Return HANS from its TSV (heuristics_evaluation_set.txt layout) in the canonical schema."""
    cols = {k: [] for k in ("premise", "hypothesis", "label", "idx", *HANS_COLUMNS)}
    needed = ["gold_label", "sentence1", "sentence2", "pairID", "heuristic", "subcase", "template"]
    for lineno, row in read_rows(path, delimiter="\t"):
        require_columns(path, lineno, row, needed)
        cols["premise"].append(row["sentence1"])
        cols["hypothesis"].append(row["sentence2"])
        cols["label"].append(parse_label(row["gold_label"], HANS_LABELS, f"{path}:{lineno}"))
        cols["idx"].append(len(cols["idx"]))
        for key, source in zip(HANS_COLUMNS, ("heuristic", "subcase", "template", "pairID"), strict=True):
            cols[key].append(row[source])
    return with_gold_kind(Dataset.from_dict(cols))


def with_gold_kind(hans: Dataset) -> Dataset:
    """Return HANS with a `gold` column, entailed / non_entailed: what its per-heuristic metrics are named by."""
    return hans.add_column("gold", ["entailed" if HANS_LABELS[label] == "entailment" else "non_entailed"
                                    for label in hans["label"]])


def download_hans() -> Path:
    """Return the local path of the public HANS evaluation set, downloading it once into the cache."""
    target = cache_dir() / "hans" / "heuristics_evaluation_set.txt"
    if not target.is_file():
        log.info("downloading HANS from %s", HANS_URL)
        try:
            with urllib.request.urlopen(HANS_URL, timeout=60) as response:
                text = response.read().decode("utf-8")
        except OSError as exc:
            raise DataError(f"could not download HANS from {HANS_URL} ({exc}); "
                            "pass a local heuristics_evaluation_set.txt as data.hans") from None
        write_text(target, text)
    return target


def synthetic_hans(spec: DataSpec) -> Dataset:
    """Return the synthetic HANS-style set of `spec.synthetic` (the same for every data source)."""
    s = spec.synthetic
    return with_gold_kind(Dataset.from_dict(synthetic.generate_hans(s.hans_per_cell,
                                                                    s.seed + SYNTHETIC_HANS_SEED_OFFSET)))


def _even_subset(dataset: Dataset, n: int | None) -> Dataset:
    """At most `n` rows spread evenly over the set (so a capped HANS keeps every heuristic)."""
    if n is None or len(dataset) <= n:
        return dataset
    return dataset.select(np.unique(np.linspace(0, len(dataset) - 1, n).astype(int)))


def pool_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Return the sorted training-set rows of a seeded pool of `size` examples out of `n`."""
    if size > n:
        raise DataError(f"data.pool_size {size} is more than the {n} training examples")
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def pool_of(train: Dataset, size: int, seed: int) -> Dataset:
    """Return the training pool: `size` examples of `train` chosen by `seed`, in their training-set order."""
    return train.select(pool_rows(len(train), size, seed))


def _generated_revision(dataset: Dataset) -> str:
    from tis_ray.data.tokenize import fingerprint_dataset

    return f"generated:{fingerprint_dataset(dataset)}"


def _synthetic_train(spec: DataSpec) -> Dataset:
    s = spec.synthetic
    return Dataset.from_dict(synthetic.generate_nli(s.n_train, s.seed, "people", s.length_profile, s.counter_examples))


def _synthetic_mnli(spec: DataSpec, name: str) -> Dataset:
    s = spec.synthetic
    seed, domain = (s.seed + 1, "people") if name == "mnli_m" else (s.seed + 2, "animals")
    return Dataset.from_dict(synthetic.generate_nli(s.n_eval, seed, domain, s.length_profile))


def _builtin_train(spec: DataSpec) -> tuple[Dataset, tuple[str, ...]]:
    """Return the training set of `spec` and its label names."""
    labels = tuple(spec.labels) if spec.labels else None
    if spec.source == "synthetic":
        return _synthetic_train(spec), MNLI_LABELS
    if spec.source == "glue_dir":
        return load_nli_file(Path(spec.glue_dir) / "train.tsv", "sentence1", "sentence2", "gold_label"), MNLI_LABELS
    if spec.source == "mnli_hub":
        return read_hub_source(*MNLI_HUB, "train", None, ColumnsSpec(), MNLI_LABELS)
    if spec.source == "files":
        return read_file_source(spec.train_file, spec.columns, MNLI_LABELS if spec.mnli_like() else labels)
    return read_hub_source(spec.dataset, spec.config, spec.train_split, spec.revision, spec.columns, labels)


def _builtin_file(spec: DataSpec, name: str) -> Path | None:
    """Return the local file of an MNLI source's own evaluation set `name`; None where it is not a local file."""
    if name == "hans":
        if spec.hans in (None, "synthetic") or spec.source == "synthetic":
            return None
        return download_hans() if spec.hans == "download" else Path(spec.hans)
    if spec.source == "glue_dir":
        return Path(spec.glue_dir) / ("dev_matched.tsv" if name == "mnli_m" else "dev_mismatched.tsv")
    if spec.source == "files":
        path = spec.matched_file if name == "mnli_m" else spec.mismatched_file
        return Path(path) if path else None
    return None


def _builtin_eval_set(spec: DataSpec, name: str) -> Dataset | None:
    """Return an MNLI source's own evaluation set `name`; None where the source has none."""
    if name == "hans":
        if spec.hans is None:
            return None
        path = _builtin_file(spec, name)
        return load_hans_file(path) if path else synthetic_hans(spec)
    if spec.source == "synthetic":
        return _synthetic_mnli(spec, name)
    if spec.source == "mnli_hub":
        return read_hub_source(*MNLI_HUB, MNLI_HUB_SPLITS[name], None, ColumnsSpec(), MNLI_LABELS)[0]
    if spec.source == "glue_dir":
        return load_nli_file(_builtin_file(spec, name), "sentence1", "sentence2", "gold_label")
    path = _builtin_file(spec, name)
    return read_file_source(path, spec.columns, MNLI_LABELS)[0] if path else None


def data_revisions(spec: DataSpec, eval_sets: list[str | EvalSetSpec] | tuple[str, ...] | None = None) -> dict[str, str]:
    """Return the revision of the training data ('train') and of each evaluation set by name, without reading
    the data: a local file's or folder's sha256, a hub dataset's commit ('dataset@<commit>'), the synthetic
    corpus's fingerprint (it is generated again, which takes a moment)."""
    if eval_sets is None:
        eval_sets = BUILTIN_EVAL_SETS if spec.mnli_like() else ()
    if spec.source == "synthetic":
        train = _generated_revision(_synthetic_train(spec))
    elif spec.source in ("glue_dir", "files"):
        train = sha256_of_files(Path(spec.glue_dir) / "train.tsv" if spec.source == "glue_dir" else spec.train_file)
    elif spec.source == "mnli_hub":
        train = hub_revision(*MNLI_HUB, None)
    else:
        train = hub_revision(spec.dataset, spec.config, spec.revision)
    revisions = {"train": train}
    for entry in eval_sets:
        if isinstance(entry, EvalSetSpec):
            revisions[entry.name] = sha256_of_files(entry.file) if entry.file else hub_revision(
                *((entry.dataset, entry.config, entry.revision) if entry.dataset else
                  (spec.dataset, spec.config, spec.revision)))
        elif (path := _builtin_file(spec, entry)) is not None:
            revisions[entry] = sha256_of_files(path)
        elif entry == "hans" and spec.hans is not None:
            revisions[entry] = _generated_revision(synthetic_hans(spec))
        elif spec.source == "synthetic":
            revisions[entry] = _generated_revision(_synthetic_mnli(spec, entry))
        elif spec.source == "mnli_hub":
            revisions[entry] = hub_revision(*MNLI_HUB, None)
    return revisions


def group_columns(entry: EvalSetSpec) -> tuple[Group, ...]:
    """Return an eval set entry's groups: each a column or a list of columns, named by the set."""
    return tuple(Group((g,) if isinstance(g, str) else tuple(g), entry.name) for g in entry.groups)


def _entry_eval_set(spec: DataSpec, entry: EvalSetSpec, task: Task) -> tuple[Dataset, EvalDefinition]:
    """Return an eval set entry's data and its definition (labels mapped to the task's)."""
    groups = group_columns(entry)
    keep = tuple(dict.fromkeys(c for g in groups for c in g.columns if c != "label"))
    columns = entry.columns or spec.columns
    if len(columns.text) != len(task.text_columns):
        raise DataError(f"eval set {entry.name}: {len(columns.text)} text column(s) ({', '.join(columns.text)}), "
                        f"the task has {len(task.text_columns)}")
    given = tuple(entry.labels) if entry.labels else None
    if entry.file:
        dataset, labels = read_file_source(entry.file, columns, given, keep)
    else:
        source = (entry.dataset, entry.config, entry.revision) if entry.dataset else (
            spec.dataset, spec.config, spec.revision)
        dataset, labels = read_hub_source(*source[:2], entry.split, source[2], columns, given, keep)
    if given is None and labels == tuple(map(str, range(len(labels)))) and len(labels) <= len(task.labels):
        labels = task.labels[:len(labels)]  # ids 0..k-1 without names: the task's label ids, as in training
    definition = EvalDefinition(entry.name, labels, resolve_label_map(entry.name, labels, task, entry.label_map),
                                groups=groups, compare=tuple(entry.compare or ()),
                                equivalence_margin=entry.equivalence_margin, meta_columns=keep)
    return dataset, definition


def load_data(spec: DataSpec, eval_sets: list[str | EvalSetSpec] | tuple[str, ...] | None = None) -> TaskData:
    """Return the training set, the evaluation sets (names of the MNLI sources' own sets or EvalSetSpec
    entries; None: the MNLI sources' three) with their definitions, the task and every source's revision."""
    if eval_sets is None:
        eval_sets = BUILTIN_EVAL_SETS if spec.mnli_like() else ()
    train, labels = _builtin_train(spec)
    if len(labels) < 2:
        raise DataError(f"the training data has a single label ({labels[0]}): a classification task needs two or more")
    columns = PAIR_COLUMNS if spec.mnli_like() else canonical_text_columns(len(spec.columns.text))
    nli = spec.nli if spec.nli is not None else (len(columns) == 2 and "entailment" in labels)
    task = Task(tuple(labels), columns, nli)
    if spec.max_train_examples:
        train = train.select(range(min(spec.max_train_examples, len(train))))
    if spec.pool_size:
        train = pool_of(train, spec.pool_size, spec.pool_seed)
    evals, definitions = {}, {}
    for entry in eval_sets:
        if isinstance(entry, str):
            dataset = _builtin_eval_set(spec, entry)
            if dataset is None:
                continue
            definitions[entry] = hans_set() if entry == "hans" else mnli_set(entry)
            name = entry
        else:
            dataset, definitions[entry.name] = _entry_eval_set(spec, entry, task)
            name = entry.name
        evals[name] = _even_subset(dataset, spec.max_eval_examples)
    revisions = {k: v for k, v in data_revisions(spec, eval_sets).items() if k == "train" or k in evals}
    return TaskData(train=train, eval_sets=evals, task=task, definitions=definitions, revisions=revisions)
