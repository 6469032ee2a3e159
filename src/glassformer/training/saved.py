"""Saved models: self-describing directories that a later glassformer can load and check.

A saved model directory holds:

* ``config.json``: format name and version, the glassformer version that wrote it, the model class,
  its configuration dataclass as a dict, the task, the label names and the tokenizer's class;
* ``model.safetensors``: the weights (a tied weight is stored once and listed under ``tied``);
* ``tokenizer/``: whatever the tokenizer's ``save(directory)`` writes;
* ``metrics.jsonl`` (and ``metrics.png``): the training log, when there is one.

The directory is built under a temporary name and renamed into place. ``load_saved`` checks every
part and raises :class:`SavedModelError` naming the directory and what is wrong with it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import shutil
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

import glassformer
from glassformer._files import atomic_dir
from glassformer.training.checkpoint import CheckpointError, load_model_state

FORMAT = "glassformer-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"

# Model classes by name → "module:attribute", imported only when a directory asks for them.
MODEL_CLASSES: dict[str, str] = {
    "EncoderClassifier": "glassformer.models.encoder:EncoderClassifier",
    "TransformerEncoderModel": "glassformer.models.encoder:TransformerEncoderModel",
    "DecoderLM": "glassformer.models.decoder_lm:DecoderLM",
}


class SavedModelError(ValueError):
    """A saved model directory is missing a part, damaged, or written by an incompatible glassformer."""


def register_model_class(cls: type, name: str | None = None) -> type:
    """Make `cls` loadable by name from saved directories (glassformer's own classes are found without this)."""
    MODEL_CLASSES[name or cls.__name__] = f"{cls.__module__}:{cls.__qualname__}"
    return cls


def _import(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def resolve_model_class(name: str, module: str | None = None) -> type:
    """The model class registered under `name`, or `name` in `module` when that module is glassformer's own."""
    if name in MODEL_CLASSES:
        target = MODEL_CLASSES[name]
    elif module and (module == "glassformer" or module.startswith("glassformer.")):
        target = f"{module}:{name}"
    else:
        raise SavedModelError(f"unknown model class {name!r}; known classes: {', '.join(sorted(MODEL_CLASSES))} "
                              f"(register others with glassformer.training.saved.register_model_class)")
    try:
        return _import(target)
    except (ImportError, AttributeError) as exc:
        raise SavedModelError(f"model class {name!r} should be {target}, which cannot be imported ({exc})") from exc


@dataclass
class SavedModel:
    """A model loaded from a saved directory, with its tokenizer, label names and task."""

    model: nn.Module
    config: dict[str, Any]
    path: Path
    task: str | None = None
    label_names: list[str] | None = None
    tokenizer: Any = None
    metrics: list[dict] = field(default_factory=list)


def save_model(directory: str | Path, model: nn.Module, *, task: str | None = None,
               label_names: Sequence[str] | None = None, tokenizer: Any = None,
               metrics_file: str | Path | None = None, extra: Mapping[str, Any] | None = None) -> Path:
    """Write `model` (which must carry a dataclass ``.config``) and its companions into `directory`."""
    model_config = getattr(model, "config", None)
    if not dataclasses.is_dataclass(model_config):
        raise TypeError(f"{type(model).__name__} has no dataclass .config; save_model needs one to rebuild the model")
    weights, tied = _untie(model.state_dict())
    config = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "glassformer_version": glassformer.__version__,
        "model_class": type(model).__name__, "model_module": type(model).__module__,
        "model_config": dataclasses.asdict(model_config), "config_class": type(model_config).__name__,
        "task": task, "label_names": list(label_names) if label_names is not None else None,
        "tokenizer_class": None, "tied": tied, "extra": dict(extra or {}),
    }
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        save_file(weights, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
        if tokenizer is not None:
            tokenizer.save(tmp / TOKENIZER_DIR)
            config["tokenizer_class"] = f"{type(tokenizer).__module__}:{type(tokenizer).__qualname__}"
        if metrics_file is not None and Path(metrics_file).is_file():
            shutil.copyfile(metrics_file, tmp / "metrics.jsonl")
            plot = Path(metrics_file).with_suffix(".png")
            if plot.is_file():
                shutil.copyfile(plot, tmp / "metrics.png")
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return directory


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


def read_config(directory: str | Path) -> dict[str, Any]:
    """The checked contents of a saved directory's config.json."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SavedModelError(f"{directory} is not a directory; expected a saved glassformer model "
                              f"(config.json + {WEIGHTS_FILE})")
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise SavedModelError(f"{directory} has no {CONFIG_FILE}; a saved glassformer model holds "
                              f"{CONFIG_FILE} and {WEIGHTS_FILE} (written by save_model)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SavedModelError(f"{path} is not valid JSON ({exc}); the file is damaged") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        hint = (" (it looks like a Hugging Face checkpoint: load it with glassformer.pretrained)"
                if isinstance(config, dict) and ("model_type" in config or "architectures" in config) else "")
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise SavedModelError(f"{path} is not a glassformer model config (format {found!r}, expected {FORMAT!r})"
                              + hint)
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise SavedModelError(f"{path} has format version {version!r} (written by glassformer "
                              f"{config.get('glassformer_version', '?')}); this glassformer "
                              f"{glassformer.__version__} reads versions up to {FORMAT_VERSION}")
    missing = [k for k in ("model_class", "model_config") if k not in config]
    if missing:
        raise SavedModelError(f"{path} lacks {', '.join(missing)}")
    return config


def build_config(cls: type, values: Mapping[str, Any], where: str) -> Any:
    """An instance of dataclass `cls` from a dict, rebuilding nested dataclasses and tuples."""
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
        raise SavedModelError(f"{where}: the saved {cls.__name__} is not valid: {exc}") from exc


def _config_class(model_class: type, config: Mapping[str, Any], where: str) -> type:
    hints = typing.get_type_hints(model_class.__init__)
    candidate = hints.get("config")
    if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
        return candidate
    name = config.get("config_class")
    module = importlib.import_module(model_class.__module__)
    candidate = getattr(module, name, None) if name else None
    if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
        return candidate
    raise SavedModelError(f"{where}: cannot find the configuration class of {model_class.__name__} "
                          f"(its __init__ has no dataclass-typed `config` argument)")


def load_saved(directory: str | Path, *, device: str | torch.device = "cpu", load_tokenizer: bool = True) -> SavedModel:
    """Rebuild the model saved in `directory`, load its weights and tokenizer, after checking every part."""
    directory = Path(directory)
    config = read_config(directory)
    where = str(directory / CONFIG_FILE)
    model_class = resolve_model_class(config["model_class"], config.get("model_module"))
    model_config = build_config(_config_class(model_class, config, where), config["model_config"], where)
    model = model_class(model_config)

    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise SavedModelError(f"{directory} has no {WEIGHTS_FILE}; the weights are missing")
    try:
        weights = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise SavedModelError(f"{weights_path} cannot be read; the file is truncated or corrupt ({exc})") from exc
    for alias, kept in (config.get("tied") or {}).items():
        if kept not in weights:
            raise SavedModelError(f"{weights_path}: tied weight {alias} points to {kept}, which is missing")
        weights[alias] = weights[kept]
    try:
        load_model_state(model, weights, str(weights_path))
    except CheckpointError as exc:
        raise SavedModelError(str(exc)) from None
    model.to(device).eval()

    tokenizer = None
    if load_tokenizer and config.get("tokenizer_class"):
        tokenizer_dir = directory / TOKENIZER_DIR
        if not tokenizer_dir.is_dir():
            raise SavedModelError(f"{directory} has no {TOKENIZER_DIR}/ although {CONFIG_FILE} names the "
                                  f"tokenizer {config['tokenizer_class']}")
        target = config["tokenizer_class"]
        if not target.startswith("glassformer."):
            raise SavedModelError(f"{where}: tokenizer class {target} is not glassformer's; refusing to import it")
        try:
            tokenizer = _import(target).load(tokenizer_dir)
        except (ImportError, AttributeError) as exc:
            raise SavedModelError(f"{where}: tokenizer class {target} cannot be imported ({exc})") from exc

    metrics = []
    if (directory / "metrics.jsonl").is_file():
        for line in (directory / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                metrics.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return SavedModel(model=model, config=config, path=directory, task=config.get("task"),
                      label_names=config.get("label_names"), tokenizer=tokenizer, metrics=metrics)
