"""The architecture's rules, checked on the source itself (its import statements and calls, read with ast).

- data flows downward: ``nn`` imports nothing of glassformer above it (not even ``precision``, which
  stands on ``nn`` to quantise), ``precision`` imports nothing above ``nn``, ``models`` never import
  ``training``, ``tasks``, ``inference``, ``studio`` or ``viz``, ``inference`` never imports ``tasks``,
  ``training`` never imports ``pretrained`` or ``tasks``, ``pretrained`` never imports ``tasks``, and ``lens``
  (above the models, below the CLI and the studio) never imports ``cli`` or ``studio``, nor does ``serve``;
- one loading road: ``lens`` and ``viz`` load no model themselves (no ``pretrained`` or ``training`` import); they
  take a predictor, which ``tasks`` loads;
- one decode loop: the models keep a forward pass; no model class defines a decode loop (``generate``,
  ``greedy_decode``...), which live in ``inference.generate`` alone;
- the studio, the CLI and the server do no model math (no softmax, matmul or layer-norm calls);
- one road: nothing outside ``tasks`` builds a model's inputs from text or images (no tokenizer encode,
  normalise or image loading in ``lens``, ``viz``, ``studio``, ``cli`` or ``serve`` beyond a listed, explained few);
  the task predictors' ``prepare`` does;
- no object's ``__class__`` is reassigned (a learner finds the class they read);
- the studio's tabs keep to their own rooms: no studio module imports another module's private
  (underscore) name, one decorator (``studio.common.shows_errors``) turns a failed request into its
  message, and no handler recognises an error by matching its message text.
- one inference decision: a layer decides in its constructor whether to use the fused kernels (``fast``); no
  module flips ``.fast`` afterwards (``kernels.plain()`` is the scoped way to trace plain ops).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "glassformer"


def _modules(subpackage: str) -> list[Path]:
    root = PACKAGE / subpackage
    return sorted(root.rglob("*.py")) if root.is_dir() else [root.with_suffix(".py")]


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


ABOVE_NN = ("glassformer.models", "glassformer.training", "glassformer.tasks", "glassformer.inference",
            "glassformer.studio", "glassformer.viz", "glassformer.pretrained", "glassformer.data", "glassformer.cli",
            "glassformer.lens")
RULES = {
    "precision": ABOVE_NN,
    "nn": ("glassformer.precision", "glassformer.models", "glassformer.training", "glassformer.tasks", "glassformer.inference",
           "glassformer.studio", "glassformer.viz", "glassformer.pretrained", "glassformer.data", "glassformer.cli",
           "glassformer.lens"),
    "models": ("glassformer.training", "glassformer.tasks", "glassformer.inference", "glassformer.studio",
               "glassformer.viz", "glassformer.cli", "glassformer.lens"),
    "inference": ("glassformer.tasks", "glassformer.studio", "glassformer.cli"),
    "training": ("glassformer.tasks", "glassformer.pretrained", "glassformer.studio", "glassformer.cli",
                 "glassformer.lens"),
    "pretrained": ("glassformer.tasks", "glassformer.studio", "glassformer.cli", "glassformer.lens"),
    "lens": ("glassformer.studio", "glassformer.cli", "glassformer.pretrained", "glassformer.training"),
    "viz": ("glassformer.studio", "glassformer.cli", "glassformer.pretrained", "glassformer.training"),
    "serve": ("glassformer.studio", "glassformer.cli"),
}


@pytest.mark.parametrize("layer", sorted(RULES))
def test_nothing_imports_upward(layer):
    offences = [f"{path.relative_to(PACKAGE)} imports {name}" for path in _modules(layer)
                for name in sorted(_imports(path)) if name.startswith(RULES[layer])]
    assert not offences, offences


DECODE_LOOPS = {"generate", "greedy_decode", "beam_search", "greedy_search", "sample", "decode_greedy"}
# A Markov chain is a table of counts, not a network with a forward pass; it draws its own words.
MODELS_WITH_A_SAMPLER = {"models/markov.py"}


def _decode_loops(path: Path) -> list[str]:
    return [f"{path.name}:{node.lineno} defines {node.name}" for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.FunctionDef) and node.name in DECODE_LOOPS]


def test_no_model_class_holds_a_decode_loop(tmp_path):
    offences = [found for path in _modules("models") if str(path.relative_to(PACKAGE)) not in MODELS_WITH_A_SAMPLER
                for found in _decode_loops(path)]
    assert not offences, offences
    bad = tmp_path / "bad.py"
    bad.write_text("class LM:\n    def forward(self, x):\n        return x\n\n    def generate(self, ids, n):\n        pass\n")
    assert _decode_loops(bad) == ["bad.py:5 defines generate"]


MODEL_MATH = {"softmax", "log_softmax", "matmul", "bmm", "mm", "einsum", "layer_norm", "LayerNorm",
              "scaled_dot_product_attention"}


@pytest.mark.parametrize("layer", ["studio", "cli", "serve"])
def test_the_studio_and_cli_do_no_model_math(layer):
    offences = []
    for path in _modules(layer):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
                offences.append(f"{path.name}:{node.lineno} uses @")
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in MODEL_MATH:
                    offences.append(f"{path.name}:{node.lineno} calls {name}")
    assert not offences, offences


def test_no_class_is_reassigned():
    offences = [f"{path.relative_to(PACKAGE)}:{node.lineno}" for path in PACKAGE.rglob("*.py")
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign))
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(target, ast.Attribute) and target.attr == "__class__"]
    assert not offences, offences


def _fast_decisions(path: Path) -> list[tuple[str, int]]:
    """(enclosing function, line) of each write to an attribute ``fast``: an assignment, ``setattr(m, "fast", ...)``
    or a call to the former ``set_fast_path``."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                if any(isinstance(n, ast.Attribute) and n.attr == "fast" for t in targets for n in ast.walk(t)):
                    found.append((function, child.lineno))
            elif isinstance(child, ast.Call):
                name = child.func.attr if isinstance(child.func, ast.Attribute) else getattr(child.func, "id", "")
                sets_fast = name == "setattr" and len(child.args) > 1 and getattr(child.args[1], "value", None) == "fast"
                if sets_fast or name == "set_fast_path":
                    found.append((function, child.lineno))
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), "<module>")
    return found


def test_layers_decide_the_fused_kernels_at_construction():
    """Only an ``nn`` layer's ``__init__`` sets ``.fast``; nothing flips it later, in ``nn`` or above."""
    offences = [f"{path.relative_to(PACKAGE)}:{line} {function}() sets .fast" for path in PACKAGE.rglob("*.py")
                for function, line in _fast_decisions(path)
                if not (path.is_relative_to(PACKAGE / "nn") and function == "__init__")]
    assert not offences, offences


def test_the_rules_would_catch_an_offence(tmp_path):
    """The checks above read real code: an upward import and a softmax in a file are found."""
    bad = tmp_path / "bad.py"
    bad.write_text("from glassformer.training import Trainer\nimport torch\nx = torch.softmax(y, -1)\nz = a @ b\n")
    assert "glassformer.training" in _imports(bad)
    calls = [n for n in ast.walk(ast.parse(bad.read_text())) if isinstance(n, ast.Call)]
    assert any(isinstance(c.func, ast.Attribute) and c.func.attr == "softmax" for c in calls)
    flips = tmp_path / "flips.py"
    flips.write_text("class L:\n    def __init__(self):\n        self.fast = True\n\n    def off(self):\n"
                     "        self.fast = False\n\n\nfor m in ms:\n    m.fast, n = False, 1\n    setattr(m, 'fast', True)\n")
    assert _fast_decisions(flips) == [("__init__", 3), ("off", 6), ("<module>", 10), ("<module>", 11)]


# Calls that turn text or images into model inputs; a predictor's prepare makes them (glassformer.tasks).
INPUT_BUILDERS = {"encode", "encode_plus", "encode_batch", "encode_ordinary", "encode_ordinary_offsets", "normalise",
                  "load_image", "checkpoint_pixels"}
# (file, function): why the call there builds no model's input.
ALLOWED_INPUT_CALLS = {
    ("lens/explain.py", "_token_index"): "the target token the user named, not an input",
    ("lens/logit_lens.py", "_token_id"): "the token whose rank the user follows, not an input",
    ("studio/baseline.py", "_run"): "the Markov baseline's training text",
    ("studio/tabs/tokenizer.py", "reference_tokens"): "the Tokenizer tab shows GPT-2's and BERT's pieces",
    ("studio/common.py", "uploaded_image"): "the upload as the picture shown; the classifier prepares its pixels",
    ("cli/commands.py", "_tokenize"): "`glassformer tokenize` prints the ids",
    ("cli/commands.py", "_embed"): "the sentence encoder's own encode (texts to vectors)",
    ("serve/endpoints.py", "image_endpoint"): "the upload's bytes to the picture, as classify-image reads a file",
    ("serve/endpoints.py", "embed_endpoint"): "the sentence encoder's own encode (texts to vectors), as `embed`",
    ("serve/endpoints.py", "run"): "the worker functions of the two endpoints above, where those calls run",
}


def _input_calls(path: Path) -> list[tuple[str, int, str]]:
    """(function, line, call name) of each input-building call in a file; ``"…".encode("utf-8")`` is not one."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for function in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            is_str_encode = name == "encode" and node.args and isinstance(node.args[0], ast.Constant)
            if name in INPUT_BUILDERS and not is_str_encode:
                found.append((function.name, node.lineno, name))
    return found


@pytest.mark.parametrize("layer", ["lens", "viz", "studio", "cli", "serve"])
def test_only_the_predictors_build_model_inputs(layer):
    offences = [f"{path.relative_to(PACKAGE)}:{line} {function}() calls {name}" for path in _modules(layer)
                for function, line, name in _input_calls(path)
                if (str(path.relative_to(PACKAGE)), function) not in ALLOWED_INPUT_CALLS]
    assert not offences, offences


def test_the_input_rule_would_catch_an_offence(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def show(tokenizer, text):\n    return tokenizer.encode(text), 'x'.encode('utf-8')\n")
    assert _input_calls(bad) == [("show", 2, "encode")]


def test_every_task_predictor_follows_the_contract(monkeypatch):
    """Each registered task's Predictor (the toy task's too) has every method of glassformer.tasks.base.Predictor,
    loads in a precision; a predictor without `format` is refused."""
    from glassformer.tasks import TASKS
    from glassformer.tasks.base import PREDICTOR_METHODS, Predictor

    monkeypatch.setitem(TASKS, "toy", "tests.architecture.toy_task")
    from tests.architecture import toy_task

    monkeypatch.delattr(toy_task.Predictor, "format")
    with pytest.raises(AssertionError, match="lacks"):
        _check_predictors(TASKS)
    monkeypatch.undo()
    monkeypatch.setitem(TASKS, "toy", "tests.architecture.toy_task")
    _check_predictors(TASKS)

    assert {name for name in vars(Predictor) if not name.startswith("_") or name == "__call__"} >= set(PREDICTOR_METHODS)


def _check_predictors(tasks: dict[str, str]) -> None:
    import inspect

    from glassformer.tasks import get_task
    from glassformer.tasks.base import PREDICTOR_METHODS

    for task in tasks:
        predictor = get_task(task).Predictor
        missing = [name for name in PREDICTOR_METHODS if not callable(getattr(predictor, name, None))]
        assert not missing, f"{task}: its Predictor lacks {missing}"
        assert "precision" in inspect.signature(predictor.load).parameters, task
        for name in ("load", "from_loaded"):
            assert isinstance(inspect.getattr_static(predictor, name), classmethod), f"{task}: {name}"


def _studio_offences(path: Path) -> list[str]:
    """A studio file's private imports, error-message boxes built in its own ``except Exception``, and message matching."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [f"line {node.lineno} imports {alias.name} from {node.module}" for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("glassformer")
             for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]
    for handler in [n for n in ast.walk(tree) if isinstance(n, ast.ExceptHandler)]:
        inside = [n for statement in handler.body for n in ast.walk(statement)]
        broad = isinstance(handler.type, ast.Name) and handler.type.id in ("Exception", "BaseException")
        if broad and any(isinstance(n, ast.Call) and getattr(n.func, "id", "") == "error_html" for n in inside):
            found.append(f"line {handler.lineno} builds error_html in its own except (use shows_errors)")
        if any(isinstance(n, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in n.ops)
               and any(isinstance(c, ast.Call) and getattr(c.func, "id", "") == "str" for c in n.comparators)
               for n in inside):
            found.append(f"line {handler.lineno} matches an exception's message (catch its type instead)")
    return found


def test_the_studio_tabs_keep_to_their_rooms():
    offences = [f"{path.relative_to(PACKAGE)}: {offence}" for path in _modules("studio")
                if path.name != "common.py" for offence in _studio_offences(path)]
    assert not offences, offences


def test_the_studio_rule_would_catch_an_offence(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from glassformer.studio.vision import _image\n"
                   "def show(x):\n    try:\n        return x()\n    except Exception as exc:\n"
                   "        if 'too short' in str(exc):\n            raise\n        return error_html(exc)\n")
    assert len(_studio_offences(bad)) == 3
