"""Reading checkpoint files without ever running code from them.

A Hugging Face checkpoint directory holds ``config.json`` and the weights as
``model.safetensors`` (a JSON header naming each tensor's dtype, shape and byte range,
followed by the raw bytes), optionally sharded with a ``model.safetensors.index.json``, or as
the older ``pytorch_model.bin`` (a pickle). safetensors is always preferred: it is data only.
A pickle is read with ``torch.load(weights_only=True)``, whose unpickler admits tensors and plain
containers and refuses every other global, so a checkpoint that wants to call ``os.system``
(or anything else) is rejected before the call happens.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import torch
from torch import Tensor

from glassformer._files import check_safetensors
from glassformer.errors import GlassformerError, IntegrityError

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PICKLE = "pytorch_model.bin"
PICKLE_INDEX = "pytorch_model.bin.index.json"


class CheckpointError(GlassformerError, ValueError):
    """A checkpoint directory or file is missing, corrupt, unsafe or does not fit the model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint where the name points: no such directory, and no known name or Hub id that fetches one."""


def read_config(directory: str | Path) -> dict:
    """The parsed ``config.json`` of a checkpoint directory."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{directory} has no config.json; expected a Hugging Face checkpoint directory")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config


def label_names(config: dict) -> list[str] | None:
    """The label names of a task checkpoint, in class order, from ``config.json``'s ``id2label`` (None without one)."""
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        return None
    try:
        by_index = {int(index): str(name) for index, name in id2label.items()}
    except ValueError:
        raise CheckpointError(f"config.json: id2label keys must be class numbers, got {sorted(id2label)[:3]}") from None
    if sorted(by_index) != list(range(len(by_index))):
        raise CheckpointError(f"config.json: id2label must number the classes 0..{len(by_index) - 1}, "
                              f"got {sorted(by_index)}")
    return [by_index[i] for i in range(len(by_index))]


def label_fields(names: list[str]) -> dict:
    """Hugging Face's ``id2label`` (string keys, as JSON has them) and ``label2id`` for the label names."""
    return {"id2label": {str(i): name for i, name in enumerate(names)},
            "label2id": {name: i for i, name in enumerate(names)}}


def read_state_dict(directory: str | Path) -> dict[str, Tensor]:
    """Every tensor of a checkpoint directory by its stored name: safetensors first, then a weights-only pickle."""
    directory = Path(directory)
    if (directory / SAFETENSORS).is_file():
        return read_safetensors(directory / SAFETENSORS)
    if (directory / SAFETENSORS_INDEX).is_file():
        return _read_sharded(directory, SAFETENSORS_INDEX, read_safetensors)
    if (directory / PICKLE).is_file():
        return read_pickle(directory / PICKLE)
    if (directory / PICKLE_INDEX).is_file():
        return _read_sharded(directory, PICKLE_INDEX, read_pickle)
    raise CheckpointError(
        f"{directory} holds no weights: expected one of {SAFETENSORS}, {SAFETENSORS_INDEX}, {PICKLE}, {PICKLE_INDEX}"
    )


def _read_sharded(directory: Path, index_name: str, reader) -> dict[str, Tensor]:
    index = json.loads((directory / index_name).read_text(encoding="utf-8"))
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{directory / index_name} has no 'weight_map' naming the shard of each tensor")
    tensors: dict[str, Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        shard_path = (directory / shard).resolve()
        if not shard_path.is_relative_to(directory.resolve()):
            raise CheckpointError(f"{index_name} points outside the checkpoint directory: {shard!r}")
        if not shard_path.is_file():
            raise CheckpointError(f"{index_name} names the shard {shard!r}, which is missing from {directory}")
        tensors.update(reader(shard_path))
    return tensors


def read_safetensors(path: str | Path) -> dict[str, Tensor]:
    """All tensors of one ``.safetensors`` file, after checking it is complete."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        check_safetensors(path)
    except IntegrityError as exc:
        raise CheckpointError(str(exc)) from None
    try:
        return load_file(str(path))
    except SafetensorError as exc:
        raise CheckpointError(f"{path} is not a valid safetensors file: {exc}") from exc


def read_pickle(path: str | Path) -> dict[str, Tensor]:
    """All tensors of a ``pytorch_model.bin``, unpickled with ``weights_only=True`` so no code can run."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"it references {found.group(1)}" if found else str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"refused to load {path}: the pickle asks for more than tensors and plain containers "
            f"({what}); glassformer never runs code from a checkpoint. Convert it to safetensors "
            f"with a tool you trust."
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path} does not hold a mapping from tensor names to tensors")
    return state
