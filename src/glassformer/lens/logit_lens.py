"""The logit lens: what the model would predict if it stopped after each layer.

For each layer l of a decoder (l = 0 is the embedding output, token plus position; l = k is the
residual stream after block k), the final LayerNorm and the unembedding are applied to the
residual stream as if it were the last layer's: ``logits_l = W_U · LayerNorm_f(resid_l)``. The
last entry is therefore the model's own logits. Works for the decoder LM, GPT-2 checkpoints (the
same class) and the translation model's decoder (post-norm stacks have no final LayerNorm: each
layer's output is already normalised, so only the unembedding is applied).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from glassformer.errors import UsageError, WrongModelError
from glassformer.lens.run import resid_names, run_with_cache


def _parts(model: nn.Module) -> tuple[str, nn.Module | None, nn.Linear]:
    """The decoder stack's name, its final LayerNorm (None for post-norm) and the unembedding of a model."""
    from glassformer.models.decoder_lm import DecoderLM
    from glassformer.models.seq2seq import Seq2SeqTransformer

    if isinstance(model, DecoderLM):
        return "blocks", model.blocks.norm, model.lm_head
    if isinstance(model, Seq2SeqTransformer):
        return "decoder", model.decoder.norm, model.output_proj
    raise WrongModelError(f"the logit lens reads a decoder: a DecoderLM, a GPT-2 checkpoint or a translation model; "
                          f"got {type(model).__name__}")


def layer_logits(model: nn.Module, *inputs: Any, **kwargs: Any) -> Tensor:
    """``(L + 1, B, T, V)``: the unembedded residual stream after the embeddings and after each decoder layer.

    `inputs` are the model's own (``input_ids`` for an LM; ``src_ids, tgt_ids`` for the translation
    model, whose decoder is read at every target position).
    """
    stack, norm, unembed = _parts(model)
    with torch.no_grad():
        _, cache = run_with_cache(model, *inputs, names=resid_names(model, stack), **kwargs)
        resid = cache.accumulated_resid(stack)  # (L + 1, B, T, D)
        if norm is not None:
            resid = norm(resid)
        return unembed(resid)


@dataclass
class LogitLens:
    """Per-layer predictions at one position: ``logits`` ``(L + 1, V)``, layer 0 = embeddings."""

    tokens: list[str]
    ids: list[int]
    position: int
    logits: Tensor
    vocab: Sequence[str] | None = None
    k: int = 5

    @property
    def probs(self) -> Tensor:
        """``(L + 1, V)`` softmax of each layer's logits."""
        return self.logits.double().softmax(dim=-1)

    def _name(self, index: int) -> str:
        return self.vocab[index] if self.vocab is not None else str(index)

    def top(self, layer: int, k: int | None = None) -> list[dict[str, Any]]:
        """The `k` most likely next tokens after `layer`: ``[{"id", "token", "prob"}]``."""
        probs, ids = self.probs[layer].topk(min(k or self.k, self.logits.shape[-1]))
        return [{"id": int(i), "token": self._name(int(i)), "prob": float(p)} for p, i in zip(probs, ids)]

    def rank(self, token_id: int) -> list[int]:
        """The rank of `token_id` after each layer (1 = the most likely)."""
        self._check(token_id)
        return [int((row > row[token_id]).sum()) + 1 for row in self.logits]

    def prob(self, token_id: int) -> list[float]:
        """The probability of `token_id` after each layer."""
        self._check(token_id)
        return [float(p) for p in self.probs[:, token_id]]

    def _check(self, token_id: int) -> None:
        if not 0 <= token_id < self.logits.shape[-1]:
            raise UsageError(f"token id {token_id} is out of range for a vocabulary of {self.logits.shape[-1]}")

    def json(self) -> dict[str, Any]:
        """``{"tokens", "ids", "layers": [{"layer", "top": [{"id", "token", "prob"}, ...]}, ...]}``."""
        return {"tokens": list(self.tokens), "ids": list(self.ids),
                "layers": [{"layer": layer, "top": self.top(layer)} for layer in range(self.logits.shape[0])]}

    def __str__(self) -> str:
        """A table: one row per layer, the top tokens with their probabilities."""
        lines = [f"logit lens at position {self.position} ({self.tokens[self.position]!r}), "
                 f"layer 0 = embeddings, last = the model's output"]
        for layer in range(self.logits.shape[0]):
            cells = "  ".join(f"{entry['token']!r} {entry['prob']:.3f}" for entry in self.top(layer))
            lines.append(f"{layer:>5d}  {cells}")
        return "\n".join(lines)


@dataclass
class LogitLensReport:
    """The logit lens at a position plus, if a token was chosen, its rank and probability across layers."""

    lens: LogitLens
    token: int | None = None

    def json(self) -> dict[str, Any]:
        """The lens's JSON (``{"tokens", "ids", "layers"}``), with ``"token": {"id", "rank", "prob"}`` when one was chosen."""
        out = self.lens.json()
        if self.token is not None:
            out["token"] = {"id": self.token, "rank": self.lens.rank(self.token), "prob": self.lens.prob(self.token)}
        return out

    def __str__(self) -> str:
        text = str(self.lens)
        if self.token is not None:
            name = self.lens._name(self.token)
            rows = "  ".join(f"L{layer}: #{rank} {prob:.3f}" for layer, (rank, prob) in
                             enumerate(zip(self.lens.rank(self.token), self.lens.prob(self.token))))
            text += f"\n{name!r} (id {self.token}) by layer: {rows}"
        return text


class _TokenNames(Sequence[str]):
    """A tokenizer's token strings by id, looked up only for the ids shown."""

    def __init__(self, tokenizer: Any, size: int) -> None:
        self.tokenizer, self.size = tokenizer, size

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        return self.tokenizer.id_to_token(index) if index < self.tokenizer.vocab_size else f"<{index}>"

    def __len__(self) -> int:
        return self.size


def _vocab(tokenizer: Any, size: int) -> Sequence[str] | None:
    return None if tokenizer is None else _TokenNames(tokenizer, size)


def _token_id(tokenizer: Any, token: int | str | None) -> int | None:
    if token is None or isinstance(token, int):
        return token
    if tokenizer is None:
        raise UsageError(f"token={token!r} needs a tokenizer; give a token id instead")
    ids = tokenizer.encode(token, add_special_tokens=False)
    if len(ids) != 1:
        raise UsageError(f"token={token!r} is {len(ids)} tokens ({ids}); choose a text that is one token")
    return ids[0]


def logit_lens(model_or_predictor: Any, text: str | Sequence[int] | Tensor, position: int | None = None, k: int = 5,
               token: int | str | None = None, *, start_with_end_token: bool | None = None) -> LogitLensReport:
    """The logit lens on `text` at `position`, with the top `k` tokens per layer.

    `model_or_predictor` is a language-model predictor (``TextGenerator``, from ``load_predictor`` on a
    saved LM or a GPT-2 checkpoint), a translation ``Translator``, a ``from_pretrained`` result, or a
    bare DecoderLM with `text` given as token ids. A language model is read at the last position by
    default (its prediction of the next token). The predictor decides how the text is read (a saved
    glassformer LM after ``<|endoftext|>``, as it was trained; a Hugging Face checkpoint as it is;
    `start_with_end_token` overrides). For a translator, `text` is the German source as the translator
    reads it (with its dictionary hints) and the lens reads the decoder along the greedy translation
    (BOS first), by default at the step that produced its last token. `token` (an id or a one-token
    string) adds its rank and probability per layer.
    """
    from glassformer.models.seq2seq import Seq2SeqTransformer
    from glassformer.tasks.pipeline import predictor_for

    model = getattr(model_or_predictor, "model", model_or_predictor)
    tokenizer = getattr(model_or_predictor, "tokenizer", None)
    _parts(model)
    reader = model_or_predictor if hasattr(model_or_predictor, "prepare") else \
        predictor_for(model, tokenizer) if tokenizer is not None else None
    model_input: tuple
    if isinstance(model, Seq2SeqTransformer):
        if reader is None:
            raise UsageError("the logit lens on a translation model needs its Translator (for the tokenizer)")
        prepared = reader.prepare([text])
        # The decoder reads the greedy translation (what the predictor decodes), within its positions.
        target = reader.greedy_target(prepared)[:, : model.config.max_position]
        ids = [int(i) for i in target[0]]
        model_input = (prepared.tensors["src_ids"], target)
        if position is None:
            position = max(len(ids) - 2, 0)  # the step that produced the last token
    else:
        if isinstance(text, str):
            if reader is None:
                raise UsageError("text needs a tokenizer; give token ids for a bare model")
            ids = reader.prepare([text], start_token=start_with_end_token).ids[0]
        else:
            ids = [int(i) for i in (text.reshape(-1).tolist() if isinstance(text, Tensor) else text)]
        if not ids:
            raise UsageError("the text is empty; give at least one token")
        if len(ids) > model.config.max_position:
            raise UsageError(f"the text is {len(ids)} tokens; the model reads at most {model.config.max_position}")
        model_input = (torch.tensor([ids], device=next(model.parameters()).device),)
    n = len(ids)
    position = n - 1 if position is None else position
    if not -n <= position < n:
        raise UsageError(f"position {position} is out of range for {n} tokens (0-{n - 1})")
    position %= n
    if k < 1:
        raise UsageError(f"k={k}; expected at least 1")
    logits = layer_logits(model, *model_input)[:, 0, position].float().cpu()  # (L + 1, V)
    vocab = _vocab(tokenizer, logits.shape[-1])
    names = [vocab[i] if vocab else str(i) for i in ids]
    lens = LogitLens(names, ids, position, logits, vocab, k)
    token_id = _token_id(tokenizer, token)
    if token_id is not None:
        lens._check(token_id)
    return LogitLensReport(lens, token_id)


def logit_lens_report(predictor: Any, text: str, position: int | None = None, k: int = 5,
                      token: int | str | None = None) -> LogitLensReport:
    """What ``glassformer explain --method logit-lens`` shows: :func:`logit_lens` on a loaded predictor."""
    return logit_lens(predictor, text, position=position, k=k, token=token)
