"""Ablation, patching and direct logit attribution against transformers (a forward pre-hook on the attention output
projection ``c_proj`` zeroing a head's slice) and TransformerLens (``hook_z`` edited on a bridge over the same
raw weights), in float64."""

from __future__ import annotations

import pytest
import torch

from glassformer.errors import UsageError
from glassformer.lens import (
    ablated,
    direct_logit_attribution,
    logit_difference,
    patch_heads,
    patch_residual,
    run_with_cache,
    run_with_hooks,
)
from tests.lens.conftest import VOCAB

D_HEAD = 6  # n_embd 24 / n_head 4


def _ids(seed: int, batch: int = 2, length: int = 8) -> torch.Tensor:
    return torch.randint(1, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def _zero_heads_in_hf(hf, heads):
    """Pre-hooks on each layer's c_proj that zero the chosen heads' slices of its input (the heads concatenated)."""
    handles = []
    for layer, head in heads:
        def zero(module, args, head=head):
            x = args[0].clone()
            x[..., head * D_HEAD:(head + 1) * D_HEAD] = 0.0
            return (x,)
        handles.append(hf.transformer.h[layer].attn.c_proj.register_forward_pre_hook(zero))
    return handles


def test_head_ablation_equals_transformers_pre_hook_on_c_proj(gpt2):
    hf, ours = gpt2
    ids, heads = _ids(1), [(0, 1), (2, 3), (2, 0)]
    handles = _zero_heads_in_hf(hf, heads)
    try:
        with torch.no_grad():
            expected = hf(ids).logits
    finally:
        for handle in handles:
            handle.remove()
    with torch.no_grad(), ablated(ours, heads=heads):
        got = ours(ids).logits
    assert (got - expected).abs().max() <= 1e-5
    with torch.no_grad():
        assert (ours(ids).logits - hf(ids).logits).abs().max() <= 1e-5  # hooks gone afterwards, on both sides
        assert (got - ours(ids).logits).abs().max() > 1e-3  # and the ablation did something


def test_head_ablation_equals_transformer_lens_hook_z(gpt2, bridge):
    _, ours = gpt2
    ids = _ids(2)

    def zero(z, hook):
        z = z.clone()
        z[:, :, 2] = 0.0  # TransformerLens's hook_z is (batch, pos, head, d_head)
        return z

    expected = bridge.run_with_hooks(ids, fwd_hooks=[("blocks.1.attn.hook_z", zero)])
    with torch.no_grad(), ablated(ours, heads=["1.2"]):
        got = ours(ids).logits
    assert (got - expected).abs().max() <= 1e-5


def test_mlp_ablation_and_mean_ablation_equal_transformers_hooks(gpt2):
    hf, ours = gpt2
    ids, reference = _ids(3), _ids(4, batch=3)
    handle = hf.transformer.h[1].mlp.register_forward_hook(lambda m, a, out: torch.zeros_like(out))
    try:
        with torch.no_grad():
            expected = hf(ids).logits
    finally:
        handle.remove()
    with torch.no_grad(), ablated(ours, mlps=[1]):
        assert (ours(ids).logits - expected).abs().max() <= 1e-5

    seen = {}
    handle = hf.transformer.h[0].attn.c_proj.register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
    with torch.no_grad():
        hf(reference)
    handle.remove()
    mean = seen["x"][..., D_HEAD:2 * D_HEAD].mean(dim=(0, 1))

    def put_mean(module, args):
        x = args[0].clone()
        x[..., D_HEAD:2 * D_HEAD] = mean
        return (x,)

    handle = hf.transformer.h[0].attn.c_proj.register_forward_pre_hook(put_mean)
    try:
        with torch.no_grad():
            expected = hf(ids).logits
    finally:
        handle.remove()
    with torch.no_grad(), ablated(ours, heads=[(0, 1)], mode="mean", mean_from=reference):
        assert (ours(ids).logits - expected).abs().max() <= 1e-5


def test_identity_hooks_leave_logits_bit_identical(gpt2):
    _, ours = gpt2
    ids = _ids(5)
    with torch.no_grad():
        plain = ours(ids).logits
        same = run_with_hooks(ours, ids, fwd_hooks={"*.hook_z": lambda z, p: z, "*.hook_resid_*": lambda x, p: x,
                                                    "*.hook_mlp_out": lambda x, p: None}).logits
    assert torch.equal(plain, same)


def test_patching_every_position_of_a_layer_reproduces_the_clean_run(gpt2):
    _, ours = gpt2
    clean, corrupted = _ids(6, batch=1), _ids(7, batch=1)
    with torch.no_grad():
        clean_out, cache = run_with_cache(ours, clean, names="*.hook_resid_pre")
        for layer in range(3):
            name = f"blocks.layers.{layer}.hook_resid_pre"
            patched = run_with_hooks(ours, corrupted, fwd_hooks={name: lambda x, p, name=name: cache[name]})
            assert torch.equal(patched.logits, clean_out.logits), layer


def test_patch_residual_and_heads_grid_and_endpoints(gpt2):
    """Corrupting one position: patching it back at layer 0 restores the clean metric; untouched positions do nothing."""
    _, ours = gpt2
    clean = _ids(8, batch=1)
    corrupted = clean.clone()
    corrupted[0, 3] = (clean[0, 3] + 5) % VOCAB
    metric = logit_difference(4, 9)
    with torch.no_grad():
        clean_score, corrupt_score = float(metric(ours(clean).logits)), float(metric(ours(corrupted).logits))
    grid = patch_residual(ours, clean, corrupted, metric)
    assert grid.shape == (3, 8)
    assert abs(grid[0, 3] - clean_score) <= 1e-6
    assert torch.allclose(grid[0, [0, 1, 2, 4, 5, 6, 7]].double(), torch.full((7,), corrupt_score, dtype=torch.float64))
    heads = patch_heads(ours, clean, corrupted, metric)
    assert heads.shape == (3, 4) and not torch.allclose(heads, torch.full_like(heads, corrupt_score))


def test_patch_residual_equals_transformer_lens(gpt2, bridge):
    """Reference: TransformerLens patching.get_act_patch_resid_pre on the bridge, every layer × position."""
    from transformer_lens import patching

    _, ours = gpt2
    clean, corrupted = _ids(12, batch=1), _ids(13, batch=1)
    metric = logit_difference(4, 9)
    _, clean_cache = bridge.run_with_cache(clean)
    expected = patching.get_act_patch_resid_pre(bridge, corrupted, clean_cache, metric)
    got = patch_residual(ours, clean, corrupted, metric)
    assert got.shape == expected.shape == (3, 8)
    assert (got.double() - expected.double()).abs().max() <= 1e-5
    assert expected.std() > 1e-3  # the grid varies, so a shifted position or layer would show


def test_patch_heads_equals_transformer_lens(gpt2, bridge):
    """Reference: TransformerLens patching.get_act_patch_attn_head_out_all_pos on the bridge."""
    from transformer_lens import patching

    _, ours = gpt2
    clean, corrupted = _ids(9, batch=1), _ids(10, batch=1)
    metric = logit_difference(4, 9)
    _, clean_cache = bridge.run_with_cache(clean)
    expected = patching.get_act_patch_attn_head_out_all_pos(bridge, corrupted, clean_cache, metric)
    got = patch_heads(ours, clean, corrupted, metric)
    assert (got.double() - expected.double()).abs().max() <= 1e-5


def test_direct_logit_attribution_sums_to_the_logit_and_matches_transformer_lens(gpt2, bridge):
    """Parts sum to the logit, and each part equals TransformerLens's: get_full_resid_decomposition (heads, MLPs,
    embeddings; apply_ln with the cached scale, centring) projected on γ ⊙ W_U[:, token] (TransformerLens leaves γ to
    the unembedding, folded or not); each layer's attention bias is the bridge's b_O through apply_ln_to_stack; the
    final LayerNorm's bias is β · W_U[:, token] from transformers' weights."""
    hf, ours = gpt2
    ids, token, position = _ids(11, batch=1), 17, 5
    dla = direct_logit_attribution(ours, ids, token, position=position)
    with torch.no_grad():
        logit = hf(ids).logits[0, position, token]
    assert abs(float(dla.values.sum()) - float(logit)) <= 1e-5
    assert abs(float(dla.logit[0]) - float(logit)) <= 1e-5
    _, cache = bridge.run_with_cache(ids)
    direction = (hf.transformer.ln_f.weight * hf.lm_head.weight[token]).detach()
    parts, labels = cache.get_full_resid_decomposition(layer=-1, expand_neurons=False, apply_ln=True,
                                                       pos_slice=position, return_labels=True,
                                                       project_output_onto=direction)
    expected = dict(zip(labels, parts.detach()[:, 0]))
    expected |= {f"L{layer}.mlp": expected.pop(f"{layer}_mlp_out") for layer in range(3)}
    biases = cache.apply_ln_to_stack(bridge.b_O.detach()[:, None, :], layer=-1, pos_slice=position) @ direction
    expected |= {f"L{layer}.attn_bias": biases[layer, 0] for layer in range(3)}
    assert abs(float(expected.pop("bias")) - float(biases.sum())) <= 1e-9  # TransformerLens sums the biases
    expected["final_norm.bias"] = (hf.transformer.ln_f.bias @ hf.lm_head.weight[token]).detach()
    assert sorted(expected) == sorted(dla.labels)
    got = dla.values[0]
    for label in dla.labels:
        assert abs(float(got[dla.labels.index(label)]) - float(expected[label])) <= 1e-9, label
    assert set(dla.json()) == {"target", "position", "logit", "parts"}


def test_bad_heads_and_modes_are_one_line_usage_errors(gpt2):
    _, ours = gpt2
    with pytest.raises(UsageError, match=r"head 3\.0 does not exist: valid layers are 0-2 and heads 0-3"):
        with ablated(ours, heads=["3.0"]):
            pass
    with pytest.raises(UsageError, match="not of the form L.H"):
        with ablated(ours, heads=["1-2"]):
            pass
    with pytest.raises(UsageError, match="needs mean_from"):
        with ablated(ours, heads=[(0, 0)], mode="mean"):
            pass
    with pytest.raises(UsageError, match="feed-forward block 7"):
        with ablated(ours, mlps=[7]):
            pass


def test_cli_predict_ablate_changes_the_answer_and_checks_the_heads(tmp_path, capsys):
    """`glassformer predict DIR --ablate L.H`: other scores than without; a head outside the model is exit status 2
    with one line naming the valid range."""
    import json

    from glassformer.cli import main
    from tests.pretrained.helpers import sentiment_dir

    directory = str(sentiment_dir(tmp_path / "sentiment"))
    texts = ["a fine film", "dull and slow"]
    assert main(["predict", directory, "--json", *texts]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["predict", directory, "--json", "--ablate", "0.0,0.1,0.2,0.3,1.0,1.1", *texts]) == 0
    knocked = json.loads(capsys.readouterr().out)
    assert [r["text"] for r in knocked] == texts
    assert any(abs(a["score"] - b["score"]) > 1e-4 or a["label"] != b["label"] for a, b in zip(plain, knocked))
    assert main(["predict", directory, "--ablate", "2.0", *texts]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "valid layers are 0-1 and heads 0-3" in err
    assert main(["predict", directory, "--ablate", "x.1", *texts]) == 2
    assert "not of the form L.H" in capsys.readouterr().err


def test_vit_dla_sums_to_the_class_logit_and_seq2seq_heads_name_their_attention():
    from glassformer.models import Seq2SeqConfig, Seq2SeqTransformer, VisionTransformer, ViTConfig

    torch.manual_seed(0)
    vit = VisionTransformer(ViTConfig.preset("tiny")).double().eval()
    with torch.no_grad():
        for name, param in vit.named_parameters():
            if "norm" in name or name.endswith("bias"):
                param.normal_(1.0 if name.endswith("norm.weight") else 0.0, 0.3)
    images = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    dla = direct_logit_attribution(vit, images, target=2)
    assert dla.position == 0 and "head.bias" in dla.labels
    with torch.no_grad():
        assert abs(float(dla.values.sum()) - float(vit(images).logits[0, 2])) <= 1e-10

    model = Seq2SeqTransformer(Seq2SeqConfig.preset("tiny", dropout=0.0)).eval()
    src, tgt = torch.randint(3, 128, (1, 6)), torch.randint(3, 128, (1, 4))
    with torch.no_grad():
        plain = model(src, tgt).logits
        for spec in ("encoder.1.2", "decoder.0.1", "cross.1.3"):
            with ablated(model, heads=[spec]):
                assert not torch.allclose(model(src, tgt).logits, plain), spec
    with pytest.raises(UsageError, match="name heads as encoder.L.H, decoder.L.H, cross.L.H"):
        with ablated(model, heads=["0.1"]):
            pass
