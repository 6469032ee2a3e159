"""The user's own translation pairs and labelled images: every form reads the rows that were written, splits are
seeded and disjoint, and bad data is one line (exit 2, no traceback, nothing written)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glassformer.cli import main
from glassformer.data.images import load_images, read_image
from glassformer.data.own import DataError
from glassformer.data.parallel import Columns, load_parallel, read_pairs

WORDS = ["der", "hund", "katze", "sieht", "frisst", "rote", "kleine", "maus", "ball", "heute"]
ENGLISH = ["the", "dog", "cat", "sees", "eats", "red", "small", "mouse", "ball", "today"]


def make_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """`n` distinct toy pairs: each word has one translation, in the same order."""
    rng = random.Random(seed)
    pairs: dict[str, str] = {}
    while len(pairs) < n:
        chosen = [rng.randrange(len(WORDS)) for _ in range(rng.randint(3, 6))]
        pairs[" ".join(WORDS[i] for i in chosen) + "."] = " ".join(ENGLISH[i] for i in chosen) + "."
    return list(pairs.items())


def make_images(root: Path, per_class: int = 8, colour: bool = True) -> dict[str, list[Path]]:
    """Three classes of small PNGs of different sizes: a red disc, a green square, a blue bar (grey: all white)."""
    from PIL import ImageDraw

    rng = np.random.default_rng(0)
    fills = [(255, 40, 40), (40, 255, 40), (40, 40, 255)] if colour else [255, 255, 255]
    files: dict[str, list[Path]] = {}
    for k, name in enumerate(["disc", "square", "bar"]):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            w, h = int(rng.integers(16, 48)), int(rng.integers(16, 48))
            image = Image.new("RGB" if colour else "L", (w, h), (0, 0, 0) if colour else 0)
            draw = ImageDraw.Draw(image)
            box = [w // 4, h // 4, 3 * w // 4, 3 * h // 4]
            (draw.ellipse if k == 0 else draw.rectangle)(box if k < 2 else [0, h // 3, w, 2 * h // 3], fill=fills[k])
            path = root / name / f"{i}.png"
            image.save(path)
            files.setdefault(name, []).append(path)
    return files


# --- translation pairs ---------------------------------------------------------------------------

def test_every_form_reads_the_pairs_that_were_written(tmp_path: Path) -> None:
    pairs = make_pairs(30)
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_text("id,fr,en\n" + "".join(f'{i},"{s}","{t}"\n' for i, (s, t) in enumerate(pairs)), encoding="utf-8")
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("".join(json.dumps({"translation": {"de": s, "en": t}}) + "\n" for s, t in pairs), encoding="utf-8")
    tatoeba = tmp_path / "tatoeba.tsv"
    tatoeba.write_text("".join(f"{i}\t{s}\t{i + 1000}\t{t}\n" for i, (s, t) in enumerate(pairs)), encoding="utf-8")
    (tmp_path / "a.txt").write_text("\n".join(s for s, _ in pairs) + "\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("\n".join(t for _, t in pairs) + "\n", encoding="utf-8")

    assert read_pairs(str(tsv)) == pairs
    assert read_pairs(str(csv_file), Columns("fr", "en")) == pairs
    assert read_pairs(str(jsonl), Columns(source_language="de", target_language="en")) == pairs
    assert read_pairs(str(tatoeba), Columns("2", "4")) == pairs
    assert read_pairs(f"{tmp_path / 'a.txt'},{tmp_path / 'b.txt'}") == pairs
    assert read_pairs(str(jsonl), Columns(source_language="en", target_language="de")) == [(t, s) for s, t in pairs]


def test_seeded_split_is_disjoint_by_source_and_recorded(tmp_path: Path) -> None:
    pairs = make_pairs(200)
    pairs += [(pairs[0][0], "another translation.")]  # a source with two translations stays in one split
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    corpus = load_parallel(str(tsv), seed=3)
    assert sorted(corpus.train + corpus.validation + corpus.test) == sorted(pairs)
    assert (len(corpus.validation), len(corpus.test)) in {(20, 20), (21, 20), (20, 21)}
    sources = [{s for s, _ in split} for split in (corpus.train, corpus.validation, corpus.test)]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
    assert load_parallel(str(tsv), seed=3).test == corpus.test
    assert load_parallel(str(tsv), seed=4).test != corpus.test
    assert corpus.info["seed"] == 3 and corpus.info["seeded_splits"] == ["validation", "test"]
    given = tmp_path / "test.tsv"
    given.write_text("die maus.\tthe mouse.\n", encoding="utf-8")
    with_test = load_parallel(str(tsv), test_data=str(given))
    assert with_test.test == [("die maus.", "the mouse.")] and with_test.info["seeded_splits"] == ["validation"]
    assert len(with_test.train) + len(with_test.validation) == len(pairs)


def test_hf_folder_saved_with_save_to_disk(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    pairs = make_pairs(40)
    records = [{"de": s, "en": t} for s, t in pairs]
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"translation": records[:30]}),
        "validation": datasets.Dataset.from_dict({"translation": records[30:35]}),
        "test": datasets.Dataset.from_dict({"translation": records[35:]}),
    }).save_to_disk(str(tmp_path / "set"))
    corpus = load_parallel(f"hf:{tmp_path / 'set'}", columns=Columns(source_language="de", target_language="en"))
    assert (corpus.train, corpus.validation, corpus.test) == (pairs[:30], pairs[30:35], pairs[35:])
    assert corpus.info["seeded_splits"] == []
    with pytest.raises(DataError, match="--source-language and --target-language"):
        load_parallel(f"hf:{tmp_path / 'set'}")


# --- images --------------------------------------------------------------------------------------

def test_read_image_keeps_colour_and_pads_with_the_border(tmp_path: Path) -> None:
    """A 50×30 image of one colour is that colour everywhere after padding and resizing (its border is that colour)."""
    path = tmp_path / "flat.png"
    Image.new("RGB", (50, 30), (10, 200, 30)).save(path)
    pixels = read_image(path, 16, channels=3)
    assert pixels.shape == (3, 16, 16)
    np.testing.assert_array_equal(pixels[:, 0, 0], [10, 200, 30])
    assert np.abs(pixels.astype(int) - np.array([10, 200, 30]).reshape(3, 1, 1)).max() <= 1
    grey = read_image(path, 16)
    assert grey.shape == (16, 16) and abs(int(grey[0, 0]) - round(0.299 * 10 + 0.587 * 200 + 0.114 * 30)) <= 1


def test_folder_classes_channels_and_split(tmp_path: Path) -> None:
    files = make_images(tmp_path / "rgb", per_class=10)
    data = load_images(str(tmp_path / "rgb"), 16, seed=1)
    assert data.class_names == ["bar", "disc", "square"]  # sorted folder names
    assert data.channels == 3
    sizes = {name: len(labels) for name, (_, labels) in data.splits.items()}
    assert sizes == {"train": 24, "validation": 3, "test": 3}
    # Each image's pixels are read_image of one of its class's files: the labels follow the folders.
    images, labels = data.splits["test"]
    for pixels, label in zip(images, labels):
        name = data.class_names[label]
        assert any(np.array_equal(pixels, read_image(f, 16, channels=3)) for f in files[name])
    make_images(tmp_path / "grey", per_class=4, colour=False)
    assert load_images(str(tmp_path / "grey"), 16).channels == 1


def test_hf_images_match_the_folder(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    files = make_images(tmp_path / "rgb", per_class=5)
    names = sorted(files)
    rows = {"image": [str(f) for n in names for f in files[n]], "label": [i for i, n in enumerate(names) for _ in files[n]]}
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "set"))
    from_hf = load_images(f"hf:{tmp_path / 'set'}", 16, seed=0)
    assert from_hf.class_names == names and from_hf.channels == 3
    images = np.concatenate([from_hf.splits[s][0] for s in ("train", "validation", "test")])
    labels = np.concatenate([from_hf.splits[s][1] for s in ("train", "validation", "test")])
    for pixels, label in zip(images, labels):
        assert any(np.array_equal(pixels, read_image(f, 16, channels=3)) for f in files[names[label]])


# --- bad data: one line, exit 2, nothing written --------------------------------------------------

def _bad_translate(tmp_path: Path, case: str) -> list[str]:
    good = "".join(f"{s}\t{t}\n" for s, t in make_pairs(20))
    if case == "missing column":
        path = tmp_path / "pairs.csv"
        path.write_text("fr,en\nle chien.,the dog.\n", encoding="utf-8")
        return ["--data", str(path), "--source-column", "de", "--target-column", "en"]
    if case == "empty side":
        path = tmp_path / "pairs.tsv"
        path.write_text(good + "der hund.\t \n", encoding="utf-8")
        return ["--data", str(path)]
    if case == "not utf-8":
        path = tmp_path / "pairs.tsv"
        path.write_bytes(good.encode() + "die katze.\tthe cat.\n".encode("latin-1") + b"gr\xfcn.\tgreen.\n")
        return ["--data", str(path)]
    if case == "misaligned files":
        (tmp_path / "a.txt").write_text("eins.\nzwei.\ndrei.\n", encoding="utf-8")
        (tmp_path / "b.txt").write_text("one.\ntwo.\n", encoding="utf-8")
        return ["--data", f"{tmp_path / 'a.txt'},{tmp_path / 'b.txt'}"]
    raise AssertionError(case)


def _bad_vit(tmp_path: Path, case: str) -> list[str]:
    root = tmp_path / "images"
    if case == "unreadable image":
        make_images(root, per_class=3)
        (root / "disc" / "broken.png").write_text("not a picture", encoding="utf-8")
    elif case == "class without images":
        make_images(root, per_class=3)
        (root / "empty").mkdir()
        (root / "empty" / "notes.txt").write_text("no images here", encoding="utf-8")
    elif case == "one class":
        make_images(root, per_class=3)
        for name in ("square", "bar"):
            for file in (root / name).iterdir():
                file.unlink()
            (root / name).rmdir()
    else:
        raise AssertionError(case)
    return ["--data", str(root)]


BAD = [
    ("translate", "missing column", "no source column 'de'"),
    ("translate", "empty side", r"pairs\.tsv:21: the target side is empty"),
    ("translate", "not utf-8", r"pairs\.tsv:22: not UTF-8"),
    ("translate", "misaligned files", r"a\.txt has 3 lines, .*b\.txt only 2"),
    ("vit", "unreadable image", r"disc/broken\.png is not a readable image"),
    ("vit", "class without images", r"images/empty: a class folder with no PNG or JPEG images"),
    ("vit", "one class", r"1 class folder\(s\) \['disc'\]; expected at least 2"),
]


@pytest.mark.parametrize(("task", "case", "message"), BAD, ids=[f"{t}-{c}" for t, c, _ in BAD])
def test_bad_data_is_one_line_and_writes_nothing(task: str, case: str, message: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    data.mkdir()
    flags = (_bad_translate if task == "translate" else _bad_vit)(data, case)
    out = tmp_path / "out" / "model"
    out.parent.mkdir()
    capsys.readouterr()
    assert main(["train", task, *flags, "--out", str(out), "--max-steps", "1", "--quiet"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("glassformer: error: "), captured.err
    assert "Traceback" not in captured.err
    assert re.search(message, lines[0]), lines[0]
    assert list(out.parent.iterdir()) == []  # no model directory, no lock file, nothing
