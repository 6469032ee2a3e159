"""`glassformer export`: what it prints, what it writes, and its one-line refusals (exit status 2, nothing written)."""

from __future__ import annotations

import json

import pytest

from glassformer.cli import main
from glassformer.cli.export import FORMATS
from glassformer.pretrained.export import FORMATS as LIBRARY_FORMATS
from tests.pretrained.helpers import sentiment_dir


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-export")
    return sentiment_dir(root / "cls"), sentiment_dir(root / "mean", pooling="mean")


def test_the_command_offers_the_librarys_formats():
    assert FORMATS == tuple(LIBRARY_FORMATS)


def test_export_writes_and_says_where(models, tmp_path, capsys):
    cls, _ = models
    assert main(["export", str(cls), "--to", "hf", "--out", str(tmp_path / "hf")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote hf to {tmp_path / 'hf'}"
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == ["BertForSequenceClassification"]
    assert main(["export", str(cls), "--to", "sentence-transformers", "--out", str(tmp_path / "st"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["format"] == "sentence-transformers" and len(printed["notes"]) == 1
    assert (tmp_path / "st" / "modules.json").is_file()


@pytest.mark.parametrize("args, needle", [
    (["export", "{mean}", "--to", "hf", "--out", "{out}"], "--pooling cls"),
    (["export", "{cls}", "--to", "tflite", "--out", "{out}"], "invalid choice: 'tflite'"),
    (["export", "{cls}", "--to", "hf"], "--out"),
    (["export", "{missing}", "--to", "onnx", "--out", "{out}"], "no directory"),
    (["export", "{cls}", "--to", "hf", "--out", "{mine}"], "was not written by glassformer"),
])
def test_refusals_are_one_line_usage_errors_and_write_nothing(args, needle, models, tmp_path, capsys):
    cls, mean = models
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("mine")
    args = [a.format(cls=cls, mean=mean, out=tmp_path / "out", missing=tmp_path / "missing", mine=tmp_path / "mine")
            for a in args]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("glassformer") and needle in err[0], err
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
