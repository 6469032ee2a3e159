"""The shared train skeleton (glassformer.tasks.run) on a tiny classifier: what a failed run leaves, and a resumed one saves.

The four tasks' own tests cover a successful run; here a run fails inside training and the directory is
compared with what was there before: the writer's lock is given back and nothing is left but the
checkpoints that ``resume=True`` continues from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from glassformer.data.batching import PaddingCollator
from glassformer.errors import OutputExistsError
from glassformer.tasks.run import TrainingRun
from glassformer.training import TrainConfig, Trainer, register_model_class
from glassformer.training.saved import load_saved
from tests.training.helpers import TinyClassifier, TinyConfig, accuracy, classification_loss, make_examples

register_model_class(TinyClassifier)


@dataclass(frozen=True)
class TinyPreset:
    name: str = "tiny"
    max_steps: int = 6

    def train_config(self, out_dir: str, *, seed: int, progress: bool) -> TrainConfig:
        return TrainConfig(out_dir=out_dir, max_steps=self.max_steps, batch_size=8, lr=1e-2, eval_every=3,
                           checkpoint_every=2, log_every=1, seed=seed, progress=progress, precision="fp32")


TASK = SimpleNamespace(TASK="tiny", default_out_dir=lambda preset: Path("unused"))


class Killed(Exception):
    """Stands in for anything that stops a run inside training."""


def _train(out: Path, *, resume: bool = False, kill_at: int | None = None) -> TrainingRun:
    def stop(trainer: Trainer, record: dict) -> None:
        if record["step"] == kill_at:
            raise Killed

    run = TrainingRun.begin(TASK, TinyPreset(), {})
    with run.claim(out, resume=resume):
        torch.manual_seed(0)
        train, valid = make_examples(64, seed=1), make_examples(16, seed=2)
        trainer = Trainer(TinyClassifier(TinyConfig()), run.train_config(seed=0, progress=False), train,
                          collate_fn=PaddingCollator(pad_id=0), loss_fn=classification_loss, eval_data=valid,
                          evaluate=accuracy, callbacks=[stop])
        run.fit(trainer, resume=resume)
        run.save(trainer.model, {"metrics": {"validation_accuracy": run.best_metric, **run.figures()}})
    return run


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_run_that_fails_in_training_leaves_only_its_checkpoints_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "model"
    with pytest.raises(Killed):
        _train(out, kill_at=5)
    left = _listing(tmp_path)
    # No lock file, no half-written model beside the directory; inside it, only the run's own folder.
    assert [name for name in left if "/" not in name] == ["model"]
    assert {name.split("/")[1] for name in left if name.startswith("model/")} == {"run"}
    assert "model/run/checkpoints/last.pt" in left
    with pytest.raises(OutputExistsError, match="unfinished training run; pass --resume"):
        _train(out)

    run = _train(out, resume=True)
    assert [name for name in _listing(tmp_path) if "/" not in name] == ["model"]  # the lock went with the save
    assert not (out / "run").exists()  # the saved model replaced the checkpoints
    saved = load_saved(out)
    assert saved.task == "tiny"
    metrics = saved.extra["metrics"]
    assert metrics["steps"] == run.result.steps == 6
    assert metrics["precision"] == "fp32"
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in logged if record["kind"] == "train"] == [1, 2, 3, 4, 5, 6]  # both parts


def test_a_run_that_fails_before_training_leaves_nothing(tmp_path: Path) -> None:
    run = TrainingRun.begin(TASK, TinyPreset(), {})
    with pytest.raises(ValueError, match="bad data"), run.claim(tmp_path / "model"):
        assert [p.name for p in tmp_path.iterdir()] == [".model.lock"]  # held while the block runs
        raise ValueError("bad data")
    assert list(tmp_path.iterdir()) == []
