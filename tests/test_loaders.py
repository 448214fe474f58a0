import json

import pytest

from tis_ray.data.loaders import load_data, load_glue_mnli, load_hans_file, load_nli_file
from tis_ray.errors import DataError
from tis_ray.spec import DataSpec

GLUE_HEADER = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
               "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label")


def glue_row(i, premise, hypothesis, label):
    return f"{i}\t1\t{i}e\tfiction\t( x )\t( y )\t(S x)\t(S y)\t{premise}\t{hypothesis}\t{label}\t{label}"


@pytest.fixture
def glue_dir(tmp_path):
    rows = [glue_row(0, 'He said "hi', "He spoke.", "entailment"),  # a stray quote, kept as is
            glue_row(1, "The cat sat.", "The cat ran.", "contradiction"),
            glue_row(2, "It rained.", "It rained all day.", "neutral")]
    for name in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"):
        (tmp_path / name).write_text("\n".join([GLUE_HEADER, *rows]) + "\n")
    return tmp_path


def test_glue_dir_keeps_quotes_and_maps_label_names(glue_dir):
    splits = load_glue_mnli(glue_dir)
    train = splits["train"]
    assert train["premise"][0] == 'He said "hi'
    assert train["label"] == [0, 2, 1]
    assert train["idx"] == [0, 1, 2]
    assert set(splits) == {"train", "mnli_m", "mnli_mm"}


def test_malformed_tsv_line_names_file_and_line(glue_dir):
    path = glue_dir / "train.tsv"
    path.write_text(path.read_text() + "3\tonly\tthree\n")
    with pytest.raises(DataError, match=r"train\.tsv:5: expected 12 fields as in the header, found 3"):
        load_glue_mnli(glue_dir)


def test_unknown_label_names_file_line_and_label_set(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("premise,hypothesis,label\na,b,entailment\nc,d,maybe\n")
    with pytest.raises(DataError, match=r"d\.csv:3: unknown label 'maybe'; expected one of entailment, neutral"):
        load_nli_file(path)


def test_empty_file_and_header_only(tmp_path):
    empty, header = tmp_path / "e.tsv", tmp_path / "h.tsv"
    empty.write_text("")
    header.write_text("premise\thypothesis\tlabel\n")
    with pytest.raises(DataError, match=r"e\.tsv: empty file"):
        load_nli_file(empty)
    with pytest.raises(DataError, match=r"h\.tsv: no data rows"):
        load_nli_file(header)


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("premise\tlabel\na\t0\n")
    with pytest.raises(DataError, match=r"d\.tsv:2: missing column 'hypothesis'"):
        load_nli_file(path)


def test_csv_with_custom_columns_and_label_ids(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('s1,s2,y\n"a, with comma",b,2\nc,d,0\n')
    ds = load_nli_file(path, premise="s1", hypothesis="s2", label="y")
    assert ds["premise"] == ["a, with comma", "c"]
    assert ds["label"] == [2, 0]


def test_jsonl_and_bad_json_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"premise": "a", "hypothesis": "b", "label": "neutral"}) + "\n")
    assert load_nli_file(path)["label"] == [1]
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(DataError, match=r"d\.jsonl:2: not valid JSON"):
        load_nli_file(path)


def test_hans_tsv(tmp_path):
    header = ("gold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\t"
              "sentence1\tsentence2\tpairID\theuristic\tsubcase\ttemplate")
    rows = ["non-entailment\t(x)\t(y)\t(S)\t(S)\tThe doctor saw the lawyer .\tThe lawyer saw the doctor .\tex0\t"
            "lexical_overlap\tln_subject/object_swap\ttemp1",
            "entailment\t(x)\t(y)\t(S)\t(S)\tThe doctor and the actor ran .\tThe actor ran .\tex1\tsubsequence\t"
            "se_conjunction\ttemp5"]
    path = tmp_path / "heuristics_evaluation_set.txt"
    path.write_text("\n".join([header, *rows]) + "\n")
    hans = load_hans_file(path)
    assert hans["label"] == [1, 0]
    assert hans["pair_id"] == ["ex0", "ex1"]
    assert hans["heuristic"] == ["lexical_overlap", "subsequence"]
    assert hans["subcase"][0] == "ln_subject/object_swap"


def test_files_source_with_synthetic_hans_and_caps(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps({"premise": f"p{i}", "hypothesis": "h", "label": i % 3}) + "\n"
                            for i in range(10)))
    spec = DataSpec(source="files", train_file=str(path), matched_file=str(path), max_train_examples=4,
                    max_eval_examples=6, synthetic={"hans_per_cell": 5})
    data = load_data(spec)
    assert len(data.train) == 4
    assert set(data.eval_sets) == {"mnli_m", "hans"}
    assert len(data.eval_sets["hans"]) == 6
    assert set(data.eval_sets["hans"]["heuristic"]) == {"lexical_overlap", "subsequence", "constituent"}


def test_a_folder_load_dataset_opens_is_a_hub_source_with_class_label_names_remapped_by_name(tmp_path):
    from datasets import ClassLabel, Dataset, Features, Value

    from tis_ray.data.loaders import hub_revision, read_hub_source, sha256_of_files
    from tis_ray.spec import ColumnsSpec

    folder = tmp_path / "reviews"
    folder.mkdir()
    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"]),
                         "genre": Value("string")})
    Dataset.from_dict({"text": ["bad", "good", "meh", "fine"], "label": [0, 1, -1, 1],
                       "genre": ["a", "b", "a", "b"]}, features=features).to_parquet(str(folder / "train.parquet"))
    columns = ColumnsSpec(text=["text"])
    data, labels = read_hub_source(str(folder), None, "train", None, columns, None, keep=("genre",))
    revision = hub_revision(str(folder), None, None)
    assert labels == ("neg", "pos") and data["label"] == [0, 1, 1]  # the unlabelled row (-1) is skipped
    assert data["text"] == ["bad", "good", "fine"] and data["genre"] == ["a", "b", "b"]
    assert revision == sha256_of_files(folder)
    swapped, labels = read_hub_source(str(folder), None, "train", None, columns, ("pos", "neg"))
    assert labels == ("pos", "neg") and swapped["label"] == [1, 0, 0]  # ids follow the names given
    (folder / "train.parquet").write_bytes((folder / "train.parquet").read_bytes() + b"\n")
    assert hub_revision(str(folder), None, None) != revision


def test_files_of_a_task_of_ones_own_take_their_label_names_sorted(tmp_path):
    from tis_ray.data.loaders import load_data
    from tis_ray.spec import EvalSetSpec

    train, ood = tmp_path / "train.csv", tmp_path / "ood.csv"
    train.write_text("review,stars\n" + "".join(f"r{i},{'high' if i % 3 else 'low'}\n" for i in range(9)))
    ood.write_text("review,stars,site\n" + "".join(f"o{i},{'5' if i % 2 else '1'},s{i % 2}\n" for i in range(4)))
    spec = DataSpec(source="files", train_file=str(train), columns={"text": ["review"], "label": "stars"})
    entry = EvalSetSpec(name="ood", file=str(ood), label_map={"1": "low", "5": "high"}, groups=["site"])
    data = load_data(spec, [entry])
    assert data.task.labels == ("high", "low") and data.task.text_columns == ("text",) and not data.task.nli
    assert data.train["text"][:3] == ["r0", "r1", "r2"] and data.train["label"][:3] == [1, 0, 0]
    definition = data.definitions["ood"]
    assert definition.labels == ("1", "5") and definition.label_map == {"1": ("low",), "5": ("high",)}
    assert data.eval_sets["ood"]["site"] == ["s0", "s1", "s0", "s1"]
    assert set(data.revisions) == {"train", "ood"} and data.revisions["train"].startswith("sha256:")
