"""Models and tokenizers by name: a hub id, a local checkpoint folder, or `tiny-albert` (offline demo)."""

from __future__ import annotations

import logging

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    AlbertConfig,
    AlbertForSequenceClassification,
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from tis_ray.data import MNLI_LABELS, synthetic
from tis_ray.errors import TisRayError

log = logging.getLogger(__name__)

TINY_ALBERT = "tiny-albert"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Small enough to train on 2 CPU cores in seconds, deep enough to learn the synthetic task.
TINY_ALBERT_CONFIG = dict(embedding_size=64, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=256, max_position_embeddings=512)


def tiny_albert_tokenizer() -> PreTrainedTokenizerFast:
    """Return a word-level tokenizer over the synthetic corpus's vocabulary, with ALBERT's pair template."""
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + tuple(synthetic.vocabulary()))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    fast.name_or_path = TINY_ALBERT
    return fast


def load_tokenizer(name: str, tokenizer_name: str | None = None) -> PreTrainedTokenizerFast:
    """Return the tokenizer for model `name` (or `tokenizer_name` when given)."""
    name = tokenizer_name or name
    if name == TINY_ALBERT:
        return tiny_albert_tokenizer()
    try:
        return AutoTokenizer.from_pretrained(name)
    except OSError as exc:
        raise TisRayError(f"cannot load tokenizer {name!r}: {str(exc).splitlines()[0]} "
                          "(a local checkpoint without tokenizer files needs model.tokenizer)") from None


def _has_mnli_label_names(config) -> bool:
    names = {str(v).lower() for v in (getattr(config, "id2label", None) or {}).values()}
    return set(MNLI_LABELS) <= names


def load_model(name: str, seed: int = 0, vocab_size: int | None = None) -> PreTrainedModel:
    """Return a 3-way NLI sequence classifier.

    `tiny-albert` is built from scratch (initialized from `seed`). A checkpoint whose id2label already
    names the MNLI labels keeps its own label order (published MNLI checkpoints disagree on it); any other
    gets a fresh 3-label head with labels in MNLI order.
    """
    id2label = dict(enumerate(MNLI_LABELS))
    label2id = {v: k for k, v in id2label.items()}
    torch.manual_seed(seed)
    if name == TINY_ALBERT:
        config = AlbertConfig(vocab_size=vocab_size or len(SPECIAL_TOKENS) + len(synthetic.vocabulary()),
                              num_labels=3, id2label=id2label, label2id=label2id, pad_token_id=0,
                              **TINY_ALBERT_CONFIG)
        return AlbertForSequenceClassification(config)
    try:
        config = AutoConfig.from_pretrained(name)
    except OSError as exc:
        raise TisRayError(f"cannot load model {name!r}: {str(exc).splitlines()[0]}") from None
    if not (config.num_labels == 3 and _has_mnli_label_names(config)):
        config.num_labels, config.id2label, config.label2id = 3, id2label, label2id
    return AutoModelForSequenceClassification.from_pretrained(name, config=config)


def model_label_ids(model: PreTrainedModel) -> list[int]:
    """Return, for dataset label ids 0..2 (MNLI order), the model's output id of the same label name."""
    by_name = {str(v).lower(): int(k) for k, v in model.config.id2label.items()}
    missing = [n for n in MNLI_LABELS if n not in by_name]
    if missing:
        raise TisRayError(f"the model's id2label {model.config.id2label} names no {missing[0]!r} label: "
                          "tis_ray maps predictions to labels by name, never by position")
    return [by_name[n] for n in MNLI_LABELS]


def freeze_base(model: PreTrainedModel) -> None:
    """Freeze the encoder so that only the classification head trains."""
    for param in model.base_model.parameters():
        param.requires_grad = False


def count_parameters(model: PreTrainedModel) -> dict[str, int]:
    """Return {'params_total': ..., 'params_trainable': ...}."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params_total": total, "params_trainable": trainable}
