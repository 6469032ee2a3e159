"""The trainer: exact resume, gradient accumulation, learning, best checkpoint, early stopping, logs."""

from __future__ import annotations

import json

import pytest
import torch

from glassformer.training import CheckpointError, TrainConfig, load_checkpoint

from .helpers import make_trainer


class Killed(Exception):
    """Stands in for the process being killed."""


def _kill_at(step):
    def callback(trainer, record):
        if record["step"] == step:
            raise Killed
    return callback


def _train_records(path):
    return [(r["step"], r["loss"]) for r in map(json.loads, path.read_text().splitlines()) if r["kind"] == "train"]


def test_resume_after_a_kill_gives_bit_identical_weights(tmp_path):
    # 100 examples in batches of 8 → 13 batches per epoch; accumulating 2 → 7 steps per epoch,
    # the last with one batch. Dropout is on, so the random generators must be restored too.
    def config(out):
        return TrainConfig(out_dir=str(out), epochs=3, batch_size=8, grad_accum=2, lr=1e-2, eval_every=5,
                           checkpoint_every=3, log_every=1, progress=False, load_best_at_end=False)

    straight = make_trainer(config(tmp_path / "straight"))
    straight_result = straight.fit()

    killed = make_trainer(config(tmp_path / "killed"), callbacks=[_kill_at(8)])
    with pytest.raises(Killed):
        killed.fit()
    position = load_checkpoint(tmp_path / "killed" / "checkpoints" / "last.pt")["position"]
    assert position == {"step": 6, "epoch": 0, "batch": 12}  # mid-epoch: 12 of 13 batches consumed

    resumed = make_trainer(config(tmp_path / "killed"), model_seed=123)  # its own init is overwritten
    resumed_result = resumed.fit(resume=True)

    assert resumed_result.steps == straight_result.steps == 21
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert _train_records(tmp_path / "killed" / "metrics.jsonl") == _train_records(tmp_path / "straight" / "metrics.jsonl")
    assert resumed_result.evaluations[-1]["metrics"] == straight_result.evaluations[-1]["metrics"]


def test_changed_batch_size_refuses_to_resume(tmp_path):
    make_trainer(TrainConfig(out_dir=str(tmp_path), max_steps=2, batch_size=8, progress=False)).fit()
    trainer = make_trainer(TrainConfig(out_dir=str(tmp_path), max_steps=4, batch_size=16, progress=False))
    with pytest.raises(CheckpointError, match="batch_size: checkpoint 8, now 16"):
        trainer.fit(resume=True)


def test_gradient_accumulation_equals_the_full_batch(tmp_path):
    # 16 examples: one batch of 16, or two of 8 accumulated, cover the same examples every step.
    common = dict(epochs=4, lr=1e-2, progress=False, warmup_ratio=0.0, precision="fp32")  # the arithmetic itself
    full = make_trainer(TrainConfig(batch_size=16, grad_accum=1, **common), n_train=16, dropout=0.0)
    accumulated = make_trainer(TrainConfig(batch_size=8, grad_accum=2, **common), n_train=16, dropout=0.0)
    full.fit()
    accumulated.fit()
    for (name, p), q in zip(full.model.state_dict().items(), accumulated.model.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def test_learns_keeps_best_and_writes_logs(tmp_path):
    config = TrainConfig(out_dir=str(tmp_path), epochs=6, batch_size=16, lr=3e-2, eval_every=10,
                         metric="accuracy", log_every=5, progress=False)
    trainer = make_trainer(config, n_train=400, n_eval=100)
    before = trainer.evaluate()["accuracy"]
    result = trainer.fit()
    assert before < 0.7
    assert result.best_metric >= 0.9, result.evaluations
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt", require=("model", "metrics"))
    assert best["metrics"]["accuracy"] == result.best_metric and best["step"] == result.best_step
    for name, tensor in trainer.model.state_dict().items():  # load_best_at_end put the best weights back
        assert torch.equal(tensor, best["model"][name])
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(5, result.steps + 1, 5))
    assert all(r["examples_per_s"] > 0 and r["tokens_per_s"] > r["examples_per_s"] for r in train)
    assert train[-1]["loss"] < train[0]["loss"]
    assert train[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine decay ends at zero
    png = (tmp_path / "metrics.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000


def test_early_stopping_after_patience_evaluations(tmp_path):
    config = TrainConfig(out_dir=str(tmp_path), epochs=50, batch_size=8, eval_every=2, patience=3,
                         metric="score", progress=False)
    trainer = make_trainer(config)
    trainer.evaluate_fn = lambda model, loader: {"score": 1.0}  # never improves after the first
    result = trainer.fit()
    assert result.stopped_early
    assert [e["step"] for e in result.evaluations] == [2, 4, 6, 8]
    assert result.steps == 8 and result.best_step == 2
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["position"]["step"] == 8


def test_bf16_autocast_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    config = TrainConfig(epochs=2, batch_size=16, lr=3e-2, metric="accuracy", progress=False, device="cuda")
    trainer = make_trainer(config, n_train=200)
    seen = []
    loss_fn = trainer.loss_fn

    def spy(model, batch):
        logits = model(batch["input_ids"], batch["attention_mask"])
        seen.append(logits.dtype)
        return loss_fn(model, batch)

    trainer.loss_fn = spy
    result = trainer.fit()
    assert seen and all(dtype == torch.bfloat16 for dtype in seen)
    assert result.best_metric > 0.5


def test_ema_equals_torch_averaged_model_and_is_what_is_scored_and_returned(tmp_path):
    """With ema_decay the trainer keeps the average torch.optim.swa_utils.AveragedModel keeps (EMA of each step's
    weights, started at the first step's), evaluates it, and returns it."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    decay = 0.8
    reference: dict[str, AveragedModel] = {}
    scored: list[dict] = []

    def follow(trainer, record):  # after each step: the trainer's model holds the step's own weights here
        if "model" not in reference:
            reference["model"] = AveragedModel(trainer.model, multi_avg_fn=get_ema_multi_avg_fn(decay))
        reference["model"].update_parameters(trainer.model)
        if trainer.progress.evaluations and trainer.progress.evaluations[-1]["step"] == record["step"]:
            from tests.training.helpers import accuracy

            averaged = reference["model"].module
            loader = torch.utils.data.DataLoader(trainer.eval_data, batch_size=64, collate_fn=trainer.collate_fn)
            averaged.eval()
            with torch.no_grad():
                scored.append(accuracy(averaged, loader))

    config = TrainConfig(out_dir=str(tmp_path), max_steps=12, batch_size=8, lr=5e-2, eval_every=4, log_every=1,
                         progress=False, load_best_at_end=False, ema_decay=decay, precision="fp32")
    trainer = make_trainer(config, callbacks=[follow], dropout=0.0)
    result = trainer.fit()
    ours = dict(trainer.model.named_parameters())
    for name, p in reference["model"].module.named_parameters():
        assert torch.allclose(ours[name], p, atol=1e-6, rtol=0), name
    assert [e["metrics"]["loss"] for e in result.evaluations] == pytest.approx([s["loss"] for s in scored], abs=1e-6)
    with pytest.raises(ValueError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)


def test_resume_with_ema_gives_bit_identical_weights(tmp_path):
    """The average is part of the checkpoint: a killed run resumes with it, as with the weights."""
    def config(out):
        return TrainConfig(out_dir=str(out), max_steps=10, batch_size=8, lr=1e-2, eval_every=5, checkpoint_every=3,
                           log_every=1, progress=False, load_best_at_end=False, ema_decay=0.9)

    straight = make_trainer(config(tmp_path / "straight"))
    straight.fit()
    killed = make_trainer(config(tmp_path / "killed"), callbacks=[_kill_at(5)])
    with pytest.raises(Killed):
        killed.fit()
    resumed = make_trainer(config(tmp_path / "killed"), model_seed=123)
    resumed.fit(resume=True)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for name in a:
        assert torch.equal(a[name], b[name]), name
