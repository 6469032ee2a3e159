"""No code from a registry archive runs before its sha256 is checked (pip's hash-checking mode).

A local package index serves a tampered sdist whose ``setup.py`` writes a marker file. Without
hash checking, ``pip download`` builds the sdist's metadata and so runs that ``setup.py`` (the
control below proves it); glassformer's fetch must refuse the archive with the marker never written.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from glassformer.data import sources
from glassformer.data.sources import Source, SourceError

NAME, VERSION = "gfprobe", "1.0"


def _sdist(folder: Path, marker: Path | None) -> Path:
    """A minimal sdist; with `marker`, its setup.py writes that file when run."""
    folder.mkdir(parents=True, exist_ok=True)
    setup = "from setuptools import setup\n"
    if marker is not None:
        setup = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('setup.py ran')\n" + setup
    setup += f"setup(name={NAME!r}, version={VERSION!r})\n"
    files = {"setup.py": setup, "PKG-INFO": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n"}
    archive = folder / f"{NAME}-{VERSION}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{NAME}-{VERSION}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def _copy_setup(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tar:
        (dest / "setup.py").write_bytes(tar.extractfile(f"{NAME}-{VERSION}/setup.py").read())


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    """pip sees only `index/` (no network), builds without isolation (so a setup.py could run offline)."""
    index = tmp_path / "index"
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_NO_BUILD_ISOLATION", "false")  # pip reads "false" here as --no-build-isolation
    monkeypatch.setenv("GLASSFORMER_HOME", str(tmp_path / "home"))
    return index


def _source(sha256: str) -> Source:
    return Source(name="probe", description="test", registry="pypi-sdist", spec=f"{NAME}=={VERSION}",
                  filename=f"{NAME}-{VERSION}.tar.gz", sha256=sha256, extract=_copy_setup)


def test_tampered_sdist_setup_py_never_runs(tmp_path, local_index, monkeypatch):
    legit = _sdist(tmp_path / "legit", marker=None)
    pinned = hashlib.sha256(legit.read_bytes()).hexdigest()
    marker = tmp_path / "setup-py-ran"
    _sdist(local_index, marker)  # what the "registry" serves instead

    # Control: plain `pip download` of that sdist runs its setup.py.
    control = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                              "-d", str(tmp_path / "control"), f"{NAME}=={VERSION}"], capture_output=True, text=True)
    assert control.returncode == 0, control.stderr
    assert marker.is_file(), "the control should have run setup.py; the test could not detect a regression"
    marker.unlink()

    monkeypatch.setitem(sources.SOURCES, "probe", _source(pinned))
    with pytest.raises(SourceError, match="probe"):
        sources.fetch("probe", quiet=True)
    assert not marker.exists()
    assert not (tmp_path / "home" / "probe").exists()


def test_the_pinned_sdist_is_fetched(tmp_path, local_index, monkeypatch):
    legit = _sdist(local_index, marker=None)
    monkeypatch.setitem(sources.SOURCES, "probe", _source(hashlib.sha256(legit.read_bytes()).hexdigest()))
    folder = sources.fetch("probe", quiet=True)
    assert (folder / "setup.py").read_text().endswith(f"setup(name={NAME!r}, version={VERSION!r})\n")
