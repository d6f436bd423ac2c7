"""The tiny BERT the transformers tests train: built from a config, nothing downloaded."""

from __future__ import annotations

import torch
import transformers


class Dataset(torch.utils.data.Dataset):
    """`n` rows of 6 random token ids (seeded), labelled by the parity of their sum."""

    def __init__(self, n, seed):
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 32, (n, 6), generator=generator)
        self.labels = (self.ids.sum(1) % 2).tolist()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def tiny_bert():
    """A one-layer BERT classifier with hidden size 8, seeded."""
    transformers.set_seed(0)
    config = transformers.BertConfig(
        vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=16, max_position_embeddings=8, num_labels=2,
    )  # fmt: skip
    return transformers.BertForSequenceClassification(config)
