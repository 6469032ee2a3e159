"""Head detectors against TransformerLens's ``head_detector``: the same detection patterns, and the same scores on
the same weights; a 2-layer attention-only model trained here on repeated random sequences grows an induction head."""

from __future__ import annotations

import pytest
import torch

from glassformer.lens import ablated, detection_pattern, find_heads, head_scores, induction_scores, repeated_tokens
from glassformer.models.decoder_lm import DecoderLM, DecoderLMConfig
from tests.lens.conftest import bridge_of

VOCAB, HALF = 32, 12


def test_detection_patterns_equal_transformer_lens():
    head_detector = pytest.importorskip("transformer_lens.head_detector")
    tokens = torch.tensor([[0, 5, 7, 5, 9, 7, 5, 3, 9]])
    for kind in ("previous_token", "duplicate_token", "induction"):
        expected = getattr(head_detector, f"get_{kind}_head_detection_pattern")(tokens)
        assert torch.equal(detection_pattern(tokens[0], kind), expected.float()), kind


def _train_induction_model() -> DecoderLM:
    """Two attention-only layers trained on [BOS, A, A] with A random: only copying from the first copy helps."""
    torch.manual_seed(0)
    model = DecoderLM(DecoderLMConfig(vocab_size=VOCAB, max_position=64, d_model=32, n_heads=2, n_layers=2, d_ff=4,
                                      dropout=0.0, attn_only=True))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    data = torch.Generator().manual_seed(0)
    for _ in range(STEPS):
        x = repeated_tokens(VOCAB, HALF, 32, bos=0, generator=data)
        logits = model(x).logits[:, HALF:-1]  # the positions that can copy: the second copy
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), x[:, HALF + 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


STEPS = 150


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The trained model, and TransformerLens's bridge over the same weights (as a GPT-2 whose MLPs are zero)."""
    pytest.importorskip("transformer_lens")
    transformers = pytest.importorskip("transformers")
    from glassformer.pretrained import save_pretrained

    model = _train_induction_model()
    twin = DecoderLM(DecoderLMConfig(**{**vars(model.config), "attn_only": False})).eval()
    state = twin.state_dict()
    with torch.no_grad():
        for name, tensor in state.items():
            tensor.copy_(model.state_dict()[name] if name in model.state_dict() else torch.zeros_like(tensor))
    directory = tmp_path_factory.mktemp("induction-gpt2")
    save_pretrained(twin, directory)
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(directory), attn_implementation="eager").eval()
    return model, bridge_of(hf, tmp_path_factory)


def test_a_trained_attention_only_model_has_an_induction_head_and_scores_equal_transformer_lens(trained):
    """Reference: TransformerLens detect_head(model, seq, "induction_head" / "previous_token_head") on the bridge."""
    from transformer_lens.head_detector import detect_head

    model, bridge = trained
    half = repeated_tokens(VOCAB - 1, HALF, 1, generator=torch.Generator().manual_seed(5))[0, :HALF] + 1
    text = " ".join(f"t{int(i)}" for i in torch.cat([half, half]))
    tokens = bridge.to_tokens(text)  # BOS (t0) first, as TransformerLens reads a string
    assert tokens.shape == (1, 2 * HALF + 1) and int(tokens[0, 0]) == 0
    for kind, name in (("induction", "induction_head"), ("previous_token", "previous_token_head"),
                       ("duplicate_token", "duplicate_token_head")):
        for measure in ("mul", "abs"):
            ours = head_scores(model, tokens, kind, error_measure=measure)
            theirs = detect_head(bridge, text, name, error_measure=measure)
            assert (ours - theirs.double()).abs().max() <= 1e-5, (kind, measure)
    scores = induction_scores(model, tokens)
    found = find_heads(scores, threshold=0.4)
    assert found, scores
    # The head matters: knocking it out loses the copy. (With one period for every sequence, a head can find
    # the copy source by position as well as by the previous-token composition; the detector, like
    # TransformerLens's, judges the attention pattern, not the mechanism.)
    layer, head, _ = found[0]
    with torch.no_grad():
        copy_loss = torch.nn.functional.cross_entropy(model(tokens).logits[0, HALF:-1], tokens[0, HALF + 1:])
        with ablated(model, heads=[(layer, head)]):
            knocked = torch.nn.functional.cross_entropy(model(tokens).logits[0, HALF:-1], tokens[0, HALF + 1:])
    assert copy_loss < 0.1 and knocked > 4 * copy_loss, (copy_loss, knocked)
    ablate_bos = head_scores(model, tokens, "induction", exclude_bos=True, exclude_current_token=True)
    theirs = detect_head(bridge, text, "induction_head", exclude_bos=True, exclude_current_token=True)
    assert (ablate_bos - theirs.double()).abs().max() <= 1e-5
