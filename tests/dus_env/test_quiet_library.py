"""The library's standing rules, read from its source: ``dus_env`` never prints, never parses a
command line, and never imports the scripts' layer (stable-baselines3, progress bars, the
``dus_agents`` package). Command lines live in ``dus_agents.cli``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import dus_env

LIBRARY = Path(dus_env.__file__).resolve().parent
FORBIDDEN_IMPORTS = ("stable_baselines3", "tqdm", "rich", "argparse", "dus_agents")
# Gymnasium's render_mode="human" means "show it on the terminal": the user asked for output.
TERMINAL_ALLOWED = {("env.py", "render")}


def _sources() -> list[Path]:
    files = sorted(LIBRARY.rglob("*.py"))
    assert len(files) > 30, files  # the whole package, not an empty glob
    return files


def _enclosing_functions(tree: ast.AST) -> dict[ast.AST, str]:
    owner: dict[ast.AST, str] = {}
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                owner.setdefault(node, fn.name)
    return owner


def test_library_never_prints_or_writes_to_the_terminal() -> None:
    found = []
    for path in _sources():
        tree = ast.parse(path.read_text(), filename=str(path))
        owner = _enclosing_functions(tree)
        for node in ast.walk(tree):
            where = f"{path.relative_to(LIBRARY)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("print", "input", "breakpoint"):
                found.append(f"{where} calls {node.func.id}()")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == "sys" and node.attr in ("stdout", "stderr", "exit"):
                if (path.name, owner.get(node)) not in TERMINAL_ALLOWED:
                    found.append(f"{where} uses sys.{node.attr}")
    assert found == []


def test_library_imports_nothing_from_the_scripts_layer() -> None:
    found = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            for name in names:
                if name.split(".")[0] in FORBIDDEN_IMPORTS:
                    found.append(f"{path.relative_to(LIBRARY)}:{node.lineno} imports {name}")
    assert found == []


def test_importing_every_library_module_loads_neither_sb3_nor_the_scripts() -> None:
    # (torch itself imports argparse and tqdm, so only these two are checked at run time)
    modules = sorted({".".join(p.relative_to(LIBRARY.parent).with_suffix("").parts)
                      .removesuffix(".__init__") for p in _sources()})
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('stable_baselines3', 'dus_agents')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
