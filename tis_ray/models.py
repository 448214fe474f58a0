"""Models and tokenizers by name: a hub id, a local checkpoint folder, or `tiny-albert` (offline demo)."""

from __future__ import annotations

import logging
from pathlib import Path

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
from tis_ray.io import umask_modes

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


def _has_trained_head(config, n_labels: int) -> bool:
    """True for a checkpoint that already has a trained sequence-classification head of `n_labels` outputs."""
    heads = [a for a in (getattr(config, "architectures", None) or []) if a.endswith("ForSequenceClassification")]
    return bool(heads) and config.num_labels == n_labels


def load_model(name: str, seed: int = 0, vocab_size: int | None = None, label_order: list[str] | None = None,
               labels: tuple[str, ...] | list[str] = MNLI_LABELS) -> PreTrainedModel:
    """Return a sequence classifier for the task's `labels` (default MNLI's) whose id2label names every output.

    `tiny-albert` is built from scratch (initialized from `seed`). A checkpoint with a head of as many outputs
    keeps its own label order: the names in its config, or `label_order` when the config says only LABEL_0,
    LABEL_1, ... (a checkpoint with other names and no `label_order` is refused: its order would be a guess). A
    base model without such a head gets a fresh head, in `label_order` or the task's order.
    """
    labels = tuple(str(label).lower() for label in labels)
    order = list(label_order or labels)
    id2label = dict(enumerate(order))
    label2id = {v: k for k, v in id2label.items()}
    torch.manual_seed(seed)
    if name == TINY_ALBERT:
        config = AlbertConfig(vocab_size=vocab_size or len(SPECIAL_TOKENS) + len(synthetic.vocabulary()),
                              num_labels=len(order), id2label=id2label, label2id=label2id, pad_token_id=0,
                              **TINY_ALBERT_CONFIG)
        return AlbertForSequenceClassification(config)
    try:
        config = AutoConfig.from_pretrained(name)
    except OSError as exc:
        raise TisRayError(f"cannot load model {name!r}: {str(exc).splitlines()[0]}") from None
    names = _label_names(config)
    trained = _has_trained_head(config, len(labels))
    named = trained and set(labels) <= set(names)
    if trained and not named and label_order is None:
        raise TisRayError(f"model.name: {name} has a {len(labels)}-way classification head whose labels are named "
                          f"{', '.join(names)}: which output is {labels[0]} is unknown; give model.label_order, "
                          f"e.g. [{', '.join(sorted(labels))}] in its output order (see its model card)")
    if named and label_order is not None and names != order:
        raise TisRayError(f"model.label_order {order} contradicts {name}'s own id2label ({', '.join(names)}): "
                          "drop model.label_order")
    if not named:
        config.num_labels, config.id2label, config.label2id = len(order), id2label, label2id
    # a head of another size (a 3-way checkpoint on a 2-label task) is replaced by a fresh one
    return AutoModelForSequenceClassification.from_pretrained(name, config=config, ignore_mismatched_sizes=True)


def save_checkpoint(model: PreTrainedModel, tokenizer, folder: str | Path) -> Path:
    """Save `model` and `tokenizer` into `folder` as a checkpoint load_model reads, every file with the user's
    umask (transformers writes the weights 0600: colleagues could not read a shared run directory); returns it."""
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return umask_modes(folder)


def model_revision(name: str) -> str:
    """Return what a model's weights are at: the hub commit it was read from ('name@<commit>'), a local
    checkpoint's sha256 (tis_ray.data.loaders.sha256_of_files), or the built-in tiny-albert's definition."""
    if name == TINY_ALBERT:
        return "tiny-albert (built in, no weights)"
    if Path(name).exists():
        from tis_ray.data.loaders import sha256_of_files

        return sha256_of_files(name)
    try:
        config = AutoConfig.from_pretrained(name)
    except OSError as exc:
        raise TisRayError(f"cannot load model {name!r}: {str(exc).splitlines()[0]}") from None
    return f"{name}@{getattr(config, '_commit_hash', None) or 'unknown commit'}"


def load_encoder_model(name: str) -> PreTrainedModel:
    """Return a checkpoint for embedding (its encoder is what counts; its head's label names are not read)."""
    if name == TINY_ALBERT:
        return load_model(name)
    try:
        return AutoModelForSequenceClassification.from_pretrained(name)
    except OSError as exc:
        raise TisRayError(f"cannot load model {name!r}: {str(exc).splitlines()[0]}") from None


def model_label_ids(model: PreTrainedModel, labels: tuple[str, ...] | list[str] = MNLI_LABELS) -> list[int]:
    """Return, for dataset label ids 0, 1, ... (the task's `labels`, default MNLI's), the model's output id of the
    same label name."""
    by_name = {str(v).lower(): int(k) for k, v in model.config.id2label.items()}
    missing = [n for n in labels if n not in by_name]
    if missing:
        raise TisRayError(f"the model's id2label {model.config.id2label} names no {missing[0]!r} label: "
                          "tis_ray maps predictions to labels by name, never by position")
    return [by_name[n] for n in labels]


def freeze_base(model: PreTrainedModel) -> None:
    """Freeze the encoder so that only the classification head trains."""
    for param in model.base_model.parameters():
        param.requires_grad = False


def count_parameters(model: PreTrainedModel) -> dict[str, int]:
    """Return {'params_total': ..., 'params_trainable': ...}."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"params_total": total, "params_trainable": trainable}
