"""The user's own translation pairs: a table, two aligned text files, or a Hugging Face set.

``load_parallel(spec)`` reads:

* a ``.tsv``, ``.csv``, ``.jsonl`` (or ``.json`` lines) file with a source and a target column, named
  with ``source_column``/``target_column`` (a header's names, or 1-based field numbers for a file
  without a header: Tatoeba's ``id<TAB>sentence<TAB>id<TAB>translation`` export is ``2`` and ``4``).
  Without them, a two-column file whose first line names no column is read as ``source<TAB>target``
  lines, and a header is searched for ``source``/``src``/``input`` and ``target``/``tgt``/``output``
  columns, or columns named by the languages; JSON lines may hold ``{"translation": {"de": …, "en": …}}``;
* ``SRC,TGT``: two plain-text files with one sentence per line, line N of one translating line N of
  the other;
* ``hf:NAME[:CONFIG]``: a ``datasets`` set (:func:`glassformer.data.own.load_hf_splits`), with source
  and target columns, or a ``translation`` column of ``{language: sentence}`` read with the languages.

Splits: the set's own (hf), the files given as validation and test data, and for what is missing a
seeded cut of the distinct source sentences (10% each, at most :data:`MAX_HELD_OUT`), so pairs that
share a source stay together. Every rule about bad data raises :class:`~glassformer.data.own.DataError`
naming the file and line.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from glassformer.data.corpora import ParallelCorpus
from glassformer.data.own import DataError, existing_path, load_hf_splits, seeded_cut, spec_for_saving, utf8_lines

SOURCE_NAMES = ("source", "src", "input", "source_text")
TARGET_NAMES = ("target", "tgt", "output", "target_text", "reference")
TABLE_SUFFIXES = (".tsv", ".csv", ".jsonl", ".json")
MAX_HELD_OUT = 500  # source sentences per seeded validation or test split: each is decoded with beam search

Pair = tuple[str, str]


@dataclass(frozen=True)
class Columns:
    """How a spec's rows become pairs: column names or 1-based field numbers, and the two languages."""

    source: str | None = None
    target: str | None = None
    source_language: str | None = None
    target_language: str | None = None

    def candidates(self, side: str) -> tuple[str, ...]:
        language = self.source_language if side == "source" else self.target_language
        names = SOURCE_NAMES if side == "source" else TARGET_NAMES
        return ((language.lower(),) if language else ()) + names


def is_parallel_spec(spec: str) -> bool:
    """Whether `spec` names the user's own pairs rather than the built-in ``de-en`` set."""
    return spec != "de-en"


# --- reading one spec ----------------------------------------------------------------------------

def read_pairs(spec: str, columns: Columns = Columns(), *, split: str | None = None,
               progress: bool = False) -> list[Pair]:
    """Every pair of `spec` (of its `split` for an hf: set that has one; all of its rows otherwise)."""
    splits = read_splits(spec, columns, progress=progress)
    if split is not None and split in splits:
        return splits[split]
    return [pair for pairs in splits.values() for pair in pairs]


def read_splits(spec: str, columns: Columns = Columns(), *, progress: bool = False) -> dict[str, list[Pair]]:
    """The pairs of `spec` by split: an hf: set's own splits, ``{"all": pairs}`` for files."""
    if spec.startswith("hf:"):
        return {name: _hf_pairs(spec, name, dataset, columns) for name, dataset in load_hf_splits(spec).items()}
    parts = spec.split(",")
    if len(parts) == 2 and all(parts):
        return {"all": _aligned_files(existing_path(parts[0], "a text file of source sentences"),
                                      existing_path(parts[1], "a text file of target sentences"), progress)}
    path = existing_path(spec, "a TSV/CSV/JSONL file of pairs, SRC,TGT text files, or hf:NAME")
    if path.is_dir():
        raise DataError(f"{spec}: a folder; translation data is a TSV/CSV/JSONL file, two aligned text files "
                        f"(--data src.txt,tgt.txt) or hf:NAME")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{spec}: unsupported file type {suffix or '(none)'!r}; expected {', '.join(TABLE_SUFFIXES)}, "
                        f"or two aligned text files given as SRC,TGT")
    pairs = _json_pairs(path, columns, progress) if suffix in (".jsonl", ".json") else \
        _table_pairs(path, columns, progress)
    if not pairs:
        raise DataError(f"{spec}: no pairs in it")
    return {"all": pairs}


def _pair(where: str, source: Any, target: Any) -> Pair | None:
    """The stripped pair, None for a row empty on both sides, an error for a row empty on one."""
    for side, value in (("source", source), ("target", target)):
        if value is not None and not isinstance(value, str):
            raise DataError(f"{where}: the {side} is {type(value).__name__} {value!r}, not text")
    source, target = (source or "").strip(), (target or "").strip()
    if not source and not target:
        return None
    if not source or not target:
        raise DataError(f"{where}: the {'source' if not source else 'target'} side is empty")
    return source, target


def _aligned_files(source: Path, target: Path, progress: bool) -> list[Pair]:
    pairs = []
    lines = zip_longest(utf8_lines(source, progress=progress), utf8_lines(target))
    for left, right in lines:
        if left is None or right is None:
            shorter, longer = (source, target) if left is None else (target, source)
            reached = (left or right)[0]
            count = reached + sum(1 for _ in lines)
            raise DataError(f"{source} and {target} are not aligned: {longer} has {count} lines, {shorter} only "
                            f"{reached - 1}; line N of one must translate line N of the other")
        pair = _pair(f"{source}:{left[0]} / {target}:{right[0]}", left[1], right[1])
        if pair is not None:
            pairs.append(pair)
    if not pairs:
        raise DataError(f"{source} and {target} hold no sentences")
    return pairs


def _field_number(name: str | None) -> int | None:
    return int(name) if name is not None and name.isdigit() and int(name) > 0 else None


def _table_pairs(path: Path, columns: Columns, progress: bool) -> list[Pair]:
    tsv = path.suffix.lower() == ".tsv"
    lines = utf8_lines(path, progress=progress)
    numbers: list[int] = []

    def texts() -> Iterator[str]:
        for number, text in lines:
            numbers.append(number)
            yield text + "\n"

    reader = csv.reader(texts(), delimiter="\t" if tsv else ",", quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    first = next(reader, None)
    if first is None:
        raise DataError(f"{path}: empty file")
    wanted = (columns.source, columns.target)
    given = [_field_number(name) for name in wanted]
    if any(name is not None for name in wanted) and (given[0] is None) != (given[1] is None):
        raise DataError(f"{path}: give both columns as names (a header's) or both as field numbers, got "
                        f"--source-column {columns.source!r} and --target-column {columns.target!r}")
    if all(name is None for name in wanted) and len(first) < 2:
        raise DataError(f"{path}:1: {len(first)} field; expected source{'<TAB>' if tsv else ','}target lines, or a "
                        f"header naming a source and a target column")
    known = {name for side in ("source", "target") for name in columns.candidates(side)}
    headerless = given[0] is not None or (
        all(name is None for name in wanted) and len(first) == 2 and not known & {f.strip().lower() for f in first})
    rows: Iterable[list[str]]
    if headerless:
        src, tgt = (given[0] - 1, given[1] - 1) if given[0] is not None else (0, 1)
        header, rows, first_line = None, _chain(first, reader), 1
    else:
        header = [f.strip() for f in first]
        src, tgt = (_column(path, header, columns.source, columns.candidates("source"), "source"),
                    _column(path, header, columns.target, columns.candidates("target"), "target"))
        rows, first_line = reader, 2
    pairs = []
    width = max(src, tgt) + 1
    for row in rows:
        where = f"{path}:{numbers[-1] if numbers else first_line}"
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if header is not None and len(row) != len(header):
            raise DataError(f"{where}: {len(row)} fields, but the header names {len(header)} ({header})")
        if len(row) < width:
            raise DataError(f"{where}: {len(row)} field(s); expected at least {width} "
                            f"{'tab' if tsv else 'comma'}-separated fields (source and target)")
        pair = _pair(where, row[src], row[tgt])
        if pair is not None:
            pairs.append(pair)
    return pairs


def _chain(first: list[str], rest: Iterable[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest


def _column(where: Any, names: Sequence[str], wanted: str | None, candidates: Sequence[str], side: str) -> int:
    if wanted is not None:
        if wanted not in names:
            raise DataError(f"{where}: no {side} column {wanted!r}; the columns are {list(names)}")
        return list(names).index(wanted)
    lowered = [name.lower() for name in names]
    for name in candidates:
        if name in lowered:
            return lowered.index(name)
    raise DataError(f"{where}: cannot tell which column holds the {side}; expected one of {list(candidates)}, "
                    f"found {list(names)} (name it with --{side}-column)")


def _json_pairs(path: Path, columns: Columns, progress: bool) -> list[Pair]:
    lines = list(utf8_lines(path, progress=progress))
    if path.suffix.lower() == ".json" and "".join(text for _, text in lines[:1]).lstrip().startswith("["):
        try:
            rows = list(enumerate(json.loads("\n".join(text for _, text in lines)), 1))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        label = "item"
    else:
        rows = []
        for number, text in lines:
            if not text.strip():
                continue
            try:
                rows.append((number, json.loads(text)))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not a JSON object: {exc.msg}") from None
        label = "line"
    pairs = []
    for number, row in rows:
        where = f"{path}:{number}" if label == "line" else f"{path}: item {number}"
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object with a source and a target field")
        pair = _pair(where, *_row_sides(where, row, columns))
        if pair is not None:
            pairs.append(pair)
    return pairs


def _row_sides(where: str, row: dict[str, Any], columns: Columns) -> tuple[Any, Any]:
    nested = row.get("translation")
    if columns.source is None and columns.target is None and isinstance(nested, dict):
        return _languages(where, nested, columns)
    names = list(row)
    src = names[_column(where, names, columns.source, columns.candidates("source"), "source")]
    tgt = names[_column(where, names, columns.target, columns.candidates("target"), "target")]
    return row[src], row[tgt]


def _languages(where: str, translation: dict[str, Any], columns: Columns) -> tuple[Any, Any]:
    """The two sides of a ``{"de": …, "en": …}`` translation record, picked by the languages."""
    if not columns.source_language or not columns.target_language:
        raise DataError(f"{where}: a translation record with languages {sorted(translation)}; name the pair with "
                        f"--source-language and --target-language")
    for language in (columns.source_language, columns.target_language):
        if language not in translation:
            raise DataError(f"{where}: no {language!r} in the translation record; it holds {sorted(translation)}")
    return translation[columns.source_language], translation[columns.target_language]


def _hf_pairs(spec: str, split: str, dataset: Any, columns: Columns) -> list[Pair]:
    names = list(dataset.column_names)
    where = f"{spec} ({split} split)"
    if columns.source is None and columns.target is None and "translation" in names:
        sides = [_languages(f"{where} row {i}", record, columns) for i, record in enumerate(dataset["translation"])]
    else:
        src = _column(where, names, columns.source, columns.candidates("source"), "source")
        tgt = _column(where, names, columns.target, columns.candidates("target"), "target")
        sides = list(zip(dataset[names[src]], dataset[names[tgt]]))
    pairs = [pair for i, (source, target) in enumerate(sides) if (pair := _pair(f"{where} row {i}", source, target))]
    if not pairs:
        raise DataError(f"{where}: no pairs in it")
    return pairs


# --- splits --------------------------------------------------------------------------------------

def load_parallel(data: str, *, validation_data: str | None = None, test_data: str | None = None,
                  columns: Columns = Columns(), seed: int = 0, progress: bool = False) -> ParallelCorpus:
    """A :class:`~glassformer.data.corpora.ParallelCorpus` of the user's pairs (no dictionary: ``extra`` is empty).

    ``info`` records what a saved model needs to split the data again: the specs (paths made
    absolute), columns, languages, the seed and which splits were cut from the training data.
    """
    splits = read_splits(data, columns, progress=progress)
    pool = splits.get("train", splits.get("all", []))
    if not pool:
        raise DataError(f"{data}: no train split; its splits are {sorted(splits)}")
    given = {"validation": splits.get("validation"), "test": splits.get("test")}
    for name, spec in (("validation", validation_data), ("test", test_data)):
        if spec is not None:
            given[name] = read_pairs(spec, columns, split=name, progress=progress)
    missing = [name for name in ("validation", "test") if given[name] is None]
    cut = seeded_cut([source for source, _ in pool], seed, parts=len(missing), max_held_out=MAX_HELD_OUT)
    for name, indices in zip(missing, cut[1:]):
        given[name] = [pool[i] for i in indices]
    train = [pool[i] for i in cut[0]]
    info = {"source": spec_for_saving(data), "validation_data": spec_for_saving(validation_data),
            "test_data": spec_for_saving(test_data), "source_column": columns.source,
            "target_column": columns.target, "source_language": columns.source_language,
            "target_language": columns.target_language, "seed": seed, "seeded_splits": missing,
            "sizes": {"train": len(train), "validation": len(given["validation"]), "test": len(given["test"])}}
    return ParallelCorpus(train, list(given["validation"]), list(given["test"]), [], info)
