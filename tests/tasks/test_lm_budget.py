"""The language model's presets: time budgets recorded and printed, the chain beside, the documented tokenizer.

The budget arithmetic and the exact repeat with ``--max-steps`` are proved on an injected clock in
tests/training/test_budget.py; here the task records what the trainer planned, and the crossing point is
read off a learning curve worked out by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from glassformer.cli import build_parser
from glassformer.tasks import TASKS, lm
from glassformer.training.saved import read_config

from .test_lm_transformer import TINY

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_preset_trains_the_tokenizer_the_readme_documents():
    # The README's table of language-model presets: | `quick` | 5 minutes | bpe | ...
    text = README.read_text(encoding="utf-8")
    documented = dict(re.findall(r"^\| `(\w+)` \| (?:[\d.]+) minutes \| (\w+) \|", text, flags=re.M))
    assert documented == {name: preset.tokenizer for name, preset in lm.PRESETS.items()}
    assert lm.PRESETS["full"].tokenizer == "bpe"  # the documented full preset is BPE, not characters


def test_presets_are_time_budgets_of_five_and_thirty_minutes():
    assert (lm.PRESETS["quick"].minutes, lm.PRESETS["full"].minutes) == (5.0, 30.0)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_accepts_minutes_and_max_steps(task):
    parser = build_parser(["train", task])
    args = parser.parse_args(["train", task, "--minutes", "2.5"])
    assert args.setting__minutes == 2.5
    args = parser.parse_args(["train", task, "--max-steps", "7"])
    assert args.setting__max_steps == 7


def test_crossing_point_is_the_first_point_below_the_chain():
    curve = [{"step": 10, "seconds": 6.0, "bits_per_char": 3.1}, {"step": 20, "seconds": 12.0, "bits_per_char": 2.2},
             {"step": 30, "seconds": 18.0, "bits_per_char": 2.1}, {"step": 40, "seconds": 24.0, "bits_per_char": 2.3}]
    assert lm.crossing_point(curve, 2.159) == {"step": 30, "seconds": 18.0, "bits_per_char": 2.1}
    assert lm.crossing_point(curve, 2.0) is None


def test_shifted_windows_keep_their_count_and_move_each_pass():
    stream = torch.arange(1000)
    windows = lm.TokenWindows(stream, 10, shift_seed=3)
    offsets = []
    for epoch in range(6):
        windows.set_epoch(epoch)
        first = windows[0]
        offsets.append(int(first[0]))
        assert len(windows) == 110  # (1000 − 10 − 8) // 9 + 1, whatever the offset
        last = windows[len(windows) - 1]
        assert last.numel() == 10 and torch.equal(last, stream[int(last[0]) : int(last[0]) + 10])
        assert torch.equal(windows[1], stream[offsets[-1] + 9 : offsets[-1] + 19])  # one token of overlap
    assert len(set(offsets)) > 1 and all(0 <= o < 9 for o in offsets)
    again = lm.TokenWindows(stream, 10, shift_seed=3)
    again.set_epoch(4)
    assert int(again[0][0]) == offsets[4]  # drawn from (seed, epoch): a resumed run cuts the same windows


@pytest.mark.slow  # a 12-second budget
def test_a_budgeted_run_records_its_steps_the_chain_and_the_curve(tmp_path):
    from glassformer.data.corpora import PlaySplit

    from .test_lm_transformer import _works

    train, validation = _works(2, seed=0), _works(1, seed=1)
    split = PlaySplit(train=train, validation=validation, titles={n: n for n in {**train, **validation}}, seed=0)
    preset = lm.get_preset("quick", **{k: getattr(TINY, k) for k in ("d_model", "n_heads", "n_layers", "d_ff",
                                                                     "context", "batch_size", "eval_windows")},
                           minutes=0.2, bpe_vocab_size=300, eval_points=4, precision="fp32")
    run = lm.train_transformer(preset, data=split, out=tmp_path / "lm", progress=False)
    saved = read_config(run.out_dir)["extra"]["metrics"]
    assert saved["steps"] == run.steps
    assert saved["budget"]["minutes"] == 0.2 and saved["budget"]["step_seconds"] > 0
    if "out_of_time_at_step" in run.budget:
        # A busy machine ran the steps slower than when they were timed: the deadline stops the run, and the
        # report names both the steps done and the planned schedule to repeat.
        assert run.steps == run.budget["out_of_time_at_step"] < run.budget["steps"]
        assert saved["budget"]["out_of_time_at_step"] == run.steps
        assert f"--max-steps {run.budget['steps']}" in run.report() and f"after {run.steps}" in run.report()
    else:
        assert run.steps == run.budget["steps"]
        assert f"--max-steps {run.steps}" in run.report()
    # The chain of the best order for BPE, fitted on the same works: its figure is the one score_markov gives.
    assert run.chain["order"] == lm.BEST_MARKOV_ORDER["bpe"] and run.chain["from"] == "fitted now"
    assert len(saved["curve"]) >= 2 and saved["curve"][-1]["step"] == run.steps
    assert saved["crossing"] == lm.crossing_point(saved["curve"], run.chain["bits_per_char"])
    assert run.json()["markov"]["bits_per_char"] == run.chain["bits_per_char"]
