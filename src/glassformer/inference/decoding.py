"""Decoding an encoder–decoder: greedy search and beam search, batched, through the key/value cache.

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
hypothesis that ends later displace them. On the de-en models the two rules gave the same BLEU: their
beams were short (74% of the reference length, greedy 88%) because the model itself ranks early
ends highest, which only a larger ``alpha`` corrects. With ``beam_size = 1`` the rule is exactly
greedy search.
Both searches end every open hypothesis with the end token (and its probability) at step ``max_len``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from glassformer.models.seq2seq import IGNORE_INDEX, Seq2SeqTransformer, shift_right


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


@torch.no_grad()
def greedy_search(model: Seq2SeqTransformer, src_ids: Tensor, src_attention_mask: Tensor | None = None, *,
                  max_len: int = 128, alpha: float = 0.0) -> list[Hypothesis]:
    """Pick the most probable next token at every step until EOS or `max_len` tokens, for each source row.

    `alpha` does not change the search; it only sets the reported length-normalised ``score``, so
    that greedy and beam hypotheses can be compared on one scale.
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
        logp = logits.float().log_softmax(-1)
        if step == max_len - 1:  # out of room: every row ends here
            best = torch.full_like(active, cfg.eos_token_id)
        else:
            best = logp.argmax(-1)  # (A,)
        picked = logp.gather(1, best[:, None])[:, 0]
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


@torch.no_grad()
def beam_search(model: Seq2SeqTransformer, src_ids: Tensor, src_attention_mask: Tensor | None = None, *,
                beam_size: int = 4, max_len: int = 128, alpha: float = 0.6) -> list[Hypothesis]:
    """The best of `beam_size` hypotheses per source row under s(Y) = log P(Y|X) / lp(Y) (see the module text)."""
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
