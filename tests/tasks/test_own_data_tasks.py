"""Translation and vision trained on the user's own files from the CLI, then `eval --data` and prediction.

The scores are checked against independent computations: `eval --data`'s BLEU against sacrebleu run here on
the `translate` command's own output, and its accuracy against `classify-image`'s labels of the same files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from glassformer.cli import main
from glassformer.training.saved import read_config
from tests.conftest import torch_threads
from tests.data.test_own_data import make_images, make_pairs

TINY_TRANSLATE = ["--vocab-size", "300", "--d-model", "32", "--n-heads", "2", "--n-encoder-layers", "1",
                  "--n-decoder-layers", "1", "--d-ff", "64", "--max-length", "32", "--max-tokens", "800",
                  "--max-steps", "30", "--warmup-steps", "5", "--eval-every", "15", "--beam-size", "2",
                  "--precision", "fp32", "--quiet"]
TINY_VIT = ["--image-size", "16", "--patch-size", "4", "--d-model", "32", "--n-heads", "2", "--n-layers", "1",
            "--d-ff", "64", "--max-steps", "15", "--batch-size", "16", "--threads", "1", "--precision", "fp32",
            "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _json(capsys: pytest.CaptureFixture) -> object:
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pairs")
    pairs = make_pairs(200)
    (root / "pairs.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    (root / "more.de").write_text("".join(f"{s}\n" for s, _ in make_pairs(30, seed=9)), encoding="utf-8")
    (root / "more.en").write_text("".join(f"{t}\n" for _, t in make_pairs(30, seed=9)), encoding="utf-8")
    return {"tsv": root / "pairs.tsv", "src": root / "more.de", "tgt": root / "more.en", "root": root}


@pytest.fixture(scope="module")
def translate_model(pair_files: dict[str, Path]) -> Path:
    out = pair_files["root"] / "model"
    with torch_threads(1):  # given back after: a module fixture must not leave the session on one thread
        assert main(["train", "translate", "--data", str(pair_files["tsv"]), "--source-language", "de",
                     "--target-language", "en", "--out", str(out), *TINY_TRANSLATE]) == 0
    return out


def test_translate_trains_on_a_tsv_and_records_the_split(translate_model: Path, pair_files: dict[str, Path],
                                                         capsys: pytest.CaptureFixture) -> None:
    extra = read_config(translate_model)["extra"]
    assert extra["data"] == str(pair_files["tsv"].resolve())
    assert (extra["source_language"], extra["target_language"]) == ("de", "en")
    assert extra["sizes"] == {"train": 160, "validation": 20, "test": 20}
    assert extra["metrics"]["n_test"] == 20 and "dictionary_bleu" not in extra["metrics"]
    capsys.readouterr()
    assert main(["eval", str(translate_model), "--json"]) == 0
    again = _json(capsys)
    assert again["n"] == 20 and again["bleu"] == pytest.approx(extra["metrics"]["test_bleu"])
    assert "retrieval_bleu" in again and "dictionary_bleu" not in again

    from glassformer.tasks.translate import Translator, language_names

    assert Translator.load(translate_model).languages == ("de", "en")
    assert language_names(translate_model) == ("German", "English")


def test_translate_eval_data_is_sacrebleu_of_the_translations(translate_model: Path, pair_files: dict[str, Path],
                                                              capsys: pytest.CaptureFixture) -> None:
    import sacrebleu

    sources = pair_files["src"].read_text(encoding="utf-8").splitlines()
    references = pair_files["tgt"].read_text(encoding="utf-8").splitlines()
    capsys.readouterr()
    assert main(["eval", str(translate_model), "--data", f"{pair_files['src']},{pair_files['tgt']}",
                 "--beam", "1", "--json"]) == 0
    scored = _json(capsys)
    assert main(["translate", str(translate_model), "--beam", "1", "--json", *sources]) == 0
    hypotheses = [row["translation"] for row in _json(capsys)]
    assert scored["n"] == len(sources) == 30
    assert scored["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)
    assert scored["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score)


def test_translate_eval_reads_a_local_hf_folder(translate_model: Path, pair_files: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture) -> None:
    datasets = pytest.importorskip("datasets")
    sources = pair_files["src"].read_text(encoding="utf-8").splitlines()
    references = pair_files["tgt"].read_text(encoding="utf-8").splitlines()
    records = [{"de": s, "en": t} for s, t in zip(sources, references)]
    datasets.DatasetDict({"test": datasets.Dataset.from_dict({"translation": records})}).save_to_disk(
        str(tmp_path / "set"))
    capsys.readouterr()
    assert main(["eval", str(translate_model), "--data", f"{pair_files['src']},{pair_files['tgt']}", "--json"]) == 0
    from_files = _json(capsys)
    assert main(["eval", str(translate_model), "--data", f"hf:{tmp_path / 'set'}", "--json"]) == 0
    from_hf = _json(capsys)
    assert from_hf["n"] == 30 and from_hf["bleu"] == pytest.approx(from_files["bleu"])


def test_translate_refuses_dictionary_settings_with_own_data(pair_files: dict[str, Path], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "model"
    assert main(["train", "translate", "--data", str(pair_files["tsv"]), "--hints", "2", "--out", str(out)]) == 2
    assert "--hints read the de-en dictionary" in capsys.readouterr().err
    assert main(["train", "translate", "--data", str(pair_files["tsv"]), "--fuzzy", "--out", str(out)]) == 2
    assert "--fuzzy matches against the de-en training pairs" in capsys.readouterr().err
    assert main(["train", "translate", "--data", str(pair_files["tsv"]), "--dictionary-bias", "2", "--out",
                 str(out)]) == 2
    assert "--dictionary-bias and --dictionary-training favour the de-en dictionary's words" in capsys.readouterr().err
    assert main(["train", "translate", "--data", str(pair_files["tsv"]), "--dictionary-training", "--out",
                 str(out)]) == 2
    assert "--dictionary-bias and --dictionary-training favour" in capsys.readouterr().err
    assert not out.exists()


# --- vision --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[Path]]]:
    root = tmp_path_factory.mktemp("images") / "shapes"
    return root, make_images(root, per_class=10)


@pytest.fixture(scope="module")
def vit_model(image_folder: tuple[Path, dict[str, list[Path]]]) -> Path:
    out = image_folder[0].parent / "model"
    with torch_threads(1):
        assert main(["train", "vit", "--data", str(image_folder[0]), "--out", str(out), "--shift", "1", "--flip",
                     *TINY_VIT]) == 0
    return out


def test_vit_trains_on_a_folder_with_its_channels(vit_model: Path, image_folder: tuple[Path, dict[str, list[Path]]],
                                                  capsys: pytest.CaptureFixture) -> None:
    config = read_config(vit_model)
    assert config["label_names"] == ["bar", "disc", "square"]
    extra = config["extra"]
    assert extra["image_reading"] == {"channels": 3, "size": 16, "invert_light": False}
    assert len(extra["image_mean"]) == 3 and extra["split_sizes"] == {"train": 24, "validation": 3, "test": 3}
    capsys.readouterr()
    assert main(["eval", str(vit_model), "--json"]) == 0
    assert _json(capsys)["n"] == 3


def test_vit_eval_data_agrees_with_classify_image(vit_model: Path, image_folder: tuple[Path, dict[str, list[Path]]],
                                                  capsys: pytest.CaptureFixture) -> None:
    root, files = image_folder
    capsys.readouterr()
    assert main(["eval", str(vit_model), "--data", str(root), "--json"]) == 0
    scored = _json(capsys)
    paths = [str(f) for name in sorted(files) for f in files[name]]
    # eval computes in fp32; so must the classification it is compared with (bf16 can flip a near tie).
    assert main(["classify-image", str(vit_model), "--precision", "fp32", "--json", *paths]) == 0
    labels = [row["label"] for row in _json(capsys)]
    truth = [name for name in sorted(files) for _ in files[name]]
    assert scored["n"] == 30
    assert scored["accuracy"] == pytest.approx(np.mean([a == b for a, b in zip(labels, truth)]))


def test_vit_trains_on_a_local_hf_folder(image_folder: tuple[Path, dict[str, list[Path]]], tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    datasets = pytest.importorskip("datasets")
    _, files = image_folder
    rows = {"picture": [str(f) for name in sorted(files) for f in files[name]],
            "kind": [name for name in sorted(files) for _ in files[name]]}
    features = datasets.Features({"picture": datasets.Image(), "kind": datasets.Value("string")})
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "set"))
    out = tmp_path / "model"
    assert main(["train", "vit", "--data", f"hf:{tmp_path / 'set'}", "--image-column", "picture", "--label-column",
                 "kind", "--out", str(out), *TINY_VIT]) == 0
    assert read_config(out)["label_names"] == ["bar", "disc", "square"]
    capsys.readouterr()
    assert main(["classify-image", str(out), "--json", rows["picture"][0]]) == 0
    assert _json(capsys)[0]["label"] in {"bar", "disc", "square"}


@pytest.mark.parametrize("task", ["translate", "vit"])
def test_help_lists_the_own_data_flags(task: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["train", task, "--help"]) == 0
    shown = capsys.readouterr().out
    for flag in ("--data", "--validation-data", "--test-data"):
        assert flag in shown
