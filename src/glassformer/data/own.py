"""What every reader of the user's own data shares: bad data as one clear error, UTF-8 lines with their numbers,
progress on slow reads, local Hugging Face sets and a seeded split.

The translation pairs (:mod:`glassformer.data.parallel`) and the image folders
(:mod:`glassformer.data.images`) are read through these helpers, so every kind of data refuses the
same mistakes with the same kind of message: the file, the line (or the image's path) and what was
expected there. A :class:`DataError` is a :class:`~glassformer.errors.UsageError`: the CLI prints it
as one line and exits with status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from glassformer.data.text import split_order
from glassformer.errors import UsageError

SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation",
                 "val": "validation", "dev": "validation", "test": "test"}
# A file at least this large gets a progress bar while it is read (smaller ones are read in well under a second).
PROGRESS_BYTES = 16 * 2**20


class DataError(UsageError):
    """The user's data cannot be used as given; the message names the file (and line) and what was expected."""


def progress_bar(total: int | None, description: str, *, enabled: bool, unit: str = "B") -> Any:
    """A tqdm bar on standard error (disabled: a bar that draws nothing and costs nothing)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit=unit, unit_scale=unit == "B", leave=False, file=sys.stderr,
                disable=not enabled, dynamic_ncols=True)


def utf8_lines(path: str | Path, *, progress: bool = False) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line of `path` (line ends removed), read in pieces as the caller asks.

    Each line is decoded on its own, so text that is not UTF-8 is reported with its line number; a
    byte-order mark at the start is dropped. Files of :data:`PROGRESS_BYTES` or more show a progress bar.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle, progress_bar(size, f"reading {path.name}",
                                                  enabled=progress and size >= PROGRESS_BYTES) as bar:
        for number, raw in enumerate(handle, 1):
            bar.update(len(raw))
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{number}: not UTF-8 text (byte {raw[exc.start]:#04x} at column "
                                f"{exc.start + 1}); glassformer reads UTF-8 files") from None
            if number == 1:
                text = text.removeprefix("\ufeff")
            yield number, text.rstrip("\r\n")


def existing_path(spec: str, what: str) -> Path:
    """`spec` as a path that exists, or a DataError saying what was expected instead."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise DataError(f"{spec!r}: no such file or folder; expected {what}")
    return path


def spec_for_saving(spec: str | None) -> str | None:
    """`spec` as a saved model should remember it: hf: names as given, paths made absolute."""
    if spec is None or spec.startswith("hf:"):
        return spec
    parts = spec.split(",")
    if len(parts) > 1:
        return ",".join(spec_for_saving(part) or part for part in parts)
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


# --- Hugging Face datasets, read without a network ----------------------------------------------

def load_hf_splits(spec: str, *, loader: Callable[..., Any] | None = None) -> dict[str, Any]:
    """The splits of ``hf:NAME[:CONFIG]`` by canonical name (train, validation, test, or others as named).

    NAME may be a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (read with
    ``datasets.load_from_disk``), any other local folder or file ``datasets.load_dataset`` reads, or a
    hub name (which needs a network). A single saved ``Dataset`` comes back as the ``train`` split.
    """
    name, _, config = spec[3:].partition(":") if spec.startswith("hf:") else (spec, "", "")
    if not name:
        raise DataError(f"{spec!r}: expected hf:NAME or hf:NAME:CONFIG (NAME: a saved datasets folder or a hub name)")
    try:
        import datasets
    except ImportError:
        raise DataError(f"{spec}: reading hf: sets needs the Hugging Face `datasets` library, which is not "
                        f"installed; install it with `pip install datasets` (or give a file or folder instead)"
                        ) from None
    local = Path(name).expanduser()
    saved = local.is_dir() and any((local / marker).is_file()
                                   for marker in ("dataset_dict.json", "state.json", "dataset_info.json"))
    try:
        if loader is not None:
            loaded = loader(name, config) if config else loader(name)
        elif saved and not config:
            loaded = datasets.load_from_disk(str(local))
        else:
            target = str(local) if local.exists() else name
            loaded = datasets.load_dataset(target, config) if config else datasets.load_dataset(target)
    except Exception as exc:
        raise DataError(f"{spec}: the `datasets` library could not load it ({type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:300]}); without a network, give a folder written by "
                        f"save_to_disk, or a file or folder instead") from None
    if isinstance(loaded, datasets.Dataset):
        return {"train": loaded}
    return {SPLIT_ALIASES.get(split.lower(), split.lower()): loaded[split] for split in loaded.keys()}


# --- splitting -----------------------------------------------------------------------------------

def seeded_cut(keys: Sequence[str], seed: int, *, parts: int = 2, fraction: float = 0.1,
               max_held_out: int | None = None) -> list[list[int]]:
    """Indices of examples with the given keys, cut into training and `parts` held-out splits.

    The distinct keys are put in the seeded order of :func:`glassformer.data.text.split_order`;
    each held-out split takes the next `fraction` of them (at most `max_held_out`, at least one),
    training the rest. Examples sharing a key (the same source sentence) land in the same split, so
    a test sentence is never trained on with another translation.
    """
    distinct = list(dict.fromkeys(keys))
    held = max(1, round(len(distinct) * fraction))
    if max_held_out is not None:
        held = min(held, max_held_out)
    if parts and len(distinct) < parts * held + 1:
        raise DataError(f"{len(distinct)} distinct examples are too few to hold {parts} split(s) out for validation "
                        f"and test; give more, or name held-out data with --validation-data and --test-data")
    order = [distinct[i] for i in split_order(distinct, seed)]
    part = {key: 1 + i // held for i, key in enumerate(order[:parts * held])}
    splits: list[list[int]] = [[] for _ in range(parts + 1)]
    for index, key in enumerate(keys):
        splits[part.get(key, 0)].append(index)
    return splits
