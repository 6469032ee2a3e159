"""A second process for the fault tests: it saves, holds or loses a model directory while the test watches.

Run as ``python -m tests.training.fault_child COMMAND ...`` from the repository root:

- ``save OUT SEED [LIMIT]``: save model SEED at OUT (overwrite), under ``ulimit -f LIMIT`` bytes if given;
  prints ``WriteFailedError: message`` and exits 3 if the write fails;
- ``save-loop OUT COUNT``: save models 1 and 2 alternately COUNT times (overwrite), a line after each;
  with ``--on-cue``, each save waits for a line on stdin;
- ``hold OUT``: claim OUT as a training run does, print ``ready``, wait for a line on stdin, save model 1;
- ``checkpoint PATH LIMIT``: write a training checkpoint at PATH under ``ulimit -f LIMIT`` bytes;
- ``cli LIMIT ARGS...``: run ``glassformer ARGS...`` under ``ulimit -f LIMIT`` bytes.
"""

from __future__ import annotations

import resource
import sys

import torch

from glassformer.models.encoder import EncoderClassifier, EncoderConfig


def model(seed: int) -> EncoderClassifier:
    """A small encoder classifier whose every weight depends on `seed` (about 70 KB of safetensors)."""
    torch.manual_seed(seed)
    return EncoderClassifier(EncoderConfig(vocab_size=64, max_position=16, d_model=32, n_heads=4, n_layers=1,
                                           d_ff=64, num_labels=2)).eval()


def labels(seed: int) -> list[str]:
    return [f"model{seed}-negative", f"model{seed}-positive"]


def _limit(size: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))


def main(argv: list[str]) -> int:
    from glassformer.training.saved import save_model

    command, *rest = argv
    if command == "save":
        out, seed = rest[0], int(rest[1])
        built = model(seed)
        if len(rest) > 2:
            _limit(int(rest[2]))
        try:
            save_model(out, built, task="sentiment", label_names=labels(seed), overwrite=True)
        except Exception as exc:
            print(f"{type(exc).__name__}: {exc}", flush=True)
            return 3
    elif command == "save-loop":
        out, count = rest[0], int(rest[1])
        built = {1: model(1), 2: model(2)}
        for i in range(count):
            if "--on-cue" in rest:
                sys.stdin.readline()
            seed = 1 + i % 2
            save_model(out, built[seed], task="sentiment", label_names=labels(seed), overwrite=True)
            print(i, flush=True)
    elif command == "hold":
        from glassformer.training.saved import prepare_out_dir

        out = prepare_out_dir(rest[0])
        print("ready", flush=True)
        sys.stdin.readline()
        save_model(out, model(1), task="sentiment", label_names=labels(1), overwrite=True)
    elif command == "checkpoint":
        from glassformer.training.checkpoint import save_checkpoint

        state = {"model": model(3).state_dict(), "step": 7}
        _limit(int(rest[1]))
        try:
            save_checkpoint(rest[0], state)
        except Exception as exc:
            print(f"{type(exc).__name__}: {exc}", flush=True)
            return 3
    elif command == "cli":
        from glassformer.cli import main as cli

        _limit(int(rest[0]))
        return cli(rest[1:])
    else:
        raise SystemExit(f"unknown command {command!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
