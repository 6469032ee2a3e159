"""BertViz's calls on glassformer's pages: ``head_view(outputs.attentions, tokens)`` and ``model_view(...)``.

References: the attention tensors of Hugging Face transformers' BertModel (a tiny random one built here),
and BertViz's documented view layout (the five sentence-pair views, "Encoder"/"Decoder"/"Cross").
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glassformer.viz import AttentionPage, embedded_data, head_view, model_view
from tests.viz.helpers import encoder_attention, tiny_seq2seq

DECIMALS = 1e-4  # the page stores weights in units of 10^-4


def test_head_view_is_the_function_bertviz_users_import():
    import glassformer.viz.head_view as module_by_path  # noqa: F401  the module is still importable
    from glassformer.viz.head_view import head_view_html

    assert callable(head_view) and callable(model_view) and callable(head_view_html)


def test_transformers_attentions_are_drawn_unchanged():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, attn_implementation="eager")
    model = transformers.BertModel(config).eval()
    ids = torch.tensor([[2, 7, 9, 11, 3]])
    with torch.no_grad():
        attentions = model(ids, output_attentions=True).attentions  # tuple of (1, 2, 5, 5)
    tokens = ["[CLS]", "the", "dog", "ran", "[SEP]"]
    page = head_view(attentions, tokens)
    assert isinstance(page, str) and "<!DOCTYPE html>" in page
    view = embedded_data(page)["views"][0]
    assert view["query_tokens"] == tokens and view["key_tokens"] == tokens
    expected = torch.stack([a[0] for a in attentions]).numpy()
    np.testing.assert_allclose(view["weights"], expected, atol=DECIMALS / 2 + 1e-7)


def test_sentence_pair_gives_bertvizs_five_views():
    attentions, tokens = encoder_attention(n_tokens=7)
    page = embedded_data(head_view(attentions, tokens, sentence_b_start=3))
    names = [v["name"] for v in page["views"]]
    assert names == ["All", "Sentence A -> Sentence A", "Sentence B -> Sentence B", "Sentence A -> Sentence B",
                     "Sentence B -> Sentence A"]
    full = np.asarray(page["views"][0]["weights"])
    a_to_b = page["views"][3]
    assert a_to_b["query_tokens"] == tokens[:3] and a_to_b["key_tokens"] == tokens[3:]
    np.testing.assert_allclose(a_to_b["weights"], full[:, :, :3, 3:], atol=1e-12)


def test_encoder_decoder_arguments_give_encoder_decoder_and_cross_views():
    model = tiny_seq2seq()
    src, tgt = torch.tensor([[5, 6, 7, 2]]), torch.tensor([[1, 9, 10]])
    with torch.no_grad():
        out = model(src, tgt, output_attentions=True)
    source, target = ["a", "b", "c", "</s>"], ["<s>", "x", "y"]
    page = embedded_data(head_view(encoder_attention=out.encoder_attentions, decoder_attention=out.decoder_attentions,
                                   cross_attention=out.cross_attentions, encoder_tokens=source,
                                   decoder_tokens=target))
    views = {v["name"]: v for v in page["views"]}
    assert list(views) == ["Encoder", "Decoder", "Cross"]
    assert views["Cross"]["query_tokens"] == target and views["Cross"]["key_tokens"] == source
    assert np.asarray(views["Cross"]["weights"]).shape == (2, 4, 3, 4)


def test_options_and_file(tmp_path):
    attentions, tokens = encoder_attention(n_tokens=5)
    page = head_view(attentions, ["Ġa", "▁b", "c", "d", "e"], layer=1, heads=[1], html_action="return",
                     out=tmp_path / "view.html")
    data = embedded_data(page)
    assert data["initial"]["layer"] == 1 and data["initial"]["head"] == 1
    assert data["views"][0]["query_tokens"][:2] == [" a", " b"]  # BertViz's prettify_tokens
    assert (tmp_path / "view.html").read_text(encoding="utf-8") == page
    assert isinstance(page, AttentionPage) and page._repr_html_().startswith("<iframe")

    grid = embedded_data(model_view(attentions, tokens, include_layers=[1], include_heads=[0], display_mode="light"))
    assert grid["mode"] == "model"
    expected = attentions[1][0, :1].numpy()
    np.testing.assert_allclose(grid["views"][0]["weights"], expected[None], atol=DECIMALS / 2 + 1e-7)


@pytest.mark.parametrize("call, message", [
    (lambda a, t: head_view(a, t[:-1]), "do not match"),
    (lambda a, t: head_view(tuple(torch.cat([x, x]) for x in a), t), "one input"),
    (lambda a, t: head_view(a), "tokens is required"),
    (lambda a, t: head_view(a, t, heads=[0, 1]), "one head"),
    (lambda a, t: head_view(a, t, layer=0, include_layers=[1]), "not in include_layers"),
    (lambda a, t: head_view(a, t, html_action="show"), "html_action"),
    (lambda a, t: model_view(a, t, display_mode="blue"), "display_mode"),
    (lambda a, t: head_view(cross_attention=a, encoder_tokens=t), "decoder_tokens"),
    (lambda a, t: head_view(), "no attention given"),
])
def test_bad_arguments_say_what_was_expected(call, message):
    attentions, tokens = encoder_attention(n_tokens=5)
    with pytest.raises(ValueError, match=message):
        call(attentions, tokens)
