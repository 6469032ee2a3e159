"""Turning a path or a name into a local checkpoint directory.

Three kinds of name are understood, tried in this order:

1. an existing local directory;
2. a name glassformer knows (``minilm``), fetched into the cache by :mod:`glassformer.data`;
3. a Hugging Face Hub repository id (``owner/name``), downloaded with ``huggingface_hub`` when it
   is installed and the network allows. Only data files are requested (config, safetensors or,
   failing that, the pickle, tokenizer files, sentence-transformers configs): never code.
"""

from __future__ import annotations

import os
from pathlib import Path

from glassformer.pretrained.loading import CheckpointError

# glassformer name -> data source name (see glassformer.data.sources)
KNOWN: dict[str, str] = {
    "minilm": "minilm",
    "all-minilm-l6-v2": "minilm",
    "sentence-transformers/all-MiniLM-L6-v2": "minilm",
}

_DATA_FILES = [
    "config.json", "*.json", "vocab.txt", "merges.txt", "vocab.json", "1_Pooling/*", "2_Normalize/*",
]


def resolve(path_or_name: str | os.PathLike) -> Path:
    """A local directory holding the checkpoint named by ``path_or_name``."""
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        return path
    name = str(path_or_name)
    if name in KNOWN:
        from glassformer.data import fetch

        return fetch(KNOWN[name])
    if path.exists():
        raise CheckpointError(f"{path} is a file; expected a checkpoint directory holding config.json and weights")
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        return _download(name)
    raise CheckpointError(
        f"no checkpoint at {name!r}: not a directory, not a known name ({', '.join(sorted(KNOWN))}), "
        "and not a Hugging Face Hub id of the form owner/name"
    )


def _download(repo_id: str) -> Path:
    """Snapshot the repository's data files; safetensors weights when the repository has them."""
    try:
        from huggingface_hub import list_repo_files, snapshot_download
    except ImportError:
        raise CheckpointError(
            f"{repo_id!r} looks like a Hugging Face Hub id, but huggingface_hub is not installed; "
            "install it or pass a local checkpoint directory"
        ) from None
    try:
        files = list_repo_files(repo_id)
        weights = ["*.safetensors", "model.safetensors.index.json"] if any(
            f.endswith(".safetensors") for f in files) else ["pytorch_model.bin", "pytorch_model.bin.index.json",
                                                              "pytorch_model-*.bin"]
        return Path(snapshot_download(repo_id, allow_patterns=_DATA_FILES + weights))
    except Exception as exc:  # the hub client raises many network and HTTP error types
        raise CheckpointError(
            f"could not download {repo_id!r} from the Hugging Face Hub ({type(exc).__name__}: {exc}); "
            "when offline, pass a local checkpoint directory"
        ) from exc
