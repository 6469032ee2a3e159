"""Background training in a child process: the documented `train` command, stopped while a request is answered.

References: the studio's in-process tiny recipes (the child's command line must parse to the same
preset), the kernel's own view of the child (``/proc/PID/stat``: state ``T`` while it is stopped),
the CLI's documented exit status 2 for settings that cannot run, and the steps the tiny preset asks
for against the ones the saved model logged. Events and process states pace the tests, never the clock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("gradio", reason="gradio is not installed (pip install gradio)")

from glassformer.studio.answering import Answering  # noqa: E402
from glassformer.studio.jobs import ModelSlot, TrainCommand  # noqa: E402
from glassformer.studio.models import TINY, task_slot  # noqa: E402

WAIT = 300  # seconds a child may take to reach a state before the test fails (a hang guard, never a timing assert)
LINUX = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads process states from /proc (Linux)")
SRC = Path(__file__).resolve().parents[2] / "src"


def state(pid: int) -> str:
    """The kernel's one-letter state of process `pid` (R, S, T, Z…); "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time a live process has used so far (/proc/PID/stat, its own threads only)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("task", sorted(TINY))
def test_the_tiny_command_line_gives_the_studio_s_tiny_recipe(task, tmp_path):
    from glassformer.cli import build_parser
    from glassformer.cli.tasks import SETTING
    from glassformer.tasks import get_task

    argv = TrainCommand(task, "quick", TINY[task]).argv(tmp_path / "out")
    assert argv[:3] == [sys.executable, "-m", "glassformer.cli"]
    args = build_parser(argv[3:]).parse_args(argv[3:])
    settings = {key[len(SETTING):]: value for key, value in vars(args).items()
                if key.startswith(SETTING) and value is not None}
    module = get_task(task)
    assert module.get_preset(args.preset, **settings) == module.get_preset("quick", **TINY[task])
    assert args.out == str(tmp_path / "out") and args.overwrite and args.quiet


@LINUX
@pytest.mark.slow
def test_a_child_run_is_stopped_while_a_request_is_answered_and_its_model_goes_live(tmp_path):
    """The studio's tiny vision run, started as `serve` starts it: stopped (state T) through a request, then saved."""
    slot = task_slot("vit", "vision", tmp_path / "vit", preset="tiny")
    answering = Answering()
    slot.trainer = answering.pausing(slot.trainer)
    assert slot.get() is None
    slot.start_training()
    wait_for(lambda: slot.job.process is not None, "the child to start")
    pid = slot.job.process.pid
    with answering.request():
        wait_for(lambda: state(pid) == "T", "the child to stop for the request")
        assert slot.job.running and answering.holding.is_set()
    wait_for(lambda: state(pid) != "T", "the child to go on after the request")
    assert answering.pauses == 1 and not answering.holding.is_set()
    slot.job.join(WAIT)
    assert slot.job.error is None, slot.status()
    assert slot.get() is not None and "is ready" in slot.status() and slot.loaded_from == tmp_path / "vit"
    assert not slot.job.log.exists()  # a run that succeeded leaves no log beside the models
    steps = [r["step"] for r in slot.records() if r.get("kind", "train") == "train" and "loss" in r]
    plans = [r["total_steps"] for r in slot.records() if r.get("kind") == "plan"]
    assert max(steps) == TINY["vit"]["max_steps"] and plans[-1] == TINY["vit"]["max_steps"]


def test_a_failing_child_gives_one_line_with_its_error_and_exit_code(tmp_path):
    """Settings the CLI refuses: exit status 2, its one-line error in the status, nothing saved."""
    slot = ModelSlot("vision", tmp_path / "vit", "cmd", lambda d: "a model", TrainCommand("vit", "quick", {"d_model": -1}))
    slot.start_training()
    slot.job.join(WAIT)
    line = slot.status()
    assert "failed" in line and "d_model" in line and "exit code 2" in line and "\n" not in line
    assert slot.get() is None and not (tmp_path / "vit").exists()
    assert "glassformer: error:" in slot.job.log.read_text()


# A stand-in studio: starts a ViT run of sys.argv[2] steps into sys.argv[1] and prints the training child's pid.
STARTS_A_CHILD = """
import sys, time
from pathlib import Path
from glassformer.studio.jobs import ModelSlot, TrainCommand

slot = ModelSlot("vision", Path(sys.argv[1]), "", lambda d: None,
                 TrainCommand("vit", "quick", {"max_steps": int(sys.argv[2])}))
slot.start_training()
while slot.job.process is None:
    time.sleep(0.05)
print(slot.job.process.pid, flush=True)
"""
PARENT = STARTS_A_CHILD + "time.sleep(600)\n"


@LINUX
@pytest.mark.slow
def test_a_killed_studio_takes_its_training_child_with_it(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "vit"), "2"], stdout=subprocess.PIPE,
                              env=env)
    child = 0
    try:
        child = int(parent.stdout.readline())
        assert state(child) not in ("", "Z")
        parent.kill()  # SIGKILL: no clean-up code of the parent runs
        parent.wait(WAIT)
        wait_for(lambda: state(child) in ("", "Z"), "the child to end with its parent")
    finally:
        parent.kill()
        parent.wait(WAIT)
        parent.stdout.close()
        if child and state(child) not in ("", "Z"):
            os.kill(child, signal.SIGKILL)
    assert not (tmp_path / "vit" / "config.json").exists()


TERMINATED = STARTS_A_CHILD + """
from glassformer.studio.app import sigterm_as_interrupt

try:
    with sigterm_as_interrupt():
        time.sleep(600)
except KeyboardInterrupt:
    pass
finally:
    slot.stop_training()
"""


@LINUX
@pytest.mark.slow
def test_sigterm_ends_the_studio_s_child_and_waits_for_it(tmp_path):
    """`kill PID` stops a studio as Ctrl+C does: its training child ends and is waited for by the studio, so the
    child's CPU time reaches whoever waits for the studio (getrusage(RUSAGE_CHILDREN), as benchmarks/headline.py
    counts its own work) instead of vanishing with a child the kernel ended."""
    import resource

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    env = {**os.environ, "PYTHONPATH": str(SRC)}
    before = children_cpu()
    parent = subprocess.Popen([sys.executable, "-c", TERMINATED, str(tmp_path / "vit"), "500"], stdout=subprocess.PIPE,
                              env=env)
    try:
        child = int(parent.stdout.readline())
        wait_for(lambda: (tmp_path / "vit" / "run" / "metrics.jsonl").is_file(), "the child to train")
        child_cpu, parent_cpu = cpu_seconds(child), cpu_seconds(parent.pid)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(WAIT) == 0  # the finally block ran: a clean exit, not death by SIGTERM (-15)
    finally:
        parent.kill()
        parent.wait(WAIT)
        parent.stdout.close()
    assert state(child) == ""  # reaped, not a zombie left to init
    assert child_cpu > 0 and children_cpu() - before >= parent_cpu + child_cpu
    assert not (tmp_path / "vit" / "config.json").exists()


def test_answering_stops_and_continues_a_registered_child_only_while_requests_are_in_flight():
    """A plain sleeping process stands in for the training child; the kernel reports its state."""
    if not Path("/proc/self/stat").is_file():
        pytest.skip("reads process states from /proc (Linux)")
    answering = Answering()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        with answering.request():  # already in flight when the child joins: it is stopped at once
            with answering.stopping(child):
                wait_for(lambda: state(child.pid) == "T", "the child to stop")
                with answering.request():  # a second request changes nothing
                    pass
                assert state(child.pid) == "T"
            wait_for(lambda: state(child.pid) not in ("T", ""), "a child that leaves to be continued")
        with answering.stopping(child):
            assert state(child.pid) != "T"  # no request: it runs
            with answering.request():
                wait_for(lambda: state(child.pid) == "T", "the child to stop for the request")
            wait_for(lambda: state(child.pid) not in ("T", ""), "the child to go on after the last request")
        assert answering.pauses == 2 and answering.in_flight == 0 and not answering.holding.is_set()
    finally:
        child.kill()
        child.wait()
