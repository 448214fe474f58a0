"""An ALBERT-base-shaped model with random weights, saved locally: benchmark speed depends on the shape
and the sequence lengths, not on the weights, and nothing may be downloaded here."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AlbertConfig, AlbertForSequenceClassification

from tis_ray.data import MNLI_LABELS
from tis_ray.models import tiny_albert_tokenizer

ALBERT_BASE = dict(embedding_size=128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                   intermediate_size=3072, max_position_embeddings=512)


def albert_base_random(folder: str | Path) -> str:
    """Save an ALBERT-base-shaped classifier (random init) with the synthetic tokenizer; returns its path."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        tokenizer = tiny_albert_tokenizer()
        torch.manual_seed(0)
        config = AlbertConfig(vocab_size=len(tokenizer), num_labels=3, id2label=dict(enumerate(MNLI_LABELS)),
                              label2id={n: i for i, n in enumerate(MNLI_LABELS)}, **ALBERT_BASE)
        AlbertForSequenceClassification(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return str(folder)
