"""`glassformer embed`: one JSON object on stdout, vectors equal to sentence-transformers' encode."""

from __future__ import annotations

import json

import pytest
import torch

from glassformer.cli import main


@pytest.mark.slow
def test_embed_json_prints_one_object_matching_sentence_transformers(minilm_dir, capsys):
    """Reference: sentence-transformers SentenceTransformer(dir).encode(normalize_embeddings=True)."""
    st = pytest.importorskip("sentence_transformers")
    texts = ["Hello world.", "Checkpoints carry weights, never code."]
    capsys.readouterr()
    assert main(["embed", "--model", str(minilm_dir), "--precision", "fp32", "--json", *texts]) == 0
    out = capsys.readouterr().out
    payload = json.loads(out)  # the whole of stdout is exactly one JSON document
    assert list(payload) == ["embeddings"]
    ours = torch.tensor(payload["embeddings"])
    assert ours.shape == (2, 384)
    ref = torch.as_tensor(st.SentenceTransformer(str(minilm_dir), device="cpu").encode(texts, normalize_embeddings=True))
    assert torch.nn.functional.cosine_similarity(ours, ref, dim=-1).min() >= 0.99999
    # The default (auto: bf16 on a CPU with AVX512-BF16 or AMX) stays within the cosine 0.999.
    for precision in ("bf16", "auto"):
        assert main(["embed", "--model", str(minilm_dir), "--precision", precision, "--json", *texts]) == 0
        fast = torch.tensor(json.loads(capsys.readouterr().out)["embeddings"])
        assert torch.nn.functional.cosine_similarity(fast, ref, dim=-1).min() >= 0.999


def test_embed_int8_and_text_output(minilm_dir, capsys):
    capsys.readouterr()
    assert main(["embed", "--model", str(minilm_dir), "--precision", "int8", "one", "two"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all("(384 dims)" in line for line in lines)


def test_embed_rejects_a_gpt2_checkpoint(tmp_path, capsys):
    from glassformer.models.decoder_lm import DecoderLM, DecoderLMConfig
    from glassformer.pretrained import save_pretrained

    save_pretrained(DecoderLM(DecoderLMConfig.preset("tiny")), tmp_path)
    assert main(["embed", "--model", str(tmp_path), "text"]) == 2
    assert "sentence embeddings need an encoder" in capsys.readouterr().err
