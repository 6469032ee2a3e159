"""Precision: auto picks bf16 only where the hardware computes it; bf16 training agrees with fp32 and resumes exactly."""

from __future__ import annotations

import pytest
import torch

from glassformer import precision
from glassformer.errors import UsageError
from glassformer.models.encoder import EncoderClassifier, EncoderConfig
from glassformer.training import TrainConfig

from .helpers import make_trainer


@pytest.mark.parametrize("native, expected", [("1", "bf16"), ("0", "fp32")])
def test_auto_follows_the_cpu(monkeypatch, native, expected):
    """An AVX512-BF16/AMX machine gets bf16; a machine with AVX2 only keeps fp32 (GLASSFORMER_CPU_BF16 plays both)."""
    monkeypatch.setenv(precision.ENV_OVERRIDE, native)
    assert precision.resolve("auto", "cpu") == expected
    assert precision.resolve("fp32", "cpu") == "fp32" and precision.resolve("bf16", "cpu") == "bf16"
    with pytest.raises(UsageError, match="int8' is for inference"):
        precision.resolve("int8", "cpu", training=True)
    with pytest.raises(UsageError, match="expected one of auto, fp32, bf16, int8"):
        precision.resolve("fp16", "cpu")


def test_auto_reads_the_flags_of_this_cpu(monkeypatch):
    monkeypatch.delenv(precision.ENV_OVERRIDE, raising=False)
    flags = open("/proc/cpuinfo").read()
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    assert precision.resolve("auto", "cpu") == ("bf16" if native else "fp32")


def test_bf16_gradients_agree_with_fp32():
    """One forward and backward of a tiny encoder under bf16 autocast against fp32: gradients point the same way."""
    torch.manual_seed(0)
    model = EncoderClassifier(EncoderConfig.preset("tiny", dropout=0.0, attn_dropout=0.0))
    ids, labels = torch.randint(1, 1000, (8, 12)), torch.randint(0, 2, (8,))
    grads = {}
    for name in ("fp32", "bf16"):
        model.zero_grad()
        with precision.autocast(name, "cpu"):
            loss = model(ids, labels=labels).loss
        assert loss.dtype == torch.float32  # the loss is computed in float32 either way
        loss.backward()
        grads[name] = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    cosine = torch.nn.functional.cosine_similarity(grads["fp32"], grads["bf16"], dim=0)
    assert cosine >= 0.99, float(cosine)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32


def test_bf16_training_learns_like_fp32_and_resumes_bit_exactly(tmp_path):
    """Stated tolerance: the bf16 run's final validation accuracy within 0.1 of fp32's (same data, same seed)."""
    def config(out, name):
        return TrainConfig(out_dir=str(out), epochs=3, batch_size=8, lr=1e-2, eval_every=5, checkpoint_every=3,
                           log_every=1, progress=False, load_best_at_end=False, precision=name)

    fp32 = make_trainer(config(tmp_path / "fp32", "fp32")).fit()
    straight = make_trainer(config(tmp_path / "straight", "bf16"))
    bf16 = straight.fit()
    assert bf16.precision == "bf16" and fp32.precision == "fp32"
    assert abs(bf16.evaluations[-1]["metrics"]["accuracy"] - fp32.evaluations[-1]["metrics"]["accuracy"]) <= 0.1

    class Killed(Exception):
        pass

    def kill(trainer, record):
        if record["step"] == 7:
            raise Killed

    with pytest.raises(Killed):
        make_trainer(config(tmp_path / "killed", "bf16"), callbacks=[kill]).fit()
    resumed = make_trainer(config(tmp_path / "killed", "bf16"), model_seed=9)
    resumed.fit(resume=True)
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
