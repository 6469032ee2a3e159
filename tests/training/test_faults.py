"""Faults a save must survive, each caused for real in a second process (tests/training/fault_child.py): a file-size
limit reached mid-write (``ulimit -f`` via RLIMIT_FSIZE), a second writer into the same directory, a SIGKILL during
``--overwrite``, and readers loading while the directory is replaced. A full disk is simulated in-process (the
errno a full disk gives, and torch's ``unexpected pos``)."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import glassformer
from glassformer.errors import OutputBusyError, WriteFailedError
from glassformer.training.checkpoint import load_checkpoint, save_checkpoint
from glassformer.training.saved import load_saved, save_model
from tests.training.fault_child import labels, model

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(glassformer.__file__).parents[1]), str(ROOT)])}


def child(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.training.fault_child", *args], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (hidden ones included) with the digest of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def which(saved) -> int:
    """1 or 2: the model the directory held, after checking that every weight belongs to that same model."""
    seed = int(saved.label_names[0][len("model"):].split("-")[0])
    expected = model(seed).state_dict()
    assert all(torch.equal(tensor, expected[name]) for name, tensor in saved.model.state_dict().items())
    return seed


@pytest.fixture
def old_model(tmp_path) -> Path:
    save_model(tmp_path / "out", model(1), task="sentiment", label_names=labels(1))
    return tmp_path / "out"


def test_a_file_size_limit_during_save_is_one_error_and_keeps_the_old_model(old_model, tmp_path):
    before = snapshot(tmp_path)
    code, out, _ = finish(child("save", str(old_model), "2", "16384"))
    assert code == 3
    assert out.strip() == (f"WriteFailedError: could not write {old_model}: the file-size limit was reached "
                           f"(ulimit -f allows 16384 bytes per file); nothing was replaced")
    assert snapshot(tmp_path) == before  # the old model, and no temporary directory or lock file
    assert which(load_saved(old_model)) == 1


def test_the_cli_says_one_line_naming_the_path_and_exits_1(old_model, tmp_path):
    from glassformer.pretrained import export

    export(old_model, "hf", tmp_path / "hf")
    before = snapshot(tmp_path)
    code, _, err = finish(child("cli", "16384", "export", str(old_model), "--to", "hf", "--out", str(tmp_path / "hf"),
                                "--overwrite"))
    assert code == 1
    assert err.strip().splitlines() == [f"glassformer: error: could not write {tmp_path / 'hf'}: the file-size limit "
                                        f"was reached (ulimit -f allows 16384 bytes per file); nothing was replaced"]
    assert snapshot(tmp_path) == before


def test_a_checkpoint_past_the_size_limit_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "run" / "checkpoint.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(3)}, "step": 1})
    before = snapshot(tmp_path)
    code, out, _ = finish(child("checkpoint", str(path), "8192"))
    assert code == 3
    assert out.strip().startswith(f"WriteFailedError: could not write {path}: the file-size limit was reached")
    assert snapshot(tmp_path) == before
    assert load_checkpoint(path, require=("step",))["step"] == 1


@pytest.mark.parametrize("failure, cause", [
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on device"),
    (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4352 vs 4246"), "no space left on device"),
])
def test_a_full_disk_is_one_error_naming_the_path(old_model, tmp_path, monkeypatch, failure, cause):
    """torch's zip writer says only "unexpected pos": the cause is read from the disk (here: 4 KB free)."""
    import glassformer.training.saved as saved

    def full(*args, **kwargs):
        raise failure

    class Nearly:
        f_bavail, f_frsize = 1, 4096

    monkeypatch.setattr(saved, "save_file", full)
    monkeypatch.setattr(os, "statvfs", lambda path: Nearly())
    before = snapshot(tmp_path)
    with pytest.raises(WriteFailedError) as caught:
        save_model(old_model, model(2), task="sentiment", label_names=labels(2), overwrite=True)
    assert str(caught.value) == f"could not write {old_model}: {cause}; nothing was replaced"
    assert snapshot(tmp_path) == before


def test_a_second_training_into_the_same_directory_is_refused_naming_the_first(tmp_path):
    out = tmp_path / "new"
    first = child("hold", str(out), stdin=subprocess.PIPE)
    assert first.stdout.readline().strip() == "ready"
    script = ("import sys, os, glassformer.tasks.sentiment as task\n"
              "def reached(*args, **kwargs): os._exit(99)\n"
              "task.load_text = task.build_model = reached\n"
              "from glassformer.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    second = subprocess.run([sys.executable, "-c", script, "train", "sentiment", "--out", str(out)], cwd=ROOT,
                            env=ENV, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [f"glassformer: error: {out} is being written by another glassformer "
                                                  f"process (pid {first.pid}); wait for it to finish, or choose "
                                                  f"another directory"]
    with pytest.raises(OutputBusyError, match=f"pid {first.pid}"):
        save_model(out, model(2), task="sentiment", label_names=labels(2), overwrite=True)
    first.stdin.write("go\n")
    first.stdin.flush()
    assert finish(first)[0] == 0
    assert which(load_saved(out)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]  # the lock file went with the writer
    save_model(out, model(2), task="sentiment", label_names=labels(2), overwrite=True)  # and the lock is free
    assert which(load_saved(out)) == 2


@pytest.mark.parametrize("swaps", [1, 3, 6])
def test_sigkill_during_overwrite_leaves_a_loadable_model(old_model, swaps):
    writer = child("save-loop", str(old_model), "1000")
    for _ in range(swaps):
        assert writer.stdout.readline() != ""
    writer.send_signal(signal.SIGKILL)  # somewhere in the next save
    writer.communicate(timeout=120)
    assert which(load_saved(old_model)) in (1, 2)


def test_readers_during_overwrite_always_load_a_complete_model(old_model):
    """Each load starts as the writer starts one --overwrite save, so most loads straddle a swap."""
    writer = child("save-loop", str(old_model), "20", "--on-cue", stdin=subprocess.PIPE)
    seen = []
    for _ in range(20):
        writer.stdin.write("go\n")
        writer.stdin.flush()
        seen.append(which(load_saved(old_model)))
        assert writer.stdout.readline() != ""
    assert finish(writer)[0] == 0
    assert set(seen) == {1, 2}
