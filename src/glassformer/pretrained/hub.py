"""Turning a path or a name into a local checkpoint directory.

Three kinds of name are understood, tried in this order:

1. an existing local directory;
2. a name glassformer knows (``minilm``), fetched into the cache by :mod:`glassformer.data`;
3. a Hugging Face Hub repository id (``owner/name``), downloaded with ``huggingface_hub`` when it
   is installed and the network allows. Only data files are requested (config, safetensors or,
   failing that, the pickle, tokenizer files, sentence-transformers configs): never code.
"""

from __future__ import annotations

import concurrent.futures
import os
import socket
import urllib.parse
from pathlib import Path

from glassformer.pretrained.loading import CheckpointError, CheckpointNotFoundError

# glassformer name -> data source name (see glassformer.data.sources)
KNOWN: dict[str, str] = {
    "minilm": "minilm",
    "all-minilm-l6-v2": "minilm",
    "sentence-transformers/all-MiniLM-L6-v2": "minilm",
}

HUB_PROBE_SECONDS = 2.5

_DATA_FILES = [
    "config.json", "*.json", "vocab.txt", "merges.txt", "vocab.json", "1_Pooling/*", "2_Normalize/*",
]


def _looks_like_path(name: str) -> bool:
    """A name written as a path (``./x``, ``../x``, ``/x``, ``~/x``, a Windows separator) is never a Hub id."""
    return name.startswith((".", "/", "~")) or "\\" in name or os.sep != "/" and os.sep in name


def resolve(path_or_name: str | os.PathLike) -> Path:
    """A local directory holding the checkpoint named by ``path_or_name``.

    An existing directory is local. A name written as a path, or naming an existing file, never goes
    to the network. An ``owner/name`` that is neither local nor in the Hugging Face cache is fetched
    from the Hub; when the Hub cannot be reached the error comes within seconds and names both
    readings of the name.
    """
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        return path
    name = str(path_or_name)
    if name in KNOWN:
        from glassformer.data import fetch

        return fetch(KNOWN[name])
    if path.exists():
        raise CheckpointError(f"{path} is a file; expected a checkpoint directory holding config.json and weights")
    local = f"no directory {name!r}" + ("" if path.is_absolute() else f" (looked in {Path.cwd()})")
    if _looks_like_path(name) or isinstance(path_or_name, Path):
        raise CheckpointNotFoundError(f"{local}, and it is not a known name ({', '.join(sorted(KNOWN))}); expected a "
                              f"checkpoint directory holding config.json and weights")
    if name.count("/") == 1 and all(name.split("/")):
        return _download(name, local)
    raise CheckpointNotFoundError(f"{local}, not a known name ({', '.join(sorted(KNOWN))}), and not a Hugging Face "
                          f"Hub id of the form owner/name")


def _hub_endpoint() -> tuple[str, int, str]:
    url = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    return url.hostname or "huggingface.co", port, f"{url.scheme}://{url.netloc}"


def _hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> str | None:
    """None if a TCP connection to the Hub opens within `timeout` seconds, else why not.

    The name lookup runs in a worker thread because ``getaddrinfo`` ignores socket timeouts; on an
    offline machine it can hang for much longer than the user should wait.
    """
    host, port, _ = _hub_endpoint()

    def connect() -> None:
        with socket.create_connection((host, port), timeout=timeout):
            pass

    worker = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        worker.submit(connect).result(timeout=timeout)
        return None
    except concurrent.futures.TimeoutError:
        return f"no answer within {timeout:.0f} s"
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        worker.shutdown(wait=False)


def _download(repo_id: str, local: str) -> Path:
    """Snapshot the repository's data files (cached copy first); safetensors weights when the repository has them."""
    url = _hub_endpoint()[2]

    def failure(why: str) -> CheckpointError:
        return CheckpointNotFoundError(f"{local}; and the Hub id {repo_id!r} could not be fetched (could not download "
                               f"{repo_id!r} from {url}: {why}); when offline, pass a local checkpoint directory")

    try:
        from huggingface_hub import list_repo_files, snapshot_download
    except ImportError:
        raise failure("huggingface_hub is not installed") from None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not in the cache: go to the network below
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    why = "HF_HUB_OFFLINE is set" if offline else _hub_reachable()
    if why is not None:
        raise failure(f"the Hub is unreachable, {why}" if not offline else why)
    try:
        files = list_repo_files(repo_id)
        weights = ["*.safetensors", "model.safetensors.index.json"] if any(
            f.endswith(".safetensors") for f in files) else ["pytorch_model.bin", "pytorch_model.bin.index.json",
                                                              "pytorch_model-*.bin"]
        return Path(snapshot_download(repo_id, allow_patterns=_DATA_FILES + weights))
    except Exception as exc:  # the hub client raises many network and HTTP error types
        raise failure(f"{type(exc).__name__}: {exc}") from exc
