"""Adding a task is one file: registered by name, it gets `train TASK` flags from its preset, `eval`, and pipeline()."""

from __future__ import annotations

import json

from glassformer.cli import main
from glassformer.tasks import TASKS, register_task
from glassformer.tasks.pipeline import pipeline


def test_a_task_module_alone_gives_cli_eval_and_pipeline(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(TASKS, "toy", "tests.architecture.toy_task")
    register_task("toy", "tests.architecture.toy_task")
    out = tmp_path / "model"
    # Flags made from the preset's fields: a float, an int and an on/off switch, plus the task's own option.
    assert main(["train", "toy", "--preset", "full", "--scale", "2.0", "--minimum", "1", "--strict",
                 "--texts", "ab|abcd", "--out", str(out), "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["threshold"] == 6.0  # 2.0 × mean length 3
    assert main(["eval", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"long": 0, "n": 2}
    assert main(["eval", str(out), "--probe", "a much longer text", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"long": 1, "n": 1}
    assert main(["eval", str(out), "--beam", "3"]) == 2  # another task's option is refused by name
    assert "--beam applies to translate models" in capsys.readouterr().err
    classify = pipeline("toy", model=out)
    assert [r["label"] for r in classify(["abcdefg", "ab"])] == ["long", "short"]
    assert main(["predict", str(out), "abcdefg", "ab"]) == 0  # the CLI prints the predictor's format
    assert capsys.readouterr().out.splitlines() == ["long abcdefg", "short ab"]
    assert main(["train", "toy", "--help"]) == 0
    assert "--minimum MINIMUM" in capsys.readouterr().out
