"""Names → local directories: paths, known names, and the Hub path (exercised without a network)."""

from __future__ import annotations

import re

import pytest
import torch

from glassformer.models.encoder import EncoderConfig, TransformerEncoderModel
from glassformer.pretrained import CheckpointError, from_pretrained, hub, resolve, save_pretrained


def test_known_name_resolves_to_the_fetched_cache(minilm_dir):
    assert resolve("minilm") == minilm_dir
    assert resolve(str(minilm_dir)) == minilm_dir


def test_top_level_from_pretrained_is_lazy_and_works(minilm_dir):
    import glassformer

    loaded = glassformer.from_pretrained("minilm")
    assert loaded.family == "bert" and loaded.sentence.max_seq_length == 256


def test_hub_id_downloads_data_files_then_loads(tmp_path, monkeypatch):
    """The Hub branch asks only for data files (safetensors preferred) and loads what it got."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    torch.manual_seed(0)
    save_pretrained(TransformerEncoderModel(EncoderConfig.preset("tiny")), tmp_path / "snapshot")
    asked = {}

    def fake_list(repo_id):
        return ["config.json", "model.safetensors", "pytorch_model.bin", "modeling_evil.py"]

    def fake_snapshot(repo_id, allow_patterns=None, local_files_only=False):
        if local_files_only:
            raise FileNotFoundError("not in the cache")  # as huggingface_hub's LocalEntryNotFoundError
        asked["repo"], asked["patterns"] = repo_id, allow_patterns
        return str(tmp_path / "snapshot")

    monkeypatch.setattr(huggingface_hub, "list_repo_files", fake_list)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.setattr(hub, "_hub_reachable", lambda: None)  # the fake Hub answers
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    loaded = from_pretrained("someone/tiny-bert")
    assert loaded.family == "bert" and asked["repo"] == "someone/tiny-bert"
    assert "*.safetensors" in asked["patterns"]
    assert not any(p.endswith(".py") or p.endswith(".bin") or p == "*" for p in asked["patterns"])


def test_hub_id_offline_gives_a_clear_error(monkeypatch):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="could not download 'nobody/nothing'.*local checkpoint directory"):
        resolve("nobody/nothing")


def test_mistyped_path_fails_fast_offline_naming_both_readings(tmp_path, monkeypatch):
    """A path-like name never reaches the network; an owner/name one makes one bounded probe of a Hub that is down
    and then fails, without the download client's retries."""
    import huggingface_hub

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    probes = []
    real_probe = hub._hub_reachable
    monkeypatch.setattr(hub, "_hub_reachable", lambda: probes.append("probe") or real_probe())

    def downloads(*args, **kwargs):
        raise AssertionError("the Hub was probed as down; nothing may try to download")

    monkeypatch.setattr(huggingface_hub, "list_repo_files", downloads)
    with pytest.raises(CheckpointError, match=r"no directory 'models/typo'.*; and the Hub id 'models/typo' "
                                              r"could not be fetched.*unreachable"):
        resolve("models/typo")
    assert probes == ["probe"] and hub.HUB_PROBE_SECONDS <= 3  # one probe, with a timeout of a few seconds

    def no_network(*args, **kwargs):
        raise AssertionError("a path-like name must not reach the network")

    monkeypatch.setattr(hub, "_hub_reachable", no_network)
    for name in ("./models/typo", "../typo", "/nowhere/typo", "~/typo"):
        with pytest.raises(CheckpointError, match=rf"no directory '{re.escape(name)}'"):
            resolve(name)
    (tmp_path / "afile").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="is a file"):
        resolve("afile")
