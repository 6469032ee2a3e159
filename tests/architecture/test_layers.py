"""The architecture's rules, checked on the source itself (its import statements and calls, read with ast).

- data flows downward: ``nn`` imports nothing of glassformer above it, ``models`` never import
  ``training``, ``tasks``, ``inference``, ``studio`` or ``viz``, ``inference`` never imports ``tasks``,
  ``training`` never imports ``pretrained`` or ``tasks``, ``pretrained`` never imports ``tasks``, and ``lens``
  (above the models, below the CLI and the studio) never imports ``cli`` or ``studio``, nor does ``serve``;
- the studio, the CLI and the server do no model math (no softmax, matmul or layer-norm calls);
- no object's ``__class__`` is reassigned (a learner finds the class they read).
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


RULES = {
    "nn": ("glassformer.models", "glassformer.training", "glassformer.tasks", "glassformer.inference",
           "glassformer.studio", "glassformer.viz", "glassformer.pretrained", "glassformer.data", "glassformer.cli",
           "glassformer.lens"),
    "models": ("glassformer.training", "glassformer.tasks", "glassformer.inference", "glassformer.studio",
               "glassformer.viz", "glassformer.cli", "glassformer.lens"),
    "inference": ("glassformer.tasks", "glassformer.studio", "glassformer.cli"),
    "training": ("glassformer.tasks", "glassformer.pretrained", "glassformer.studio", "glassformer.cli",
                 "glassformer.lens"),
    "pretrained": ("glassformer.tasks", "glassformer.studio", "glassformer.cli", "glassformer.lens"),
    "lens": ("glassformer.studio", "glassformer.cli"),
    "serve": ("glassformer.studio", "glassformer.cli"),
}


@pytest.mark.parametrize("layer", sorted(RULES))
def test_nothing_imports_upward(layer):
    offences = [f"{path.relative_to(PACKAGE)} imports {name}" for path in _modules(layer)
                for name in sorted(_imports(path)) if name.startswith(RULES[layer])]
    assert not offences, offences


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


def test_the_rules_would_catch_an_offence(tmp_path):
    """The checks above read real code: an upward import and a softmax in a file are found."""
    bad = tmp_path / "bad.py"
    bad.write_text("from glassformer.training import Trainer\nimport torch\nx = torch.softmax(y, -1)\nz = a @ b\n")
    assert "glassformer.training" in _imports(bad)
    calls = [n for n in ast.walk(ast.parse(bad.read_text())) if isinstance(n, ast.Call)]
    assert any(isinstance(c.func, ast.Attribute) and c.func.attr == "softmax" for c in calls)
