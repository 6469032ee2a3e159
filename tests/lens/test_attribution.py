"""Attribution against independent references: Captum's layer methods (float64, same baseline, same steps and
method), plain forward passes with ids replaced, transformers' BertModel attention for rollout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glassformer.errors import UsageError
from glassformer.lens import (
    ImageClassification,
    NextToken,
    TextClassification,
    TranslationStep,
    attention,
    attention_rollout,
    grad_input,
    integrated_gradients,
    integration_points,
    occlusion,
    pad_baseline,
    rollout,
)
from glassformer.models import (
    DecoderLM,
    DecoderLMConfig,
    EncoderClassifier,
    EncoderConfig,
    Seq2SeqConfig,
    Seq2SeqTransformer,
    VisionTransformer,
    ViTConfig,
)


@pytest.fixture(scope="module")
def captum_attr():
    """Captum's attribution methods, for the tests that compare with them (rollout and translation steps run without)."""
    return pytest.importorskip("captum.attr")

CLS, SEP, PAD = 2, 3, 0
IDS = [CLS, 11, 17, 23, 29, 31, SEP]
BASELINE = pad_baseline(IDS, {CLS, SEP}, PAD)


def _trained_like(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every weight moved off its initialisation (LayerNorms and biases too), in float64, eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.3 * torch.randn(param.shape, generator=generator))
    return model.double().eval()


@pytest.fixture(scope="module")
def encoder() -> EncoderClassifier:
    torch.manual_seed(0)
    config = EncoderConfig(vocab_size=40, max_position=16, d_model=16, n_heads=2, n_layers=2, d_ff=32, dropout=0.0,
                           attn_dropout=0.0, num_labels=3)
    return _trained_like(EncoderClassifier(config), 1)


def _logits(model):
    return lambda ids: model(ids).logits


def test_integration_points_are_captums_gauss_legendre():
    approximation_parameters = pytest.importorskip("captum.attr._utils.approximation_methods").approximation_parameters

    step_sizes, alphas = approximation_parameters("gausslegendre")
    ours_alphas, ours_weights = integration_points(50)
    np.testing.assert_allclose(ours_alphas, alphas(50), rtol=0, atol=1e-15)
    np.testing.assert_allclose(ours_weights, step_sizes(50), rtol=0, atol=1e-15)
    assert sum(ours_weights) == pytest.approx(1.0)


def test_integrated_gradients_equal_captum_layer_integrated_gradients(captum_attr, encoder):
    prediction = TextClassification(encoder, IDS, BASELINE)
    ours = integrated_gradients(prediction, steps=50)
    target = ours.target
    assert target == int(encoder(torch.tensor([IDS])).logits.argmax())
    lig = captum_attr.LayerIntegratedGradients(_logits(encoder), encoder.encoder.embeddings.word_embeddings)
    theirs, delta = lig.attribute(torch.tensor([IDS]), baselines=torch.tensor([BASELINE]), target=target, n_steps=50,
                                  method="gausslegendre", return_convergence_delta=True)
    expected = theirs.sum(-1)[0]
    np.testing.assert_allclose(ours.scores.numpy(), expected.numpy(), rtol=1e-5, atol=1e-12)
    assert ours.scores[0] == 0 and ours.scores[-1] == 0  # [CLS] and [SEP] are their own baseline
    assert ours.delta == pytest.approx(float(delta), abs=1e-8)
    assert abs(ours.delta) < 1e-3 * float(ours.scores.abs().sum())


def test_integrated_gradients_for_another_target_and_in_batches(captum_attr, encoder):
    prediction = TextClassification(encoder, IDS, BASELINE)
    ours = integrated_gradients(prediction, target=1, steps=20, batch_size=7)
    lig = captum_attr.LayerIntegratedGradients(_logits(encoder), encoder.encoder.embeddings.word_embeddings)
    theirs = lig.attribute(torch.tensor([IDS]), baselines=torch.tensor([BASELINE]), target=1, n_steps=20,
                           method="gausslegendre").sum(-1)[0]
    np.testing.assert_allclose(ours.scores.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-12)
    with pytest.raises(UsageError, match="outside the model's 3 outputs"):
        integrated_gradients(prediction, target=3)


def test_grad_input_equals_captum_layer_gradient_x_activation(captum_attr, encoder):
    ours = grad_input(TextClassification(encoder, IDS, BASELINE), target=2)
    layer = captum_attr.LayerGradientXActivation(_logits(encoder), encoder.encoder.embeddings.word_embeddings)
    theirs = layer.attribute(torch.tensor([IDS]), target=2).sum(-1)[0].detach()
    np.testing.assert_allclose(ours.scores.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-12)


def test_occlusion_equals_captum_occlusion_on_the_embeddings(captum_attr, encoder):
    ids = torch.tensor([IDS])
    ours = occlusion(TextClassification(encoder, IDS, BASELINE), target=0)
    word = encoder.encoder.embeddings.word_embeddings

    def from_embeddings(embedded):
        handle = word.register_forward_hook(lambda module, args, out: embedded)
        try:
            return encoder(ids.expand(embedded.shape[0], -1)).logits
        finally:
            handle.remove()

    with torch.no_grad():
        inputs, base = word(ids), word(torch.tensor([BASELINE]))
    d = inputs.shape[-1]
    theirs = captum_attr.Occlusion(from_embeddings).attribute(inputs, sliding_window_shapes=(1, d), strides=(1, d),
                                                              baselines=base, target=0)
    np.testing.assert_allclose(ours.scores.numpy(), theirs[0, :, 0].numpy(), rtol=1e-5, atol=1e-12)
    # And the same as replacing each id by [PAD] in a plain forward pass.
    with torch.no_grad():
        full = encoder(ids).logits[0, 0]
        for i in range(1, len(IDS) - 1):
            occluded = ids.clone()
            occluded[0, i] = PAD
            assert float(ours.scores[i]) == pytest.approx(float(full - encoder(occluded).logits[0, 0]), abs=1e-12)


def _numpy_rollout(maps: list[np.ndarray]) -> np.ndarray:
    """Abnar & Zuidema's rollout, written out: 0.5·mean-head attention + 0.5·I per layer, multiplied upward."""
    joint = np.eye(maps[0].shape[-1])
    for layer in maps:
        a = layer.mean(axis=0)
        a = 0.5 * a + 0.5 * np.eye(a.shape[0])
        a = a / a.sum(axis=-1, keepdims=True)
        joint = a @ joint
    return joint


def test_rollout_by_hand_on_two_layers():
    one = torch.tensor([[[0.5, 0.5], [0.25, 0.75]]], dtype=torch.float64)  # one head
    two = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]], dtype=torch.float64)
    a1 = np.array([[0.75, 0.25], [0.125, 0.875]])  # (A + I) / 2
    a2 = np.array([[1.0, 0.0], [0.25, 0.75]])
    np.testing.assert_allclose(attention_rollout([one, two]).numpy(), a2 @ a1, atol=1e-15)
    np.testing.assert_allclose(attention_rollout([one, two]).sum(-1).numpy(), [1.0, 1.0], atol=1e-15)


@pytest.mark.slow  # importing transformers alone takes about 10 s of CPU
def test_rollout_equals_numpy_on_transformers_bert_attention(tmp_path):
    transformers = pytest.importorskip("transformers")
    from glassformer.pretrained import from_pretrained

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0, attn_implementation="eager", num_labels=2)
    hf = transformers.BertForSequenceClassification(config).eval()
    hf.save_pretrained(tmp_path)
    ours = from_pretrained(tmp_path).model.eval()
    with torch.no_grad():
        maps = [a[0].numpy() for a in hf(torch.tensor([IDS]), output_attentions=True).attentions]
    expected = _numpy_rollout(maps)
    prediction = TextClassification(ours, IDS, BASELINE)
    np.testing.assert_allclose(rollout(prediction).scores.numpy(), expected[0], atol=1e-6)
    np.testing.assert_allclose(attention(prediction).scores.numpy(), maps[-1].mean(0)[0], atol=1e-6)
    full = attention_rollout([torch.from_numpy(m) for m in maps])
    np.testing.assert_allclose(full.sum(-1).numpy(), np.ones(len(IDS)), atol=1e-6)  # float32 weights


@pytest.fixture(scope="module")
def vit() -> VisionTransformer:
    torch.manual_seed(0)
    return _trained_like(VisionTransformer(ViTConfig.preset("tiny")), 2)


BLACK = -0.81


def test_vit_integrated_gradients_and_occlusion_equal_captum(captum_attr, vit):
    image = torch.randn(1, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    prediction = ImageClassification(vit, image, BLACK)
    ours = integrated_gradients(prediction)
    black = torch.full_like(image, BLACK)
    lig = captum_attr.LayerIntegratedGradients(lambda x: vit(x).logits, vit.patch_embedding)
    theirs, delta = lig.attribute(image, baselines=black, target=ours.target, n_steps=50, method="gausslegendre",
                                  return_convergence_delta=True)
    np.testing.assert_allclose(ours.scores.numpy(), theirs.sum(-1)[0].numpy(), rtol=1e-5, atol=1e-12)
    assert ours.delta == pytest.approx(float(delta), abs=1e-8)

    occluded = occlusion(prediction, target=1)
    pixels = captum_attr.Occlusion(lambda x: vit(x).logits).attribute(
        image, sliding_window_shapes=(1, 4, 4), strides=(1, 4, 4), baselines=BLACK, target=1)
    per_patch = pixels[0, 0, ::4, ::4].flatten()  # patches in row-major order, as the patch embedding reads them
    np.testing.assert_allclose(occluded.scores.numpy(), per_patch.numpy(), rtol=1e-5, atol=1e-12)
    assert rollout(prediction).scores.shape == (4,)


def test_next_token_integrated_gradients_equal_captum(captum_attr):
    torch.manual_seed(0)
    model = _trained_like(DecoderLM(DecoderLMConfig.preset("tiny", dropout=0.0, vocab_size=50)), 4)
    ids, baseline = [1, 7, 8, 9, 10], [1, 0, 0, 0, 0]
    ours = integrated_gradients(NextToken(model, ids, baseline))
    lig = captum_attr.LayerIntegratedGradients(lambda x: model(x).logits[:, -1], model.token_embedding)
    theirs = lig.attribute(torch.tensor([ids]), baselines=torch.tensor([baseline]), target=ours.target, n_steps=50,
                           method="gausslegendre").sum(-1)[0]
    np.testing.assert_allclose(ours.scores.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-12)
    zero = NextToken(model, ids, [1, -1, -1, -1, -1])  # no [PAD]: the zero vector
    assert torch.equal(zero.baseline()[0, 1:], torch.zeros(4, 32, dtype=torch.float64))


def test_translation_step_keeps_positions_and_is_complete():
    torch.manual_seed(0)
    model = _trained_like(Seq2SeqTransformer(Seq2SeqConfig.preset("tiny", dropout=0.0, activation="gelu")), 5)
    src, prefix = [5, 6, 7, 8, 2], [1, 9, 10]
    baseline = pad_baseline(src, {1, 2}, 0)
    prediction = TranslationStep(model, src, prefix, baseline)
    with torch.no_grad():
        logits = model(torch.tensor([src]), torch.tensor([prefix])).logits[0, -1]
    target = int(logits.argmax())
    occluded = occlusion(prediction)
    assert occluded.target == target
    with torch.no_grad():
        for i in range(len(src) - 1):
            ids = torch.tensor([src])
            ids[0, i] = 0
            expected = logits[target] - model(ids, torch.tensor([prefix])).logits[0, -1, target]
            assert float(occluded.scores[i]) == pytest.approx(float(expected), abs=1e-10)
    ig = integrated_gradients(prediction, steps=200)  # ReLU's kinks would need many more points for this delta
    assert abs(ig.delta) < 1e-4 * max(1.0, float(ig.scores.abs().sum()))
    cross = attention(prediction).scores
    assert cross.shape == (5,) and float(cross.sum()) == pytest.approx(1.0)
    assert float(rollout(prediction).scores.sum()) == pytest.approx(1.0)
