"""A time budget (``--minutes``): the steps that fit, a schedule laid over them, and a run that --max-steps repeats.

The clock is injected: every forward pass of the model advances it by a fixed amount, so a step and
an evaluation take known simulated seconds and the planned step count can be worked out by hand.
"""

from __future__ import annotations

import pytest
import torch

from glassformer.data.batching import PaddingCollator
from glassformer.errors import ConfigError
from glassformer.tasks import lm, sentiment, vit
from glassformer.tasks.base import with_overrides
from glassformer.training import TrainConfig, Trainer
from glassformer.training.trainer import plan_steps

from .helpers import TinyClassifier, TinyConfig, accuracy, classification_loss, make_examples

FORWARD_SECONDS = 0.25  # each forward pass: one per training step, one per evaluation batch


class FakeClock:
    """Seconds that pass only when the model runs (slower by `factor` once `slow_down` is called)."""

    def __init__(self) -> None:
        self.now, self.factor = 1000.0, 1.0

    def __call__(self) -> float:
        return self.now

    def tick(self, *_: object) -> None:
        self.now += FORWARD_SECONDS * self.factor


def _trainer(config: TrainConfig, clock: FakeClock, callbacks=()) -> Trainer:
    torch.manual_seed(0)
    model = TinyClassifier(TinyConfig(dropout=0.1))
    model.register_forward_pre_hook(clock.tick)
    train, valid = make_examples(96, seed=1), make_examples(40, seed=2)  # 12 training batches, 5 evaluation batches
    return Trainer(model, config, train, collate_fn=PaddingCollator(pad_id=0), loss_fn=classification_loss,
                   eval_data=valid, evaluate=accuracy, lengths=[len(e["input_ids"]) for e in train],
                   eval_lengths=[len(e["input_ids"]) for e in valid], callbacks=callbacks, clock=clock)


def _config(**changes) -> TrainConfig:
    settings = dict(batch_size=8, lr=1e-2, min_lr_ratio=0.1, warmup_steps=3, metric="accuracy", log_every=1,
                    progress=False, load_best_at_end=False, precision="fp32")
    return TrainConfig(**{**settings, **changes})


def test_plan_steps_by_hand():
    # 100 s, 8% margin: 92 s; 2 s held for the closing work (4 evaluations of 0.5 s).
    # Evaluating every 10 steps: (90 − 0.5) / (0.2 + 0.5 / 10) = 358.
    assert plan_steps(100, 0.2, 0.5, eval_every=10, reserve_evals=4) == 358
    # A fixed 16 evaluations: (92 − 8) / 0.2 = 420.
    assert plan_steps(100, 0.2, 0.5, eval_points=16) == 420
    assert plan_steps(100, 0.2, 0.5, eval_points=16, margin=0.0) == 460
    # Nothing fits: still one step.
    assert plan_steps(1, 5.0, 0.0) == 1


def test_budget_plans_steps_from_timed_steps_and_ends_in_time():
    clock = FakeClock()
    records: list[dict] = []
    trainer = _trainer(_config(max_minutes=0.5), clock, callbacks=[lambda _, record: records.append(record)])
    started = clock()
    result = trainer.fit()
    # Timing: 10 steps (2.5 s) and one evaluation of 5 batches (1.25 s), so 26.25 s remain; 8% margin;
    # an evaluation at each epoch's end (12 steps) and one at the last step:
    # ⌊(26.25 · 0.92 − 1.25) / (0.25 + 1.25 / 12)⌋ = ⌊64.66⌋ = 64.
    assert result.budget["step_seconds"] == pytest.approx(0.25)
    assert result.budget["eval_seconds"] == pytest.approx(1.25)
    assert result.steps == result.budget["steps"] == 64
    assert clock() - started <= 30.0
    # The schedule is laid over the planned steps: warmup from the first, the cosine floor at the last.
    assert records[0]["lr"] == pytest.approx(1e-2 / 3)
    assert records[-1]["lr"] == pytest.approx(1e-3)


def test_max_steps_repeats_a_budgeted_run_exactly():
    budgeted = _trainer(_config(max_minutes=0.5), FakeClock())
    result = budgeted.fit()
    repeated = _trainer(_config(max_steps=result.steps), FakeClock())
    assert repeated.fit().steps == result.steps
    for (name, a), (_, b) in zip(budgeted.model.state_dict().items(), repeated.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_run_slower_than_timed_stops_at_the_deadline():
    clock = FakeClock()

    def slow_down(trainer: Trainer, record: dict) -> None:
        clock.factor = 3.0  # every step after the timing is three times slower than timed

    trainer = _trainer(_config(max_minutes=0.5), clock, callbacks=[slow_down])
    started = clock()
    result = trainer.fit()
    assert result.steps < result.budget["steps"]
    assert result.budget["out_of_time_at_step"] == result.steps
    assert result.evaluations[-1]["step"] == result.steps  # the model the run ends with is scored
    assert clock() - started <= 30.0 + 3 * FORWARD_SECONDS * 6  # at most one step and its evaluation late


def _faster_after_the_first_step(clock: FakeClock):
    def speed_up(trainer: Trainer, record: dict) -> None:
        clock.factor = 0.5  # the training steps run twice as fast as the ten the plan timed

    return speed_up


def test_a_budget_plans_again_at_the_warmups_end_from_the_steps_taken():
    clock = FakeClock()
    records: list[dict] = []
    trainer = _trainer(_config(max_minutes=1.0, warmup_steps=20), clock,
                       callbacks=[_faster_after_the_first_step(clock), lambda _, record: records.append(record)])
    started = clock()
    result = trainer.fit()
    budget, again = result.budget, result.budget["replanned"]
    # The first plan, from the timed steps: (56.25 s · 0.92 − 1.25) / (0.25 + 1.25 / 12) = 142 steps.
    assert budget["first_plan_steps"] == 142
    # Steps 3–20 took 0.125 s each; the rest of the budget is planned again from them, with the timed evaluation.
    assert again["at_step"] == 20 and again["step_seconds"] == pytest.approx(0.125)
    assert result.steps == budget["steps"] == 20 + plan_steps(again["seconds_left"], 0.125, 1.25, steps_per_epoch=12)
    assert result.steps > 142 and clock() - started <= 60.0
    # The rate goes on from the warm-up's peak (not from the new schedule's step 0) and decays over the new total.
    assert records[19]["lr"] == pytest.approx(1e-2)
    assert records[-1]["lr"] == pytest.approx(1e-3)


def test_max_steps_repeats_a_replanned_run_exactly():
    clock = FakeClock()
    budgeted = _trainer(_config(max_minutes=1.0, warmup_steps=20), clock,
                        callbacks=[_faster_after_the_first_step(clock)])
    result = budgeted.fit()
    assert result.steps != result.budget["first_plan_steps"]
    repeated = _trainer(_config(max_steps=result.steps, warmup_steps=20), FakeClock())
    assert repeated.fit().steps == result.steps
    for (name, a), (_, b) in zip(budgeted.model.state_dict().items(), repeated.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_short_warmup_or_a_curriculum_keeps_the_first_plan():
    for changes in ({"warmup_steps": 3}, {"warmup_steps": 20, "timing_step": 5}):
        clock = FakeClock()
        result = _trainer(_config(max_minutes=1.0, **changes), clock,
                          callbacks=[_faster_after_the_first_step(clock)]).fit()
        assert "replanned" not in result.budget and result.steps == result.budget["steps"] == 142


def test_a_preset_without_steps_epochs_or_minutes_is_refused():
    from dataclasses import replace

    from glassformer.tasks import translate

    with pytest.raises(ConfigError, match="preset 'quick' sets neither max_steps nor minutes"):
        replace(lm.get_preset("quick"), minutes=None)  # its max_steps is None: the budget was its length
    with pytest.raises(ConfigError, match="preset 'quick' sets neither max_steps nor minutes"):
        replace(translate.get_preset("quick"), minutes=None)
    assert replace(lm.get_preset("quick"), minutes=None, max_steps=10).max_steps == 10


def test_asking_for_steps_replaces_a_presets_budget():
    quick = lm.get_preset("quick")
    assert quick.minutes == 5.0 and quick.max_steps is None
    fixed = with_overrides(quick, {"max_steps": 1000}, "lm")
    assert fixed.max_steps == 1000 and fixed.minutes is None
    with pytest.raises(ConfigError, match="minutes and max_steps"):
        with_overrides(quick, {"max_steps": 1000, "minutes": 3.0}, "lm")
    assert with_overrides(vit.get_preset("quick"), {"minutes": 2.0}, "vit").minutes == 2.0
    assert with_overrides(sentiment.get_preset("quick"), {"epochs": 2}, "sentiment").minutes is None
