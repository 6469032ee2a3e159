"""The articles' pipeline, step by step, on a trained model's own numbers, for each family of model.

- encoder classifier (:func:`walkthrough`): tokens → ids → one-hot → embedding vectors → plus
  positions → Q, K, V of one head → scores QKᵀ/√d → softmax weights → weighted values → layer
  output → prediction;
- decoder-only language model (:func:`lm_walkthrough`): the same through one head of a layer, with
  the causal mask in the scores, then next-token logits → softmax → the sampling step;
- encoder–decoder (:func:`translation_walkthrough`): the encoder's steps, then the decoder one
  target token at a time, with its masked self-attention and its cross-attention over the source;
- Vision Transformer (:func:`vision_walkthrough`): image → patches → patch vectors → [CLS] +
  positions → attention over the patches → class.

Every number is one the model computed in its own forward pass, read from its hook points
(``output_intermediates``), so what a learner sees is what the model did; tests check each family's
numbers against the model's forward pass. Results are dataclasses of NumPy arrays (one batch row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from glassformer._torch import evaluating
from glassformer.inference.generate import greedy_search
from glassformer.inference.sampling import sample_next_token
from glassformer.models.decoder_lm import DecoderLM
from glassformer.models.encoder import EncoderClassifier
from glassformer.models.seq2seq import Seq2SeqTransformer
from glassformer.models.vit import VisionTransformer
from glassformer.nn.embeddings import image_to_patches
from glassformer.viz.extract import token_labels
from glassformer.viz.next_token import NextTokenDistribution, next_token_distribution


@dataclass
class WalkthroughSteps:
    """Every intermediate of one forward pass of an encoder classifier, for one layer and head, as NumPy arrays."""

    tokens: list[str]
    ids: list[int]
    layer: int
    head: int
    d_head: int
    word: np.ndarray  # (T, D) word_embeddings(ids) = one_hot(ids) @ W_E
    position: np.ndarray  # (T, D) learned position vectors
    token_type: np.ndarray  # (T, D) segment vectors (all segment 0)
    embedded: np.ndarray  # (T, D) LayerNorm(word + position + token_type): the first layer's input
    layer_input: np.ndarray  # (T, D) the input of the chosen layer
    q: np.ndarray  # (T, d_head) of the chosen head
    k: np.ndarray
    v: np.ndarray
    scores: np.ndarray  # (T, T) QKᵀ/√d_head
    weights: np.ndarray  # (T, T) softmax(scores) row by row
    weighted: np.ndarray  # (T, d_head) weights @ V
    layer_output: np.ndarray  # (T, D) the chosen layer's output
    features: np.ndarray  # (D,) the sentence vector the classifier reads
    logits: np.ndarray  # (num_labels,)
    probs: np.ndarray  # (num_labels,)
    label_names: list[str]
    pooling: str
    norm_first: bool


def walkthrough(model: EncoderClassifier, tokenizer: Any, ids: Sequence[int], label_names: Sequence[str], *,
                layer: int = 0, head: int = 0) -> WalkthroughSteps:
    """Run `model` once on one row of token `ids`, reading the intermediates of `layer` and `head` at its hook points."""
    if not isinstance(model, EncoderClassifier):
        raise TypeError(f"the walkthrough needs an EncoderClassifier, got {type(model).__name__}")
    config = model.config
    if not 0 <= layer < config.n_layers:
        raise ValueError(f"layer={layer}; the model has layers 0..{config.n_layers - 1}")
    if not 0 <= head < config.n_heads:
        raise ValueError(f"head={head}; the model has heads 0..{config.n_heads - 1}")
    at = f"encoder.encoder.layers.{layer}."
    wanted = ["encoder.embeddings.hook_*", at + "hook_resid_pre", at + "hook_resid_post", at + "self_attn.hook_*",
              "hook_features", "hook_logits"]
    with evaluating(model):
        cache = model(torch.tensor([list(ids)]), output_intermediates=wanted).intermediates

    def row(name: str) -> np.ndarray:
        return cache[name][0].float().numpy()  # the first (only) batch row

    def of_head(name: str) -> np.ndarray:
        return cache[at + "self_attn." + name][0, head].float().numpy()  # (B, H, ...) → this head

    logits = cache["hook_logits"][0].float()
    return WalkthroughSteps(
        tokens=token_labels(tokenizer, ids), ids=list(ids), layer=layer, head=head,
        d_head=config.d_model // config.n_heads, word=row("encoder.embeddings.hook_word"),
        position=row("encoder.embeddings.hook_position"), token_type=row("encoder.embeddings.hook_token_type"),
        embedded=row("encoder.embeddings.hook_embed"), layer_input=row(at + "hook_resid_pre"),
        q=of_head("hook_q"), k=of_head("hook_k"), v=of_head("hook_v"), scores=of_head("hook_attn_scores"),
        weights=of_head("hook_pattern"), weighted=of_head("hook_z"), layer_output=row(at + "hook_resid_post"),
        features=row("hook_features"), logits=logits.numpy(), probs=logits.softmax(-1).numpy(),
        label_names=list(label_names), pooling=config.pooling, norm_first=config.norm_first)


# --- what every family shares --------------------------------------------------------------------

@dataclass
class HeadSteps:
    """One head of one attention layer: Q = x W_Q, K = m W_K, V = m W_V, S = Q Kᵀ/√d, A = softmax(S), Z = A V.

    ``m`` is ``x`` for self-attention and the encoder output for cross-attention. A key the mask
    blocks has the score -inf (the model's own value) and so the weight 0.
    """

    layer: int
    head: int
    q: np.ndarray  # (T_q, d_head)
    k: np.ndarray  # (T_k, d_head)
    v: np.ndarray  # (T_k, d_head)
    scores: np.ndarray  # (T_q, T_k)
    weights: np.ndarray  # (T_q, T_k), each row sums to 1
    z: np.ndarray  # (T_q, d_head)

    @property
    def masked(self) -> np.ndarray:
        """``(T_q, T_k)``: True where the mask blocked the key (score -inf, weight 0)."""
        return np.isneginf(self.scores)

    @property
    def d_head(self) -> int:
        """Width of one head, d = d_model / n_heads."""
        return int(self.q.shape[-1])


def _check_index(what: str, value: int, count: int) -> None:
    if not 0 <= value < count:
        raise ValueError(f"{what}={value}; the model has {what}s 0..{count - 1}")


def _head(cache: dict[str, Tensor], attention: str, layer: int, head: int) -> HeadSteps:
    """The numbers of `head` at the hook points of the MultiHeadAttention named `attention`."""
    def of_head(name: str) -> np.ndarray:
        return cache[f"{attention}.{name}"][0, head].float().numpy()  # (B, H, ...) → this head of the only row

    return HeadSteps(layer, head, of_head("hook_q"), of_head("hook_k"), of_head("hook_v"),
                     of_head("hook_attn_scores"), of_head("hook_pattern"), of_head("hook_z"))


def _first_row(cache: dict[str, Tensor], name: str) -> np.ndarray:
    return cache[name][0].float().numpy()


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


# --- decoder-only language model -----------------------------------------------------------------

@dataclass
class LMWalkthrough:
    """A decoder-only language model reading a prompt: one head of one layer, then the next token and its draw."""

    tokens: list[str]
    ids: list[int]
    token_embed: np.ndarray  # (T, D) W_E[id]
    position: np.ndarray  # (T, D) learned position vectors
    layer_input: np.ndarray  # (T, D) the residual stream into the chosen layer
    attention: HeadSteps  # (T × T) causal: a key after its query is masked
    layer_output: np.ndarray  # (T, D)
    logits: np.ndarray  # (V,) next-token logits at the last position
    next_token: NextTokenDistribution  # softmax(logits), and after temperature / top-k / top-p
    chosen: int  # the token the sampling step picked


def lm_walkthrough(model: DecoderLM, tokenizer: Any, ids: Sequence[int], *, layer: int = 0, head: int = 0,
                   temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                   seed: int = 0) -> LMWalkthrough:
    """Run `model` once on `ids` (at most ``max_position``), reading `layer` and `head`, and draw the next token.

    The draw uses :func:`~glassformer.inference.sampling.sample_next_token` with `temperature` (0:
    greedy), `top_k` and `top_p` and a generator seeded with `seed`, as generation does.
    """
    if not isinstance(model, DecoderLM):
        raise TypeError(f"the language-model walkthrough needs a DecoderLM, got {type(model).__name__}")
    config = model.config
    _check_index("layer", layer, config.n_layers)
    _check_index("head", head, config.n_heads)
    if not 0 < len(ids) <= config.max_position:
        raise ValueError(f"the walkthrough reads 1..{config.max_position} tokens (max_position), got {len(ids)}")
    at = f"blocks.layers.{layer}"
    wanted = ["hook_embed", "hook_pos_embed", f"{at}.hook_resid_pre", f"{at}.hook_resid_post",
              f"{at}.self_attn.hook_*", "hook_logits"]
    with evaluating(model):
        cache = model(torch.tensor([list(ids)], device=_device(model)), output_intermediates=wanted).intermediates
    logits = cache["hook_logits"][0, -1].float().cpu()  # (V,): the prediction after the last token
    distribution = next_token_distribution(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    picked = sample_next_token(logits[None], temperature=distribution.temperature, top_k=distribution.top_k,
                               top_p=distribution.top_p, greedy=distribution.greedy,
                               generator=torch.Generator().manual_seed(seed))
    return LMWalkthrough(
        tokens=token_labels(tokenizer, ids), ids=list(ids), token_embed=_first_row(cache, "hook_embed"),
        position=_first_row(cache, "hook_pos_embed"), layer_input=_first_row(cache, f"{at}.hook_resid_pre"),
        attention=_head(cache, f"{at}.self_attn", layer, head), layer_output=_first_row(cache, f"{at}.hook_resid_post"),
        logits=logits.numpy(), next_token=distribution, chosen=int(picked.ids))


# --- encoder–decoder (translation) ---------------------------------------------------------------

@dataclass
class TranslationWalkthrough:
    """An encoder–decoder translating one source greedily: the encoder's steps, then the decoder token by token.

    Row t of the decoder's arrays is step t: having read ``target_tokens[: t + 1]`` (the start token
    and what it chose so far), the decoder attends to those under the causal mask and to the source
    through cross-attention, and picks ``output_tokens[t]``. One teacher-forced pass over the finished
    target computes every step at once; the causal mask makes row t equal to what step t computed
    when decoding one token at a time (a test checks this against cached step-by-step decoding).
    """

    source_tokens: list[str]
    source_ids: list[int]
    target_tokens: list[str]  # the decoder's input: [BOS], y_1 … y_n
    output_tokens: list[str]  # what each step chose: y_1 … y_n, [EOS]
    output_ids: list[int]
    encoder_embed: np.ndarray  # (S, D) √D · W_E[id] + PE(pos)
    encoder_attention: HeadSteps  # (S × S)
    encoder_layer_output: np.ndarray  # (S, D) the chosen encoder layer's output
    memory: np.ndarray  # (S, D) the encoder's output, read by every cross-attention
    decoder_embed: np.ndarray  # (T, D)
    self_attention: HeadSteps  # (T × T), causal
    cross_attention: HeadSteps  # (T × S)
    logits: np.ndarray  # (T, V) next-token logits at each step
    probs: np.ndarray  # (T, V) softmax of each row
    max_len: int  # the longest target the search allowed, end token included

    @property
    def forced_end(self) -> bool:
        """Whether the search ran out of room: the last step's end token was set, not chosen by the model."""
        return len(self.output_ids) == self.max_len


def translation_walkthrough(model: Seq2SeqTransformer, tokenizer: Any, source_ids: Sequence[int], *,
                            encoder_layer: int = 0, decoder_layer: int = 0, head: int = 0,
                            max_len: int | None = None) -> TranslationWalkthrough:
    """Translate `source_ids` greedily (up to `max_len` tokens), then read the pass's numbers at the chosen layers and head."""
    if not isinstance(model, Seq2SeqTransformer):
        raise TypeError(f"the translation walkthrough needs a Seq2SeqTransformer, got {type(model).__name__}")
    config = model.config
    _check_index("encoder layer", encoder_layer, config.n_encoder_layers)
    _check_index("decoder layer", decoder_layer, config.n_decoder_layers)
    _check_index("head", head, config.n_heads)
    if not 0 < len(source_ids) <= config.max_position:
        raise ValueError(f"the source must have 1..{config.max_position} tokens, got {len(source_ids)}")
    max_len = max_len or min(int(1.5 * len(source_ids)) + 10, config.max_position)
    enc, dec = f"encoder.layers.{encoder_layer}", f"decoder.layers.{decoder_layer}"
    wanted = ["hook_encoder_embed", f"{enc}.hook_resid_post", f"{enc}.self_attn.hook_*", "hook_decoder_embed",
              f"{dec}.self_attn.hook_*", f"{dec}.cross_attn.hook_*", "hook_logits"]
    src = torch.tensor([list(source_ids)], device=_device(model))
    with evaluating(model):
        chosen = greedy_search(model, src, max_len=max_len)[0].tokens
        target = [config.bos_token_id, *chosen]
        out = model(src, torch.tensor([target], device=src.device), output_intermediates=wanted)
    cache = out.intermediates
    logits = cache["hook_logits"][0].float().cpu()  # (T, V)
    output_ids = [*chosen, config.eos_token_id]
    return TranslationWalkthrough(
        source_tokens=token_labels(tokenizer, source_ids), source_ids=list(source_ids),
        target_tokens=token_labels(tokenizer, target), output_tokens=token_labels(tokenizer, output_ids),
        output_ids=output_ids, encoder_embed=_first_row(cache, "hook_encoder_embed"),
        encoder_attention=_head(cache, f"{enc}.self_attn", encoder_layer, head),
        encoder_layer_output=_first_row(cache, f"{enc}.hook_resid_post"),
        memory=out.encoder_last_hidden_state[0].float().cpu().numpy(),
        decoder_embed=_first_row(cache, "hook_decoder_embed"),
        self_attention=_head(cache, f"{dec}.self_attn", decoder_layer, head),
        cross_attention=_head(cache, f"{dec}.cross_attn", decoder_layer, head),
        logits=logits.numpy(), probs=logits.softmax(-1).numpy(), max_len=max_len)


# --- Vision Transformer --------------------------------------------------------------------------

@dataclass
class VisionWalkthrough:
    """A Vision Transformer reading one image: patches → patch vectors → [CLS] + positions → attention → class."""

    image: np.ndarray  # (C, H, W) the model's input
    patch_size: int
    grid: int  # patches per side: N = grid²
    tokens: list[str]  # "[CLS]", then each patch as "row,col"
    patches: np.ndarray  # (N, C·P·P) the input cut into P×P patches, row by row, each flattened
    patch_vectors: np.ndarray  # (N, D) each patch projected: W_P · patch + b
    cls_token: np.ndarray  # (D,) the learned [CLS] vector
    position: np.ndarray  # (N + 1, D) learned position vectors
    embedded: np.ndarray  # (N + 1, D) [CLS; patch vectors] + positions: the first layer's input
    attention: HeadSteps  # (N + 1 × N + 1)
    layer_output: np.ndarray  # (N + 1, D)
    features: np.ndarray  # (D,) the final [CLS] state the classifier reads
    logits: np.ndarray  # (num_classes,)
    probs: np.ndarray  # (num_classes,)
    label_names: list[str]

    @property
    def cls_to_patches(self) -> np.ndarray:
        """``(grid, grid)``: how much [CLS] attends to each patch in the chosen layer and head."""
        return self.attention.weights[0, 1:].reshape(self.grid, self.grid)


def vision_walkthrough(model: VisionTransformer, image: Tensor | np.ndarray, label_names: Sequence[str], *,
                       layer: int = 0, head: int = 0,
                       preprocess: Callable[[Tensor], Tensor] | None = None) -> VisionWalkthrough:
    """Run `model` once on `image` (the model's input ``(C, H, W)``, or what `preprocess` turns into one)."""
    if not isinstance(model, VisionTransformer):
        raise TypeError(f"the vision walkthrough needs a VisionTransformer, got {type(model).__name__}")
    config = model.config
    _check_index("layer", layer, config.n_layers)
    _check_index("head", head, config.n_heads)
    pixels = torch.as_tensor(image)
    inputs = (preprocess(pixels[None]) if preprocess is not None else pixels[None]).float()  # (1, C, H, W)
    at = f"encoder.layers.{layer}"
    wanted = ["hook_patches", "hook_embed", f"{at}.hook_resid_post", f"{at}.self_attn.hook_*", "hook_features",
              "hook_logits"]
    with evaluating(model):
        cache = model(inputs.to(_device(model)), output_intermediates=wanted).intermediates
    grid = config.image_size // config.patch_size
    logits = cache["hook_logits"][0].float().cpu()
    return VisionWalkthrough(
        image=inputs[0].numpy(), patch_size=config.patch_size, grid=grid,
        tokens=["[CLS]", *[f"{r},{c}" for r in range(grid) for c in range(grid)]],
        patches=image_to_patches(inputs, config.patch_size)[0].numpy(),
        patch_vectors=_first_row(cache, "hook_patches"),
        cls_token=model.cls_token.detach()[0, 0].float().cpu().numpy(),
        position=model.position_embeddings.detach()[0].float().cpu().numpy(),
        embedded=_first_row(cache, "hook_embed"), attention=_head(cache, f"{at}.self_attn", layer, head),
        layer_output=_first_row(cache, f"{at}.hook_resid_post"), features=_first_row(cache, "hook_features"),
        logits=logits.numpy(), probs=logits.softmax(-1).numpy(), label_names=list(label_names))
