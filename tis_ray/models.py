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


def _label_names(config) -> list[str]:
    id2label = getattr(config, "id2label", None) or {}
    return [str(id2label.get(i, id2label.get(str(i), ""))).lower() for i in range(len(id2label))]


def _is_nli_classifier(config) -> bool:
    """True for a checkpoint that already has a trained 3-way sequence-classification head."""
    heads = [a for a in (getattr(config, "architectures", None) or []) if a.endswith("ForSequenceClassification")]
    return bool(heads) and config.num_labels == 3


def load_model(name: str, seed: int = 0, vocab_size: int | None = None,
               label_order: list[str] | None = None) -> PreTrainedModel:
    """Return a 3-way NLI sequence classifier whose id2label names every output.

    `tiny-albert` is built from scratch (initialized from `seed`). A checkpoint with a 3-way head keeps its
    own label order: the names in its config, or `label_order` when the config says only LABEL_0..2 (a
    checkpoint with generic names and no `label_order` is refused: its order would be a guess). A base model
    without such a head gets a fresh 3-label head, in `label_order` or MNLI order.
    """
    order = list(label_order or MNLI_LABELS)
    id2label = dict(enumerate(order))
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
    names = _label_names(config)
    named = _is_nli_classifier(config) and set(MNLI_LABELS) <= set(names)
    if _is_nli_classifier(config) and not named and label_order is None:
        raise TisRayError(f"model.name: {name} has a 3-way classification head whose labels are named "
                          f"{', '.join(names)}: which output is entailment is unknown; give "
                          "model.label_order, e.g. [contradiction, entailment, neutral] (see its model card)")
    if named and label_order is not None and names != order:
        raise TisRayError(f"model.label_order {order} contradicts {name}'s own id2label ({', '.join(names)}): "
                          "drop model.label_order")
    if not named:
        config.num_labels, config.id2label, config.label2id = 3, id2label, label2id
    return AutoModelForSequenceClassification.from_pretrained(name, config=config)


def load_encoder_model(name: str) -> PreTrainedModel:
    """Return a checkpoint for embedding (its encoder is what counts; its head's label names are not read)."""
    if name == TINY_ALBERT:
        return load_model(name)
    try:
        return AutoModelForSequenceClassification.from_pretrained(name)
    except OSError as exc:
        raise TisRayError(f"cannot load model {name!r}: {str(exc).splitlines()[0]}") from None


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
