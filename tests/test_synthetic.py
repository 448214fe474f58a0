import numpy as np

from tis_ray.data import synthetic
from tis_ray.models import tiny_albert_tokenizer


def words(text):
    return set(text.split())


def test_same_seed_same_corpus_and_other_seed_differs():
    a, b = synthetic.generate_nli(200, seed=3), synthetic.generate_nli(200, seed=3)
    assert a == b
    assert synthetic.generate_nli(200, seed=4)["premise"] != a["premise"]


def test_training_split_carries_the_overlap_bias():
    data = synthetic.generate_nli(600, seed=0)
    for p, h, label in zip(data["premise"], data["hypothesis"], data["label"], strict=True):
        if label == synthetic.ENTAILMENT:
            assert words(h) <= words(p), (p, h)  # entailed: only premise words
        else:
            assert words(h) - words(p), (p, h)  # neutral / contradiction: new words
    assert sorted(set(data["label"])) == [0, 1, 2]


def test_hans_set_has_full_overlap_and_every_cell():
    hans = synthetic.generate_hans(10, seed=1)
    assert len(hans["premise"]) == 3 * 2 * 10
    for p, h in zip(hans["premise"], hans["hypothesis"], strict=True):
        assert words(h) <= words(p)
    cells = {(heur, label) for heur, label in zip(hans["heuristic"], hans["label"], strict=True)}
    assert cells == {(h, lab) for h in synthetic.HANS_HEURISTICS for lab in (0, 1)}
    assert len(set(hans["pair_id"])) == 60


def test_mismatched_domain_uses_vocabulary_never_seen_in_training():
    train = synthetic.generate_nli(500, seed=0, domain="people")
    mm = synthetic.generate_nli(500, seed=0, domain="animals")
    train_words = set(" ".join(train["premise"] + train["hypothesis"]).split())
    assert set(synthetic.ANIMALS.nouns) & train_words == set()
    assert set(synthetic.ANIMALS.nouns) & set(" ".join(mm["premise"]).split())


def test_tokenizer_covers_every_generated_word_and_mnli_profile_has_mnli_lengths():
    tok = tiny_albert_tokenizer()
    data = synthetic.generate_nli(500, seed=0, length_profile="mnli")
    enc = tok(data["premise"], data["hypothesis"])
    ids = np.concatenate([np.asarray(x) for x in enc["input_ids"]])
    assert tok.unk_token_id not in ids
    lengths = np.array([len(x) for x in enc["input_ids"]])
    assert 30 <= lengths.mean() <= 50  # MNLI: mean ~40 tokens
    assert lengths.max() >= 90  # ... with a long tail


def test_pair_encoding_has_segment_ids():
    enc = tiny_albert_tokenizer()("the doctor slept", "the doctor ran", return_token_type_ids=True)
    # [CLS] the doctor slept [SEP] | the doctor ran [SEP]
    assert enc["token_type_ids"] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
