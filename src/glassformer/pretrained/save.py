"""``save_pretrained``: a glassformer model → a Hugging Face–format directory (config.json + model.safetensors).

The same name tables that load a checkpoint are run backwards, so Hugging Face transformers
(``AutoModel.from_pretrained(dir)``) reads what glassformer writes. The directory is written as a
whole under a temporary name and renamed into place, with a manifest of its files' digests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from safetensors.torch import save as safetensors_bytes
from torch import nn

from glassformer._files import atomic_dir, atomic_write
from glassformer.pretrained.loading import SAFETENSORS
from glassformer.pretrained.mapping import convert_to_theirs
from glassformer.pretrained.quantize import Int8Linear

KIND = "hf-checkpoint"


def save_pretrained(model: nn.Module, directory: str | os.PathLike, *, tokenizer: Any | None = None,
                    overwrite: bool = False) -> Path:
    """Write ``model`` (BERT encoder, GPT-2 style LM or ViT) as a Hugging Face checkpoint into ``directory``.

    The whole directory is built under a temporary name and renamed into place; ``directory`` must be
    new, empty, or (with ``overwrite``) a checkpoint glassformer wrote before.
    """
    from glassformer.pretrained.api import FAMILIES

    family = next((f for f in FAMILIES.values() if f.owns(model)), None)
    if family is None:
        raise ValueError(f"save_pretrained writes {', '.join(sorted(FAMILIES))} models, got {type(model).__name__}")
    if any(isinstance(m, Int8Linear) for m in model.modules()):
        raise ValueError("this model holds int8-quantised layers, which the Hugging Face format does not store; "
                         "save the float model before quantising")
    table = family.table(model)
    state = {k: v for k, v in model.state_dict().items()}
    theirs = family.finish(convert_to_theirs(table, state))
    config = family.config_to_hf(model.config)
    config["torch_dtype"] = "float32"
    blob = safetensors_bytes({k: v.contiguous() for k, v in theirs.items()}, metadata={"format": "pt"})
    with atomic_dir(directory, KIND, overwrite=overwrite) as tmp:
        with atomic_write(tmp / "config.json") as handle:
            json.dump(config, handle, indent=2, sort_keys=True)
            handle.write("\n")
        (tmp / SAFETENSORS).write_bytes(blob)
        if tokenizer is not None:
            family.save_tokenizer(tokenizer, tmp)
    return Path(directory)
