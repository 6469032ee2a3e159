"""Image classification with a Vision Transformer: Fashion-MNIST (or the user's own images) in, a saved classifier out.

1. data: :func:`glassformer.data.corpora.load_fashion_mnist` (60,000 training and 10,000 test images,
   28×28 grey, 10 classes); a seeded slice of the training images is held out for validation, the
   test images are only scored at the end. Pixels become ``(x / 255 - MEAN) / STD`` with the
   training set's mean and standard deviation. Or the user's own images (``data="FOLDER"``, one
   subfolder per class, or ``hf:NAME``; :func:`glassformer.data.images.load_images`): read at
   ``image_size`` pixels with the channels they have, normalised per channel with their own training
   pixels' mean and standard deviation, which the saved model records with how it reads an image.
2. augmentation (training only, when the preset asks for it): shift the image by up to
   ``shift`` pixels in each direction (pad with background, crop back to 28×28) and mirror it
   left-right with probability ½; a mirrored shirt is still a shirt.
3. model: :class:`~glassformer.models.vit.VisionTransformer` (P×P patches, [CLS] token, learned
   positions, pre-norm layers) shaped by a named :class:`ViTPreset`.
4. training: the shared :class:`~glassformer.training.Trainer` with cross-entropy under label
   smoothing; the best validation accuracy picks the weights that are kept.
5. prediction: with ``mirror_average`` (the full preset) a test image and its left-right mirror
   both go through the model and their class probabilities are averaged (test-time
   augmentation); the single-view accuracy is reported next to it.
6. a saved model directory (weights, class names, normalisation) that :class:`ImageClassifier`
   reloads to classify image files.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glassformer._config import check_positive, check_probabilities, check_range, check_types
from glassformer._torch import evaluating
from glassformer.data import cache_dir
from glassformer.data.corpora import ImageDataset, load_fashion_mnist
from glassformer.data.images import LabelledImages, load_images, read_image, read_labelled
from glassformer.errors import ConfigError, UsageError
from glassformer.models.vit import VisionTransformer, ViTConfig
from glassformer.tasks.base import (
    ModelInputs,
    Option,
    TrainingSettings,
    is_checkpoint,
    load_pretrained,
    pick_preset,
    setting,
)
from glassformer.tasks.run import TrainingRun
from glassformer.training import TrainConfig, Trainer, distributed
from glassformer.training.metrics import classification_scores

TASK = "vit"
DESCRIPTION = ("Vision Transformer on Fashion-MNIST (28×28 grey clothing images, 10 classes) or your own images "
               "(--data FOLDER: one subfolder per class)")
# Mean and standard deviation of all 60,000 × 784 Fashion-MNIST training pixels, scaled to [0, 1].
MEAN = 0.2860
STD = 0.3530


@dataclass(frozen=True)
class ViTPreset(TrainingSettings):
    """A named recipe: model shape, augmentation and training schedule."""

    name: str
    patch_size: int = setting(7, "pixels per patch side (each P×P patch becomes a token)")
    d_model: int = setting(64, "width of the patch vectors")
    n_heads: int = setting(4, "attention heads per layer")
    n_layers: int = setting(4, "encoder layers")
    d_ff: int = setting(128, "feed-forward width")
    dropout: float = setting(0.0, "dropout rate")
    epochs: int = setting(2, "passes over the training images")
    max_steps: int | None = setting(None, "optimizer steps; when set it replaces epochs")
    batch_size: int = setting(128, "images per optimizer step")
    lr: float = setting(3e-3, "peak learning rate")
    weight_decay: float = setting(0.05, "AdamW weight decay")
    warmup_ratio: float = setting(0.05, "fraction of the steps spent warming up")
    label_smoothing: float = setting(0.1, "weight of the uniform distribution mixed into the targets")
    shift: int = setting(0, "random translation by up to this many pixels (0: none)")
    flip: bool = setting(False, "random left-right mirror while training")
    mirror_average: bool = setting(False, "predict with the mean probabilities of the image and its mirror")
    validation_size: int = setting(5000, "Fashion-MNIST training images held out to pick the best checkpoint "
                                         "(own data: a seeded tenth, or --validation-data)")
    eval_every: int | None = setting(None, "steps between validation runs (default: once per epoch)")
    threads: int | None = setting(None, "torch threads (default: torch's; 1 is faster on a busy machine)")
    image_size: int = setting(28, "own data (--data): images are resized to this many pixels a side")

    def __post_init__(self) -> None:
        check_types(self)
        super().__post_init__()
        check_positive(self, "patch_size", "d_model", "n_heads", "n_layers", "d_ff", "epochs", "max_steps",
                       "batch_size", "validation_size", "eval_every", "threads", "image_size")
        if self.image_size % self.patch_size:
            raise ConfigError(f"image_size={self.image_size} is not divisible by patch_size={self.patch_size}")
        check_range(self, "shift", 0)
        check_range(self, "lr", 0.0)
        check_probabilities(self, "dropout", "label_smoothing", "warmup_ratio")

    def model_config(self, image_size: int = 28, num_classes: int = 10, in_channels: int = 1) -> ViTConfig:
        """The VisionTransformer shape this preset stands for."""
        return ViTConfig(image_size=image_size, patch_size=self.patch_size, in_channels=in_channels,
                         d_model=self.d_model,
                         n_heads=self.n_heads, n_layers=self.n_layers, d_ff=self.d_ff, dropout=self.dropout,
                         layer_norm_eps=1e-6, num_classes=num_classes)

    def train_config(self, out_dir: str | None, *, seed: int = 0, progress: bool = True) -> TrainConfig:
        """The trainer settings this preset stands for."""
        return TrainConfig(out_dir=out_dir, epochs=self.epochs, max_steps=self.max_steps,
                           batch_size=self.batch_size, lr=self.lr,
                           weight_decay=self.weight_decay, warmup_ratio=self.warmup_ratio, schedule="cosine",
                           eval_every=self.eval_every, eval_batch_size=1000, metric="accuracy", seed=seed,
                           log_every=20, progress=progress, **self.trainer_settings())


# The small model trained longer beat bigger models in the same minutes; only the full preset trains on
# mirrored images, so only it averages each prediction with the mirror's (every attempt: benchmarks/RESULTS.md).
PRESETS: dict[str, ViTPreset] = {
    "quick": ViTPreset("quick", epochs=2),
    "full": ViTPreset("full", epochs=25, flip=True, mirror_average=True),
}


def get_preset(name: str = "quick", **overrides: Any) -> ViTPreset:
    """The preset called `name`, with any field overridden."""
    return pick_preset(PRESETS, name, TASK, overrides)


def default_out_dir(preset: ViTPreset) -> Path:
    """Where `train` saves a model when no directory is given: ``cache_dir()/models/vit-PRESET``."""
    return cache_dir() / "models" / f"{TASK}-{preset.name}"


def choose_threads(requested: int | None = None) -> int:
    """Torch threads for a run: `requested`, else torch's own default (one per core it may use).

    On a machine shared with other busy processes, fewer threads can be much faster, because each
    step waits for whichever thread the scheduler has parked; pass ``threads=1`` (``--threads 1``)
    there (figures in benchmarks/RESULTS.md). The choice is not made from the load average: that
    misjudged an idle machine.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"threads={requested}; expected at least 1")
        return requested
    return torch.get_num_threads()


@contextlib.contextmanager
def using_threads(requested: int | None = None) -> Iterator[int]:
    """Run the block with :func:`choose_threads` torch threads, then restore the previous number."""
    before = torch.get_num_threads()
    threads = choose_threads(requested)
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


# --- pixels → model inputs -----------------------------------------------------------------------

Stats = float | Sequence[float]  # a pixel mean or standard deviation: one for every channel, or one per channel


def normalise(images: Tensor, mean: Stats = MEAN, std: Stats = STD) -> Tensor:
    """uint8 ``(B, H, W)`` or ``(B, C, H, W)`` images → float ``(B, C, H, W)`` inputs ``(x / 255 - mean) / std``.

    `mean` and `std` are Fashion-MNIST's by default, or one value per channel (a saved model's own).
    """
    if images.dtype != torch.uint8 or images.dim() not in (3, 4):
        raise ValueError(f"expected uint8 images of shape (B, H, W) or (B, C, H, W), got {images.dtype} "
                         f"{tuple(images.shape)}")
    pixels = images.float().unsqueeze(1) if images.dim() == 3 else images.float()
    mean, std = _per_channel(mean), _per_channel(std)
    return (pixels / 255.0 - mean) / std


def _per_channel(value: Stats) -> float | Tensor:
    """A scalar for one value (computed exactly as before channels existed), else a ``(1, C, 1, 1)`` tensor."""
    if isinstance(value, (int, float)):
        return float(value)
    values = [float(v) for v in value]
    return values[0] if len(values) == 1 else torch.tensor(values).view(1, -1, 1, 1)


def random_shift(images: Tensor, shift: int, generator: torch.Generator | None = None) -> Tensor:
    """Translate each ``(B, H, W)`` (or ``(B, C, H, W)``) image by a random (dy, dx) in [-shift, shift]², filling
    with zeros (background); every channel of an image moves together."""
    if shift == 0:
        return images
    n, height, width = images.shape[0], images.shape[-2], images.shape[-1]
    padded = F.pad(images, (shift, shift, shift, shift))  # (B, [C,] H + 2s, W + 2s)
    dy = torch.randint(0, 2 * shift + 1, (n, 1, 1), generator=generator)
    dx = torch.randint(0, 2 * shift + 1, (n, 1, 1), generator=generator)
    rows = dy + torch.arange(height).view(1, height, 1)  # (B, H, 1)
    cols = dx + torch.arange(width).view(1, 1, width)  # (B, 1, W)
    if images.dim() == 4:
        channels = torch.arange(images.shape[1]).view(1, -1, 1, 1)
        return padded[torch.arange(n).view(n, 1, 1, 1), channels, rows.unsqueeze(1), cols.unsqueeze(1)]
    return padded[torch.arange(n).view(n, 1, 1), rows, cols]  # (B, H, W)


def random_flip(images: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Mirror each ``(B, H, W)`` (or ``(B, C, H, W)``) image left-right with probability ½."""
    flip = torch.rand(images.shape[0], generator=generator) < 0.5
    return torch.where(flip.view(-1, *[1] * (images.dim() - 1)), images.flip(-1), images)


def pixel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of uint8 ``(N, C, H, W)`` images, scaled to [0, 1].

    Summed in float64 over chunks of images, so memory stays at one chunk whatever N is.
    """
    total = np.zeros(images.shape[1])
    squares = np.zeros(images.shape[1])
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk].astype(np.float64) / 255.0
        total += part.sum(axis=(0, 2, 3))
        squares += (part * part).sum(axis=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    return [float(m) for m in mean], [float(max(s, 1e-6)) for s in std]


class ImageSplit(torch.utils.data.Dataset):
    """Labelled uint8 images served as whole batches ``{"images": (B, 1, H, W), "labels": (B,)}``.

    The DataLoader asks for a batch's indices at once (``__getitems__``), so normalising and
    augmenting run as a few tensor operations per batch instead of once per image.
    """

    def __init__(self, images: np.ndarray | Tensor, labels: np.ndarray | Tensor, *, shift: int = 0,
                 flip: bool = False, mean: Stats = MEAN, std: Stats = STD) -> None:
        self.images = torch.as_tensor(images)
        self.labels = torch.as_tensor(labels).long()
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        self.shift = shift
        self.flip = flip
        self.mean = mean
        self.std = std

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        batch = self.__getitems__([index])
        return {key: value[0] for key, value in batch.items()}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        images = self.images[index]
        # Augmentation draws on the global generator, which the trainer's checkpoints save and restore.
        images = random_shift(images, self.shift)
        if self.flip:
            images = random_flip(images)
        return {"images": normalise(images, self.mean, self.std), "labels": self.labels[index]}


def whole_batch(batch: Mapping[str, Tensor]) -> Mapping[str, Tensor]:
    """The collate function for :class:`ImageSplit`: its batches arrive already assembled."""
    return batch


class SmoothedCrossEntropy:
    """Loss ``(1 - ε)·CE(y) + ε·mean_k CE(k)``: cross-entropy against labels smoothed by ε."""

    def __init__(self, label_smoothing: float) -> None:
        self.label_smoothing = label_smoothing

    def __call__(self, model: nn.Module, batch: Mapping[str, Tensor]) -> Tensor:
        logits = model(batch["images"]).logits
        return F.cross_entropy(logits, batch["labels"], label_smoothing=self.label_smoothing)


def predict_logits(model: nn.Module, inputs: Tensor, mirror_average: bool = False) -> Tensor:
    """``(B, C)`` float logits for normalised ``(B, 1, H, W)`` inputs.

    With `mirror_average` they are ``log((p(x) + p(mirror(x))) / 2)``: log-probabilities whose
    softmax is the mean of the two views' class probabilities, so argmax and cross-entropy apply as usual.
    """
    views = [inputs, inputs.flip(-1)] if mirror_average else [inputs]
    return average_views([model(view).logits.float() for view in views])


def average_views(logits: Sequence[Tensor]) -> Tensor:
    """One view's logits as they are; for several, ``log(mean_v p_v)``: log-probabilities whose softmax is the mean
    of the views' class probabilities."""
    if len(logits) == 1:
        return logits[0]
    return functools.reduce(torch.logaddexp, [view.log_softmax(-1) for view in logits]) - math.log(len(logits))


def accuracy_and_loss(model: nn.Module, loader: Iterable[Mapping[str, Tensor]], *,
                      mirror_average: bool = False) -> dict[str, float]:
    """Accuracy = correct / n and mean (unsmoothed) cross-entropy over every batch of `loader`."""
    device = next(model.parameters()).device
    return classification_scores((predict_logits(model, batch["images"].to(device), mirror_average),
                                  batch["labels"].to(device)) for batch in loader)


def score(model: nn.Module, images: np.ndarray | Tensor, labels: np.ndarray | Tensor,
          batch_size: int = 1000, *, mirror_average: bool = False, mean: Stats = MEAN,
          std: Stats = STD) -> dict[str, float]:
    """Accuracy, mean loss and size of a labelled image set under `model` (eval mode, no gradients)."""
    split = ImageSplit(images, labels, mean=mean, std=std)
    batches = (split.__getitems__(range(start, min(start + batch_size, len(split))))
               for start in range(0, len(split), batch_size))
    with evaluating(model):
        return accuracy_and_loss(model, batches, mirror_average=mirror_average)


# --- training ------------------------------------------------------------------------------------

@dataclass
class ViTRun:
    """What `train` reports: where the model went and how well it does."""

    out_dir: Path
    preset: ViTPreset
    validation_accuracy: float
    test_accuracy: float  # with the preset's mirror averaging, if any
    test_accuracy_single_view: float  # each test image seen once, as it is
    n_test: int
    steps: int
    threads: int
    train_seconds: float
    total_seconds: float
    precision: str = "fp32"  # what training computed in (the preset's "auto" resolved on this machine)

    def json(self) -> dict[str, Any]:
        """The figures as one JSON object (``train vit --json``)."""
        return {"accuracy": self.test_accuracy, "accuracy_single_view": self.test_accuracy_single_view,
                "n": self.n_test, "mirror_average": self.preset.mirror_average,
                "validation_accuracy": self.validation_accuracy, "steps": self.steps, "threads": self.threads,
                "train_seconds": round(self.train_seconds, 1), "total_seconds": round(self.total_seconds, 1),
                "precision": self.precision, "out": str(self.out_dir)}

    def report(self) -> str:
        """The figures as lines for a person."""
        views = (f" averaged with each image's mirror ({self.test_accuracy_single_view:.4f} single view)"
                 if self.preset.mirror_average else "")
        return (f"validation accuracy {self.validation_accuracy:.4f}, test accuracy {self.test_accuracy:.4f}{views} "
                f"(n={self.n_test}); {self.steps} steps on {self.threads} thread(s) in {self.precision}, training "
                f"{self.train_seconds:.0f} s, total {self.total_seconds:.0f} s\nsaved to {self.out_dir}")


TRAIN_OPTIONS = (
    Option("--data", "data", "fashion-mnist (the default), a folder with one subfolder of PNG/JPEG images per class, "
                             "or hf:NAME (a datasets folder or hub set with image and label columns)"),
    Option("--validation-data", "validation_data", "own data: a folder (or hf: set) of the same shape to pick the "
                                                   "best checkpoint on (default: a seeded tenth of --data)"),
    Option("--test-data", "test_data", "own data: a folder (or hf: set) of the same shape to score the model on "
                                       "(default: another seeded tenth of --data)"),
    Option("--image-column", "image_column", "hf: sets: the column holding the images"),
    Option("--label-column", "label_column", "hf: sets: the column holding the labels"),
)
EVAL_OPTIONS: tuple[Option, ...] = ()


def split_validation(n: int, size: int, seed: int) -> tuple[Tensor, Tensor]:
    """Indices (train, validation) of a seeded random hold-out of `size` out of `n` examples."""
    if not 0 < size < n:
        raise ValueError(f"validation_size={size}; expected between 1 and {n - 1} for {n} training images")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[size:].sort().values, order[:size].sort().values


@dataclass
class _Data:
    """What training reads, whichever data it came from: splits, test images, classes and how pixels are read."""

    train: ImageSplit
    validation: ImageSplit
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]
    mean: list[float]
    std: list[float]
    record: dict[str, Any]  # what the saved model keeps about the data and how it reads an image


def _fashion_data(dataset: ImageDataset, recipe: ViTPreset, seed: int, train_limit: int | None) -> _Data:
    train_images, train_labels = dataset.train_images, dataset.train_labels
    if train_limit is not None:
        train_images, train_labels = train_images[:train_limit], train_labels[:train_limit]
    fit_index, val_index = split_validation(len(train_images), recipe.validation_size, seed)
    images, labels = torch.from_numpy(np.ascontiguousarray(train_images)), torch.from_numpy(train_labels)
    return _Data(ImageSplit(images[fit_index], labels[fit_index], shift=recipe.shift, flip=recipe.flip),
                 ImageSplit(images[val_index], labels[val_index]), dataset.test_images, dataset.test_labels,
                 list(dataset.class_names), [MEAN], [STD], {"train_limit": train_limit})


def _own_data(dataset: LabelledImages, recipe: ViTPreset) -> _Data:
    (train_images, train_labels), (val_images, val_labels) = dataset.splits["train"], dataset.splits["validation"]
    mean, std = pixel_stats(train_images)
    test_images, test_labels = dataset.splits["test"]
    record = {"data": dataset.info.get("source"), "validation_data": dataset.info.get("validation_data"),
              "test_data": dataset.info.get("test_data"), "image_column": dataset.info.get("image_column"),
              "label_column": dataset.info.get("label_column"), "seeded_splits": dataset.info.get("seeded_splits"),
              "split_sizes": dataset.info.get("sizes"),
              "image_reading": {"channels": dataset.channels, "size": recipe.image_size, "invert_light": False}}
    return _Data(ImageSplit(train_images, train_labels, shift=recipe.shift, flip=recipe.flip, mean=mean, std=std),
                 ImageSplit(val_images, val_labels, mean=mean, std=std), test_images, test_labels,
                 dataset.class_names, mean, std, record)


def train(preset: str | ViTPreset = "quick", out: str | Path | None = None, *, resume: bool = False,
          overwrite: bool = False, seed: int = 0, progress: bool = True,
          data: ImageDataset | LabelledImages | str | None = None, validation_data: str | None = None,
          test_data: str | None = None, image_column: str | None = None, label_column: str | None = None,
          train_limit: int | None = None, **overrides: Any) -> ViTRun:
    """Train a Vision Transformer on Fashion-MNIST (or `data`), score it on the test images and save it to `out`.

    `data` may name the user's own images (a folder with one subfolder per class, or ``hf:NAME``;
    :func:`glassformer.data.images.load_images`), read before anything is written, with optional
    `validation_data` and `test_data` of the same shape. `overrides` replace fields of the preset
    (``epochs=1``, ``shift=0`` ...); `train_limit` keeps only the first that many Fashion-MNIST
    training images (for quick experiments and tests). Checkpoints and metrics live in ``out/run``
    until the saved model replaces the directory, so a killed run continues with ``resume=True``.
    """
    run = TrainingRun.begin(sys.modules[__name__], preset, overrides)
    recipe = run.recipe
    own = isinstance(data, LabelledImages) or (isinstance(data, str) and data != "fashion-mnist")
    if not own and (validation_data or test_data or image_column or label_column):
        raise UsageError("--validation-data, --test-data, --image-column and --label-column apply to your own "
                         "images (--data FOLDER or hf:NAME), not to Fashion-MNIST")
    if isinstance(data, str) and own:  # read (and refused, if bad) before the output directory is touched
        data = load_images(data, recipe.image_size, validation_data=validation_data, test_data=test_data,
                           image_column=image_column, label_column=label_column, seed=seed, progress=progress)
    with run.claim(out, overwrite=overwrite, resume=resume):
        if isinstance(data, LabelledImages):
            prepared = _own_data(data, recipe)
        else:
            fashion = data if isinstance(data, ImageDataset) else load_fashion_mnist(quiet=not progress)
            prepared = _fashion_data(fashion, recipe, seed, train_limit)
        first = prepared.train.images[:1]
        channels = 1 if first.dim() == 3 else int(first.shape[1])

        with using_threads(recipe.threads) as threads:
            torch.manual_seed(seed)
            model = VisionTransformer(recipe.model_config(first.shape[-1], len(prepared.class_names), channels))
            # The closing test score, in validation passes: the test images once, and again mirrored when averaging.
            config = run.train_config(seed=seed, progress=progress,
                                      reserve_evals=(len(prepared.test_images) / max(len(prepared.validation), 1)
                                                     * (3 if recipe.mirror_average else 1)))
            trainer = Trainer(model, config, prepared.train,
                              collate_fn=whole_batch, loss_fn=SmoothedCrossEntropy(recipe.label_smoothing),
                              eval_data=prepared.validation, evaluate=accuracy_and_loss)
            result = run.fit(trainer, resume=resume)

            def score_and_save() -> tuple[dict[str, float], dict[str, float]]:
                stats = {"mean": prepared.mean, "std": prepared.std}
                single = score(model, prepared.test_images, prepared.test_labels, **stats)
                test = score(model, prepared.test_images, prepared.test_labels, mirror_average=True, **stats) \
                    if recipe.mirror_average else single
                extra = {
                    "preset": asdict(recipe), "image_mean": prepared.mean, "image_std": prepared.std, "seed": seed,
                    **prepared.record,
                    "metrics": {"validation_accuracy": run.best_metric, "test_accuracy": test["accuracy"],
                                "test_accuracy_single_view": single["accuracy"], "n_test": test["n"],
                                "threads": threads, **run.figures()},
                }
                run.save(model, extra, label_names=prepared.class_names)
                return single, test

            single, test = distributed.write_once(score_and_save)  # under DDP: rank 0 alone scores and writes

    return ViTRun(out_dir=run.out_dir, preset=recipe, validation_accuracy=run.best_metric,
                  test_accuracy=test["accuracy"], test_accuracy_single_view=single["accuracy"], n_test=test["n"],
                  steps=result.steps, threads=threads, train_seconds=result.seconds, total_seconds=run.seconds(),
                  precision=result.precision)


# --- image files → model inputs ------------------------------------------------------------------

def load_image(path: str | Path | bytes, size: int = 28, max_pixels: int = 40_000_000) -> np.ndarray:
    """An image file (or its bytes) as a ``(size, size)`` uint8 array in Fashion-MNIST's style: a light object on black.

    :func:`glassformer.data.images.read_image` in grey with `invert_light`: EXIF orientation,
    transparency on white, ``convert("L")``, padded to a square with the border's grey and resized
    with Lanczos, then inverted when the background is light (median border > 127), since
    Fashion-MNIST shows bright clothes on a black background while photos of products usually have
    a white one.
    """
    return read_image(path, size, channels=1, invert_light=True, max_pixels=max_pixels)


def checkpoint_pixels(images: Sequence[Any], config: ViTConfig, settings: Mapping[str, Any]) -> Tensor:
    """``(B, C, H, W)`` inputs as a checkpoint's ``preprocessor_config.json`` says: resize, x / 255, (x - mean) / std."""
    from PIL import Image, UnidentifiedImageError

    mean = np.asarray(settings.get("image_mean", [0.5] * config.in_channels), dtype=np.float32)
    std = np.asarray(settings.get("image_std", [0.5] * config.in_channels), dtype=np.float32)
    mode = "RGB" if config.in_channels == 3 else "L"
    arrays = []
    for image in images:
        try:
            picture = Image.open(image) if isinstance(image, (str, Path)) else image
        except UnidentifiedImageError as exc:
            raise ValueError(f"{image} is not a readable image: {exc}") from None
        if not isinstance(picture, Image.Image):
            picture = Image.fromarray(np.asarray(picture, dtype=np.uint8))
        picture = picture.convert(mode).resize((config.image_size, config.image_size), Image.Resampling.BILINEAR)
        pixels = np.asarray(picture, dtype=np.float32).reshape(config.image_size, config.image_size, -1) / 255.0
        arrays.append(((pixels - mean) / std).transpose(2, 0, 1))  # (C, H, W)
    return torch.from_numpy(np.stack(arrays))


class ImageClassifier:
    """A saved ViT ready to use: image → label and probability p(label | image) = softmax(logits).

    A glassformer ViT reads images as its task does (grey, Fashion-MNIST's style and scaling:
    :func:`load_image`, :func:`normalise`), and with ``mirror_average`` averages each image with its
    mirror; a Hugging Face checkpoint reads them as its ``preprocessor_config.json`` says (`preprocessor`).
    """

    def __init__(self, model: VisionTransformer, label_names: Sequence[str], info: dict[str, Any] | None = None,
                 *, preprocessor: Mapping[str, Any] | None = None) -> None:
        self.model = model.eval()
        self.label_names = list(label_names)
        self.info = dict(info or {})
        self.preprocessor = None if preprocessor is None else dict(preprocessor)
        # A model trained on the user's own images reads them as they are, with their channels; a
        # Fashion-MNIST model reads grey and inverts light backgrounds.
        self.reading = dict(self.info.get("image_reading") or {})
        self.pixel_mean: list[float] = list(self.info.get("image_mean") or [MEAN])
        self.pixel_std: list[float] = list(self.info.get("image_std") or [STD])

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu", verify: bool = True,
             precision: str = "fp32") -> "ImageClassifier":
        """The classifier of a directory written by `train` (or a checkpoint with an image-classification head)."""
        return cls.from_loaded(load_pretrained(directory, TASK, device=device, verify=verify, precision=precision))

    @classmethod
    def from_loaded(cls, loaded: Any) -> "ImageClassifier":
        """The classifier of a model in memory: a checkpoint reads pixels as its ``preprocessor_config.json`` says."""
        if not is_checkpoint(loaded) and not loaded.label_names:
            raise ValueError(f"{loaded.path} lacks the label names an image classifier needs")
        labels = loaded.label_names or [f"LABEL_{i}" for i in range(loaded.model.config.num_classes)]
        if is_checkpoint(loaded) and loaded.path is not None:
            path = Path(loaded.path) / "preprocessor_config.json"
            settings = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            return cls(loaded.model, labels, preprocessor=settings)
        return cls(loaded.model, labels, loaded.extra)

    @property
    def image_size(self) -> int:
        return self.model.config.image_size

    @property
    def channels(self) -> int:
        return self.model.config.in_channels

    def read_image(self, source: str | Path | bytes) -> np.ndarray:
        """An image file (or its bytes) as the uint8 pixels this model reads: ``(H, W)`` grey or ``(C, H, W)``."""
        if self.reading:
            return read_image(source, self.image_size, channels=self.channels,
                              invert_light=bool(self.reading.get("invert_light", False)))
        return load_image(source, self.image_size)

    @property
    def mirror_average(self) -> bool:
        """Whether predictions average each image with its mirror (the saved preset's ``mirror_average``)."""
        return bool((self.info.get("preset") or {}).get("mirror_average", False))

    def _pixels(self, images: Any) -> Tensor:
        """``(B, C, H, W)`` model pixels for image files, PIL images, uint8 arrays, or float pixels given as they are."""
        if isinstance(images, (np.ndarray, Tensor)) and torch.as_tensor(images).is_floating_point():
            pixels = torch.as_tensor(images, dtype=torch.float32)
            return pixels.reshape(-1, *pixels.shape[-3:]) if pixels.dim() >= 3 else pixels.reshape(1, 1, *pixels.shape)
        if self.preprocessor is not None:
            single = isinstance(images, (str, Path, np.ndarray, Tensor)) or not isinstance(images, Sequence)
            return checkpoint_pixels([images] if single else list(images), self.model.config, self.preprocessor)
        from PIL import Image

        if isinstance(images, (str, Path, Image.Image)):
            images = [images]
        if isinstance(images, (np.ndarray, Tensor)):
            raw = torch.as_tensor(images)
        else:
            def read(image: Any) -> np.ndarray:
                if isinstance(image, (str, Path)) or (self.reading and isinstance(image, Image.Image)):
                    return self.read_image(image)
                return np.asarray(image, dtype=np.uint8)

            raw = torch.as_tensor(np.stack([read(image) for image in images]))
        channels = self.channels
        shape = (-1, *raw.shape[-2:]) if channels == 1 else (-1, channels, *raw.shape[-2:])
        if channels > 1 and (raw.dim() < 3 or raw.shape[-3] != channels):
            raise ValueError(f"this ViT reads {channels}-channel images; got uint8 pixels of shape {tuple(raw.shape)} "
                             f"(expected (N, {channels}, H, W)); pass image files or PIL images instead")
        return normalise(raw.reshape(shape), self.pixel_mean, self.pixel_std)

    def prepare(self, images: Any) -> ModelInputs:
        """The pixel views the model reads: ``[{"images": x}]``, and the mirror ``x.flip(-1)`` with ``mirror_average``.

        `images`: an image file or a list of them, PIL images, uint8 ``(H, W)`` arrays (or a stack
        ``(N, H, W)``; ``(N, C, H, W)`` for a colour model), or float pixels ``(C, H, W)`` / ``(N, C, H, W)``
        already in the model's space.
        """
        pixels = self._pixels(images)
        size = self.image_size
        if tuple(pixels.shape[-2:]) != (size, size):
            raise ValueError(f"the image is {tuple(pixels.shape[-2:])} pixels; the model reads {size}×{size}")
        pixels = pixels.to(next(self.model.parameters()).device)
        views = [pixels, pixels.flip(-1)] if self.mirror_average else [pixels]
        return ModelInputs([{"images": view} for view in views])

    def predict_proba(self, images: Any, batch_size: int = 1000) -> Tensor:
        """``(N, num_classes)`` class probabilities for images (any form :meth:`prepare` reads)."""
        if isinstance(images, (str, Path)) or (isinstance(images, (np.ndarray, Tensor)) and images.ndim == 2):
            images = [images]
        probs = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                inputs = self.prepare(images[start:start + batch_size])
                logits = average_views([self.model(**view).logits.float() for view in inputs.passes])
                probs.append(logits.softmax(-1).cpu())
        return torch.cat(probs) if probs else torch.empty(0, len(self.label_names))

    def __call__(self, images: Any, **options: Any) -> list[dict[str, Any]]:
        """``[{"file", "label", "score"}]``, one per image (``file``: the path, or the image's index in `images`)."""
        if isinstance(images, (str, Path)) or (isinstance(images, (np.ndarray, Tensor)) and images.ndim == 2):
            images = [images]
        probs = self.predict_proba(images)
        best = probs.argmax(-1)
        return [{"file": str(image) if isinstance(image, (str, Path)) else i, "label": self.label_names[int(k)],
                 "score": float(probs[i, k])} for i, (image, k) in enumerate(zip(images, best))]

    def classify_files(self, paths: Sequence[str | Path]) -> list[dict[str, Any]]:
        """``[{"file", "label", "score"}]``, one per image file; score is the probability of the predicted label."""
        return self.classify([self.read_image(path) for path in paths], [str(path) for path in paths])

    def classify(self, images: Sequence[np.ndarray], names: Sequence[str | None]) -> list[dict[str, Any]]:
        """``[{"file", "label", "score"}]`` for images already read by :meth:`read_image`, each under its name."""
        empty = (0, self.image_size, self.image_size) if self.channels == 1 else \
            (0, self.channels, self.image_size, self.image_size)
        stacked = np.stack(images) if len(images) else np.zeros(empty)
        probs = self.predict_proba(stacked.astype(np.uint8))
        best = probs.argmax(-1)
        return [{"file": name, "label": self.label_names[int(k)], "score": float(probs[i, k])}
                for i, (name, k) in enumerate(zip(names, best))]

    def format(self, results: Sequence[dict[str, Any]]) -> list[str]:
        """``label score  file`` per result."""
        return [f"{r['label']:12s} {r['score']:.3f}  {r['file']}" for r in results]


def evaluate(directory: str | Path, split: str | None = None, data: str | None = None, *,
             verify: bool = True, precision: str = "fp32") -> dict[str, Any]:
    """``{"accuracy", "n", "split", "mirror_average"}`` of the ViT in `directory`.

    The images: Fashion-MNIST's test images for a Fashion-MNIST model, a split of the data a model
    trained on its own images was trained on (split again with its seed), or every image of `data`
    (a folder with one subfolder per class, or an hf: set's `split`), read as the model reads images.
    The accuracy uses the saved preset's prediction rule: with ``mirror_average`` each image's
    probabilities are averaged with its mirror's.
    """
    classifier = ImageClassifier.load(directory, verify=verify, precision=precision)
    info = classifier.info
    stats = {"mean": classifier.pixel_mean, "std": classifier.pixel_std}
    if data not in (None, "fashion-mnist"):
        columns = {"image_column": info.get("image_column"), "label_column": info.get("label_column")}
        images, labels = read_labelled(data, classifier.label_names, classifier.read_image, split=split, **columns)
        where = split or str(data)
    elif data is None and info.get("data"):
        split = split or "test"
        own = load_images(info["data"], classifier.image_size, validation_data=info.get("validation_data"),
                          test_data=info.get("test_data"), image_column=info.get("image_column"),
                          label_column=info.get("label_column"), seed=int(info.get("seed", 0)))
        if own.class_names != classifier.label_names:
            raise ValueError(f"{info['data']} now has classes {own.class_names}; the model in {directory} predicts "
                             f"{classifier.label_names}")
        images, labels = own.splits[split]
        where = split
    else:
        split = split or "test"
        if split != "test":
            raise ValueError(f"split={split!r}; a Fashion-MNIST ViT is evaluated on Fashion-MNIST's 'test' images")
        dataset = load_fashion_mnist(quiet=True)
        images, labels, where = dataset.test_images, dataset.test_labels, split
    with using_threads():
        result = score(classifier.model, images, labels, mirror_average=classifier.mirror_average, **stats)
    return {"accuracy": result["accuracy"], "n": int(result["n"]), "split": where,
            "mirror_average": classifier.mirror_average}


Predictor = ImageClassifier
