"""Training checkpoints: one file holding everything needed to continue a run exactly where it stopped.

A checkpoint is a ``torch.save`` dict written to a temporary file and renamed into place, so a run
killed while writing leaves the previous checkpoint intact. It is read back with
``weights_only=True`` (plain tensors and containers, no arbitrary objects), and every way it can be
damaged gives a :class:`CheckpointError` naming the file and what is wrong with it.
"""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from glassformer._files import atomic_write
from glassformer.errors import GlassformerError

FORMAT = "glassformer-checkpoint"
VERSION = 1
TRAINING_KEYS = ("model", "optimizer", "scheduler", "rng", "position", "trainer")


class CheckpointError(GlassformerError, ValueError):
    """A checkpoint file is missing, unreadable, from another format, or lacks what was asked of it."""


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Write `state` plus the format marker to `path` atomically."""
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        torch.save({"format": FORMAT, "version": VERSION, **state}, handle)
    return path


def load_checkpoint(path: str | Path, require: Sequence[str] = TRAINING_KEYS,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint, checking its format, version and that it holds every key in `require`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} ({path.stat().st_size} bytes) cannot be read; the file is "
                              f"truncated or corrupt ({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"checkpoint {path} is not a glassformer checkpoint "
                              f"(expected format {FORMAT!r}, found {found!r})")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {state['version']}; this glassformer "
                              f"reads versions up to {VERSION} (upgrade glassformer)")
    missing = [key for key in require if key not in state]
    if missing:
        present = [key for key in state if key not in ("format", "version")]
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)} (it holds {', '.join(present)})")
    return state


def load_model_state(model: nn.Module, state_dict: Mapping[str, torch.Tensor], where: str) -> None:
    """Copy `state_dict` into `model`, or say which tensors are missing, unexpected or the wrong shape."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state_dict and state_dict[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing tensors {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors {_few(unexpected)}")
    if shapes:
        problems.append(f"wrong shapes {_few(shapes)}")
    if problems:
        raise CheckpointError(f"{where} does not fit {type(model).__name__}: {'; '.join(problems)}")
    model.load_state_dict(state_dict)


def _few(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def rng_state() -> dict[str, Any]:
    """The state of Python's, NumPy's and torch's global random generators (CUDA's too when present)."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the generators saved by `rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937",
                         "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
                         "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"]})
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
