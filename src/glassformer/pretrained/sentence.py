"""Sentence embeddings from an encoder checkpoint (sentence-transformers layout).

e(text) = normalize( Σ_t m_t h_t / Σ_t m_t ), where h_t is the encoder's last hidden state at
token t, m_t is 1 for a real token and 0 for padding, and normalize divides by the L2 norm.
Texts longer than the checkpoint's ``max_seq_length`` are truncated to it (the [CLS] and [SEP]
tokens included), which is what sentence-transformers does.

A sentence-transformers directory says how to pool in ``1_Pooling/config.json``, whether to
normalise in ``modules.json`` (a ``Normalize`` module) and where to truncate in
``sentence_bert_config.json``; a plain BERT directory gets mean pooling, normalisation and the
model's own position limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

from glassformer.errors import WrongModelError
from glassformer.models.encoder import TransformerEncoderModel
from glassformer.nn import packed
from glassformer.pretrained.loading import CheckpointError

POOLING_MODES = ("mean", "cls", "max")


@dataclass(frozen=True)
class SentenceConfig:
    """How token states become one sentence vector: pooling mode, L2 normalisation, truncation length."""

    max_seq_length: int = 512
    pooling: str = "mean"
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {self.pooling!r}")
        if self.max_seq_length < 2:
            raise ValueError(f"max_seq_length must leave room for [CLS] and [SEP], got {self.max_seq_length}")

    @classmethod
    def read(cls, directory: str | Path, model_max_positions: int) -> "SentenceConfig":
        """The sentence-transformers settings in ``directory``, or the defaults for a plain encoder."""
        directory = Path(directory)
        from glassformer.pretrained.hf_tokenizer import model_max_length

        # sentence-transformers before 6 wrote max_seq_length here; 6 keeps it as the tokenizer's model_max_length.
        max_len = model_max_length(directory, model_max_positions)
        bert_config = directory / "sentence_bert_config.json"
        if bert_config.is_file():
            max_len = int(json.loads(bert_config.read_text()).get("max_seq_length") or max_len)
        pooling, normalize = "mean", True
        modules = directory / "modules.json"
        if modules.is_file():
            entries = json.loads(modules.read_text())
            types = [entry.get("type", "") for entry in entries]
            normalize = any(t.endswith(".Normalize") for t in types)
            for entry in entries:
                if entry.get("type", "").endswith(".Pooling"):
                    pooling = _pooling_mode(directory / entry.get("path", "1_Pooling") / "config.json")
        return cls(max_seq_length=min(max_len, model_max_positions), pooling=pooling, normalize=normalize)


def _pooling_mode(path: Path) -> str:
    config = json.loads(path.read_text()) if path.is_file() else {"pooling_mode_mean_tokens": True}
    if isinstance(config.get("pooling_mode"), str):  # sentence-transformers 6 names the mode in one key
        mode = config["pooling_mode"]
        if mode not in POOLING_MODES:
            raise CheckpointError(f"{path}: glassformer supports mean, cls or max pooling, got {mode!r}")
        return mode
    chosen = [mode for mode, key in (("mean", "pooling_mode_mean_tokens"), ("cls", "pooling_mode_cls_token"),
                                     ("max", "pooling_mode_max_tokens")) if config.get(key)]
    others = [key for key, value in config.items() if key.startswith("pooling_mode") and value
              and key not in ("pooling_mode_mean_tokens", "pooling_mode_cls_token", "pooling_mode_max_tokens")]
    if len(chosen) != 1 or others:
        raise CheckpointError(f"{path}: glassformer supports exactly one of mean, cls or max pooling, "
                              f"got {chosen + others or 'none'}")
    return chosen[0]


def pool(hidden: Tensor, attention_mask: Tensor, mode: str = "mean") -> Tensor:
    """One vector per sequence from ``hidden`` ``(B, T, D)``, looking only at tokens where ``attention_mask`` is 1."""
    if mode == "cls":
        return hidden[:, 0]
    keep = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    if mode == "max":
        return hidden.masked_fill(keep == 0, float("-inf")).amax(dim=1)
    return (hidden * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1e-9)  # (B, D)


class SentenceEncoder:
    """Sentence embedding model: an encoder, its tokenizer, then pooling (mean over real tokens) and L2 normalisation."""

    def __init__(self, model: nn.Module, tokenizer, config: SentenceConfig) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config

    @classmethod
    def from_pretrained(cls, path_or_name: str, *, precision: str = "fp32") -> "SentenceEncoder":
        """Load an encoder checkpoint (e.g. ``"minilm"``) with its tokenizer and sentence settings.

        `precision` (``auto``, ``fp32``, ``bf16`` or ``int8``): see :mod:`glassformer.precision`.
        """
        from glassformer.pretrained.api import from_pretrained

        loaded = from_pretrained(path_or_name, precision=precision)
        if loaded.sentence is None or loaded.tokenizer is None:
            raise WrongModelError(f"{path_or_name!r} is a {loaded.family} checkpoint; sentence embeddings need "
                                  "an encoder (BERT family) with its tokenizer files")
        return cls(loaded.model, loaded.tokenizer, loaded.sentence)

    def tokenize(self, texts: Sequence[str], special_tokens: str = "raise") -> tuple[Tensor, Tensor]:
        """Token ids and attention mask ``(B, T)`` for ``texts``, truncated to ``max_seq_length`` and padded.

        `special_tokens` (``raise``, ``allow`` or ``text``) says what text that spells a special token becomes.
        """
        from glassformer.tokenizers import special_token_policy
        from glassformer.tokenizers.base import POLICY_HINT

        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.config.max_seq_length,
                               return_tensors="pt", **special_token_policy(special_tokens, hint=POLICY_HINT))
        return batch["input_ids"], batch["attention_mask"]

    @torch.inference_mode()
    def embed_ids(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Sentence vectors ``(B, D)`` for a batch that is already tokenized.

        Mean and CLS pooling compute the real tokens only (packed, :mod:`glassformer.nn.packed`) when the
        model allows it (nothing hooked, a right-padded mask): the same vectors to float rounding.
        """
        if (self.config.pooling in ("mean", "cls") and isinstance(self.model, TransformerEncoderModel)
                and self.model.can_pack(attention_mask)):
            cls = self.config.pooling == "cls"  # then the last layer computes the [CLS] rows alone
            hidden, packing = self.model.forward_packed(input_ids, attention_mask, first_only=cls)
            vectors = hidden.float() if cls else packing.mean(hidden.float())  # (B, D)
        else:
            hidden = self.model(input_ids, attention_mask=attention_mask).last_hidden_state.float()
            vectors = pool(hidden, attention_mask, self.config.pooling)
        if self.config.normalize:
            vectors = torch.nn.functional.normalize(vectors, p=2.0, dim=-1)
        return vectors

    def warm_up(self, max_rows: int = packed.WARM_ROWS) -> int:
        """Embed one batch of every packed size up to `max_rows` tokens (:func:`glassformer.nn.packed.warm_up`):
        the per-size matmul kernels are then built before a server's first request. Returns the sizes run."""
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            if (self.config.pooling not in ("mean", "cls") or not isinstance(self.model, TransformerEncoderModel)
                    or not self.model.can_pack(torch.ones(1, 1, dtype=torch.long, device=device))):
                return 0
            return packed.warm_up(self.embed_ids, max_rows, self.config.max_seq_length,
                                  (self.model.config.pad_token_id + 1) % self.model.config.vocab_size, device)

    def encode(self, texts: Sequence[str] | str, batch_size: int = 32, *, special_tokens: str = "raise") -> Tensor:
        """Sentence vectors ``(N, D)`` in the order of ``texts``.

        Texts are sorted by length before batching so each batch pads to a similar length;
        padding costs time, never accuracy, since pooling ignores it.
        """
        if isinstance(texts, str):
            texts = [texts]
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[Tensor | None] = [None] * len(texts)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            ids, mask = self.tokenize([texts[i] for i in chunk], special_tokens)
            for i, vector in zip(chunk, self.embed_ids(ids, mask)):
                out[i] = vector
        if not out:
            return torch.empty(0, self.model_dim)
        return torch.stack(out)  # type: ignore[arg-type]

    @property
    def model_dim(self) -> int:
        """Width of the sentence vectors."""
        return int(self.model.config.d_model)
