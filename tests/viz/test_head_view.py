"""The exported head/model view pages: self-contained, and carrying exactly the model's attention weights."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

from glassformer.viz import (
    AttentionMaps,
    embedded_data,
    head_view_html,
    model_view_html,
    seq2seq_maps,
    write_head_view,
)
from tests.viz.helpers import encoder_attention, encoder_maps, tiny_seq2seq


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def test_embedded_weights_equal_the_model_attention():
    attentions, tokens = encoder_attention(n_tokens=7)
    page = head_view_html(AttentionMaps.from_attentions(attentions, tokens), decimals=6)
    view = embedded_data(page)["views"][0]
    embedded = np.array(view["weights"])  # (L, H, T, T)
    expected = torch.stack([a[0] for a in attentions]).numpy()
    assert embedded.shape == expected.shape == (2, 2, 7, 7)
    np.testing.assert_allclose(embedded, expected, atol=1e-6)
    assert view["query_tokens"] == view["key_tokens"] == tokens


def test_page_is_self_contained_and_offline():
    page = model_view_html(encoder_maps())
    for tag, attrs in _tags(page):
        assert "src" not in attrs and "href" not in attrs, f"<{tag}> loads an external resource: {attrs}"
        assert tag not in ("link", "iframe", "img", "object", "embed")
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page), "page references a URL other than the SVG namespace"
    assert "@import" not in page and "url(" not in page and "@font-face" not in page
    assert "default-src 'none'" in page  # the CSP forbids any fetch even if a script tried


def test_hostile_token_text_stays_inert():
    tokens = ["</script><script>alert(1)</script>", "<b>&amp;", "ok"]
    maps = AttentionMaps("x", np.full((1, 1, 3, 3), 1 / 3, dtype=np.float32), tokens, tokens)
    page = head_view_html(maps)
    assert sum(1 for tag, _ in _tags(page) if tag == "script") == 2
    assert embedded_data(page)["views"][0]["query_tokens"] == tokens


def test_padding_is_dropped_and_bad_shapes_are_reported():
    attentions, _ = encoder_attention(n_tokens=7)
    maps = AttentionMaps.from_attentions(attentions, ["a", "b", "c"])
    assert maps.weights.shape == (2, 2, 3, 3)
    np.testing.assert_allclose(maps.weights[1, 0], attentions[1][0, 0, :3, :3].numpy())
    with pytest.raises(ValueError, match="8 query / 8 key tokens"):
        AttentionMaps.from_attentions(attentions, list("abcdefgh"))
    with pytest.raises(ValueError, match="do not match 2 query and 3 key tokens"):
        AttentionMaps("x", np.zeros((1, 1, 3, 3)), ["a", "b"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="head must be 0..1"):
        head_view_html(maps, head=5)
    with pytest.raises(ValueError, match="layer must be 0..1"):
        head_view_html(maps, layer=2)
    with pytest.raises(ValueError, match="threshold"):
        head_view_html(maps, threshold=2.0)


def test_mean_over_heads():
    maps = encoder_maps()
    np.testing.assert_allclose(maps.matrix(1), maps.weights[1].mean(axis=0))
    np.testing.assert_allclose(maps.matrix(-1, 0), maps.weights[1, 0])


def test_seq2seq_gives_three_views_with_the_right_token_lists():
    model = tiny_seq2seq()
    src = torch.tensor([[5, 6, 7, 8, 9]])
    tgt = torch.tensor([[1, 10, 11]])
    with torch.no_grad():
        out = model(src, tgt, output_attentions=True)
    source, target = list("ABCDE"), ["<s>", "x", "y"]
    maps = seq2seq_maps(out, source, target)
    assert [m.name for m in maps] == ["encoder self-attention", "decoder self-attention",
                                      "encoder-decoder cross-attention"]
    assert maps[2].query_tokens == target and maps[2].key_tokens == source
    assert maps[2].weights.shape == (2, 4, 3, 5)
    np.testing.assert_allclose(maps[2].weights[1, 3], out.cross_attentions[1][0, 3].numpy())
    # The decoder's self-attention is causal: nothing above the diagonal.
    assert np.all(np.triu(maps[1].weights, k=1) == 0)
    page = head_view_html(maps)
    assert [v["name"] for v in embedded_data(page)["views"]] == [m.name for m in maps]


def test_write_head_view(tmp_path):
    path = write_head_view(tmp_path / "sub" / "view.html", encoder_maps(), head=1, layer=-1)
    data = embedded_data(path.read_text(encoding="utf-8"))
    assert data["initial"] == {"view": 0, "layer": 1, "head": 1}
    assert not list((tmp_path / "sub").glob(".*tmp"))
