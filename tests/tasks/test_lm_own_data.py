"""`train lm --data`: the language model on the user's own text file, folder or hf: set, from the command line.

Each model trains a few steps of a tiny preset; the checks are about the data: which text was trained on,
which was held out (scored again through `eval --data` on a file holding exactly that text), what the
Markov baseline was fitted on and where it is cached, and that bad data stops with one line and
nothing written.
"""

from __future__ import annotations

import json
import random
import re

import pytest

from glassformer.cli import main
from glassformer.data import lmtext
from glassformer.data.text import split_order
from glassformer.tasks import lm

TINY = ["--d-model", "32", "--n-heads", "4", "--n-layers", "2", "--d-ff", "64", "--context", "32", "--batch-size",
        "8", "--max-steps", "3", "--eval-windows", "4", "--eval-points", "1", "--bpe-vocab-size", "300", "--quiet"]


def _lines(seed: int, n: int) -> str:
    rng = random.Random(seed)
    words = "the cat sees a dog and my lord loves the king who fears his crown under a pale moon".split()
    return "".join(" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) + ".\n" for _ in range(n))


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """glassformer's cache for this module: a fresh folder, so the real cache is neither read nor written."""
    root = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GLASSFORMER_HOME", str(root))
        yield root


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("file") / "mine.txt"
    path.write_text(_lines(0, 300) + "Ünïcode ends it — ok.\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def text_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder") / "texts"
    (root / "more").mkdir(parents=True)
    for i in range(6):
        (root / ("more" if i % 2 else "") / f"doc{i}.txt").write_text(_lines(i + 1, 60), encoding="utf-8")
    (root / "README.md").write_text("not a text file for the model\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def file_model(home, text_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "file-model"
    assert main(["train", "lm", "--data", str(text_file), "--tokenizer", "char", "--out", str(out), *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def folder_model(home, text_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "folder-model"
    assert main(["train", "lm", "--data", str(text_folder), "--out", str(out), "--seed", "3", *TINY]) == 0
    return out


def _extra(out) -> dict:
    return json.loads((out / "config.json").read_text(encoding="utf-8"))["extra"]


def _eval_json(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["eval", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow  # trains two tiny models for the module (about 15 s of CPU)
def test_one_file_trains_on_its_head_and_scores_its_last_five_percent(file_model, text_file, home, tmp_path,
                                                                      capsys):
    extra = _extra(file_model)
    raw = text_file.read_bytes()
    cut = extra["validation_tail"]["from_byte"]
    assert extra["data"] == str(text_file.resolve()) and 0.04 < 1 - cut / len(raw) < 0.06
    # The character vocabulary is the training part's characters: nothing of Shakespeare, nothing held out.
    tokenizer = lm.load_lm(file_model).tokenizer
    assert set(tokenizer.char_to_id) == set(raw[:cut].decode("utf-8"))
    held_out = tmp_path / "held.txt"
    held_out.write_bytes(raw[cut:])
    recorded = extra["metrics"]["validation"]
    assert recorded["n"] == len(raw[cut:].decode("utf-8"))
    assert _eval_json(capsys, file_model, "--data", held_out)["bits_per_char"] == pytest.approx(
        recorded["bits_per_char"], rel=1e-6)
    again = _eval_json(capsys, file_model)
    assert again["bits_per_char"] == pytest.approx(recorded["bits_per_char"], rel=1e-6)
    # The Markov baseline was fitted on this text and cached under its identity, not as a Shakespeare chain.
    chain = extra["metrics"]["markov"]
    assert chain["data"] == str(text_file.resolve()) and chain["tokenizer"] == "char"
    assert again["markov"]["bits_per_char"] == pytest.approx(chain["bits_per_char"])
    assert again["markov"]["from"].startswith(str(home / "lm-baselines"))
    assert not (home / "models").exists()


@pytest.mark.slow  # trains two tiny models for the module (about 15 s of CPU)
def test_a_folder_holds_out_whole_files_and_generates(folder_model, text_folder, capsys):
    extra = _extra(folder_model)
    held = extra["validation_files"]
    assert held and set(held) <= {str(p.relative_to(text_folder)) for p in text_folder.rglob("*.txt")}
    assert held == lmtext.load_corpus(str(text_folder), seed=3).info["validation_files"]  # the seed's choice
    texts = [(text_folder / name).read_text(encoding="utf-8") for name in held]
    assert extra["metrics"]["validation"]["n"] == sum(map(len, texts))
    if len(held) == 1:
        scored = _eval_json(capsys, folder_model, "--data", text_folder / held[0])
        assert scored["bits_per_char"] == pytest.approx(extra["metrics"]["validation"]["bits_per_char"], rel=1e-6)
    whole = _eval_json(capsys, folder_model, "--data", text_folder)
    assert whole["n"] == sum(len(p.read_text(encoding="utf-8")) for p in text_folder.rglob("*.txt"))
    assert main(["generate", str(folder_model), "--prompt", "the king", "--max-new-tokens", "5", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("the king")


@pytest.mark.slow  # trains a tiny model (about 5 s of CPU)
def test_validation_and_test_files_replace_the_held_out_part(home, text_file, tmp_path, capsys):
    valid, test = tmp_path / "valid.txt", tmp_path / "test.txt"
    valid.write_text(_lines(7, 20), encoding="utf-8")
    test.write_text(_lines(8, 15), encoding="utf-8")
    out = tmp_path / "model"
    assert main(["train", "lm", "--data", str(text_file), "--validation-data", str(valid), "--test-data", str(test),
                 "--out", str(out), *TINY]) == 0
    extra = _extra(out)
    assert extra["metrics"]["validation"]["n"] == len(valid.read_text(encoding="utf-8"))
    assert extra["metrics"]["test"]["n"] == len(test.read_text(encoding="utf-8"))
    tested = _eval_json(capsys, out, "--split", "test")
    assert tested["bits_per_char"] == pytest.approx(_eval_json(capsys, out, "--data", test)["bits_per_char"],
                                                    rel=1e-6)


def test_markov_chain_on_own_text(home, text_file, tmp_path, capsys):
    out = tmp_path / "chain"
    assert main(["train", "lm", "--model", "markov", "--order", "2", "--data", str(text_file), "--out", str(out),
                 "--tokenizer", "char", "--json", "--quiet"]) == 0
    extra = _extra(out)
    assert extra["data"] == str(text_file.resolve()) and extra["validation_tail"]["from_byte"] > 0
    assert _eval_json(capsys, out)["bits_per_char"] == pytest.approx(extra["metrics"]["validation"]["bits_per_char"])


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    datasets = pytest.importorskip("datasets")
    root = tmp_path_factory.mktemp("hf") / "set"
    lines = _lines(11, 200).splitlines()
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"body": lines, "id": list(range(len(lines)))})}
                         ).save_to_disk(str(root))
    return root, lines


@pytest.mark.slow  # trains a tiny model (about 5 s of CPU)
def test_hf_folder_with_a_text_column(home, hf_folder, tmp_path, capsys):
    root, lines = hf_folder
    out = tmp_path / "hf-model"
    assert main(["train", "lm", "--data", f"hf:{root}", "--text-column", "body", "--out", str(out), *TINY]) == 0
    extra = _extra(out)
    assert extra["text_column"] == "body"
    # A seeded 5% of the rows (10 of 200) is held out, each row a document, drawn as sentiment draws its splits.
    held = split_order([str(i) for i in range(len(lines))], 0)[:10]
    assert extra["metrics"]["validation"]["n"] == sum(len(lines[i]) for i in held)
    whole = _eval_json(capsys, out, "--data", f"hf:{root}")  # the text column comes from the saved model
    assert whole["n"] == sum(map(len, lines))


# --- bad data: one line, exit 2, nothing written ---------------------------------------------------------

def _bad_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("first line\nsecond line\ncaf\xe9 au lait\n".encode("latin-1"))
    return [str(path)], r"latin1\.txt:3: not valid UTF-8"


def _empty_file(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    return [str(tmp_path / "empty.txt")], "empty file"


def _empty_folder(tmp_path):
    (tmp_path / "nothing").mkdir()
    return [str(tmp_path / "nothing")], "empty folder"


def _folder_without_text(tmp_path):
    (tmp_path / "pictures" / "deep").mkdir(parents=True)
    (tmp_path / "pictures" / "deep" / "a.png").write_bytes(b"\x89PNG")
    return [str(tmp_path / "pictures")], "no .txt files"


def _one_line(tmp_path):
    (tmp_path / "line.txt").write_text("one line and no other", encoding="utf-8")
    return [str(tmp_path / "line.txt")], "one line of text cannot be split"


def _hf_without_text_column(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"body": ["a b c", "d e f"], "id": [1, 2]}).save_to_disk(str(tmp_path / "set"))
    return [f"hf:{tmp_path / 'set'}"], "name it with --text-column"


def _hf_wrong_text_column(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"body": ["a b c", "d e f"]}).save_to_disk(str(tmp_path / "set"))
    return [f"hf:{tmp_path / 'set'}", "--text-column", "text"], "no text column 'text'"


@pytest.mark.parametrize("case", [_bad_utf8, _empty_file, _empty_folder, _folder_without_text, _one_line,
                                  _hf_without_text_column, _hf_wrong_text_column])
def test_bad_data_is_one_line_exit_2_and_nothing_written(case, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    monkeypatch.setenv("GLASSFORMER_HOME", str(home))
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    args, message = case(data_dir)
    runs = tmp_path / "runs"
    runs.mkdir()
    capsys.readouterr()
    assert main(["train", "lm", "--data", *args, "--out", str(runs / "model"), *TINY]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert list(runs.iterdir()) == [] and not home.exists()
