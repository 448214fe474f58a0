"""The experiment spec: one YAML file says what a sweep trains, on which data, over which grid.

Defaults live here, one comment each; a spec in experiments/ states only what differs.
`load_spec` validates everything before any trial starts and turns every mistake into a one-line
SpecError that names the field.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tis_ray.data.schema import MNLI_LABELS
from tis_ray.errors import SamplingError, SpecError, TisRayError, did_you_mean
from tis_ray.samplers import SAMPLERS, normalized_entry, sampler_from_entry, sampler_key, sampler_label
from tis_ray.storage import Storage, is_uri, join


def reads_file(entry: dict) -> bool:
    """True for a sampler entry whose `path` names a file the sampler reads (indices, score)."""
    return getattr(SAMPLERS.get(entry.get("type")), "reads_file", False)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# the folder relative paths resolve against while a spec file is validated: the spec file's own (as compose
# files do); None: the current folder (--set overrides, the default storage_path, specs built in Python)
SPEC_FOLDER: ContextVar[str | None] = ContextVar("spec_folder", default=None)


def absolute_path(value: str) -> str:
    """Return a local path made absolute, '~' expanded: against the spec file's folder while one is loaded
    (SPEC_FOLDER), else against the working directory.

    Trials run in other working directories (Tune's trial folders, other nodes), so every local path is
    fixed here, once, where the spec is loaded.
    """
    if "\x00" in value:
        raise ValueError(f"{value!r}: a path cannot contain a NUL character")
    return os.path.abspath(os.path.join(SPEC_FOLDER.get() or os.getcwd(), os.path.expanduser(value)))


# a local file or folder, made absolute where the spec is loaded (None: not given)
LocalPath = Annotated[str | None, AfterValidator(lambda value: absolute_path(value) if value else value)]


def looks_like_path(name: str) -> bool:
    """True for names meant as local paths ('/x', './x', '~/x', or anything that exists), not hub ids."""
    if name.startswith(("/", "./", "../", "~")):
        return True
    try:
        return Path(SPEC_FOLDER.get() or ".", name).exists()
    except (OSError, ValueError):
        return False


def model_path(name: str | None) -> str | None:
    """Return a model / tokenizer name as given (hub id) or as an absolute path (a local checkpoint)."""
    return absolute_path(name) if name and name != "tiny-albert" and looks_like_path(name) else name


class ModelSpec(_Strict):
    name: str = "tiny-albert"  # hub id, local checkpoint dir, or tiny-albert (built offline)
    tokenizer: str | None = None  # tokenizer id/path when it differs from `name`
    freeze_base: bool = False  # train only the classification head
    # what output ids 0, 1, ... of a checkpoint's head mean, when its config names them LABEL_0, LABEL_1, ... (e.g.
    # [contradiction, entailment, neutral], transformers 2.x's GLUE MNLI order); None: the config's names
    label_order: list[str] | None = None

    @field_validator("name", "tokenizer")
    @classmethod
    def _local_checkpoint(cls, value):
        return model_path(value)

    @field_validator("label_order")
    @classmethod
    def _distinct(cls, value):
        if value is not None:
            value = [str(v).lower() for v in value]
            if len(set(value)) != len(value):
                raise ValueError(f"label_order names each label once, got {value}")
        return value


class SyntheticSpec(_Strict):
    n_train: int = 4000  # training pairs
    n_eval: int = 600  # pairs in each of matched / mismatched
    hans_per_cell: int = 100  # HANS-style pairs per (heuristic, entailed / non-entailed)
    seed: int = 0  # the corpus seed (trial seeds don't change the data)
    length_profile: Literal["short", "mnli"] = "short"  # mnli: mean ~40 tokens, tail to 128
    # training pairs replaced by high-overlap non-entailed ones (labelled neutral), which counter the HANS
    # shortcut; the corpus has none otherwise (synthetic.counter_example_rows says where they are)
    counter_examples: int = Field(0, ge=0)


# a dataset load_dataset opens: a hub id as given, a local folder made absolute
DatasetName = Annotated[str | None, AfterValidator(lambda v: absolute_path(v) if v and looks_like_path(v) else v)]
# label names, compared lower-case everywhere (model configs name them in any case)
LabelNames = Annotated[list[str] | None, AfterValidator(lambda v: None if v is None else [str(x).lower() for x in v])]


class ColumnsSpec(_Strict):
    # the source's column names: one text column (single sentences) or two (pairs: premise, hypothesis)
    text: list[str] = ["premise", "hypothesis"]
    label: str = "label"  # label names (or ids into data.labels)

    @model_validator(mode="before")
    @classmethod
    def _pair_names(cls, value):  # specs before tis_ray 0.22 named the pair's columns premise / hypothesis
        if isinstance(value, dict) and ({"premise", "hypothesis"} & set(value)):
            if "text" in value:
                raise ValueError("give text: [..], or premise / hypothesis, not both")
            value = {**value, "text": [value.get("premise", "premise"), value.get("hypothesis", "hypothesis")]}
            value.pop("premise", None)
            value.pop("hypothesis", None)
        return value

    @field_validator("text")
    @classmethod
    def _one_or_two(cls, value):
        if len(value) not in (1, 2) or len(set(value)) != len(value):
            raise ValueError(f"text names one column (single sentences) or two different ones (pairs), got {value}")
        return value


MNLI_SOURCES = ("synthetic", "mnli_hub", "glue_dir", "files")  # sources with the built-in MNLI evaluation sets
BUILTIN_EVAL_SETS = ("mnli_m", "mnli_mm", "hans")


class DataSpec(_Strict):
    # synthetic: the built-in NLI corpus; mnli_hub: nyu-mll/glue mnli; glue_dir: a GLUE MNLI folder; files: local
    # CSV / TSV / JSONL files; hub: any dataset `datasets.load_dataset` opens (a hub id or a local folder)
    source: Literal["synthetic", "mnli_hub", "glue_dir", "files", "hub"] = "synthetic"
    dataset: DatasetName = None  # source hub: the dataset (stanfordnlp/sst2, nyu-mll/glue, or a local folder)
    config: str | None = None  # its configuration name (glue's sst2, mnli), if it has several
    revision: str | None = None  # hub branch, tag or commit; None: the default branch (the commit read is recorded)
    train_split: str = "train"  # source hub: the training split
    glue_dir: LocalPath = None  # folder with train.tsv, dev_matched.tsv, dev_mismatched.tsv
    train_file: LocalPath = None  # source: files (CSV, TSV or JSONL)
    matched_file: LocalPath = None  # an MNLI-style files source's mnli_m (and mnli_mm) sets
    mismatched_file: LocalPath = None
    columns: ColumnsSpec = ColumnsSpec()
    # the task's label names in id order (ids in a file's label column refer to it); None: the dataset's own
    # (a hub ClassLabel's names; MNLI's for the MNLI sources; a file's label values, sorted)
    labels: LabelNames = None
    # the NLI-only statistics (lexical-overlap composition of the training pairs, as HANS probes it); None: a pair
    # task whose labels include entailment
    nli: bool | None = None
    hans: str | None = "synthetic"  # synthetic, download (public HANS file, cached), a local path, or null
    synthetic: SyntheticSpec = SyntheticSpec()
    max_seq_length: int = 128  # longer pairs are truncated
    max_train_examples: int | None = None  # quick-test cap on the training set, before sampling
    max_eval_examples: int | None = None  # quick-test cap on each evaluation set
    # the training pool: a seeded subsample of the training set that every subset is drawn from (datamodels
    # regress on inclusion in it, so a pool of thousands keeps hundreds of trials enough); None: all of it
    pool_size: int | None = Field(None, ge=2)
    pool_seed: int = 0

    @field_validator("hans")
    @classmethod
    def _hans_path(cls, value):
        return absolute_path(value) if value not in (None, "synthetic", "download") else value

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value):
        if value is None:
            return value
        if len(value) < 2 or len(set(value)) != len(value):
            raise ValueError(f"labels names two or more different labels, got {value}")
        return value

    @model_validator(mode="after")
    def _source_fields(self):
        if self.source == "glue_dir" and not self.glue_dir:
            raise ValueError("data.glue_dir is required with data.source: glue_dir")
        if self.source == "files" and not self.train_file:
            raise ValueError("data.train_file is required with data.source: files")
        if self.source == "hub" and not self.dataset:
            raise ValueError("data.dataset is required with data.source: hub (a dataset id, e.g. stanfordnlp/sst2)")
        if self.source != "hub" and (self.dataset or self.config or self.revision):
            raise ValueError(f"data.dataset / config / revision go with data.source: hub, not {self.source}")
        if self.source in ("synthetic", "mnli_hub", "glue_dir") and self.columns != ColumnsSpec():
            raise ValueError(f"data.columns is for files and hub sources; {self.source} has its own")
        return self

    def mnli_like(self) -> bool:
        """True for a source with the built-in MNLI evaluation sets (mnli_m, mnli_mm, hans)."""
        return self.source in ("synthetic", "mnli_hub", "glue_dir") or (
            self.source == "files" and self.matched_file is not None)

    def local_paths(self) -> dict[str, str]:
        """Return {field name: path} for every local file or folder this data spec reads."""
        paths = {k: getattr(self, k) for k in ("glue_dir", "train_file", "matched_file", "mismatched_file")}
        if self.hans not in (None, "synthetic", "download"):
            paths["hans"] = self.hans
        if self.dataset and looks_like_path(self.dataset):
            paths["dataset"] = self.dataset
        return {k: v for k, v in paths.items() if v}


class EvalSetSpec(_Strict):
    """A named evaluation set: where it comes from, how its labels map to the task's, and its subgroups."""

    name: str  # its metrics: <name>/acc, <name>/<group value>
    # from a dataset `load_dataset` opens (default: the training data's, with split) or from a local file
    dataset: DatasetName = None
    config: str | None = None
    revision: str | None = None
    split: str | None = None
    file: LocalPath = None  # a CSV / TSV / JSONL file
    columns: ColumnsSpec | None = None  # None: the training data's
    labels: LabelNames = None  # the set's label names in id order; None: its dataset's, else the task's
    # a set label -> the task label (or labels) a prediction must have to be right; unnamed labels map to themselves
    label_map: dict[str, str | list[str]] = {}
    # columns whose values (a list: value combinations) get their own accuracy; 'label' is the gold label
    groups: list[str | list[str]] = []
    compare: list[str] | None = None  # metrics the paired comparisons test (globs, e.g. ood/*); None: <name>/acc
    equivalence_margin: float | None = Field(None, gt=0)  # TOST margin in points; None: report.equivalence_margin

    @field_validator("name")
    @classmethod
    def _metric_prefix(cls, value):
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", value) or value in ("train", "subset", "hans_subcase"):
            raise ValueError(f"{value!r}: an eval set's name is a metric prefix (a letter, then letters, digits, "
                             "'_', '.', '-'), not train or subset")
        return value

    @field_validator("label_map")
    @classmethod
    def _lower(cls, value):
        return {str(k).lower(): (v.lower() if isinstance(v, str) else [str(t).lower() for t in v])
                for k, v in value.items()}

    def local_paths(self) -> dict[str, str]:
        """Return {field name: path} for the local file or folder this set reads (none for a hub dataset)."""
        paths = {"file": self.file, "dataset": self.dataset if self.dataset and looks_like_path(self.dataset) else None}
        return {k: v for k, v in paths.items() if v}

    @model_validator(mode="after")
    def _one_source(self):
        if self.file and (self.dataset or self.split or self.config or self.revision):
            raise ValueError(f"eval set {self.name}: a file, or a dataset split, not both")
        if not self.file and not self.split:
            raise ValueError(f"eval set {self.name}: give file, or split (of dataset, default the training data's)")
        return self


class TrainSpec(_Strict):
    epochs: int = 3  # the original project trained 3 epochs
    learning_rate: float = 2e-5
    batch_size: int = 32  # per device
    eval_batch_size: int = 256
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # auto: bf16/fp16 on CUDA, fp32 on CPU
    group_by_length: bool = True  # batches of similar-length pairs (dynamic padding), in random batch order
    save_model: bool = False  # keep the fine-tuned weights in the trial's output
    # epochs: every trial trains `epochs` passes over its own subset (the original's); steps: every trial takes
    # the same optimizer steps, `steps` or by default the full training set's steps for `epochs` epochs, cycling
    # its subset, evaluated `epochs` times (equal compute per budget; the learning-rate schedule spans the steps)
    schedule: Literal["epochs", "steps"] = "epochs"
    steps: int | None = Field(None, ge=1)  # schedule steps only

    @model_validator(mode="after")
    def _steps_need_the_steps_schedule(self):
        if self.steps is not None and self.schedule != "steps":
            raise ValueError(f"steps: {self.steps} needs schedule: steps (with epochs, each trial's steps follow "
                             "from its subset)")
        return self

    def fixed_steps(self, n_full: int) -> int:
        """Return the optimizer steps of a `steps` schedule for a training set of `n_full` examples."""
        return self.steps or -(-n_full // self.batch_size) * self.epochs

    def steps_per_evaluation(self, n_full: int) -> int:
        """Return the optimizer steps between two evaluations of a `steps` schedule (its 'epochs')."""
        return -(-self.fixed_steps(n_full) // max(self.epochs, 1))

    def examples_per_epoch(self, n_subset: int, n_full: int) -> int:
        """Return the training examples an epoch goes through: the subset's `n_subset` under `epochs`; under
        `steps`, the steps between two evaluations times the batch, whatever the subset's size."""
        if self.schedule == "steps":
            return self.steps_per_evaluation(n_full) * self.batch_size
        return n_subset


class ClusteringSpec(_Strict):
    backend: Literal["auto", "cuml", "sklearn"] = "auto"  # auto: cuML when importable with a GPU
    embedding_model: str | None = None  # fine-tuned checkpoint to embed with; None: fine-tune one first
    embeddings_path: LocalPath = None  # precomputed embeddings (a `tis-ray embed` folder) to cluster
    embedding_epochs: int | None = None  # epochs of that preparation model (default: train.epochs)
    pooling: Literal["cls", "mean", "pooler"] = "cls"  # [CLS] last hidden state, as the original
    # precision of the embedding forward pass; fp32 keeps the original's vectors (bf16 is faster on a GPU but
    # moves each vector by ~1% of its length, ~0.24 at [CLS] norms near 28: more than DBSCAN's eps 0.2)
    embedding_precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    labels_path: LocalPath = None  # reuse saved cluster labels (a cluster output folder)
    normalize: Literal["none", "l2"] = "none"  # l2: unit-length [CLS] vectors first (cosine geometry)
    # KMeans: refine = cuML's KMeans on a GPU, else MiniBatchKMeans + Lloyd passes (near Lloyd's inertia);
    # minibatch = scikit-learn's MiniBatchKMeans alone (the original's), lloyd = full KMeans
    kmeans_method: Literal["refine", "minibatch", "lloyd"] = "refine"
    kmeans_batch_size: int = 8192  # MiniBatchKMeans batch (the original's --batch_size 2048)
    seed: int | None = None  # KMeans random_state; None: the grid's first seed (the original used 0)
    # KMeans fitted again under these seeds: the adjusted Rand index of each with the one used, in meta.json
    stability_seeds: list[int] = Field(default_factory=list)

    @field_validator("embedding_model")
    @classmethod
    def _model(cls, value):
        return model_path(value)


EXTRA_AXIS_SECTIONS = ("model.", "train.")  # what a trial may vary; everything else is prepared once per sweep


class DynamicsSpec(_Strict):
    # Training dynamics, recorded once by the reference run (the full-data fine-tune) for dynamics samplers
    epochs: int | None = None  # epochs of the reference run (default: clustering.embedding_epochs, train.epochs)
    seed: int | None = None  # its seed (default: the grid's first seed)
    # several reference runs, one per seed: scores are their mean, the report gives their rank stability
    seeds: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_seed_field(self):
        if self.seed is not None and self.seeds:
            raise ValueError("give seed or seeds, not both")
        if self.path and self.seeds:
            raise ValueError("seeds runs reference fine-tunes, path uses dynamics recorded earlier: not both")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds repeats a seed: {self.seeds}")
        return self
    path: LocalPath = None  # recorded earlier (a `tis-ray dynamics` folder) instead of recording now


def _fraction(value: float) -> float:
    if not 0 < value <= 1:
        raise ValueError(f"data_pct must be in (0, 1] (0.1 means 10%), got {value}")
    return value


def _positive(value: int) -> int:
    if value < 1:
        raise ValueError(f"n_examples must be >= 1, got {value}")
    return value


class GridSpec(_Strict):
    seeds: list[int] = [42]  # or {range: N} for seeds 0..N-1, {range: [A, B]} for A..B-1 (datamodel sweeps)
    data_pct: list[Annotated[float, AfterValidator(_fraction)]] | None = None  # each in (0, 1]; 0.1 = 10%
    n_examples: list[Annotated[int, AfterValidator(_positive)]] | None = None  # subset sizes (or data_pct)
    samplers: list[dict[str, Any]] = [{"type": "random"}]  # {type: kmeans, mode: centroid, ...}
    # how a data_pct becomes a size: round (nearest) or floor (int(N * pct), the original's subsampling_mnli.py
    # and get_cluster_indices_by_pct)
    budget_rounding: Literal["round", "floor"] = "round"
    extra: dict[str, list[Any]] = {}  # further axes over spec fields: {"model.freeze_base": [false, true]}

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_range(cls, value):
        if isinstance(value, dict):
            if set(value) != {"range"}:
                raise ValueError(f"a list, or {{range: N}} / {{range: [start, stop]}}, got {value}")
            bounds = value["range"]
            bounds = [0, bounds] if isinstance(bounds, int) else bounds
            if not (isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, int) for b in bounds)
                    and bounds[0] < bounds[1]):
                raise ValueError(f"range takes N or [start, stop] with start < stop, got {value['range']}")
            return list(range(*bounds))
        return value

    @field_validator("samplers")
    @classmethod
    def _samplers(cls, values):
        entries = []
        for entry in values:
            if "type" not in entry:
                raise ValueError("each sampler needs a 'type'")
            if reads_file(entry) and isinstance(entry.get("path"), str):
                entry = {**entry, "path": absolute_path(entry["path"])}
            try:
                entries.append(normalized_entry(entry))  # defaults left out: equal samplers, one trial, one label
            except SpecError as exc:
                raise ValueError(str(exc)) from None
        seen = set()
        for entry in entries:
            if sampler_key(entry) in seen:
                raise ValueError(f"sampler {sampler_label(entry)} is in the grid twice (with its defaults written "
                                 "out or not, it is the same sampler)")
            seen.add(sampler_key(entry))
        return entries

    @field_validator("extra")
    @classmethod
    def _extra_axes(cls, values):
        for field in values:
            if not field.startswith(EXTRA_AXIS_SECTIONS):
                raise ValueError(f"{field!r}: extra axes vary model.* and train.* fields; an axis over data, "
                                 "clustering or resources would need its own preparation: run one sweep per value")
        return {field: [model_path(v) if field in ("model.name", "model.tokenizer") and isinstance(v, str) else v
                        for v in axis] for field, axis in values.items()}

    @model_validator(mode="after")
    def _budgets(self):
        if self.data_pct and self.n_examples:
            raise ValueError("grid.data_pct and grid.n_examples exclude each other: give one")
        has_budget = bool(self.data_pct or self.n_examples)
        for entry in self.samplers:
            sampler = sampler_from_entry(entry)
            if sampler.budget_free and has_budget:
                raise ValueError(f"sampler {entry['type']} mode num_clusters picks its own subset size and "
                                 "excludes grid.data_pct / grid.n_examples: put it in a spec without them")
            if not sampler.budget_free and not has_budget:
                raise ValueError(f"sampler {entry['type']} needs grid.data_pct or grid.n_examples")
        return self


class ExpectedRow(_Strict):
    """One cell of the original's tables: a grid setting, budget, seed and epoch count with its accuracies."""

    sampler: dict[str, Any] = {"type": "random"}  # the grid's sampler entry (defaults need not be written out)
    overrides: dict[str, Any] = {}  # the setting's extra-axis values other than train.epochs
    data_pct: float | None = None  # the budget, as in the grid (none: a budget-free sampler)
    n_examples: int | None = None
    seed: int | None = None  # the original's seed; None: compared with our mean over seeds
    epochs: int | None = None  # after this many epochs (None: the spec's train.epochs)
    mnli_m: float | None = None  # MNLI matched accuracy in %, as the original printed it
    mnli_mm: float | None = None  # MNLI mismatched accuracy in %
    flag: str | None = None  # what the original said of the row ("with bug") or a flaw of its table

    @field_validator("sampler")
    @classmethod
    def _known(cls, value):
        sampler_from_entry(value)
        return value


class ExpectedSpec(_Strict):
    # The original's published numbers for this spec's settings: the report sets ours beside them
    source: str | None = None  # where they come from (repository, commit, table)
    notes: list[str] = []  # what a reader should know about those tables
    rows: list[ExpectedRow] = []


class WandbSpec(_Strict):
    project: str | None = None  # W&B project (default: the sweep's name)
    entity: str | None = None  # W&B team or user (default: yours)
    mode: Literal["online", "offline", "disabled"] = "online"  # offline: runs written locally (wandb sync later)


class TrackingSpec(_Strict):
    # Experiment trackers fed by Ray Tune callbacks, one run per trial (pip install 'tis-ray[tracking]')
    mlflow: str | None = None  # an MLflow tracking URI: file:///abs/path/mlruns, http://host:5000, databricks
    mlflow_experiment: str | None = None  # default: the sweep's name
    wandb: WandbSpec | None = None  # {project, entity, mode}


class ReportSpec(_Strict):
    # the sampler every other one is compared with, paired by seed: a sampler type when the grid has one of
    # that type (random), or a setting such as random(nested=True) when it has several
    baseline: str = "random"
    # TOST margins, in accuracy points: a difference shown to lie inside +-margin reads "equivalent"
    equivalence_margin: float = Field(1.0, gt=0)  # MNLI
    hans_equivalence_margin: float = Field(5.0, gt=0)  # HANS, whose seed spread is 10-50x MNLI's
    # Holm's family: every comparison of the report's table, or one sampler's budgets per metric
    holm: Literal["table", "sampler"] = "table"


class ResourcesSpec(_Strict):
    cpu: float = 1  # CPUs per trial (torch uses this many threads)
    gpu: float = 0  # GPUs per trial; fractions let small trials share a GPU
    max_concurrent: int | None = None  # None: as many as the cluster fits
    max_failures: int = 1  # Tune retries of a trial whose worker died
    # a custom resource the preparation task asks for, e.g. on_demand (cluster.yaml's on-demand GPU nodes), so a
    # spot interruption cannot stop the reference fine-tune; None: any node with a GPU
    preparation_resource: str | None = None


# short parameter names in trial folder names
FOLDER_ABBREVIATIONS = {"n_clusters": "k", "min_samples": "ms", "clusters_to_take": "take", "cluster_order": "order",
                        "drop_hardest": "drop"}


class GridPoint(_Strict):
    """One trial of a sweep: its seed, its budget, its sampler entry and its extra-axis overrides.

    The budget is one of: data_pct (a fraction of the training set), n_examples (a size), or none when the
    sampler picks its own size (num_clusters). An explicit subset (sampler `indices`) records its size as
    n_examples. Every consumer (Tune's param space, the trial, the dry run, the export, the report) reads
    a trial's parameters through this type, so each default exists here only.
    """

    seed: int = 42
    data_pct: Annotated[float, AfterValidator(_fraction)] | None = None
    n_examples: Annotated[int, AfterValidator(_positive)] | None = None
    sampler: dict[str, Any] = {"type": "random"}
    overrides: dict[str, Any] = {}  # {dotted spec field: value} of the extra axes

    @model_validator(mode="after")
    def _check(self):
        if self.data_pct is not None and self.n_examples is not None:
            raise ValueError("a grid point has data_pct or n_examples, not both")
        self.sampler = normalized_entry(self.sampler)
        return self

    @property
    def budget_kind(self) -> str:
        """Return how the subset size is given: data_pct, n_examples, indices (an explicit subset) or sampler."""
        if self.sampler["type"] == "indices":
            return "indices"
        return "data_pct" if self.data_pct is not None else "n_examples" if self.n_examples is not None else "sampler"

    def subset_size(self, n_train: int, rounding: str = "round") -> int | None:
        """Return the subset size on a training set of `n_train` examples (None: the sampler decides).

        rounding: 'round' (nearest) or 'floor' (int(n_train * data_pct), the original's sizes).
        """
        if self.data_pct is not None:
            exact = self.data_pct * n_train
            # the floor of the float product, as the original's int(len(ds) * pct) (0.29 * 100 gives 28)
            return max(1, int(exact) if rounding == "floor" else round(exact))
        if self.n_examples is not None and self.n_examples > n_train:
            raise SamplingError(f"n_examples={self.n_examples} but the training set has {n_train} examples")
        return self.n_examples

    def budget_label(self) -> str:
        """Return the budget as text: 'data_pct=0.1', 'n_examples=512' or '-'."""
        if self.data_pct is not None:
            return f"data_pct={self.data_pct}"
        return f"n_examples={self.n_examples}" if self.n_examples is not None else "-"

    def label(self) -> str:
        """Return the setting's display name: the sampler with its parameters, then any overrides."""
        return sampler_label(self.sampler) + "".join(f" {k}={v if isinstance(v, str) else json.dumps(v)}"
                                                     for k, v in sorted(self.overrides.items()))

    def folder_name(self) -> str:
        """Return a readable folder name of the point, e.g. 's42-pct0.1-kmeans_k=8' (a trial's folder adds its id)."""
        budget = (f"pct{self.data_pct:g}" if self.data_pct is not None else
                  f"n{self.n_examples}" if self.n_examples is not None else "own")
        params = "".join(f"_{FOLDER_ABBREVIATIONS.get(k, k)}={v}" for k, v in sorted(self.sampler.items())
                         if k not in ("type", "path"))
        overrides = "".join(f"-{k.rsplit('.', 1)[-1]}={v}" for k, v in sorted(self.overrides.items()))
        # only characters every filesystem and object store keeps as they are (Ray Tune rewrites others)
        return re.sub(r"[^A-Za-z0-9._=-]", "_", f"s{self.seed}-{budget}-{self.sampler['type']}{params}{overrides}")[:120]

    def key(self) -> str:
        """Return the point as stable text, for matching trials to grid points."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    def row_fields(self) -> dict[str, Any]:
        """Return the flat fields every result row of this point carries."""
        return {"setting": self.label(), "sampler": self.sampler["type"],
                "sampler_params": json.dumps({k: v for k, v in self.sampler.items() if k != "type"}, sort_keys=True),
                "overrides": json.dumps(self.overrides, sort_keys=True), "seed": self.seed,
                "budget_kind": self.budget_kind, "data_pct": self.data_pct, "n_examples": self.n_examples}


class SweepSpec(_Strict):
    name: str = "sweep"
    # a local folder (made absolute where the spec is loaded), a shared NFS path, or a URI that pyarrow reaches
    # (s3://bucket/runs, gs://..., ?endpoint_override=host:port&scheme=http); run directory: storage_path/name
    storage_path: str = Field("runs", validate_default=True)
    model: ModelSpec = ModelSpec()
    data: DataSpec = DataSpec()
    train: TrainSpec = TrainSpec()
    # named evaluation sets: mnli_m, mnli_mm, hans (the MNLI sources' own), or {name, split | file, label_map,
    # groups, ...} entries (EvalSetSpec); None: the MNLI sources' three
    eval_sets: list[Literal["mnli_m", "mnli_mm", "hans"] | EvalSetSpec] | None = None
    clustering: ClusteringSpec = ClusteringSpec()
    dynamics: DynamicsSpec = DynamicsSpec()
    grid: GridSpec = GridSpec(data_pct=[1.0])
    resources: ResourcesSpec = ResourcesSpec()
    expected: ExpectedSpec = ExpectedSpec()
    report: ReportSpec = ReportSpec()
    tracking: TrackingSpec = TrackingSpec()

    # written by tis-ray once the data is read: the revision of the model and of every data source (a hub commit,
    # a local file's sha256); a --resume refuses data whose revision changed since
    provenance: dict[str, str] = {}

    @model_validator(mode="after")
    def _eval_sets(self):
        if self.eval_sets is None:
            if not self.data.mnli_like():
                raise ValueError(f"data.source {self.data.source} needs eval_sets: a list of {{name, split}} or "
                                 "{name, file} entries")
            self.eval_sets = list(BUILTIN_EVAL_SETS)
        names = [e if isinstance(e, str) else e.name for e in self.eval_sets]
        builtin = [n for n in self.eval_sets if isinstance(n, str)]
        if builtin and not self.data.mnli_like():
            raise ValueError(f"{builtin[0]} is an evaluation set of the MNLI sources; data.source "
                             f"{self.data.source} names its sets as entries {{name, split | file, ...}}")
        if len(set(names)) != len(names):
            raise ValueError(f"eval set names repeat: {names}")
        for entry in self.eval_sets:
            if isinstance(entry, EvalSetSpec) and entry.split and not entry.dataset and self.data.source != "hub":
                raise ValueError(f"eval set {entry.name}: split without dataset reads the training data's dataset, "
                                 f"and data.source {self.data.source} has none")
        return self

    @model_validator(mode="after")
    def _label_order_names_the_labels(self):
        order = self.model.label_order
        labels = list(MNLI_LABELS) if self.data.mnli_like() else self.data.labels
        if order is not None and labels is not None and sorted(order) != sorted(labels):
            raise ValueError(f"model.label_order names each of {', '.join(labels)} once")
        return self

    @model_validator(mode="after")
    def _baseline_in_grid(self):
        baseline = self.report.baseline
        settings = [sampler_label(entry) for entry in self.grid.samplers]
        types = [entry["type"] for entry in self.grid.samplers]
        # the default (random) may be absent: a grid without random has no comparisons, and says so
        if baseline != ReportSpec().baseline and baseline not in (*settings, *types):
            raise ValueError(f"report.baseline {baseline!r} is not a sampler of the grid ({', '.join(settings)})"
                             f"{did_you_mean(baseline, [*types, *settings])}")
        return self

    def eval_set_names(self) -> list[str]:
        """Return the names of the evaluation sets, in the spec's order."""
        return [e if isinstance(e, str) else e.name for e in self.eval_sets]

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
            raise ValueError(f"{value!r}: a sweep name is one folder name (letters, digits, '.', '_', '-')")
        return value

    @field_validator("storage_path")
    @classmethod
    def _storage(cls, value):
        return value if is_uri(value) else absolute_path(value)

    def budgets(self) -> list[dict[str, Any]]:
        """Return the budget axis: [{'data_pct': x}, ...], [{'n_examples': k}, ...] or [{}]."""
        if self.grid.data_pct:
            return [{"data_pct": v} for v in self.grid.data_pct]
        if self.grid.n_examples:
            return [{"n_examples": v} for v in self.grid.n_examples]
        return [{}]

    def extra_overrides(self) -> list[dict[str, Any]]:
        """Return one {dotted field: value} dict per combination of the extra axes."""
        keys = list(self.grid.extra)
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*self.grid.extra.values())]

    def grid_points(self) -> list[GridPoint]:
        """Return every trial of the grid: seeds x budgets x samplers x extra axes, in that order."""
        return [GridPoint(seed=seed, **budget, sampler=sampler, overrides=overrides)
                for seed, budget, sampler, overrides in itertools.product(
                    self.grid.seeds, self.budgets(), self.grid.samplers, self.extra_overrides())]

    def n_trials(self) -> int:
        """Return the number of trials in the grid."""
        return len(self.grid.seeds) * len(self.budgets()) * len(self.grid.samplers) * len(self.extra_overrides())

    def for_point(self, point: GridPoint) -> SweepSpec:
        """Return the spec one trial runs with: this spec with the point's extra-axis overrides applied."""
        if not point.overrides:
            return self
        raw = self.model_dump(mode="json")
        for key, value in point.overrides.items():
            set_dotted(raw, key, value)
        return build_spec(raw, source="trial overrides")

    def one_point(self, point: GridPoint) -> SweepSpec:
        """Return this spec with a grid of exactly `point` (what `tis-ray train` runs)."""
        raw = self.model_dump(mode="json")
        raw["grid"] = {"seeds": [point.seed], "samplers": [point.sampler],
                       "data_pct": None if point.data_pct is None else [point.data_pct],
                       "n_examples": None if point.n_examples is None else [point.n_examples],
                       "extra": {k: [v] for k, v in point.overrides.items()}}
        return build_spec(raw, source="tis-ray train")

    def trial_models(self) -> set[tuple[str, str | None]]:
        """Return the (model name, tokenizer) of every trial: one pair, unless an extra axis varies them."""
        return {(s.model.name, s.model.tokenizer) for s in map(self.for_point, self.grid_points())}

    def reference_epochs(self) -> int:
        """Return the epochs of the reference run (the one full-data fine-tune that embeddings and dynamics use)."""
        return self.dynamics.epochs or self.clustering.embedding_epochs or self.train.epochs

    def needs_dynamics(self) -> bool:
        """True when a sampler of the grid ranks examples by the reference run's training dynamics."""
        return any(sampler_from_entry(entry).needs_dynamics for entry in self.grid.samplers)

    @model_validator(mode="after")
    def _dynamics_epochs(self):
        for entry in self.grid.samplers:
            epoch = entry.get("epoch") if entry["type"] == "el2n" else None
            if isinstance(epoch, int) and not self.dynamics.path and epoch > self.reference_epochs():
                raise ValueError(f"sampler el2n: epoch {epoch} does not exist: the reference run records "
                                 f"{self.reference_epochs()} epochs (dynamics.epochs)")
        return self

    @model_validator(mode="after")
    def _centroids_need_distances(self):
        labels = self.clustering.labels_path
        if not labels or not Path(labels).exists():
            return self  # no given labels (or a missing path, which check_local_inputs reports)
        for entry in self.grid.samplers:
            sampler = sampler_from_entry(entry)
            for need in sorted(getattr(sampler, "mode_needs", set()) & {"distances", "centroid_nearest"}):
                if not (Path(labels) / f"{need}.npy").is_file():
                    raise ValueError(f"sampler {entry['type']} mode {entry['mode']} needs {need}.npy beside the "
                                     f"cluster labels, and {labels} has none: give a folder written by tis-ray "
                                     "cluster, or use mode proportional")
        return self

    def needs_embeddings(self) -> bool:
        """True when a sampler of the grid reads the training set's embeddings itself."""
        return any(sampler_from_entry(entry).needs_embeddings for entry in self.grid.samplers)

    def clusterings(self) -> dict[str, dict[str, Any]]:
        """Return {sampler key: {'algorithm': ..., **params}} for each cluster sampler of the grid."""
        needs = {}
        for entry in self.grid.samplers:
            params = sampler_from_entry(entry).clustering_params()
            if params is not None:
                # only settings that differ from the defaults enter the key: earlier runs keep their folders
                defaults = ClusteringSpec()
                if self.clustering.normalize != defaults.normalize:
                    params["normalize"] = self.clustering.normalize
                if params["algorithm"] == "kmeans":
                    if self.clustering.kmeans_method != defaults.kmeans_method:
                        params["method"] = self.clustering.kmeans_method
                    if self.clustering.kmeans_batch_size != defaults.kmeans_batch_size:
                        params["batch_size"] = self.clustering.kmeans_batch_size
                    if self.clustering.seed is not None:
                        params["seed"] = self.clustering.seed
                needs[sampler_key(entry)] = params
        return needs


def spec_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of a spec file (what `tis-ray schema` prints for YAML editors), each sampler entry
    typed by its `type`."""
    from pydantic import TypeAdapter

    from tis_ray.samplers import SamplerEntry

    schema = SweepSpec.model_json_schema()
    samplers = TypeAdapter(list[SamplerEntry]).json_schema(ref_template="#/$defs/{model}")
    schema["$defs"].update(samplers.pop("$defs"))
    grid = schema["$defs"]["GridSpec"]["properties"]["samplers"]
    schema["$defs"]["GridSpec"]["properties"]["samplers"] = {**samplers, "default": grid.get("default"),
                                                             "title": "Samplers"}
    schema["title"] = "tis_ray sweep spec"
    return schema


SPEC_FILE = "spec.resolved.yaml"  # the spec exactly as a run ran, in its run directory


def dump_spec(spec: SweepSpec) -> str:
    """Return the spec as the YAML text a run directory records."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)


def run_location(spec: SweepSpec) -> str:
    """Return the run directory of a spec, storage_path/name: an absolute local path or a URI."""
    return join(spec.storage_path, spec.name)


def load_run_spec(run_dir: str | Path) -> SweepSpec | None:
    """Return the validated spec a run directory (local path or URI) was started with, or None without one.

    A spec written by an older tis_ray whose fields no longer validate raises a SpecError that says so.
    """
    storage = Storage(run_dir)
    if not storage.exists(SPEC_FILE):
        return None
    source = join(storage.location, SPEC_FILE)
    try:
        raw = yaml.safe_load(storage.read_text(SPEC_FILE))
        return build_spec(raw if isinstance(raw, dict) else {}, source=source)
    except SpecError as exc:
        raise SpecError(f"{exc} (this run's spec was written by another tis_ray version and no longer "
                        "validates)") from None


def set_dotted(data: dict, dotted: str, value: Any) -> None:
    """Set data['a']['b'] = value for dotted 'a.b', creating nested dicts as needed."""
    *parents, last = dotted.split(".")
    for key in parents:
        data = data.setdefault(key, {})
    data[last] = value


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Parse ['train.epochs=1', ...] into {'train.epochs': 1}; values are read as YAML scalars."""
    parsed = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpecError(f"override {item!r} is not of the form field.path=value")
        parsed[key.strip()] = yaml.safe_load(value)
    return parsed


def build_spec(raw: dict, source: str = "spec") -> SweepSpec:
    """Return the validated SweepSpec for a raw dict; errors become one-line SpecErrors."""
    try:
        spec = SweepSpec.model_validate(raw)
        for override in spec.extra_overrides():
            dumped = spec.model_dump()
            for key, value in override.items():
                set_dotted(dumped, key, value)
            SweepSpec.model_validate(dumped)
        return spec
    except ValidationError as exc:
        raise spec_error(exc, source) from None
    except TisRayError as exc:  # raised inside a validator that does not wrap it (get_sampler)
        raise SpecError(f"{source}: {exc}") from None


def spec_error(exc: ValidationError, source: str, root: type[BaseModel] | None = None) -> SpecError:
    """Return the one-line SpecError for pydantic's first error: 'source: field.path: message'; an unknown field
    names the closest known one of its section (`root`: the model validated, default SweepSpec)."""
    err = _first_relevant(exc.errors())
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))  # no union branch tags
    field = ".".join(str(p) for p in loc) or "spec"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        known = list(getattr(_model_at(root or SweepSpec, loc[:-1]), "model_fields", {}))
        message = "unknown field" + (did_you_mean(loc[-1], known) or (f"; known: {', '.join(known)}"
                                                                              if known else ""))
    return SpecError(f"{source}: {field}: {message}")


def _first_relevant(errors: list[dict]) -> dict:
    """Return the first error that concerns the input's own kind: of a union (a set name or an {name, ...} entry),
    not the branch the input was never meant for (a mapping checked against the names, or a name against the
    entry's fields)."""
    def other_branch(err):
        return err["type"] == "model_type" or (err["type"] == "literal_error" and isinstance(err["input"], dict))

    return next((err for err in errors if not other_branch(err)), errors[0])


def _model_at(root: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """Return the pydantic model of the section at pydantic location `loc` under `root` (None: not a model)."""
    model = root
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) and model is not None else None
        if field is not None:  # list indices and a union member's class name (eval_sets.0.EvalSetSpec) stay put
            model = _model_in(field.annotation)
    return model


def _model_in(annotation) -> type[BaseModel] | None:
    """Return the first pydantic model inside a field's annotation (X, X | None, list[Literal | X], ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def grid_point(source: str = "grid point", **fields) -> GridPoint:
    """Return the validated GridPoint of `fields`; mistakes become one-line SpecErrors."""
    try:
        return GridPoint(**fields)
    except ValidationError as exc:
        raise spec_error(exc, source, root=GridPoint) from None
    except TisRayError as exc:
        raise SpecError(f"{source}: {exc}") from None


def load_spec(path: str | Path, overrides: list[str] | None = None) -> SweepSpec:
    """Return the validated spec in YAML file `path` with dotted `overrides` applied.

    Relative paths written in the file resolve against the file's folder; those of `overrides` (given on the
    command line) and the default storage_path (runs) against the current folder.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"spec file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SpecError(yaml_error(path, exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read it ({exc})") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec is a YAML mapping of fields")
    raw.setdefault("storage_path", absolute_path(SweepSpec.model_fields["storage_path"].default))
    for key, value in parse_overrides(overrides or []).items():
        set_dotted(raw, key, cwd_path(key, value))
    folder = SPEC_FOLDER.set(str(path.resolve().parent))
    try:
        return build_spec(raw, source=str(path))
    finally:
        SPEC_FOLDER.reset(folder)


def yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    """Return a YAML syntax error as one line, 'spec.yaml:3:5: problem (context at 2:1)' (1-based line:column)."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return f"{path}: not valid YAML ({str(exc).splitlines()[0]})"
    context, at = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    where = f" ({context} at {at.line + 1}:{at.column + 1})" if context and at else f" ({context})" if context else ""
    return f"{path}:{mark.line + 1}:{mark.column + 1}: {exc.problem}{where}"


# the spec fields that hold one local path (or a name that may be one): how each is made absolute
PATH_FIELDS = {
    "storage_path": lambda v: v if is_uri(v) else absolute_path(v),
    **{f: model_path for f in ("model.name", "model.tokenizer", "clustering.embedding_model")},
    "data.dataset": lambda v: absolute_path(v) if looks_like_path(v) else v,
    "data.hans": lambda v: v if v in ("synthetic", "download") else absolute_path(v),
    **{f: absolute_path for f in ("data.glue_dir", "data.train_file", "data.matched_file", "data.mismatched_file",
                                  "clustering.embeddings_path", "clustering.labels_path", "dynamics.path")},
}


def cwd_path(key: str, value: Any) -> Any:
    """Return an override's value with a relative path made absolute against the current folder (an override
    is typed where the user stands, not where the spec file lies); other values as they are."""
    if key in PATH_FIELDS and isinstance(value, str) and value:
        return PATH_FIELDS[key](value)
    return value


def local_inputs(spec: SweepSpec) -> list[tuple[str, str, str]]:
    """Return (field, absolute path, kind) for every local file or folder the spec reads, kind 'file or folder'
    for data, 'checkpoint or folder' for models and clustering inputs, and '' for the inputs whose own checks
    say what they must hold (dynamics.path, a sampler's file); hub ids are not listed."""
    found = [(f"data.{field}", value, "file or folder") for field, value in spec.data.local_paths().items()]
    for entry in (e for e in spec.eval_sets if not isinstance(e, str)):
        found += [(f"eval_sets ({entry.name}).{field}", value, "file or folder")
                  for field, value in entry.local_paths().items()]
    for field, value in (("model.name", spec.model.name), ("model.tokenizer", spec.model.tokenizer),
                         ("clustering.embedding_model", spec.clustering.embedding_model),
                         ("clustering.labels_path", spec.clustering.labels_path),
                         ("clustering.embeddings_path", spec.clustering.embeddings_path)):
        if value and looks_like_path(value):
            found.append((field, value, "checkpoint or folder"))
    if spec.dynamics.path:
        found.append(("dynamics.path", spec.dynamics.path, ""))
    found += [(f"grid.samplers ({sampler_label(e)}).path", e["path"], "") for e in spec.grid.samplers
              if reads_file(e) and isinstance(e.get("path"), str)]
    return found


def describe_paths(spec: SweepSpec, spec_file: str | Path) -> str:
    """Return the local paths a spec reads and writes, resolved, as the dry run prints them."""
    folder = Path(spec_file).resolve().parent
    lines = [f"paths (relative ones in the spec resolve against {folder}, --set ones against the current folder):",
             f"  run directory: {run_location(spec)}"]
    lines += [f"  {field}: {value}" for field, value, _ in local_inputs(spec)]
    return "\n".join(lines)


def check_local_inputs(spec: SweepSpec) -> None:
    """Raise SpecError naming the field when a local data file, model or labels path does not exist."""
    for field, value, kind in local_inputs(spec):
        if kind and not Path(value).exists():
            raise SpecError(f"{field}: no such {kind}: {value}")
