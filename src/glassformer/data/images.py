"""Reading images the way a ViT reads them, and the user's own labelled images: a folder per class or hf:NAME.

:func:`read_image` is the one function that turns an image file (or its bytes, or a PIL image) into
the pixels a ViT is trained and asked on: EXIF orientation applied, transparency put on white, grey
or RGB, padded to a square with the border's colour and resized with Lanczos. The built-in
Fashion-MNIST models also invert light backgrounds (the set shows light clothes on black); models
trained on the user's own images read them as they are.

``load_images(spec, size)`` reads:

* a folder with one subfolder per class (``cats/``, ``dogs/`` …), each holding PNG or JPEG images
  of any size (subfolders inside a class folder are read too; other files are ignored); the class
  names are the folder names, in sorted order;
* ``hf:NAME[:CONFIG]``: a ``datasets`` set with an image and a label column.

The images get the channels the data has: RGB when any training image is in colour, grey otherwise.
Splits: an hf: set's own, the folders (or sets) given as validation and test data, and a seeded 10%
cut of the training images for each one missing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from glassformer.data.own import (
    DataError,
    existing_path,
    load_hf_splits,
    progress_bar,
    seeded_cut,
    spec_for_saving,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_COLUMNS = ("image", "img", "picture", "photo")
LABEL_COLUMNS = ("label", "labels", "class", "category", "fine_label", "target")
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
MAX_PIXELS = 40_000_000


def _open(source: Any, max_pixels: int) -> tuple[Any, str]:
    """The decoded PIL image of a path, bytes or PIL image (EXIF orientation applied), and what to call it."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(source, Image.Image):
        return ImageOps.exif_transpose(source), "the image"
    name = "the image" if isinstance(source, bytes) else str(source)
    opened_from = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
    try:
        with Image.open(opened_from, formats=["PNG", "JPEG"]) as opened:
            if opened.width * opened.height > max_pixels:
                raise DataError(f"{name}: {opened.width}×{opened.height} pixels is more than the {max_pixels:,} allowed")
            opened.load()
            return ImageOps.exif_transpose(opened), name
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such image file") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"{name} is not a readable image (expected PNG or JPEG): {exc}") from None


def is_colour(image: Any) -> bool:
    """Whether a PIL image has colour: an RGB-like mode, or a palette with a colour that is not grey."""
    if image.mode in GREY_MODES:
        return False
    if image.mode in ("P", "PA"):
        palette = image.getpalette() or []
        return any(not (palette[i] == palette[i + 1] == palette[i + 2]) for i in range(0, len(palette) - 2, 3))
    return True


def read_image(source: Any, size: int, *, channels: int = 1, invert_light: bool = False,
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image as uint8 pixels: ``(size, size)`` grey for `channels` 1, ``(3, size, size)`` RGB for 3.

    Steps: apply the EXIF orientation; put transparent pixels on white; convert to grey
    (``convert("L")``, ITU-R 601 luma) or RGB; pad to a square with the background (the median of
    the border pixels, per channel) and resize with Lanczos, keeping the aspect ratio; with
    `invert_light` (grey only), invert when the background is light (median border > 127).
    """
    from PIL import Image, ImageOps

    if channels not in (1, 3):
        raise ValueError(f"channels={channels}; expected 1 (grey) or 3 (RGB)")
    image, _ = _open(source, max_pixels)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    converted = image.convert("L" if channels == 1 else "RGB")
    pixels = np.asarray(converted).reshape(converted.height, converted.width, channels)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])  # (n, C)
    background = tuple(int(v) for v in np.median(border, axis=0))
    square = ImageOps.pad(converted, (size, size), method=Image.Resampling.LANCZOS,
                          color=background[0] if channels == 1 else background)
    out = np.asarray(square, dtype=np.uint8)
    if channels == 3:
        return np.ascontiguousarray(out.transpose(2, 0, 1))
    return 255 - out if invert_light and background[0] > 127 else out.copy()


# --- labelled sets -------------------------------------------------------------------------------

@dataclass
class LabelledImages:
    """The user's labelled images: uint8 ``(N, C, H, W)`` pixels and label indices per split, and the class names."""

    class_names: list[str]
    splits: dict[str, tuple[np.ndarray, np.ndarray]]  # train, validation, test
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return int(self.splits["train"][0].shape[1])


@dataclass
class _Raw:
    """Images of one spec before reading pixels: each source (path or hf value), its raw label, where it is from."""

    sources: list[Any]
    labels: list[Any]
    names: list[str]  # how an error names each image
    class_names: list[str] | None = None  # from folder names or a ClassLabel feature


def _folder(root: Path, min_classes: int) -> _Raw:
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < min_classes:
        found = [p.name for p in classes]
        raise DataError(f"{root}: {len(classes)} class folder(s) {found}; expected at least {min_classes}, one "
                        f"subfolder per class holding its PNG or JPEG images (e.g. {root}/cats/1.png)")
    raw = _Raw([], [], [], [p.name for p in classes])
    for folder in classes:
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise DataError(f"{folder}: a class folder with no PNG or JPEG images")
        raw.sources += files
        raw.labels += [folder.name] * len(files)
        raw.names += [str(f) for f in files]
    return raw


def _hf(spec: str, split: str, dataset: Any, image_column: str | None, label_column: str | None) -> _Raw:
    names = list(dataset.column_names)
    where = f"{spec} ({split} split)"
    image_col = _pick(where, names, image_column, IMAGE_COLUMNS, "image")
    label_col = _pick(where, names, label_column, LABEL_COLUMNS, "label")
    feature = getattr(dataset, "features", {}).get(label_col)
    class_names = list(getattr(feature, "names", None) or []) or None
    labels = list(dataset[label_col])
    if class_names:
        labels = [class_names[int(v)] for v in labels]
    sources = [_hf_image(value) for value in dataset[image_col]]
    return _Raw(sources, labels, [f"{where} row {i}" for i in range(len(sources))], class_names)


def _hf_image(value: Any) -> Any:
    """What :func:`read_image` reads for a ``datasets`` image value: a PIL image, bytes, or a path."""
    if isinstance(value, dict):
        return value.get("bytes") or value.get("path")
    if isinstance(value, np.ndarray):
        from PIL import Image

        return Image.fromarray(value.astype(np.uint8))
    return value


def _pick(where: str, names: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str) -> str:
    if wanted is not None:
        if wanted not in names:
            raise DataError(f"{where}: no {what} column {wanted!r}; the columns are {list(names)}")
        return wanted
    for name in names:
        if name.lower() in candidates:
            return name
    raise DataError(f"{where}: cannot tell which column holds the {what}; expected one of {list(candidates)}, "
                    f"found {list(names)} (name it with --{what}-column)")


def _raw_splits(spec: str, image_column: str | None, label_column: str | None, min_classes: int) -> dict[str, _Raw]:
    if spec.startswith("hf:"):
        return {name: _hf(spec, name, dataset, image_column, label_column)
                for name, dataset in load_hf_splits(spec).items()}
    root = existing_path(spec, "a folder with one subfolder of images per class, or hf:NAME")
    if not root.is_dir():
        raise DataError(f"{spec}: a file; image data is a folder with one subfolder of PNG/JPEG images per class "
                        f"(or hf:NAME)")
    return {"all": _folder(root, min_classes)}


def _channels_of(raw: _Raw) -> int:
    """3 when any image is in colour, else 1 (read from the files' headers: no pixels decoded)."""
    from PIL import Image, UnidentifiedImageError

    for source, name in zip(raw.sources, raw.names):
        if isinstance(source, Image.Image):
            colour = is_colour(source)
        else:
            try:
                with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source,
                                formats=["PNG", "JPEG"]) as opened:
                    colour = is_colour(opened)
            except (UnidentifiedImageError, OSError, SyntaxError) as exc:
                raise DataError(f"{name} is not a readable image (expected PNG or JPEG): {exc}") from None
        if colour:
            return 3
    return 1


def _pixels(raw: _Raw, read: Callable[[Any], np.ndarray], progress: bool, description: str) -> np.ndarray:
    """The uint8 pixels of every image of `raw`, as `read` makes them, stacked; an unreadable one names its path."""
    arrays = []
    with progress_bar(len(raw.sources), description, enabled=progress and len(raw.sources) >= 1000,
                      unit="image") as bar:
        for source, name in zip(raw.sources, raw.names):
            try:
                arrays.append(read(source))
            except (DataError, ValueError) as exc:
                message = str(exc)
                raise DataError(message if message.startswith(name) else f"{name}: {message}") from None
            bar.update(1)
    return np.stack(arrays)


def _indices(labels: Sequence[Any], class_names: Sequence[str], where: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted({str(v) for v in labels} - set(index))
    if unknown:
        raise DataError(f"{where}: labels {unknown} are not among the classes {list(class_names)}")
    return np.asarray([index[str(v)] for v in labels], dtype=np.int64)


def _class_names(raw: _Raw, where: str) -> list[str]:
    if raw.class_names:
        return list(raw.class_names)
    from glassformer.data.text import _label_vocabulary

    names, _ = _label_vocabulary(raw.labels, where)
    return names


def load_images(data: str, size: int, *, validation_data: str | None = None, test_data: str | None = None,
                image_column: str | None = None, label_column: str | None = None, seed: int = 0,
                progress: bool = False) -> LabelledImages:
    """The user's labelled images at `size`×`size` pixels, with the channels they have, split as the module says."""
    raws = _raw_splits(data, image_column, label_column, min_classes=2)
    pool = raws.get("train", raws.get("all"))
    if pool is None:
        raise DataError(f"{data}: no train split; its splits are {sorted(raws)}")
    class_names = _class_names(pool, data)
    if len(class_names) < 2:
        raise DataError(f"{data}: {len(class_names)} class {class_names}; a classifier needs at least 2")
    held: dict[str, _Raw | None] = {"validation": raws.get("validation"), "test": raws.get("test")}
    for name, spec in (("validation", validation_data), ("test", test_data)):
        if spec is not None:
            given = _raw_splits(spec, image_column, label_column, min_classes=1)
            held[name] = given.get(name, given.get("all") or next(iter(given.values())))
    missing = [name for name in ("validation", "test") if held[name] is None]
    keys = [f"{label}/{name}" for label, name in zip(pool.labels, pool.names)]
    cut = seeded_cut(keys, seed, parts=len(missing))
    for name, indices in zip(missing, cut[1:]):
        held[name] = _Raw([pool.sources[i] for i in indices], [pool.labels[i] for i in indices],
                          [pool.names[i] for i in indices])
    train = _Raw([pool.sources[i] for i in cut[0]], [pool.labels[i] for i in cut[0]], [pool.names[i] for i in cut[0]])
    channels = _channels_of(train)
    splits = {"train": train, "validation": held["validation"], "test": held["test"]}
    def read(source: Any) -> np.ndarray:
        return read_image(source, size, channels=channels).reshape(channels, size, size)

    arrays = {name: (_pixels(raw, read, progress, f"reading {name} images"),
                     _indices(raw.labels, class_names, data if name == "train" else f"{name} data"))
              for name, raw in splits.items() if raw is not None}
    info = {"source": spec_for_saving(data), "validation_data": spec_for_saving(validation_data),
            "test_data": spec_for_saving(test_data), "image_column": image_column, "label_column": label_column,
            "seed": seed, "seeded_splits": missing, "channels": channels, "image_size": size,
            "sizes": {name: len(arrays[name][1]) for name in arrays}}
    return LabelledImages(class_names, arrays, info)


def read_labelled(spec: str, class_names: Sequence[str], read: Callable[[Any], np.ndarray], *,
                  split: str | None = None, image_column: str | None = None,
                  label_column: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (as `read` makes them from a path, bytes or PIL image) and label indices in `class_names`' order of
    every image of `spec`, or of its `split` (hf: sets; default test, else all of it)."""
    raws = _raw_splits(spec, image_column, label_column, min_classes=1)
    raw = raws.get(split or "test") or raws.get("all") or next(iter(raws.values()))
    return _pixels(raw, read, False, "reading images"), _indices(raw.labels, class_names, spec)
