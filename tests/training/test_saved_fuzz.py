"""Fuzzing saved models: corrupted config.json values and flipped bytes only ever raise glassformer's own errors.

Whatever a damaged or hand-edited directory holds, loading it either works or raises a
GlassformerError (whose message the CLI prints as one line), never a TypeError, a KeyError or an
attempt to allocate what a corrupted size asks for.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from glassformer._files import write_manifest
from glassformer.errors import GlassformerError
from glassformer.models.encoder import EncoderClassifier, EncoderConfig
from glassformer.tokenizers import WordPiece
from glassformer.training.saved import load_saved, save_model

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**15), max_value=10**15)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    tokenizer = WordPiece(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film"], lowercase=True)
    config = EncoderConfig(vocab_size=tokenizer.vocab_size, max_position=16, d_model=16, n_heads=2, n_layers=1,
                           d_ff=32, pooling="mean", use_pooler=False)
    directory = tmp_path_factory.mktemp("fuzz") / "model"
    save_model(directory, EncoderClassifier(config), task="sentiment", label_names=["negative", "positive"],
               tokenizer=tokenizer, extra={"max_length": 16})
    return directory


def _load_or_own_error(directory: Path, verify: bool) -> None:
    try:
        load_saved(directory, verify=verify)
    except GlassformerError:
        pass


@FUZZ
@given(data=st.data())
def test_corrupted_config_values_raise_only_glassformer_errors(original, tmp_path, data):
    copy = tmp_path / "copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(original, copy)
    config = json.loads((copy / "config.json").read_text())
    section = data.draw(st.sampled_from(["top", "model_config"]))
    target = config if section == "top" else config["model_config"]
    key = data.draw(st.sampled_from(sorted(target)))
    target[key] = data.draw(JSON_VALUES)
    (copy / "config.json").write_text(json.dumps(config))
    resign = data.draw(st.booleans())  # a consistent manifest reaches the field checks; a stale one the digest check
    if resign:
        write_manifest(copy, "model")
    _load_or_own_error(copy, verify=True)


@FUZZ
@given(data=st.data())
def test_flipped_bytes_raise_only_glassformer_errors(original, tmp_path, data):
    copy = tmp_path / "copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(original, copy)
    files = sorted(p for p in copy.rglob("*") if p.is_file())
    victim = data.draw(st.sampled_from(files))
    before = victim.read_bytes()
    content = bytearray(before)
    for _ in range(data.draw(st.integers(1, 8))):
        if content:
            position = data.draw(st.integers(0, len(content) - 1))
            content[position] ^= data.draw(st.integers(1, 255))
    assume(bytes(content) != before)  # two flips of one byte can cancel out
    victim.write_bytes(bytes(content))
    with pytest.raises(GlassformerError):  # the manifest notices every change
        load_saved(copy)
    _load_or_own_error(copy, verify=False)  # and without it, the file formats' own checks hold
