"""Writing files and directories without ever losing what the user owns, and checking them when read back.

The rules every writer in glassformer follows (models, tokenizers, checkpoints, exports, the data cache):

- a file or directory is built under a temporary name beside its target (``tempfile``, so two
  writers never pick the same name) and renamed into place only once it is complete; a crash leaves
  the old version, or nothing, never half of a new one;
- a directory is replaced only when it is empty or is a glassformer artifact of the same kind
  (:func:`artifact_kind`), and an artifact only when the caller says ``overwrite=True``; a directory
  holding anything else, or a regular file where a directory should go, is refused with a message
  that says what is there;
- the old copy is removed only after the new one is in place, and on Linux the two trade places in one
  atomic ``renameat2(RENAME_EXCHANGE)``, so a reader finds the old directory or the new one, never neither;
- one process at a time writes a directory: it holds an exclusive ``flock`` on a lock file beside it
  (``.NAME.lock``, holding the writer's pid, removed when the write ends), and a second writer is
  refused with :class:`~glassformer.errors.OutputBusyError` naming that pid;
- a write that fails because the disk is full or a file-size limit was reached raises
  :class:`~glassformer.errors.WriteFailedError`, one message naming the path and the cause, after the
  temporary copy is removed;
- every artifact directory carries a manifest (``glassformer-manifest.json``) with the size and
  sha256 digest of each of its files, which :func:`verify_manifest` checks when it is loaded.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import resource
import shutil
import struct
import tempfile
from pathlib import Path
from typing import IO, Iterator

from glassformer.errors import IntegrityError, OutputBusyError, OutputExistsError, WriteFailedError

MANIFEST = "glassformer-manifest.json"
MANIFEST_FORMAT = "glassformer-manifest"
MANIFEST_VERSION = 1
# A training run directory says so with this file (written by the trainer when the run starts).
RUN_MARKER = "glassformer-run.json"
# What older glassformer versions left in their directories before manifests existed.
_LEGACY_MARKERS = {"glassformer-tokenizer.txt": "tokenizer", ".glassformer-source": "source"}
# A kind of artifact may also replace these other kinds of glassformer directory.
_ALSO_REPLACES = {"model": {"unfinished-model"}}
_SKIP_HINT = " (if you changed it on purpose, load with verify=False, or --no-verify on the command line)"


# What a failed write says, by errno: the disk, a quota, or the process's file-size limit (ulimit -f).
_NO_ROOM = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "the disk quota is exceeded",
            errno.EFBIG: "the file-size limit was reached"}


def _limit_cause() -> str:
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return "" if soft == resource.RLIM_INFINITY else f" (ulimit -f allows {soft} bytes per file)"


def write_failure(exc: BaseException, path: str | os.PathLike) -> WriteFailedError | None:
    """The one-line error for a write of `path` that ran out of room, or None if `exc` is something else.

    Python and safetensors report an errno (ENOSPC, EDQUOT, EFBIG); torch's zip writer only says
    ``unexpected pos`` or ``file write failed``, so the cause is read from the disk and the limits.
    """
    if isinstance(exc, WriteFailedError):
        return exc
    code = exc.errno if isinstance(exc, OSError) else None
    text = str(exc)
    if code is None:
        for number, words in ((errno.ENOSPC, "No space left"), (errno.EDQUOT, "quota exceeded"),
                              (errno.EFBIG, "File too large")):
            if words in text:
                code = number
    if code is None and ("unexpected pos" in text or "file write failed" in text):
        with contextlib.suppress(OSError):
            usage = os.statvfs(Path(path).parent if not Path(path).is_dir() else path)
            if usage.f_bavail * usage.f_frsize < (1 << 20):
                code = errno.ENOSPC
            elif resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:
                code = errno.EFBIG
    if code not in _NO_ROOM:
        return None
    cause = _NO_ROOM[code] + (_limit_cause() if code == errno.EFBIG else "")
    return WriteFailedError(f"could not write {path}: {cause}; nothing was replaced")


# Lock files this process holds: resolved lock path → (file descriptor, number of holds).
_HELD: dict[Path, list[int]] = {}


def _lock_file(path: Path) -> Path:
    return path.parent.resolve() / f".{path.name}.lock"


def acquire_output(path: str | os.PathLike, *, wait: bool = False) -> None:
    """Take the writer's lock on `path` (re-entrant within this process); OutputBusyError if another holds it,
    or with `wait`, once the other has finished.

    The lock file is created beside `path` and names this process's pid; :func:`release_output` (or
    the process's exit) removes it. A lock file left by a killed process holds no ``flock`` and is reused.
    """
    path = Path(path)
    lock = _lock_file(path)
    if lock in _HELD:
        _HELD[lock][1] += 1
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise OutputBusyError(f"{path} is being written by another glassformer process (pid {holder}); wait "
                                  f"for it to finish, or choose another directory") from None
        # A holder that was releasing may have removed the file between our open and flock: start again.
        with contextlib.suppress(FileNotFoundError):
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode("ascii"))
    _HELD[lock] = [fd, 1]


def release_output(path: str | os.PathLike, *, all_holds: bool = False) -> None:
    """Give back one hold on the writer's lock on `path` (every hold with `all_holds`); the last removes the file."""
    lock = _lock_file(Path(path))
    if lock not in _HELD:
        return
    _HELD[lock][1] -= 1
    if _HELD[lock][1] > 0 and not all_holds:
        return
    fd, _ = _HELD.pop(lock)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(lock)  # while still holding it, so no one can lock a file that is about to vanish
    os.close(fd)


@atexit.register
def _release_all() -> None:
    for lock in list(_HELD):
        fd, _ = _HELD.pop(lock)
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside `path`; rename it onto `path` only if the block succeeds.

    A crash or an exception leaves the old file (or nothing) in place, never half a file. An existing
    directory at `path` is refused (OutputExistsError) instead of being replaced by a file.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(f"{path} is a directory; expected the name of a file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; give the result the mode an ordinary open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        failure = write_failure(exc, path)
        if failure is not None and failure is not exc:
            raise failure from exc
        raise


def _describe(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def artifact_kind(path: str | os.PathLike) -> str | None:
    """What glassformer wrote in directory `path`: its manifest's kind, an older marker's kind, or None.

    ``"run"`` is a training run directory and ``"unfinished-model"`` a model directory that so far holds
    only the training run that will produce it.
    """
    path = Path(path)
    manifest = path / MANIFEST
    if manifest.is_file():
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(manifest.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT and isinstance(data.get("kind"), str):
                return data["kind"]
    if (path / RUN_MARKER).is_file():
        return "run"
    config = path / "config.json"
    if config.is_file():
        with contextlib.suppress(OSError, ValueError):
            if json.loads(config.read_text(encoding="utf-8")).get("format") == "glassformer-model":
                return "model"
    for marker, kind in _LEGACY_MARKERS.items():
        if (path / marker).is_file():
            return kind
    with contextlib.suppress(OSError):
        entries = list(path.iterdir())
        if len(entries) == 1 and entries[0].name == "run" and artifact_kind(entries[0]) == "run":
            return "unfinished-model"
    return None


def check_target(path: str | os.PathLike, kind: str, *, overwrite: bool = False) -> None:
    """Raise OutputExistsError unless a `kind` directory may be written at `path`.

    Allowed: nothing there, an empty directory, or (with `overwrite`) a glassformer `kind` artifact.
    """
    path = Path(path)
    if path.is_symlink():
        raise OutputExistsError(f"{path} is a symbolic link; give the directory it points to, or a new name")
    if not path.exists():
        return
    if not path.is_dir():
        raise OutputExistsError(f"{path} is an existing file; glassformer writes a {kind} as a directory and "
                                f"never replaces a file with one: choose a new directory name")
    entries = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in path.iterdir())
    if not entries:
        return
    found = artifact_kind(path)
    if found == kind or found in _ALSO_REPLACES.get(kind, ()):
        if overwrite:
            return
        what = "an unfinished training run" if found == "unfinished-model" else f"a glassformer {found}"
        raise OutputExistsError(f"{path} already holds {what}; pass --overwrite (overwrite=True in Python) to "
                                f"replace it, or choose another directory")
    if found is not None:
        raise OutputExistsError(f"{path} holds a glassformer {found}, not a {kind}; glassformer will not replace "
                                f"it with a {kind}: choose another directory")
    raise OutputExistsError(f"{path} is not empty and was not written by glassformer (it holds "
                            f"{_describe(entries)}); glassformer never replaces files it did not write: "
                            f"choose an empty or new directory")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, kind: str, *, overwrite: bool = False,
               manifest: bool = True, wait: bool = False) -> Iterator[Path]:
    """Build a `kind` directory under a temporary name beside `path`, then rename it into place.

    The writer's lock on `path` is held throughout (:func:`acquire_output`; `wait` waits for another
    writer instead of refusing), and released at the end
    together with any hold this process took earlier for the same output (a training run's). The
    target is checked first (:func:`check_target`). With `manifest`, the digests of every file are
    recorded in ``glassformer-manifest.json`` before the swap. An existing directory trades places
    with the new one and is removed last.
    """
    path = Path(path)
    acquire_output(path, wait=wait)
    tmp = None
    try:
        check_target(path, kind, overwrite=overwrite)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        yield tmp
        if manifest:
            write_manifest(tmp, kind)
        os.chmod(tmp, 0o777 & ~_umask())
        check_target(path, kind, overwrite=overwrite)  # a writer that takes no lock may have been there meanwhile
        _swap_in(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        failure = write_failure(exc, path)
        if failure is not None and failure is not exc:
            raise failure from exc
        raise
    finally:
        release_output(path, all_holds=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directory entries in one step (Linux ``renameat2``); False where the system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # an old kernel, or a filesystem without it
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_in(new: Path, path: Path) -> None:
    """Put `new` at `path`; an existing non-empty `path` trades places with it and is removed last."""
    if not path.exists() or not any(path.iterdir()):
        os.replace(new, path)  # rename(2) replaces an empty directory
        return
    if _exchange(new, path):
        shutil.rmtree(new, ignore_errors=True)  # `new` now holds the old directory
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
    os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _artifact_files(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                  if p.is_file() and p.relative_to(directory).as_posix() != MANIFEST)


def write_manifest(directory: str | os.PathLike, kind: str) -> Path:
    """Record the size and sha256 of every file under `directory` (recursively) in its manifest."""
    directory = Path(directory)
    files = {name: {"bytes": (directory / name).stat().st_size, "sha256": sha256_file(directory / name)}
             for name in _artifact_files(directory)}
    document = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "kind": kind, "files": files}
    with atomic_write(directory / MANIFEST) as handle:
        json.dump(document, handle, indent=1, sort_keys=True)
        handle.write("\n")
    return directory / MANIFEST


def verify_manifest(directory: str | os.PathLike) -> bool:
    """Check every file the manifest of `directory` lists; False when there is no manifest (an older artifact).

    Raises IntegrityError naming the first file that is missing, of the wrong size or whose digest
    differs. Hashing reads every byte (about 0.1 s per 100 MB on a 2-core machine of 2026): pass
    ``verify=False`` to the loaders for directories you trust.
    """
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        return False
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        files = document["files"]
        if document.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
            raise ValueError("not a glassformer manifest")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{path} is damaged ({exc}); the directory cannot be checked") from None
    for name, entry in sorted(files.items()):
        target = directory / name
        if not target.resolve().is_relative_to(directory.resolve()):
            raise IntegrityError(f"{path} names a file outside its directory: {name!r}")
        if not target.is_file():
            raise IntegrityError(f"{directory} has no {name} (its manifest lists it); the directory is "
                                 f"incomplete")
        size = target.stat().st_size
        if not isinstance(entry, dict) or size != entry.get("bytes"):
            raise IntegrityError(f"{target} has {size} bytes but its manifest recorded "
                                 f"{entry.get('bytes') if isinstance(entry, dict) else entry!r}: the file was "
                                 f"changed or damaged after glassformer wrote it{_SKIP_HINT}")
        digest = sha256_file(target)
        if digest != entry.get("sha256"):
            raise IntegrityError(f"{target} does not match its manifest (sha256 {digest[:16]}…, recorded "
                                 f"{str(entry.get('sha256'))[:16]}…): the file was changed or damaged after "
                                 f"glassformer wrote it{_SKIP_HINT}")
    return True


# --- safetensors files -------------------------------------------------------------------------------

def safetensors_header(path: str | Path) -> dict:
    """The JSON header of a safetensors file (each tensor's dtype, shape and byte range), read without the data."""
    return _read_header(Path(path))[0]


def _read_header(path: Path) -> tuple[dict, int]:
    """The header and its length. The format: 8 bytes little-endian header length N, N bytes of JSON, the data."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise IntegrityError(f"{path} is truncated: {size} bytes, too short for the 8-byte safetensors header length")
        (header_len,) = struct.unpack("<Q", head)
        if 8 + header_len > size:
            raise IntegrityError(
                f"{path} is truncated: its header claims {header_len} bytes but the file has {size - 8} after the length"
            )
        try:
            header = json.loads(handle.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"{path} is not a safetensors file: its header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise IntegrityError(f"{path} is not a safetensors file: its header is not a JSON object")
    return header, header_len


def check_safetensors(path: str | Path) -> None:
    """Raise IntegrityError unless the file's header parses and the file holds every byte it promises.

    The data section must be at least as long as the largest ``data_offsets`` end in the header.
    """
    path = Path(path)
    header, header_len = _read_header(path)
    ends = [entry["data_offsets"][1] for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2 and isinstance(entry["data_offsets"][1], int)]
    needed = max(ends, default=0)
    have = path.stat().st_size - 8 - header_len
    if have < needed:
        raise IntegrityError(
            f"{path} is truncated: its header describes {needed} bytes of tensor data but the file holds {have}"
        )
