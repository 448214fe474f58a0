"""Property-based: generated specs and malformed data files end in a valid result or one error line, never a
traceback. 1,000 specs through `tis-ray sweep --dry-run`, 1,000 files through each data loader path."""

import contextlib
import io
import json
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tis_ray.cli import main
from tis_ray.data.loaders import load_nli_file
from tis_ray.errors import TisRayError

N_EXAMPLES = 1000
SETTINGS = settings(max_examples=N_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**9), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=12))
words = st.sampled_from(["random", "stratified", "kmeans", "dbscan", "indices", "kmean", "proportional", "centroid",
                         "round_robin", "num_clusters", "exclude", "include", "cluster", "cosine", "euclidean",
                         "tiny-albert", "./no/model", "synthetic", "files", "glue_dir", "mnli_hub", "auto", "bf16",
                         "fp16", "l2", "none"])
values = st.one_of(scalars, words, st.lists(st.one_of(scalars, words), max_size=3))


def section(keys):
    return st.dictionaries(st.sampled_from(keys), values, max_size=4)


sampler = st.dictionaries(st.sampled_from(["type", "mode", "n_clusters", "clusters_to_take", "eps", "min_samples",
                                           "metric", "noise", "nested", "path", "bogus"]),
                          st.one_of(words, st.integers(-2, 600), st.floats(-1, 2), st.booleans()), max_size=4)
grid = st.fixed_dictionaries({}, optional={
    "seeds": st.one_of(st.lists(st.integers(-2, 10**6), max_size=3), scalars),
    "data_pct": st.one_of(st.lists(st.floats(-0.5, 1.5), max_size=3), scalars),
    "n_examples": st.one_of(st.lists(st.integers(-2, 5000), max_size=2), scalars),
    "samplers": st.one_of(st.lists(sampler, max_size=3), scalars),
    "extra": st.one_of(st.dictionaries(st.sampled_from(["model.freeze_base", "train.epochs", "data.max_seq_length",
                                                        "model.name", "nonsense"]),
                                       st.lists(values, max_size=2), max_size=2), scalars)})
specs = st.fixed_dictionaries({}, optional={
    "name": st.one_of(st.text(max_size=10), scalars),
    "storage_path": st.one_of(st.text(max_size=10), scalars),
    "model": st.one_of(section(["name", "tokenizer", "freeze_base", "label_order", "size"]), scalars),
    "data": st.one_of(section(["source", "glue_dir", "train_file", "matched_file", "hans", "max_seq_length",
                               "synthetic", "columns"]), scalars),
    "train": st.one_of(section(["epochs", "learning_rate", "batch_size", "precision", "group_by_length", "lr"]),
                       scalars),
    "clustering": st.one_of(section(["backend", "normalize", "embedding_model", "labels_path", "pooling"]), scalars),
    "grid": st.one_of(grid, scalars),
    "resources": st.one_of(section(["cpu", "gpu", "max_concurrent", "max_failures"]), scalars),
    "eval_sets": st.one_of(st.lists(words, max_size=3), scalars),
    "unknown": scalars})


def one_line_or_ok(argv) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    lines = [line for line in err.getvalue().splitlines() if line.startswith("tis-ray: error:")]
    assert code in (0, 2), (code, err.getvalue())
    assert "Traceback" not in err.getvalue()
    if code == 2:
        assert len(lines) == 1, err.getvalue()


@SETTINGS
@given(raw=specs)
def test_generated_specs_validate_or_fail_in_one_line(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True))
        one_line_or_ok(["sweep", str(path), "--dry-run"])
        assert not (Path(tmp) / "runs").exists()  # a dry run writes nothing


cells = st.one_of(st.text(max_size=10), st.sampled_from(["entailment", "neutral", "contradiction", "0", "2", "-",
                                                         "3", '"', "a\tb", "x,y"]))
headers = st.one_of(st.just(["premise", "hypothesis", "label"]), st.lists(st.text(max_size=8), max_size=4))
tables = st.tuples(headers, st.lists(st.lists(cells, max_size=4), max_size=5))


def delimited(header, rows, sep) -> str:
    return "\n".join(sep.join(line) for line in [header, *rows])


@st.composite
def files(draw):
    kind = draw(st.sampled_from([".tsv", ".csv", ".jsonl"]))
    if kind == ".jsonl":
        lines = draw(st.lists(st.one_of(
            st.dictionaries(st.sampled_from(["premise", "hypothesis", "label", "x"]), st.one_of(cells, scalars)),
            st.text(max_size=15), scalars), max_size=5))
        text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    else:
        header, rows = draw(tables)
        text = delimited(header, rows, "\t" if kind == ".tsv" else ",")
    raw = draw(st.one_of(st.just(text.encode()), st.binary(max_size=40)))
    return kind, raw


@SETTINGS
@given(file=files())
def test_malformed_data_files_load_or_fail_in_one_line(file):
    kind, raw = file
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"train{kind}"
        path.write_bytes(raw)
        try:
            data = load_nli_file(path)
        except TisRayError as exc:
            assert "\n" not in str(exc) and "\r" not in str(exc), str(exc)
            return
        assert set(data.column_names) == {"premise", "hypothesis", "label", "idx"}
        assert all(label in (0, 1, 2) for label in data["label"])
