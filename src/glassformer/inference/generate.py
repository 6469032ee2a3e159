"""Generation, in one place: the only decode loops of glassformer. The models keep a forward pass; greedy
decoding, sampling and beam search live here, and the tasks, the lens, the views and the studio call them.
Every step picks its token with :func:`~glassformer.inference.sampling.sample_next_token` and reports the
token's probability.

Decoder-only: sampling, greedy, streaming
-----------------------------------------
One loop (``_lm_steps``) serves the batched :func:`generate` and the token-by-token :func:`stream_steps`.
The prompt is run once to fill the key/value cache; after that every step feeds only the newest
token, so a step costs one position instead of the whole prefix. Each step's logits go through
:func:`~glassformer.inference.sampling.sample_next_token` (temperature, top-k, top-p, or greedy), so
with the same seed the stream and the batched call produce the same tokens.

A stream that reaches the model's ``max_position`` drops the oldest tokens: the cache is rebuilt from
the most recent half of the context and generation goes on (a sliding window), so the number of new
tokens is not limited by the context length. :func:`generate` returns the whole sequence, so it
refuses a prompt and a length that do not fit in ``max_position``.

Greedy and beam search (encoder–decoder)
----------------------------------------
Decoding an encoder–decoder: greedy search and beam search, batched, through the key/value cache.

Both encode the source once and then feed the decoder one new token per step; the cache keeps the
keys and values of the earlier target positions (self-attention) and of the encoder output
(cross-attention), so a step costs one position, not the whole prefix. Rows whose search is over
are dropped from the batch (``KVCache.reorder`` with the surviving rows), so a long sentence does not
make the short ones in its batch pay for every step.

Beam search keeps the ``beam_size`` best partial translations per sentence. Finished hypotheses
are ranked by the GNMT length-normalised score (Wu et al. 2016, eq. 14, without the coverage term)

    s(Y) = log P(Y | X) / lp(Y),    lp(Y) = ((5 + |Y|) / 6) ** alpha,

where |Y| counts the generated tokens including the end token; ``alpha = 0`` ranks by the plain
log-probability, larger values favour longer translations. Each step looks at the best
``2 × beam_size`` extensions: an end token among the first ``beam_size`` of them finishes a
hypothesis, the best ``beam_size`` others stay alive. A sentence is done once ``beam_size``
hypotheses have finished and no live one could still beat the worst of them: the best live
log-probability divided by lp of its current length is no higher than that worst score (the rule of
Hugging Face's ``early_stopping=False``; a later, better finished hypothesis replaces the worst).
Stopping at the first ``beam_size`` finished ones (fairseq's rule) would never let a longer
hypothesis that ends later displace them (benchmarks/RESULTS.md compares the two on the de-en models).
With ``beam_size = 1`` the rule is exactly greedy search.
Both searches end every open hypothesis with the end token (and its probability) at step ``max_len``.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import Tensor

from glassformer.inference.sampling import NextToken, sample_next_token
from glassformer.models.decoder_lm import DecoderLM
from glassformer.models.seq2seq import IGNORE_INDEX, Seq2SeqTransformer, shift_right
from glassformer.tokenizers.base import Tokenizer


def _generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(seed)


@dataclass
class GenerationStep:
    """One drawn token: its id, p(token | context) under the model, and the step's logits ``(V,)`` before any cut.

    With the logits, a view can redraw the distribution for other temperature, top-k and top-p
    settings (:func:`~glassformer.inference.sampling.process_logits`) without running the model again.
    """

    token: int
    prob: float
    sample_prob: float
    logits: Tensor


def _lm_steps(model: DecoderLM, ids: Tensor, max_new_tokens: int, generator: torch.Generator | None,
              eos_token_id: int | None, sampling: dict) -> Iterator[tuple[Tensor, NextToken, Tensor]]:
    """The decode loop of a decoder-only model: ``(chosen ids (B, 1), the draw, the step's logits (B, V))`` per step.

    `ids` ``(B, T)`` is the prompt. A row that produced `eos_token_id` keeps emitting it; the loop ends
    once every row has, or after `max_new_tokens` steps. Past ``max_position`` the cache restarts on the
    most recent half of the context (the sliding window of the module text).
    """
    window = model.config.max_position
    context = ids[:, -window:]
    cache = model.new_cache()
    logits = model(context, cache=cache).logits[:, -1]  # (B, V)
    finished = torch.zeros(ids.shape[0], 1, dtype=torch.bool, device=ids.device)
    for step in range(max_new_tokens):
        picked = sample_next_token(logits, generator=generator, **sampling)
        chosen = picked.ids  # (B, 1)
        if eos_token_id is not None:
            chosen = chosen.masked_fill(finished, eos_token_id)
            finished |= chosen == eos_token_id
        yield chosen, picked, logits
        if step == max_new_tokens - 1 or bool(finished.all()):
            return
        context = torch.cat([context, chosen], dim=1)
        if cache[0].length < window:
            logits = model(chosen, cache=cache).logits[:, -1]
        else:
            # Learned positions stop at max_position: restart the cache on the recent half of the text.
            context = context[:, -(window // 2 + 1):]
            cache = model.new_cache()
            logits = model(context, cache=cache).logits[:, -1]


def _check_lm_call(max_new_tokens: int, seed: int | None, generator: torch.Generator | None) -> None:
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if seed is not None and generator is not None:
        raise ValueError("pass seed or generator, not both")


@torch.no_grad()
def generate(
    model: DecoderLM,
    input_ids: Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    eos_token_id: int | None = None,
) -> Tensor:
    """Continue ``input_ids`` ``(B, T)`` by up to `max_new_tokens` tokens → ``(B, T + new)``.

    Rows that produced `eos_token_id` keep emitting it; generation stops once all have. `seed` makes
    the draw reproducible (or pass a shared `generator`). Call ``model.eval()`` first unless you want
    dropout while sampling.
    """
    t = input_ids.shape[1]
    if t == 0:
        raise ValueError("generate needs a prompt of at least one token")
    _check_lm_call(max_new_tokens, seed, generator)
    if t + max_new_tokens - 1 > model.config.max_position:
        raise ValueError(f"prompt of {t} tokens plus {max_new_tokens} new ones does not fit in "
                         f"max_position={model.config.max_position}")
    generator = generator if generator is not None else _generator(seed, input_ids.device)
    sampling = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "greedy": greedy}
    steps = _lm_steps(model, input_ids, max_new_tokens, generator, eos_token_id, sampling)
    return torch.cat([input_ids, *(chosen for chosen, _, _ in steps)], dim=1)


@torch.inference_mode()
def stream_steps(
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
) -> Iterator[GenerationStep]:
    """Yield up to `max_new_tokens` steps continuing `prompt_ids`, one at a time, as each token is drawn.

    `seed` makes the draw reproducible (a fresh generator seeded with it); pass `generator` instead to
    share one. Stops after yielding `eos_token_id`. The model is put in eval mode (no dropout).
    """
    ids = torch.as_tensor(prompt_ids, dtype=torch.long).flatten()
    if ids.numel() == 0:
        raise ValueError("generation needs a prompt of at least one token (for example the end-of-text token)")
    _check_lm_call(max_new_tokens, seed, generator)
    device = next(model.parameters()).device
    generator = generator if generator is not None else _generator(seed, device)
    model.eval()
    sampling = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "greedy": greedy}
    for chosen, picked, logits in _lm_steps(model, ids[None].to(device), max_new_tokens, generator, eos_token_id,
                                            sampling):
        yield GenerationStep(int(chosen), float(picked.probs), float(picked.sample_probs), logits[0].float().cpu())


def stream_tokens(model: DecoderLM, prompt_ids: Sequence[int] | Tensor, max_new_tokens: int,
                  **sampling: object) -> Iterator[int]:
    """The token ids of :func:`stream_steps` (same keywords), one at a time."""
    return (step.token for step in stream_steps(model, prompt_ids, max_new_tokens, **sampling))


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
    yield from stream_pieces(model, tokenizer, prompt_ids, max_new_tokens,
                             end_token_id=end_token_id if stop_at_end else None, **sampling)


def stream_pieces(model: DecoderLM, tokenizer: Tokenizer, prompt_ids: Sequence[int], max_new_tokens: int = 200, *,
                  end_token_id: int | None = None, **sampling: object) -> Iterator[str]:
    """:func:`stream_text` for a prompt already turned into the ids the model reads: `end_token_id` ends the stream."""
    text = _TextStream(tokenizer)
    for token in stream_tokens(model, prompt_ids, max_new_tokens, eos_token_id=end_token_id, **sampling):
        if token == end_token_id:
            break
        piece = text.piece(token)
        if piece:
            yield piece
    rest = text.flush()
    if rest:
        yield rest


# --- encoder–decoder: greedy and beam search ----------------------------------------

@dataclass
class Hypothesis:
    """One decoded target: its token ids (no BOS, no EOS), log P(Y | X) and the length-normalised score."""

    tokens: list[int]
    log_prob: float
    score: float


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's lp(Y) = ((5 + |Y|) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


def _check_inputs(src_ids: Tensor, src_attention_mask: Tensor | None, max_len: int) -> Tensor:
    if src_ids.dim() != 2:
        raise ValueError(f"src_ids must be (batch, length), got shape {tuple(src_ids.shape)}")
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    if src_attention_mask is None:
        return torch.ones_like(src_ids)
    if src_attention_mask.shape != src_ids.shape:
        raise ValueError(f"src_attention_mask has shape {tuple(src_attention_mask.shape)}, "
                         f"src_ids {tuple(src_ids.shape)}")
    return src_attention_mask


@dataclass(frozen=True)
class WordBias:
    """Words a search should favour: per source row, token sequences whose pieces get `weight` added to their
    log-probability, renormalised, at every step until the word has been written once.

    The first piece of a word is favoured anywhere, each later piece right after the pieces before it, so a
    word of several pieces is favoured whole (boosting only its first piece, "Ġt" of "Ġt|ired", would favour
    every word that starts alike). The model still decides where a word goes, and whether: a lexicon bias on
    the output (after Arthur, Neubig & Nakamura 2016, "Incorporating Discrete Translation Lexicons into
    Neural Machine Translation"), applied at search time only. Scores are then those of the biased distribution.
    """

    words: Sequence[Sequence[Sequence[int]]]  # [source row][word] → token ids
    weight: float

    def pieces(self, source: int, prefix: Sequence[int]) -> list[int]:
        """The tokens to favour after `prefix` for `source`: the next piece of each word not yet written."""
        out = []
        for word in self.words[source]:
            n = len(word)
            if n == 0 or any(list(prefix[i:i + n]) == list(word) for i in range(len(prefix) - n + 1)):
                continue  # written already
            started = next((k for k in range(n - 1, 0, -1) if list(prefix[len(prefix) - k:]) == list(word[:k])), 0)
            out.append(word[started])
        return out

    def apply(self, logp: Tensor, sources: Sequence[int], prefixes: Sequence[Sequence[int]]) -> Tensor:
        """``logp`` ``(rows, V)`` (log-probabilities) with each row's favoured pieces raised, renormalised."""
        if not self.weight:
            return logp
        bonus = torch.zeros_like(logp)
        for row, (source, prefix) in enumerate(zip(sources, prefixes)):
            for token in self.pieces(source, prefix):
                bonus[row, token] = self.weight
        return (logp + bonus).log_softmax(-1)


@torch.no_grad()
def greedy_search(model: Seq2SeqTransformer, src_ids: Tensor, src_attention_mask: Tensor | None = None, *,
                  max_len: int = 128, alpha: float = 0.0, bias: WordBias | None = None) -> list[Hypothesis]:
    """Pick the most probable next token at every step until EOS or `max_len` tokens, for each source row.

    `alpha` does not change the search; it only sets the reported length-normalised ``score``, so
    that greedy and beam hypotheses can be compared on one scale. `bias` favours words (:class:`WordBias`).
    """
    cfg = model.config
    src_attention_mask = _check_inputs(src_ids, src_attention_mask, max_len)
    batch = src_ids.shape[0]
    memory = model.encode(src_ids, src_attention_mask).last_hidden_state  # (B, S, D)
    cache = model.new_cache()
    active = torch.arange(batch, device=src_ids.device)  # source rows still decoding
    next_input = src_ids.new_full((batch, 1), cfg.bos_token_id)  # (A, 1)
    tokens: list[list[int]] = [[] for _ in range(batch)]
    log_probs = [0.0] * batch
    for step in range(max_len):
        logits = model.decode(next_input, memory, src_attention_mask, cache=cache).logits[:, -1]  # (A, V)
        if bias is not None:
            rows_now = active.tolist()
            logits = bias.apply(logits.float().log_softmax(-1), rows_now, [tokens[i] for i in rows_now])
        if step == max_len - 1:  # out of room: every row ends here
            best = torch.full_like(active, cfg.eos_token_id)
            picked = logits.float().log_softmax(-1).gather(1, best[:, None])[:, 0]
        else:
            choice = sample_next_token(logits, greedy=True)
            best, picked = choice.ids[:, 0], choice.probs[:, 0].log()  # (A,)
        keep = []
        for row, (index, token, lp) in enumerate(zip(active.tolist(), best.tolist(), picked.tolist())):
            log_probs[index] += lp
            if token == cfg.eos_token_id:
                continue
            tokens[index].append(token)
            keep.append(row)
        if not keep:
            break
        if len(keep) < len(active):
            rows = torch.tensor(keep, device=src_ids.device)
            for layer in cache:
                layer.reorder(rows)
            memory, src_attention_mask, active, best = memory[rows], src_attention_mask[rows], active[rows], best[rows]
        next_input = best[:, None]
    return [Hypothesis(t, lp, lp / length_penalty(len(t) + 1, alpha)) for t, lp in zip(tokens, log_probs)]


def target_ids(model: Seq2SeqTransformer, hypotheses: Sequence[Hypothesis]) -> Tensor:
    """``(B, 2 + n)``: each hypothesis as the decoder reads and writes it, ``[BOS, y_1 … y_n, EOS]``, padded after EOS.

    A teacher-forced pass on these ids (explanations, attention views) reads the very tokens the search chose.
    """
    cfg = model.config
    rows = [[cfg.bos_token_id, *h.tokens, cfg.eos_token_id] for h in hypotheses]
    width = max(len(row) for row in rows)
    device = next(model.parameters()).device
    return torch.tensor([row + [cfg.pad_token_id] * (width - len(row)) for row in rows], device=device)


@torch.no_grad()
def beam_search(model: Seq2SeqTransformer, src_ids: Tensor, src_attention_mask: Tensor | None = None, *,
                beam_size: int = 4, max_len: int = 128, alpha: float = 0.6,
                bias: WordBias | None = None) -> list[Hypothesis]:
    """The best of `beam_size` hypotheses per source row under s(Y) = log P(Y|X) / lp(Y) (see the module text);
    `bias` favours words (:class:`WordBias`)."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    cfg = model.config
    src_attention_mask = _check_inputs(src_ids, src_attention_mask, max_len)
    batch, k, device = src_ids.shape[0], beam_size, src_ids.device
    memory = model.encode(src_ids, src_attention_mask).last_hidden_state  # (B, S, D)
    rows = torch.arange(batch, device=device).repeat_interleave(k)  # beam b of source i sits at row i*k + b
    memory, src_attention_mask = memory[rows], src_attention_mask[rows]  # (B*k, S, D), (B*k, S)
    cache = model.new_cache()
    prefixes = src_ids.new_full((batch * k, 1), cfg.bos_token_id)  # (A*k, t)
    # Only the first beam is live at the start; the others would repeat it.
    scores = torch.full((batch, k), float("-inf"), device=device)  # (A, k) log P of each live prefix
    scores[:, 0] = 0.0
    active = torch.arange(batch, device=device)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    for step in range(max_len):
        n_active = active.shape[0]
        logits = model.decode(prefixes[:, -1:], memory, src_attention_mask, cache=cache).logits[:, -1]
        logp = logits.float().log_softmax(-1)  # (A*k, V)
        if bias is not None:
            logp = bias.apply(logp, active.repeat_interleave(k).tolist(), prefixes[:, 1:].tolist())
        vocab = logp.shape[-1]
        if step == max_len - 1:  # out of room: every hypothesis ends here
            forced = torch.full_like(logp, float("-inf"))
            forced[:, cfg.eos_token_id] = logp[:, cfg.eos_token_id]
            logp = forced
        candidates = (scores[:, :, None] + logp.view(n_active, k, vocab)).view(n_active, k * vocab)
        top_scores, top_index = candidates.topk(2 * k, dim=-1)  # (A, 2k)
        top_beam, top_token = top_index // vocab, top_index % vocab
        is_eos = top_token == cfg.eos_token_id

        # An end token among the best k extensions finishes that hypothesis; the k best finished are kept.
        lp = length_penalty(step + 1, alpha)
        examples = active.tolist()
        for a, j in is_eos[:, :k].nonzero().tolist():  # row-major: each sentence's best first
            example, raw = examples[a], float(top_scores[a, j])
            if raw == float("-inf"):
                continue
            row = a * k + int(top_beam[a, j])
            _keep_best(finished[example], Hypothesis(prefixes[row, 1:].tolist(), raw, raw / lp), k)

        # The best k extensions that did not end stay alive (at most k of the 2k can be end tokens).
        alive_scores = top_scores.masked_fill(is_eos, float("-inf"))
        alive_scores, pick = alive_scores.topk(k, dim=-1)  # (A, k)
        alive_beam, alive_token = top_beam.gather(1, pick), top_token.gather(1, pick)

        best_alive = (alive_scores[:, 0] / lp).tolist()  # what the best live prefix would score if it ended now
        done = torch.tensor([len(finished[e]) >= k and best_alive[a] <= min(h.score for h in finished[e])
                             for a, e in enumerate(examples)], device=device)
        if bool(done.all()):
            break
        keep = (~done).nonzero()[:, 0]  # (A',)
        source_rows = (keep[:, None] * k + alive_beam[keep]).reshape(-1)  # (A'*k,)
        for layer in cache:
            layer.reorder(source_rows)
        memory, src_attention_mask = memory[source_rows], src_attention_mask[source_rows]
        prefixes = torch.cat([prefixes[source_rows], alive_token[keep].reshape(-1, 1)], dim=1)
        scores, active = alive_scores[keep], active[keep]
    return [max(hyps, key=lambda h: h.score) for hyps in finished]


def _keep_best(hypotheses: list[Hypothesis], new: Hypothesis, k: int) -> None:
    """Add `new` to at most `k` finished hypotheses, replacing the lowest-scoring one when full."""
    if len(hypotheses) < k:
        hypotheses.append(new)
        return
    worst = min(range(k), key=lambda i: hypotheses[i].score)
    if new.score > hypotheses[worst].score:
        hypotheses[worst] = new


@torch.no_grad()
def sequence_log_probs(model: Seq2SeqTransformer, src_ids: Tensor, src_attention_mask: Tensor | None,
                       targets: list[list[int]]) -> Tensor:
    """log P(Y | X) of each target (ids without BOS/EOS; EOS is scored) by one teacher-forced pass, no cache."""
    cfg = model.config
    if src_ids.shape[0] != len(targets):
        raise ValueError(f"{src_ids.shape[0]} sources but {len(targets)} targets")
    width = max(len(t) for t in targets) + 1
    labels = src_ids.new_full((len(targets), width), IGNORE_INDEX)
    for i, target in enumerate(targets):
        labels[i, : len(target) + 1] = torch.tensor([*target, cfg.eos_token_id])
    decoder_input = shift_right(labels, cfg.bos_token_id, cfg.pad_token_id)
    logp = model(src_ids, decoder_input, src_attention_mask).logits.float().log_softmax(-1)  # (B, T, V)
    picked = logp.gather(2, labels.clamp(min=0)[:, :, None])[:, :, 0]
    return picked.masked_fill(labels == IGNORE_INDEX, 0.0).sum(-1)
