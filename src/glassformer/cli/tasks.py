"""``train TASK`` and ``eval DIR``, made from the task modules (:mod:`glassformer.tasks.base`).

Every field of a task's preset classes becomes a flag (``max_length`` → ``--max-length``) with the
field's type, choices and help; the task's ``TRAIN_OPTIONS`` and ``EVAL_OPTIONS`` add the rest. A
new task registered in ``glassformer.tasks.TASKS`` gets its commands without a line here.
"""

from __future__ import annotations

import argparse
import inspect
import types
import typing
from typing import Any

from glassformer.cli._io import add_precision, add_verify, print_json
from glassformer.errors import UsageError

SETTING = "setting__"  # namespace prefix of the flags made from preset fields


def add_train_and_eval(sub: argparse._SubParsersAction, detailed: bool) -> None:
    """The ``train`` and ``eval`` commands; with `detailed`, every task's flags (this imports the task modules)."""
    train = sub.add_parser("train", help="train a model for a task and save it (see `train TASK --help`)")
    evaluate = sub.add_parser("eval", help="score a saved model on a split of its data (or of --data)", intermixed=True)
    if not detailed:
        return
    from glassformer.tasks import TASKS, get_task

    modules = {name: get_task(name) for name in TASKS}
    per_task = train.add_subparsers(dest="task", required=True, metavar="TASK")
    for name, module in modules.items():
        _add_train_task(per_task, name, module)
    _add_eval(evaluate, modules)


def _flag_type(hint: Any) -> tuple[Any, bool]:
    """The argparse type of a field's annotation (optional types unwrapped), and whether it is a bool."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = options[0] if len(options) == 1 else str
    if hint is bool:
        return None, True
    return (hint if hint in (int, float, str) else None), False


def _add_setting_flags(parser: argparse.ArgumentParser, preset_classes: list[type]) -> None:
    from glassformer.tasks.base import settings_of

    seen: set[str] = set()
    for cls in preset_classes:
        hints = typing.get_type_hints(cls)
        for field in settings_of(cls):
            if field.name in seen:
                continue
            kind, is_bool = _flag_type(hints[field.name])
            if kind is None and not is_bool:
                continue  # a compound setting (a tuple) is not a flag
            seen.add(field.name)
            help_text = field.metadata.get("help", field.name.replace("_", " "))
            flag = "--" + field.name.replace("_", "-")
            if is_bool:
                parser.add_argument(flag, dest=SETTING + field.name, action=argparse.BooleanOptionalAction,
                                    default=None, help=f"{help_text} (default: the preset's)")
            else:
                parser.add_argument(flag, dest=SETTING + field.name, type=kind, default=None,
                                    choices=field.metadata.get("choices"), metavar=field.name.upper(),
                                    help=f"{help_text} (default: the preset's)")


def _add_option(parser: argparse.ArgumentParser, option: Any) -> None:
    if option.type is bool:
        parser.add_argument(option.flag, dest=option.dest, action="store_true", help=option.help)
    else:
        parser.add_argument(option.flag, dest=option.dest, type=option.type, choices=option.choices,
                            default=option.default, help=option.help)


def _add_train_task(per_task: argparse._SubParsersAction, name: str, module: Any) -> None:
    parser = per_task.add_parser(name, help=module.DESCRIPTION, description=module.DESCRIPTION)
    parser.add_argument("--preset", default="quick", choices=sorted(module.PRESETS),
                        help="the named recipe the other flags change (default: quick)")
    parser.add_argument("--out", help="a new or empty directory to save the model in (default: the cache's "
                                      f"models/{name}-PRESET)")
    parser.add_argument("--resume", action="store_true", help="continue a killed run from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a model (or an unfinished run) glassformer saved in --out before")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data split and of training (default 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    for option in module.TRAIN_OPTIONS:
        _add_option(parser, option)
    _add_setting_flags(parser, list(dict.fromkeys(type(p) for p in module.PRESETS.values())))
    parser.set_defaults(func=_train, module=module)


def _train(args: argparse.Namespace) -> int:
    module = args.module
    settings = {key[len(SETTING):]: value for key, value in vars(args).items()
                if key.startswith(SETTING) and value is not None}
    options = {option.dest: getattr(args, option.dest) for option in module.TRAIN_OPTIONS
               if getattr(args, option.dest) is not None}
    from glassformer.training import distributed

    try:
        run = module.train(args.preset, args.out, resume=args.resume, overwrite=args.overwrite, seed=args.seed,
                           progress=not (args.quiet or args.json), **options, **settings)
        info = distributed.current()
        if not info.is_main:  # rank 0 alone wrote the model and reports it
            print(f"rank {info.rank}: done; rank 0 saved the model to {run.out_dir}")
        elif args.json:
            print_json(run.json())
        else:
            print(run.report())
    finally:
        distributed.cleanup()
    return 0


def _add_eval(parser: argparse.ArgumentParser, modules: dict[str, Any]) -> None:
    parser.add_argument("model", metavar="DIR", help="a saved model directory (from `glassformer train`)")
    parser.add_argument("--split", choices=["train", "validation", "test"],
                        help="default: the task's held-out split (test; validation for lm)")
    parser.add_argument("--data", help="data to score on (default: the data the model was trained on)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (sentiment and vit: accuracy, n, "
                                                            "split; lm: loss, perplexity, bits_per_char; translate: "
                                                            "bleu, chrf)")
    add_verify(parser)
    add_precision(parser, default="fp32")  # a measurement reports the model's own numbers unless asked otherwise
    owners: dict[str, list[str]] = {}
    for name, module in modules.items():
        for option in module.EVAL_OPTIONS:
            if option.flag not in owners:
                _add_option(parser, option)
            owners.setdefault(option.flag, []).append(name)
    parser.set_defaults(func=_eval, modules=modules, owners=owners)


def _eval(args: argparse.Namespace) -> int:
    from glassformer.training.saved import read_config

    task = read_config(args.model).get("task")
    if task not in args.modules:
        raise UsageError(f"{args.model} holds a model for task {task!r}, which has no evaluation here; known tasks: "
                         f"{', '.join(sorted(args.modules))}")
    module = args.modules[task]
    options = {}
    for option in {o.flag: o for m in args.modules.values() for o in m.EVAL_OPTIONS}.values():
        value = getattr(args, option.dest)
        if value is None or value is False:
            continue
        if task not in args.owners[option.flag]:
            raise UsageError(f"{option.flag} applies to {' and '.join(args.owners[option.flag])} models; "
                             f"{args.model} holds a {task!r} model")
        options[option.dest] = value
    accepted = inspect.signature(module.evaluate).parameters
    for name in ("verify", "precision"):
        if name in accepted:
            options[name] = getattr(args, name)
    result = module.evaluate(args.model, split=args.split, data=args.data, **options)
    if args.json:
        print_json(result)
    else:
        print(_figures_line(result))
    return 0


def _figures_line(figures: dict[str, Any]) -> str:
    """``loss 1.4966, n 408013, markov (order 3, bits_per_char 2.1592)``: floats to 4 places, nested groups in brackets."""
    def shown(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4f}"
        if isinstance(value, dict):
            return "(" + _figures_line(value) + ")"
        return str(value)

    return ", ".join(f"{key} {shown(value)}" for key, value in figures.items())
