"""Streaming generation from a decoder-only language model: each token is handed out as soon as it is drawn.

The prompt is run once to fill the key/value cache; after that every step feeds only the newest
token, so a step costs one position instead of the whole prefix. Each step's logits go through
:func:`~glassformer.models.decoder_lm.sample_next_token` (temperature, top-k, top-p, or greedy),
the same function :meth:`DecoderLM.generate` uses, so with the same seed the stream and the
non-streaming call produce the same tokens.

When the sequence reaches the model's ``max_position``, the oldest tokens are dropped: the cache is
rebuilt from the most recent half of the context and generation goes on (a sliding window), so the
number of new tokens is not limited by the context length.
"""

from __future__ import annotations

import codecs
from typing import Iterator, Sequence

import torch
from torch import Tensor

from glassformer.models.decoder_lm import DecoderLM, sample_next_token
from glassformer.tokenizers.base import Tokenizer


def _generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(seed)


@torch.inference_mode()
def stream_tokens(
    model: DecoderLM,
    prompt_ids: Sequence[int] | Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    eos_token_id: int | None = None,
) -> Iterator[int]:
    """Yield up to `max_new_tokens` token ids continuing `prompt_ids`, one at a time, as each is drawn.

    `seed` makes the draw reproducible (a fresh generator seeded with it); pass `generator` instead to
    share one. Stops after yielding `eos_token_id`. The model is put in eval mode (no dropout).
    """
    ids = torch.as_tensor(prompt_ids, dtype=torch.long).flatten()
    if ids.numel() == 0:
        raise ValueError("generation needs a prompt of at least one token (for example the end-of-text token)")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if seed is not None and generator is not None:
        raise ValueError("pass seed or generator, not both")
    device = next(model.parameters()).device
    generator = generator if generator is not None else _generator(seed, device)
    window = model.config.max_position
    model.eval()

    context = ids[-window:].tolist()
    cache = model.new_cache()
    logits = model(torch.tensor([context], device=device), cache=cache).logits[:, -1]  # (1, V)
    for _ in range(max_new_tokens):
        next_id = sample_next_token(logits, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                                    generator=generator)  # (1, 1)
        token = int(next_id)
        yield token
        if token == eos_token_id:
            return
        context.append(token)
        if cache[0].length < window:
            logits = model(next_id, cache=cache).logits[:, -1]
        else:
            # Learned positions stop at max_position: restart the cache on the recent half of the text.
            context = context[-(window // 2 + 1):]
            cache = model.new_cache()
            logits = model(torch.tensor([context], device=device), cache=cache).logits[:, -1]


class _TextStream:
    """Turns token ids into printable text pieces; bytes of a character split across tokens are held back."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.to_bytes = getattr(tokenizer, "decode_bytes", None)
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def piece(self, token: int) -> str:
        if self.to_bytes is None:
            return self.tokenizer.decode([token])
        return self.utf8.decode(self.to_bytes([token]))

    def flush(self) -> str:
        return self.utf8.decode(b"", final=True) if self.to_bytes is not None else ""


def stream_text(
    model: DecoderLM,
    tokenizer: Tokenizer,
    prompt: str,
    max_new_tokens: int = 200,
    *,
    start_ids: Sequence[int] = (),
    stop_at_end: bool = True,
    end_token_id: int | None = None,
    **sampling: object,
) -> Iterator[str]:
    """Yield the text of each new token continuing `prompt`, as it is produced.

    `start_ids` go before the encoded prompt (a language model trained on documents that start after
    an end-of-text token should see one there). With `stop_at_end`, `end_token_id` ends the stream and
    is not printed. `sampling` takes :func:`stream_tokens`' keywords (temperature, top_k, top_p,
    greedy, seed, generator).
    """
    prompt_ids = list(start_ids) + tokenizer.encode_ordinary(prompt)
    text = _TextStream(tokenizer)
    eos = end_token_id if stop_at_end else None
    for token in stream_tokens(model, prompt_ids, max_new_tokens, eos_token_id=eos, **sampling):
        if token == eos:
            break
        piece = text.piece(token)
        if piece:
            yield piece
    rest = text.flush()
    if rest:
        yield rest
