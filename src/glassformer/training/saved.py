"""Saved models: self-describing directories that a later glassformer can load and check.

A saved model directory holds:

* ``config.json``: format name and version, the glassformer version that wrote it, the model class,
  its configuration dataclass as a dict, the task, the label names and the tokenizer's class;
* the weights: ``model.safetensors`` (a tied weight is stored once and listed under ``tied``), or
  for a model that is not a neural network (the Markov chain) its own file, named in ``model_file``;
* ``tokenizer/``: whatever the tokenizer's ``save(directory)`` writes;
* ``metrics.jsonl`` (and ``metrics.png``): the training log, when there is one;
* ``glassformer-manifest.json``: the size and sha256 of every file above.

:func:`save_model` is the one writer of this layout. The directory is built under a temporary name
and renamed into place, and never replaces anything but an older saved model (and that only with
``overwrite=True``). :func:`load_saved` checks every part before it builds anything: the manifest's
digests, the types and ranges of every configuration field, that the class is one glassformer
registered, and that the configuration fits the shapes in the weights file's header. It raises
:class:`SavedModelError` naming the directory, the file or field, and what is wrong.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import shutil
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import glassformer
from glassformer._files import atomic_dir, check_safetensors, safetensors_header, verify_manifest
from glassformer.errors import GlassformerError, IntegrityError
from glassformer.training.checkpoint import CheckpointError, load_model_state

FORMAT = "glassformer-model"
FORMAT_VERSION = 2  # 2: a manifest of digests; 1 (still read): none
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"
KIND = "model"

# Model classes by name → "module:attribute", imported only when a directory asks for them. Nothing
# outside this table is ever imported from a name written in a file.
MODEL_CLASSES: dict[str, str] = {
    "EncoderClassifier": "glassformer.models.encoder:EncoderClassifier",
    "TransformerEncoderModel": "glassformer.models.encoder:TransformerEncoderModel",
    "DecoderLM": "glassformer.models.decoder_lm:DecoderLM",
    "Seq2SeqTransformer": "glassformer.models.seq2seq:Seq2SeqTransformer",
    "VisionTransformer": "glassformer.models.vit:VisionTransformer",
    "MarkovChain": "glassformer.models.markov:MarkovChain",
}
# Models stored in a file of their own rather than as safetensors weights: class name → file name.
FILE_MODELS: dict[str, str] = {"MarkovChain": "markov.json"}


class SavedModelError(GlassformerError, ValueError):
    """A saved model directory is missing a part, damaged, or written by an incompatible glassformer."""


class ModelNotFoundError(SavedModelError, FileNotFoundError):
    """Nothing (or a file, not a directory) where a saved model directory should be."""


def register_model_class(cls: type, name: str | None = None) -> type:
    """Make `cls` loadable by name from saved directories (glassformer's own classes are registered already)."""
    MODEL_CLASSES[name or cls.__name__] = f"{cls.__module__}:{cls.__qualname__}"
    return cls


def _import(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def resolve_model_class(name: Any, where: str = CONFIG_FILE) -> type:
    """The model class registered under `name`; any other name is refused, never imported."""
    if not isinstance(name, str) or name not in MODEL_CLASSES:
        raise SavedModelError(f"{where}: unknown model class {name!r}; known classes: "
                              f"{', '.join(sorted(MODEL_CLASSES))} (register others with "
                              f"glassformer.training.saved.register_model_class)")
    try:
        return _import(MODEL_CLASSES[name])
    except (ImportError, AttributeError) as exc:
        raise SavedModelError(f"model class {name!r} should be {MODEL_CLASSES[name]}, which cannot be "
                              f"imported ({exc})") from exc


@dataclass
class SavedModel:
    """A model loaded from a saved directory, with its tokenizer, label names and task."""

    model: Any
    config: dict[str, Any]
    path: Path
    task: str | None = None
    label_names: list[str] | None = None
    tokenizer: Any = None
    metrics: list[dict] = field(default_factory=list)

    @property
    def extra(self) -> dict[str, Any]:
        """What the task stored beside the model (its preset, data, measured figures)."""
        return dict(self.config.get("extra") or {})


def _model_config(model: Any) -> tuple[dict[str, Any], str]:
    if type(model).__name__ in FILE_MODELS:
        return model.config_dict(), ""
    config = getattr(model, "config", None)
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"{type(model).__name__} has no dataclass .config; save_model needs one to rebuild the model")
    return dataclasses.asdict(config), type(config).__name__


def save_model(directory: str | Path, model: Any, *, task: str | None = None,
               label_names: Sequence[str] | None = None, tokenizer: Any = None,
               metrics_file: str | Path | None = None, extra: Mapping[str, Any] | None = None,
               overwrite: bool = False, files: Callable[[Path], None] | None = None) -> Path:
    """Write `model` (a glassformer model with a dataclass ``.config``, or a Markov chain) and its companions.

    `directory` must be new, empty, or (with `overwrite`) an earlier saved model; `files`, when
    given, is called with the temporary directory to add task files before the manifest is made.
    """
    name = type(model).__name__
    if name not in MODEL_CLASSES:
        raise TypeError(f"{name} is not a registered model class; call register_model_class first")
    model_config, config_class = _model_config(model)
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "glassformer_version": glassformer.__version__,
        "model_class": name, "model_config": model_config, "config_class": config_class,
        "task": task, "label_names": list(label_names) if label_names is not None else None,
        "tokenizer_class": None, "tied": {}, "extra": dict(extra or {}),
        "written_by": _writer(),
    }
    with atomic_dir(directory, KIND, overwrite=overwrite) as tmp:
        if name in FILE_MODELS:
            config["model_file"] = FILE_MODELS[name]
            model.save(tmp / FILE_MODELS[name])
        else:
            weights, config["tied"] = _untie(model.state_dict())
            save_file(weights, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
        if tokenizer is not None:
            tokenizer.save(tmp / TOKENIZER_DIR)
            config["tokenizer_class"] = type(tokenizer).__name__
        if metrics_file is not None and Path(metrics_file).is_file():
            shutil.copyfile(metrics_file, tmp / "metrics.jsonl")
            plot = Path(metrics_file).with_suffix(".png")
            if plot.is_file():
                shutil.copyfile(plot, tmp / "metrics.png")
        if files is not None:
            files(tmp)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(directory)


def _writer() -> dict[str, int]:
    """Which process wrote the directory: under DDP it must be rank 0 alone (tests count the writers)."""
    from glassformer.training import distributed

    info = distributed.current()
    return {"rank": info.rank, "world_size": info.world_size}


def _untie(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Contiguous CPU copies of the tensors, each shared storage once; `tied` maps a dropped name to the kept one."""
    weights: dict[str, torch.Tensor] = {}
    tied: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for name, tensor in state.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tensor.dtype)
        if tensor.numel() and key in seen:
            tied[name] = seen[key]
            continue
        seen[key] = name
        weights[name] = tensor.detach().to("cpu").contiguous()
    return weights, tied


def _expect(config: dict[str, Any], key: str, check: Callable[[Any], bool], expected: str, path: Path) -> None:
    if key in config and not check(config[key]):
        raise SavedModelError(f"{path}: {key} must be {expected}, got {config[key]!r}")


def read_config(directory: str | Path) -> dict[str, Any]:
    """The checked contents of a saved directory's config.json (format, version and the type of each key)."""
    directory = Path(directory)
    if not directory.is_dir():
        what = " (nothing is there)" if not directory.exists() else ""
        raise ModelNotFoundError(f"{directory} is not a directory{what}; expected a saved glassformer model "
                              f"directory ({CONFIG_FILE} + {WEIGHTS_FILE})")
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise SavedModelError(f"{directory} has no {CONFIG_FILE}; a saved glassformer model holds "
                              f"{CONFIG_FILE} and {WEIGHTS_FILE} (written by save_model)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SavedModelError(f"{path} is not valid JSON ({exc}); the file is damaged") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        hint = (" (it looks like a Hugging Face checkpoint: load it with glassformer.from_pretrained)"
                if isinstance(config, dict) and ("model_type" in config or "architectures" in config) else "")
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise SavedModelError(f"{path} is not a glassformer model config (format {found!r}, expected {FORMAT!r})"
                              + hint)
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
        raise SavedModelError(f"{path} has format version {version!r} (written by glassformer "
                              f"{config.get('glassformer_version', '?')}); this glassformer "
                              f"{glassformer.__version__} reads versions up to {FORMAT_VERSION}")
    missing = [k for k in ("model_class", "model_config") if k not in config]
    if missing:
        raise SavedModelError(f"{path} lacks {', '.join(missing)}")

    def str_list(v: Any) -> bool:
        return isinstance(v, list) and all(isinstance(x, str) for x in v)

    _expect(config, "model_config", lambda v: isinstance(v, dict), "a JSON object", path)
    _expect(config, "task", lambda v: v is None or isinstance(v, str), "a string or null", path)
    _expect(config, "label_names", lambda v: v is None or (str_list(v) and len(v) > 0),
            "a non-empty list of strings or null", path)
    _expect(config, "tokenizer_class", lambda v: v is None or isinstance(v, str), "a string or null", path)
    _expect(config, "tied", lambda v: v is None or (isinstance(v, dict) and all(
        isinstance(a, str) and isinstance(b, str) for a, b in v.items())), "an object of names", path)
    _expect(config, "extra", lambda v: v is None or isinstance(v, dict), "a JSON object", path)
    return config


def build_config(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """An instance of dataclass `cls` from a dict, rebuilding nested dataclasses and tuples; every field checked."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise SavedModelError(f"{where}: {cls.__name__} has no fields {unknown} (saved by a newer glassformer?)")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        hint = hints.get(name)
        if isinstance(value, dict) and isinstance(hint, type) and dataclasses.is_dataclass(hint):
            value = build_config(hint, value, where)
        elif isinstance(value, list) and typing.get_origin(hint) is tuple:
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise SavedModelError(f"{where}: the saved {cls.__name__} is not valid: {exc}") from None


def _config_class(model_class: type, where: str) -> type:
    hints = typing.get_type_hints(model_class.__init__)
    candidate = hints.get("config")
    if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
        return candidate
    raise SavedModelError(f"{where}: cannot find the configuration class of {model_class.__name__} "
                          f"(its __init__ has no dataclass-typed `config` argument)")


def _header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape from a safetensors header, read without loading any tensor."""
    try:
        check_safetensors(path)
        header = safetensors_header(path)
    except IntegrityError as exc:
        raise SavedModelError(str(exc)) from None
    shapes = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise SavedModelError(f"{path}: the header gives tensor {name} an invalid shape {shape!r}")
        shapes[name] = tuple(shape)
    return shapes


def _check_fits(model_class: type, model_config: Any, shapes: dict[str, tuple[int, ...]],
                tied: Mapping[str, str], path: Path) -> None:
    """Build the model on the meta device (no memory) and compare its tensor shapes with the file's."""
    with torch.device("meta"):
        skeleton = model_class(model_config)
    expected = {name: tuple(t.shape) for name, t in skeleton.state_dict().items()}
    for alias, kept in tied.items():
        if kept not in shapes:
            raise SavedModelError(f"{path}: tied weight {alias} points to {kept}, which the file does not hold")
        shapes = {**shapes, alias: shapes[kept]}
    missing = [name for name in expected if name not in shapes]
    unexpected = [name for name in shapes if name not in expected]
    wrong = [f"{name}: file {shapes[name]} vs model {shape}" for name, shape in expected.items()
             if name in shapes and shapes[name] != shape]
    problems = [f"{label} {', '.join(items[:3])}{' …' if len(items) > 3 else ''}"
                for label, items in (("missing tensors", missing), ("unexpected tensors", unexpected),
                                     ("wrong shapes", wrong)) if items]
    if problems:
        raise SavedModelError(f"{path} does not fit the {type(model_config).__name__} in {CONFIG_FILE}: "
                              + "; ".join(problems))


def _check_labels(config: dict[str, Any], model_config: Any, where: str) -> None:
    labels = config.get("label_names")
    n = getattr(model_config, "num_labels", getattr(model_config, "num_classes", None))
    if labels is not None and n is not None and len(labels) != n:
        raise SavedModelError(f"{where}: label_names has {len(labels)} names but the model predicts {n} classes")


# How often a reader starts again when the directory is swapped under it.
_READ_ATTEMPTS = 5


def _identity(directory: Path) -> tuple[int, int, int] | None:
    """Which directory is at `directory` now. A swap changes the inode, but a later save may be given the
    freed inode number again, so the change time (set by creation, writes and renames) is part of it."""
    try:
        info = os.stat(directory)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_ctime_ns


def load_saved(directory: str | Path, *, device: str | torch.device = "cpu", load_tokenizer: bool = True,
               verify: bool = True) -> SavedModel:
    """Rebuild the model saved in `directory`, load its weights and tokenizer, after checking every part.

    With `verify` (the default) every file is checked against the manifest's sha256 digests first
    (about 0.1 s per 100 MB); pass ``verify=False`` for a directory you trust. A directory replaced
    while it was being read (``--overwrite`` by another process) is read again, so the model is always
    all old or all new.
    """
    directory = Path(directory)
    for _ in range(_READ_ATTEMPTS):
        before = _identity(directory)
        try:
            saved = _load_saved_once(directory, device, load_tokenizer, verify)
        except (GlassformerError, OSError):
            if _identity(directory) == before:
                raise
            continue
        if _identity(directory) == before:
            return saved
    raise SavedModelError(f"{directory} was replaced {_READ_ATTEMPTS} times while it was being read; try again "
                          f"once the process writing it has finished")


def _load_saved_once(directory: Path, device: str | torch.device, load_tokenizer: bool, verify: bool) -> SavedModel:
    config = read_config(directory)
    if verify:
        try:
            verify_manifest(directory)
        except IntegrityError as exc:
            raise SavedModelError(str(exc)) from None
    where = str(directory / CONFIG_FILE)
    model_class = resolve_model_class(config["model_class"], where)
    if config["model_class"] in FILE_MODELS:
        model = _load_file_model(directory, config, model_class)
    else:
        model_config = build_config(_config_class(model_class, where), config["model_config"], where)
        _check_labels(config, model_config, where)
        weights_path = directory / WEIGHTS_FILE
        if not weights_path.is_file():
            raise SavedModelError(f"{directory} has no {WEIGHTS_FILE}; the weights are missing")
        tied = config.get("tied") or {}
        _check_fits(model_class, model_config, _header_shapes(weights_path), tied, weights_path)
        model = model_class(model_config)
        try:
            weights = load_file(str(weights_path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise SavedModelError(f"{weights_path} cannot be read; the file is truncated or corrupt ({exc})") from exc
        for alias, kept in tied.items():
            weights[alias] = weights[kept]
        try:
            load_model_state(model, weights, str(weights_path))
        except CheckpointError as exc:
            raise SavedModelError(str(exc)) from None
        model.to(device).eval()
    tokenizer = _load_tokenizer(directory, config) if load_tokenizer and config.get("tokenizer_class") else None
    metrics = []
    if (directory / "metrics.jsonl").is_file():
        for line in (directory / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                metrics.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return SavedModel(model=model, config=config, path=directory, task=config.get("task"),
                      label_names=config.get("label_names"), tokenizer=tokenizer, metrics=metrics)


def _load_file_model(directory: Path, config: dict[str, Any], model_class: type) -> Any:
    name = config.get("model_file", FILE_MODELS[config["model_class"]])
    path = directory / str(name)
    if not isinstance(name, str) or "/" in name or not path.is_file():
        raise SavedModelError(f"{directory} lacks its model file {name!r}")
    try:
        return model_class.load(path)
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise SavedModelError(f"{path} cannot be read: {exc}") from None


def _load_tokenizer(directory: Path, config: dict[str, Any]) -> Any:
    from glassformer.tokenizers import Tokenizer, TokenizerFileError

    named = config["tokenizer_class"].rpartition(":")[2]  # format 1 wrote "module:Class"
    known = {cls.__name__ for cls in Tokenizer._kinds.values()}
    if named not in known:
        raise SavedModelError(f"{directory / CONFIG_FILE}: unknown tokenizer class {named!r}; known: "
                              f"{', '.join(sorted(known))}")
    tokenizer_dir = directory / TOKENIZER_DIR
    if not tokenizer_dir.is_dir():
        raise SavedModelError(f"{directory} has no {TOKENIZER_DIR}/ although {CONFIG_FILE} names the "
                              f"tokenizer {named}")
    try:
        tokenizer = Tokenizer.load(tokenizer_dir)
    except (TokenizerFileError, ValueError, KeyError, TypeError) as exc:
        raise SavedModelError(f"{tokenizer_dir}: {exc}") from None
    if type(tokenizer).__name__ != named:
        raise SavedModelError(f"{tokenizer_dir} holds a {type(tokenizer).__name__}, but {CONFIG_FILE} names {named}")
    return tokenizer


def prepare_out_dir(directory: str | Path, *, overwrite: bool = False, resume: bool = False) -> Path:
    """Check, before any training, that a run may save its model in `directory`; returns it as a Path.

    Allowed: a new or empty directory; an unfinished run of an earlier training (with `resume`, to
    continue it, or `overwrite`, to start again); an earlier saved model with `overwrite` (it stays
    in place until the new model replaces it). Anything else raises OutputExistsError now, rather
    than after the training has been paid for.

    The run's process (rank 0 under DDP) takes the directory's writer lock here and keeps it until
    :func:`save_model` has written the model there, so a second training into the same directory is
    refused now (OutputBusyError, naming this process's pid) instead of silently replacing the first's.
    """
    from glassformer._files import acquire_output, artifact_kind, check_target, release_output
    from glassformer.errors import OutputExistsError
    from glassformer.training import distributed

    directory = Path(directory)
    resume = resume or distributed.restart_count() > 0  # torchrun restarted the workers: carry on
    if distributed.current().is_main:
        acquire_output(directory)
    try:
        if directory.is_dir() and artifact_kind(directory) == "unfinished-model":
            if resume or overwrite:
                return directory
            raise OutputExistsError(f"{directory} holds an unfinished training run; pass --resume (resume=True) "
                                    f"to continue it, or --overwrite (overwrite=True) to start again")
        check_target(directory, KIND, overwrite=overwrite)
    except BaseException:
        release_output(directory)
        raise
    return directory
