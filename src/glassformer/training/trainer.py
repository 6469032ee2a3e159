"""One trainer for every task: the task brings a model, a loss and a metric; the trainer does the rest.

The loop, per optimizer step: for each of ``grad_accum`` micro-batches, run ``loss_fn(model, batch)``
(under bf16 autocast when the precision is bf16, which ``auto`` picks where the hardware computes it
natively: the weights, the optimizer and the loss stay float32), divide by the number of micro-batches
and backpropagate; then clip the gradient norm, take an AdamW step and advance the warmup-then-decay
schedule. Every ``eval_every``
steps (or at the end of each epoch) ``evaluate(model, loader)`` scores the validation data; the best
score's weights are kept and training stops early after ``patience`` evaluations without improvement.

A checkpoint holds the model, optimizer, scheduler, random generators and the data position
(epoch and batch within it). Batches come from a sampler seeded by (seed, epoch), so resuming
skips exactly the batches already consumed and replays the rest in the same order: a resumed run
ends with the same weights, bit for bit, as one that was never interrupted. A run directory holds a
marker that says a run is in progress; when ``torchrun --max-restarts`` starts a worker group again
after a worker died, the trainer continues from the last checkpoint without being asked.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from glassformer._files import RUN_MARKER, artifact_kind, atomic_write
from glassformer._torch import evaluating
from glassformer.data.batching import BucketBatchSampler
from glassformer.errors import OutputExistsError
from glassformer.precision import autocast
from glassformer.precision import resolve as resolve_precision
from glassformer.training import distributed
from glassformer.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from glassformer.training.metrics import MetricsLog
from glassformer.training.schedules import SCHEDULES, decay_groups, make_scheduler

LossFn = Callable[[nn.Module, Mapping[str, Any]], torch.Tensor]
EvalFn = Callable[[nn.Module, DataLoader], Mapping[str, float]]
Callback = Callable[["Trainer", dict], None]

# A time budget times this many optimizer steps after the untimed ones (first calls allocate and warm caches),
# and keeps this fraction of the time back for what the timing cannot see: checkpoints, logging, and steps
# that run slower later in a long run (the 30-minute language model's steps took 0.386 s when timed and
# 0.41-0.43 s from step 400 on, so a 3% margin ran out of time at 96% of the plan; benchmarks/RESULTS.md).
_UNTIMED_STEPS, _TIMED_STEPS = 2, 8
_BUDGET_MARGIN = 0.08
# Eight steps are a small sample when batches differ in shape (translation's token-budgeted batches) or the
# machine's speed drifts, so a budget with a warm-up of at least this many steps plans again at the warm-up's end
# from every step taken by then (the schedule up to there does not depend on the total; benchmarks/RESULTS.md,
# tenth session).
_REPLAN_MIN_STEPS = 20

# Settings that fix which examples make up each step; a run cannot resume under different ones.
_POSITION_SETTINGS = ("batch_size", "grad_accum", "seed", "bucket_batches")


_pauses = threading.local()  # the `wait` functions of the pause_points blocks open in this thread


@contextlib.contextmanager
def pause_points(wait: Callable[[], None]) -> Iterator[None]:
    """Call `wait` at every batch boundary of every Trainer that runs in this thread while the block is open.

    The boundaries are before each optimizer step and before each evaluation batch. `wait` may block
    to hold the run there (the studio holds its background training while it answers a request) and
    returns to let it go on: the run's weights do not depend on when or how long it waited. A caller
    that starts a task's ``train`` (which builds its own Trainer) adds this without a parameter
    threaded through every task.
    """
    before = getattr(_pauses, "waits", ())
    _pauses.waits = (*before, wait)
    try:
        yield
    finally:
        _pauses.waits = before


def _pause_point() -> None:
    for wait in getattr(_pauses, "waits", ()):
        wait()


def _pausing(batches: Any) -> Iterator[Any]:
    for batch in batches:
        _pause_point()
        yield batch


@dataclass
class TrainConfig:
    """Everything that shapes a training run; stored in every checkpoint."""

    out_dir: str | None = None  # checkpoints, metrics.jsonl and metrics.png go here (None: keep nothing)
    epochs: int = 1
    max_steps: int | None = None  # optimizer steps; when set it replaces epochs as the run's length
    # A wall-clock budget for the whole run, counted from `started_at` (a time.time(); None: when fit starts).
    # The trainer times a few steps and one evaluation first, then sets max_steps so that training, its
    # evaluations and `reserve_evals` more evaluations' worth of the caller's closing work end in time.
    max_minutes: float | None = None
    started_at: float | None = None
    reserve_evals: float = 0.0
    timing_step: int = 0  # the step the timed steps stand for (a curriculum whose batches change later times those)
    batch_size: int = 32  # examples per forward pass summed over all processes
    grad_accum: int = 1  # forward passes per optimizer step
    lr: float = 5e-5  # peak learning rate
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    schedule: str = "cosine"  # "cosine", "linear" or "constant" after warmup
    warmup_ratio: float = 0.1  # fraction of the steps spent warming up (warmup_steps overrides it)
    warmup_steps: int | None = None
    min_lr_ratio: float = 0.0  # the learning rate at the last step, as a fraction of lr
    max_grad_norm: float | None = 1.0
    # An exponential moving average of the weights, updated after every optimizer step (None: off): with it,
    # evaluation, the best checkpoint and the returned model are the average's weights, not the last step's.
    ema_decay: float | None = None
    eval_every: int | None = None  # steps between evaluations; None: at the end of every epoch
    eval_points: int | None = None  # evaluations spread evenly over the run (replaces eval_every)
    eval_batch_size: int | None = None  # defaults to batch_size
    metric: str = "loss"  # the key of evaluate()'s result that picks the best checkpoint
    greater_is_better: bool | None = None  # None: False for names containing "loss", True otherwise
    patience: int | None = None  # evaluations without improvement before stopping early
    checkpoint_every: int | None = None  # steps between checkpoints besides those after each evaluation
    checkpoint_minutes: float | None = 10.0  # and at least this often in wall-clock time (long runs; None: off)
    load_best_at_end: bool = True
    log_every: int = 10
    seed: int = 0
    precision: str = "auto"  # "auto" (bf16 where the hardware computes it natively, else fp32), "fp32" or "bf16"
    deterministic: bool = True  # torch.use_deterministic_algorithms on CPU during the run
    bucket_batches: int = 50  # length buckets hold this many batches
    num_workers: int = 0
    device: str | None = None  # None: this process's GPU if there is one, else the CPU
    progress: bool = True

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r}; expected one of {', '.join(SCHEDULES)}")
        if self.grad_accum < 1 or self.batch_size < 1:
            raise ValueError(f"batch_size and grad_accum must be >= 1, got {self.batch_size} and {self.grad_accum}")
        if not 0 <= self.warmup_ratio <= 1:
            raise ValueError(f"warmup_ratio must be in [0, 1], got {self.warmup_ratio}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision={self.precision!r}; training runs in auto, fp32 or bf16")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes must be > 0, got {self.max_minutes}")
        if self.eval_points is not None and self.eval_points < 1:
            raise ValueError(f"eval_points must be >= 1, got {self.eval_points}")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) (the weight kept of the average at each step), got "
                             f"{self.ema_decay}")
        self.betas = tuple(self.betas)

    @property
    def maximize(self) -> bool:
        if self.greater_is_better is not None:
            return self.greater_is_better
        return "loss" not in self.metric and "perplexity" not in self.metric


@dataclass
class TrainResult:
    """What a finished run reports: steps taken, the best evaluation and where things were written."""

    steps: int
    epochs: float
    best_metric: float | None
    best_step: int | None
    stopped_early: bool
    seconds: float
    evaluations: list[dict] = field(default_factory=list)
    out_dir: str | None = None
    precision: str = "fp32"  # what the run computed in (auto resolved)
    budget: dict | None = None  # with max_minutes: what the plan measured and decided (plan_steps's inputs, steps)


@dataclass
class _Progress:
    """The part of the trainer's state that a checkpoint must carry besides model and optimizer."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # batches of `epoch` already consumed
    best: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    evaluations: list[dict] = field(default_factory=list)


@dataclass
class _Window:
    """What happened since the last log line: summed step losses, steps, examples and tokens."""

    since: float
    loss: float | torch.Tensor = 0.0
    steps: int = 0
    examples: int = 0
    tokens: int = 0


@dataclass
class _Run:
    """Everything one call of ``fit`` works with, handed from step to step."""

    model: nn.Module
    wrapped: nn.Module  # the model, or its DDP wrapper
    sampler: BucketBatchSampler
    loader: DataLoader
    optimizer: torch.optim.Optimizer
    scheduler: Any
    log: MetricsLog | None
    bar: Any
    state: _Progress
    total_steps: int
    batches_per_epoch: int
    started: float
    window: _Window
    checkpointed_at: float
    eval_every: int | None = None  # steps between evaluations (None: at each epoch's end)
    deadline: float | None = None  # with a time budget: the clock reading by which training must stop
    budget: dict | None = None
    saved_at: int = -1
    replan_at: int | None = None  # with a time budget: the step (the warm-up's end) at which the steps are planned again
    step_clock: float = 0.0  # seconds inside optimizer steps since the untimed first ones, for the second plan
    steps_clocked: int = 0


def count_tokens(collate_fn: Any, batch: Any) -> int:
    """Real (not padding) tokens in a batch: the collator's own ``count_tokens`` when it has one, else the
    ``attention_mask``'s sum, else 0."""
    counter = getattr(collate_fn, "count_tokens", None)
    if counter is not None:
        return int(counter(batch))
    return _count(batch, "tokens")


def model_loss(model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
    """The default loss_fn: call the model on the batch's fields and take ``.loss`` (or the output itself)."""
    out = model(**batch)
    loss = getattr(out, "loss", out)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise TypeError(f"the model returned {type(out).__name__} without a scalar .loss; "
                        f"give Trainer a loss_fn(model, batch) -> scalar tensor")
    return loss


class Trainer:
    """Trains any nn.Module on any task with AdamW, warmup + decay, accumulation, clipping, DDP and resume."""

    def __init__(self, model: nn.Module, config: TrainConfig, train_data: Sequence, *,
                 collate_fn: Callable[[list], Mapping[str, Any]], loss_fn: LossFn = model_loss,
                 eval_data: Sequence | None = None, evaluate: EvalFn | None = None,
                 lengths: Sequence[int] | None = None, eval_lengths: Sequence[int] | None = None,
                 callbacks: Sequence[Callback] = (), clock: Callable[[], float] = time.time) -> None:
        self.model = model
        self.clock = clock  # wall-clock seconds for the time budget (tests inject a fake one)
        self.config = config
        self.train_data = train_data
        self.collate_fn = collate_fn
        self.loss_fn = loss_fn
        self.eval_data = eval_data
        self.evaluate_fn = evaluate or self._mean_loss
        self.lengths = lengths
        self.eval_lengths = eval_lengths
        self.callbacks = list(callbacks)
        self.out_dir = Path(config.out_dir) if config.out_dir else None
        self.should_stop = False
        self.progress = _Progress()
        self._ema: dict[str, torch.Tensor] | None = None  # the moving average of the weights (ema_decay)
        self.dist = distributed.DistInfo()
        self.device = torch.device("cpu")
        self.precision = "fp32"

    # --- paths ------------------------------------------------------------------------------------

    @property
    def last_checkpoint(self) -> Path | None:
        return self.out_dir / "checkpoints" / "last.pt" if self.out_dir else None

    @property
    def best_checkpoint(self) -> Path | None:
        return self.out_dir / "checkpoints" / "best.pt" if self.out_dir else None

    # --- the run ----------------------------------------------------------------------------------

    def fit(self, resume: bool = False) -> TrainResult:
        """Train until the step budget is spent or early stopping fires; with `resume`, continue from last.pt.

        Under ``torchrun`` after a restart (``TORCHELASTIC_RESTART_COUNT`` > 0) a run in progress
        resumes from its last checkpoint whatever `resume` says.
        """
        cfg = self.config
        self.dist = distributed.init_distributed()
        self.device = distributed.device_for(self.dist, cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device, training=True)
        # The run's clock starts with the caller's budget (data and vocabulary work before fit count too).
        self._run_started = cfg.started_at if cfg.started_at is not None else self.clock()
        resume = resume or (distributed.restart_count() > 0 and self.last_checkpoint is not None
                            and self.last_checkpoint.is_file())
        deterministic_before = torch.are_deterministic_algorithms_enabled()
        if cfg.deterministic and self.device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        try:
            run = self._prepare(resume)
            if cfg.max_minutes is not None and run.state.step == 0:
                self._plan_budget(run)
            if run.log:  # what a watcher (the studio's progress line) needs to say "step N of M"
                run.log.write({"kind": "plan", "step": run.state.step, "total_steps": run.total_steps})
            while run.state.step < run.total_steps and not self.should_stop:
                self._train_epoch(run)
            return self._finish(run)
        finally:
            torch.use_deterministic_algorithms(deterministic_before)

    def _prepare(self, resume: bool) -> _Run:
        """Seeds, the model on its device, batches, optimizer, schedule, the log, and (with `resume`) the checkpoint."""
        cfg, info = self.config, self.dist
        random.seed(cfg.seed + info.rank)
        np.random.seed(cfg.seed + info.rank)
        torch.manual_seed(cfg.seed + info.rank)
        model = self.model.to(self.device)
        model.train()
        sampler = BucketBatchSampler(self.lengths, cfg.batch_size, n_examples=len(self.train_data), shuffle=True,
                                     seed=cfg.seed, bucket_batches=cfg.bucket_batches,
                                     num_replicas=info.world_size, rank=info.rank)
        # Its own generator keeps the loader from drawing on the global RNG that dropout uses.
        loader = DataLoader(self.train_data, batch_sampler=sampler, collate_fn=self.collate_fn,
                            num_workers=cfg.num_workers, generator=torch.Generator().manual_seed(cfg.seed))
        batches_per_epoch = len(sampler)
        steps_per_epoch = math.ceil(batches_per_epoch / cfg.grad_accum)
        total_steps = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch
        optimizer = torch.optim.AdamW(decay_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas,
                                      eps=cfg.eps)
        scheduler = self._schedule(optimizer, total_steps)
        if self.out_dir and info.is_main:
            mark_run_dir(self.out_dir)
        log = MetricsLog(self.out_dir / "metrics.jsonl") if self.out_dir and info.is_main else None

        self.progress = _Progress()
        self._ema = None
        if resume and self.last_checkpoint and self.last_checkpoint.is_file():
            self._restore(self.last_checkpoint, model, optimizer, scheduler)
            if log:
                log.truncate_after(self.progress.step)
            if cfg.max_minutes is not None and cfg.max_steps is not None:  # a budgeted run keeps the steps it planned
                total_steps = cfg.max_steps
                scheduler = self._schedule(optimizer, total_steps, state=scheduler.state_dict())
        else:
            if resume and info.is_main:
                print(f"glassformer: no checkpoint at {self.last_checkpoint}; starting from the beginning",
                      file=sys.stderr)
            if log and log.path.exists():
                log.path.unlink()
        wrapped: nn.Module = model
        if info.enabled:
            wrapped = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self._best_in_memory: dict[str, torch.Tensor] | None = None
        self.should_stop = False
        bar = tqdm(total=total_steps, initial=self.progress.step, disable=not (cfg.progress and info.is_main),
                   unit="step", dynamic_ncols=True, file=sys.stderr)
        return _Run(model=model, wrapped=wrapped, sampler=sampler, loader=loader, optimizer=optimizer,
                    scheduler=scheduler, log=log, bar=bar, state=self.progress, total_steps=total_steps,
                    batches_per_epoch=batches_per_epoch, started=time.perf_counter(),
                    window=_Window(since=time.perf_counter()), checkpointed_at=time.monotonic(),
                    eval_every=self._eval_every(total_steps))

    def _schedule(self, optimizer: torch.optim.Optimizer, total_steps: int, state: dict | None = None) -> Any:
        """The warmup-then-decay schedule over `total_steps` (continuing from `state`, a scheduler's state_dict)."""
        cfg = self.config
        warmup = cfg.warmup_steps if cfg.warmup_steps is not None else round(cfg.warmup_ratio * total_steps)
        scheduler = make_scheduler(optimizer, cfg.schedule, min(warmup, total_steps), total_steps, cfg.min_lr_ratio)
        if state is not None:
            scheduler.load_state_dict(state)
            # A new LambdaLR sets the rates of its step 0; the next optimizer step must use the rate of the step
            # the schedule continues from.
            for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
                group["lr"] = base * factor(scheduler.last_epoch)
        return scheduler

    def _eval_every(self, total_steps: int) -> int | None:
        """Steps between evaluations: ``eval_points`` spread over `total_steps`, else ``eval_every``."""
        if self.config.eval_points is not None:
            return max(1, math.ceil(total_steps / self.config.eval_points))
        return self.config.eval_every

    def _plan_budget(self, run: _Run) -> None:
        """Time a few steps and one evaluation, then fit the run's steps, schedule and evaluations to the budget.

        The timed steps are undone (weights, optimizer, random generators), so a run of the planned
        steps given as ``max_steps`` trains exactly the same model.
        """
        cfg, started = self.config, self._run_started
        measured = distributed.broadcast_object(self._time_steps(run))
        remaining, steps = self._steps_that_fit(run, measured["step_seconds"], measured["eval_seconds"])
        cfg.max_steps = run.total_steps = steps  # checkpoints record the plan, so a resumed run keeps it
        run.scheduler = self._schedule(run.optimizer, steps)
        run.eval_every = self._eval_every(steps)
        run.deadline = started + cfg.max_minutes * 60 - cfg.reserve_evals * measured["eval_seconds"]
        run.budget = {"minutes": cfg.max_minutes, "seconds_left_at_plan": round(remaining, 2),
                      **{k: round(v, 4) for k, v in measured.items()}, "steps": steps}
        run.bar.reset(total=steps)
        # A curriculum's first batches (timing_step > 0) are not the run's, so they cannot correct the plan.
        if cfg.warmup_steps is not None and cfg.timing_step == 0 and _REPLAN_MIN_STEPS <= cfg.warmup_steps < steps:
            run.replan_at = cfg.warmup_steps

    def _steps_that_fit(self, run: _Run, step_seconds: float, eval_seconds: float) -> tuple[float, int]:
        """The budget's seconds left by rank 0's clock (one plan for every process), and the optimizer steps that fit
        in them at `step_seconds` a step with the run's evaluations at `eval_seconds` each."""
        cfg = self.config
        remaining = distributed.broadcast_object(cfg.max_minutes * 60 - (self.clock() - self._run_started))
        return remaining, plan_steps(remaining, step_seconds, eval_seconds, eval_every=cfg.eval_every,
                                     eval_points=cfg.eval_points,
                                     steps_per_epoch=math.ceil(run.batches_per_epoch / cfg.grad_accum),
                                     reserve_evals=cfg.reserve_evals)

    def _replan(self, run: _Run) -> None:
        """Plan the steps again at the warm-up's end, from the mean time of every optimizer step taken since the
        untimed first ones, and stretch or shrink the decay to them.

        The warm-up's rates do not depend on the total, so the run equals one given the new total as ``max_steps``
        from the start (which is what its checkpoints and saved settings record).
        """
        cfg = self.config
        # Rank 0's clock decides for every process, so that all of them stop at the same step.
        step_seconds = distributed.broadcast_object(run.step_clock / run.steps_clocked)
        remaining, more = self._steps_that_fit(run, step_seconds, run.budget["eval_seconds"])
        steps = run.state.step + more
        run.replan_at = None
        run.budget.update(first_plan_steps=run.budget["steps"], steps=steps,
                          replanned={"at_step": run.state.step, "step_seconds": round(step_seconds, 4),
                                     "seconds_left": round(remaining, 2)})
        if steps == run.total_steps:
            return
        cfg.max_steps = run.total_steps = steps
        run.scheduler = self._schedule(run.optimizer, steps, state=run.scheduler.state_dict())
        run.eval_every = self._eval_every(steps)
        run.bar.total = steps
        run.bar.refresh()
        if run.log:
            run.log.write({"kind": "plan", "step": run.state.step, "total_steps": steps})

    def _time_steps(self, run: _Run) -> dict[str, float]:
        """Seconds per optimizer step (after two untimed ones) and per evaluation, leaving no trace on the run."""
        model, optimizer, cfg = run.model, run.optimizer, self.config
        saved = ({k: v.detach().clone() for k, v in model.state_dict().items()},
                 copy.deepcopy(optimizer.state_dict()), run.scheduler.state_dict(), rng_state(),
                 None if self._ema is None else {k: v.clone() for k, v in self._ema.items()})
        timed: list[float] = []
        epoch, at_step = run.state.epoch, run.state.step
        run.state.step = cfg.timing_step  # data that reads the trainer's step gives that step's batches
        while len(timed) < _TIMED_STEPS + _UNTIMED_STEPS:
            self._set_epoch(run, epoch, 0)
            group: list[Any] = []
            for batch in run.loader:
                group.append(batch)
                if len(group) < cfg.grad_accum:
                    continue
                _pause_point()  # outside the timed span, so a pause does not shrink the plan
                began = self.clock()
                for micro in group:
                    self._backward(run, micro, len(group), sync=True)
                self._apply_gradients(run)
                timed.append(self.clock() - began)
                group = []
                if len(timed) == _TIMED_STEPS + _UNTIMED_STEPS:
                    break
            epoch += 1
        eval_seconds = 0.0
        if self.eval_data is not None:
            began = self.clock()
            self.evaluate(model)
            eval_seconds = self.clock() - began
        model.load_state_dict(saved[0])
        optimizer.load_state_dict(saved[1])
        run.scheduler.load_state_dict(saved[2])
        set_rng_state(saved[3])
        self._ema = saved[4]
        run.state.step = at_step
        run.window = _Window(since=time.perf_counter())
        return {"step_seconds": sum(timed[_UNTIMED_STEPS:]) / _TIMED_STEPS, "eval_seconds": eval_seconds}

    def _train_epoch(self, run: _Run) -> None:
        """The rest of the current epoch (from the batch a resumed run stopped at), one micro-batch at a time."""
        cfg, state = self.config, run.state
        self._set_epoch(run, state.epoch, state.batch)
        group_loss = 0.0
        for index, batch in enumerate(run.loader, start=state.batch):
            group_start = index - index % cfg.grad_accum
            if index == group_start:
                _pause_point()
                group_began = self.clock()
            group_len = min(cfg.grad_accum, run.batches_per_epoch - group_start)
            last_in_group = index == group_start + group_len - 1
            group_loss += self._backward(run, batch, group_len, sync=last_in_group)
            if not last_in_group:
                continue
            self._optimizer_step(run, group_loss, batch_index=index)
            group_loss = 0.0
            if run.replan_at is not None:
                if state.step > _UNTIMED_STEPS:
                    run.step_clock += self.clock() - group_began
                    run.steps_clocked += 1
                if state.step == run.replan_at:
                    self._replan(run)
            record = self._log_step(run)
            end_of_epoch = state.batch == run.batches_per_epoch
            out_of_time = run.deadline is not None and distributed.broadcast_object(self.clock() > run.deadline)
            if out_of_time:  # slower than timed: stop in time rather than finish the schedule
                self.should_stop = True
                run.budget["out_of_time_at_step"] = state.step
            # The step a deadline stops at is scored like the last step of the schedule (the reserve pays for it).
            evaluated = self._maybe_evaluate(run, end_of_epoch, last=out_of_time)
            if end_of_epoch:
                state.epoch, state.batch = state.epoch + 1, 0
            self._maybe_checkpoint(run, evaluated)
            for callback in self.callbacks:
                callback(self, record)
            if self.should_stop or state.step >= run.total_steps:
                return

    def _set_epoch(self, run: _Run, epoch: int, batch: int) -> None:
        """Point the sampler (and a data set with ``set_epoch``, e.g. one that shifts its windows) at `epoch`."""
        run.sampler.set_epoch(epoch, batch)
        set_data_epoch = getattr(self.train_data, "set_epoch", None)
        if set_data_epoch is not None:
            set_data_epoch(epoch)

    def _backward(self, run: _Run, batch: Any, group_len: int, *, sync: bool) -> torch.Tensor:
        """Forward and backward of one micro-batch (its loss divided by the group's size); returns that share.

        The share stays a tensor on the device, so that no step waits for a GPU to report its loss.
        """
        world = self.dist.world_size
        # Counted on the host copy of the batch, so that no step waits for the GPU.
        run.window.examples += _count(batch, "examples") * world
        run.window.tokens += count_tokens(self.collate_fn, batch) * world
        batch = _to_device(batch, self.device)
        no_sync = run.wrapped.no_sync() if self.dist.enabled and not sync else contextlib.nullcontext()
        with no_sync:
            with autocast(self.precision, self.device):
                loss = self.loss_fn(run.wrapped, batch)
            (loss / group_len).backward()
        return loss.detach().float() / group_len

    def _optimizer_step(self, run: _Run, group_loss: torch.Tensor, *, batch_index: int) -> None:
        """Clip the gradient norm, step AdamW and the schedule, and count the step."""
        self._apply_gradients(run)
        run.state.step += 1
        run.state.batch = batch_index + 1
        run.window.loss += group_loss
        run.window.steps += 1
        run.bar.update(1)

    def _apply_gradients(self, run: _Run) -> None:
        """Clip the gradient norm, then one AdamW step and one schedule step."""
        if self.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), self.config.max_grad_norm)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
        self._update_ema(run.model)

    def _update_ema(self, model: nn.Module) -> None:
        """average ← decay · average + (1 − decay) · weights, in float32, over every floating-point parameter;
        the first step's weights start it (as ``torch.optim.swa_utils.AveragedModel`` with an EMA does)."""
        decay = self.config.ema_decay
        if decay is None:
            return
        with torch.no_grad():
            params = {name: p for name, p in model.named_parameters() if p.is_floating_point()}
            if self._ema is None:
                self._ema = {name: p.detach().float().clone() for name, p in params.items()}
                return
            for name, average in self._ema.items():
                average.lerp_(params[name].detach().float(), 1.0 - decay)

    @contextlib.contextmanager
    def _averaged(self, model: nn.Module) -> Iterator[None]:
        """Within the block `model` holds the moving average of its weights (when there is one), then its own."""
        if self._ema is None:
            yield
            return
        own = {name: p.detach().clone() for name, p in model.named_parameters() if name in self._ema}
        self._put(model, self._ema)
        try:
            yield
        finally:
            self._put(model, own)

    @staticmethod
    def _put(model: nn.Module, weights: Mapping[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in weights:
                    p.copy_(weights[name])

    def _log_step(self, run: _Run) -> dict[str, Any]:
        """The step's record for the callbacks; every ``log_every`` steps also the window's means in the log."""
        state = run.state
        record: dict[str, Any] = {"kind": "train", "step": state.step,
                                  "epoch": round(state.epoch + state.batch / run.batches_per_epoch, 4)}
        if state.step % self.config.log_every == 0 or state.step == run.total_steps:
            record.update(self._flush_window(run.window, run.scheduler.get_last_lr()[0]))
            if run.log:
                run.log.write(record)
            run.bar.set_postfix(loss=f"{record['loss']:.4f}", ex_s=f"{record['examples_per_s']:.1f}",
                                lr=f"{record['lr']:.2e}", refresh=False)
        return record

    def _maybe_evaluate(self, run: _Run, end_of_epoch: bool, last: bool = False) -> bool:
        """Score the validation data every ``eval_every`` steps (or at each epoch's end) and at the last step."""
        step = run.state.step
        due = (run.eval_every and step % run.eval_every == 0) or (not run.eval_every and end_of_epoch)
        if self.eval_data is None or not (due or last or step == run.total_steps):
            return False
        with self._averaged(run.model):  # the average is what is scored and kept as the best
            self._evaluate_and_track(run.model, run.log)
        return True

    def _maybe_checkpoint(self, run: _Run, evaluated: bool) -> None:
        """Save after an evaluation, every ``checkpoint_every`` steps, every ``checkpoint_minutes``, and at the end."""
        cfg, step = self.config, run.state.step
        minutes = (time.monotonic() - run.checkpointed_at) / 60
        due = (evaluated or step == run.total_steps or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0)
               or (cfg.checkpoint_minutes is not None and minutes >= cfg.checkpoint_minutes))
        # Every rank must agree, since saving gathers the random-generator states of all of them.
        if distributed.broadcast_object(bool(due)):
            self._save(run.model, run.optimizer, run.scheduler)
            run.saved_at, run.checkpointed_at = step, time.monotonic()

    def _finish(self, run: _Run) -> TrainResult:
        """Save a run stopped early, draw the curves, load the best weights, and report."""
        state = run.state
        run.bar.close()
        if self.should_stop and run.saved_at != state.step:
            self._save(run.model, run.optimizer, run.scheduler)
        if run.log:
            run.log.plot(self.out_dir / "metrics.png")
        if self.config.load_best_at_end and state.best_step is not None:
            self._load_best(run.model)
        elif self._ema is not None:
            self._put(run.model, self._ema)
        distributed.barrier()
        return TrainResult(steps=state.step, epochs=round(state.epoch + state.batch / run.batches_per_epoch, 4),
                           best_metric=state.best, best_step=state.best_step,
                           stopped_early=self.should_stop and state.step < run.total_steps,
                           seconds=time.perf_counter() - run.started, evaluations=list(state.evaluations),
                           out_dir=str(self.out_dir) if self.out_dir else None, precision=self.precision,
                           budget=run.budget)

    # --- evaluation -------------------------------------------------------------------------------

    def eval_loader(self) -> DataLoader:
        """Batches of the validation data in a fixed order (length-sorted within buckets when lengths are known)."""
        size = self.config.eval_batch_size or self.config.batch_size
        sampler = BucketBatchSampler(self.eval_lengths, size, n_examples=len(self.eval_data), shuffle=False,
                                     bucket_batches=self.config.bucket_batches)
        return DataLoader(self.eval_data, batch_sampler=sampler, collate_fn=self.collate_fn,
                          num_workers=self.config.num_workers)

    def evaluate(self, model: nn.Module | None = None) -> dict[str, float]:
        """Score the validation data with the task's evaluate function (eval mode, no gradients)."""
        model = model if model is not None else self.model
        loader = self.eval_loader()
        with evaluating(model), autocast(self.precision, self.device):
            metrics = dict(self.evaluate_fn(model, _pausing(loader) if getattr(_pauses, "waits", ()) else loader))
        return {k: float(v) if isinstance(v, (int, float, torch.Tensor)) else v for k, v in metrics.items()}

    def _mean_loss(self, model: nn.Module, loader: DataLoader) -> dict[str, float]:
        total, count = 0.0, 0
        for batch in loader:
            batch = _to_device(batch, self.device)
            n = _count(batch, "examples")
            total += float(self.loss_fn(model, batch)) * n
            count += n
        return {"loss": total / max(count, 1)}

    def _evaluate_and_track(self, model: nn.Module, log: MetricsLog | None) -> None:
        cfg, state = self.config, self.progress
        metrics = self.evaluate(model) if self.dist.is_main else None
        # Only rank 0 evaluates; everyone must take the same early-stopping decision.
        metrics = distributed.broadcast_object(metrics)
        if cfg.metric not in metrics:
            raise KeyError(f"evaluate() returned {sorted(metrics)}, without the metric {cfg.metric!r} "
                           f"that TrainConfig.metric names")
        value = float(metrics[cfg.metric])
        improved = state.best is None or (value > state.best if cfg.maximize else value < state.best)
        if improved:
            state.best, state.best_step, state.bad_evals = value, state.step, 0
            self._save_best(model, metrics)
        else:
            state.bad_evals += 1
            if cfg.patience is not None and state.bad_evals >= cfg.patience:
                self.should_stop = True
        record = {"kind": "eval", "step": state.step, "metrics": metrics, "best": state.best,
                  "best_step": state.best_step, "seconds": round(self.clock() - self._run_started, 2)}
        state.evaluations.append(record)
        if log:
            log.write(record)

    # --- checkpoints ------------------------------------------------------------------------------

    def _save(self, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
        if not self.out_dir:
            return
        rng = distributed.gather_objects(rng_state())  # collective: every rank takes part
        if self.dist.is_main:
            state = self.progress
            save_checkpoint(self.last_checkpoint, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": rng, "ema": self._ema,
                "position": {"step": state.step, "epoch": state.epoch, "batch": state.batch},
                "trainer": {"best": state.best, "best_step": state.best_step, "bad_evals": state.bad_evals,
                            "evaluations": state.evaluations},
                "config": asdict(self.config), "world_size": self.dist.world_size,
            })

    def _save_best(self, model: nn.Module, metrics: Mapping[str, Any]) -> None:
        if not self.config.load_best_at_end and not self.out_dir:
            return
        if not self.out_dir:
            self._best_in_memory = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif self.dist.is_main:
            save_checkpoint(self.best_checkpoint, {"model": model.state_dict(), "step": self.progress.step,
                                                   "metrics": dict(metrics)})

    def _load_best(self, model: nn.Module) -> None:
        if self._best_in_memory is not None:
            model.load_state_dict(self._best_in_memory)
            return
        distributed.barrier()  # rank 0 may still be writing it
        if self.best_checkpoint and self.best_checkpoint.is_file():
            state = load_checkpoint(self.best_checkpoint, require=("model",))
            load_model_state(model, state["model"], str(self.best_checkpoint))

    def _restore(self, path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
        state = load_checkpoint(path)
        saved = state.get("config", {})
        changed = [f"{k}: checkpoint {saved[k]!r}, now {getattr(self.config, k)!r}"
                   for k in _POSITION_SETTINGS if k in saved and saved[k] != getattr(self.config, k)]
        if changed:
            raise CheckpointError(f"cannot resume from {path}: these settings decide which examples each "
                                  f"step sees and they changed ({'; '.join(changed)})")
        if self.config.max_minutes is not None and saved.get("max_steps"):
            self.config.max_steps = saved["max_steps"]  # the steps a budgeted run planned before it was stopped
        load_model_state(model, state["model"], str(path))
        self._ema = state.get("ema")
        try:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"checkpoint {path}: optimizer state does not fit this model ({exc})") from exc
        rng = state["rng"]
        if isinstance(rng, list) and len(rng) == self.dist.world_size:
            set_rng_state(rng[self.dist.rank])
        else:
            # A different number of processes: the old streams do not map onto the new ranks.
            torch.manual_seed(self.config.seed + self.dist.rank + state["position"]["step"])
        position, trainer = state["position"], state["trainer"]
        self.progress = _Progress(step=position["step"], epoch=position["epoch"], batch=position["batch"],
                                  best=trainer["best"], best_step=trainer["best_step"],
                                  bad_evals=trainer["bad_evals"], evaluations=list(trainer["evaluations"]))
        if self.dist.is_main:
            print(f"glassformer: resuming from {path} at step {position['step']} "
                  f"(epoch {position['epoch']}, batch {position['batch']})", file=sys.stderr)

    def _flush_window(self, window: _Window, lr: float) -> dict[str, float]:
        elapsed = max(time.perf_counter() - window.since, 1e-9)
        # One all-reduce per log line: the mean over processes of the window's summed step losses.
        loss = float(distributed.all_reduce_mean(torch.as_tensor(window.loss, dtype=torch.float32,
                                                                 device=self.device)))
        out = {"loss": loss / max(window.steps, 1), "lr": lr, "examples_per_s": window.examples / elapsed}
        if window.tokens:
            out["tokens_per_s"] = window.tokens / elapsed
        window.loss, window.steps, window.examples, window.tokens = 0.0, 0, 0, 0
        window.since = time.perf_counter()
        return out


def plan_steps(seconds: float, step_seconds: float, eval_seconds: float = 0.0, *, eval_every: int | None = None,
               eval_points: int | None = None, steps_per_epoch: int | None = None, reserve_evals: float = 0.0,
               margin: float = _BUDGET_MARGIN) -> int:
    """The most optimizer steps that, with their evaluations, fit in `seconds` of wall-clock time.

        usable = seconds · (1 − margin) − reserve_evals · eval_seconds
        steps  = ⌊(usable − eval_points · eval_seconds) / step_seconds⌋                     with eval_points
        steps  = ⌊(usable − eval_seconds) / (step_seconds + eval_seconds / every)⌋         otherwise

    where `every` is `eval_every`, else `steps_per_epoch` (an evaluation at each epoch's end), and the
    lone ``eval_seconds`` is the evaluation every run makes at its last step. At least one step.
    """
    if step_seconds <= 0:
        raise ValueError(f"step_seconds must be > 0, got {step_seconds}")
    usable = seconds * (1 - margin) - reserve_evals * eval_seconds
    if eval_points is not None:
        steps = (usable - eval_points * eval_seconds) / step_seconds
    else:
        every = eval_every or steps_per_epoch or 1
        steps = (usable - eval_seconds) / (step_seconds + eval_seconds / every)
    return max(1, math.floor(steps))


def mark_run_dir(directory: Path) -> None:
    """Claim `directory` for this training run: refuse one holding anything but an earlier run, then mark it.

    The marker tells later writers (and ``--resume``) that the directory is a training run's, so its
    checkpoints and log may be replaced.
    """
    if directory.is_dir() and any(directory.iterdir()) and artifact_kind(directory) != "run":
        raise OutputExistsError(f"{directory} holds files that are not a glassformer training run; the trainer "
                                f"writes checkpoints and metrics there: choose an empty or new out_dir")
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / RUN_MARKER).is_file():
        with atomic_write(directory / RUN_MARKER) as handle:
            handle.write(json.dumps({"format": "glassformer-run", "version": 1}) + "\n")


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _count(batch: Any, what: str) -> int:
    """Examples (first dimension of the first tensor) or real tokens (attention_mask sum) in a batch."""
    if isinstance(batch, Mapping):
        if what == "tokens":
            mask = batch.get("attention_mask")
            return int(mask.sum()) if isinstance(mask, torch.Tensor) else 0
        tensors = [v for v in batch.values() if isinstance(v, torch.Tensor) and v.dim() > 0]
    elif isinstance(batch, (list, tuple)):
        if what == "tokens":
            return 0
        tensors = [v for v in batch if isinstance(v, torch.Tensor) and v.dim() > 0]
    else:
        return 0
    return int(tensors[0].shape[0]) if tensors else 0
