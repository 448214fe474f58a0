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
