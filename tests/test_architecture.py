"""The import invariants of docs/architecture.md, checked on the syntax tree of every
module of `lsp_server/` and `context/` (imports inside functions included)."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

# `qwen-lsp doctor` checks the installed llama-cpp-python itself: importing it (and
# reporting a broken build) is its job.
LLAMA_CPP_CHECKER = "lsp_server/commands/doctor.py"


def _modules() -> list[pathlib.Path]:
    return sorted(p for d in ("lsp_server", "context") for p in (ROOT / d).rglob("*.py"))


def _imports(tree: ast.Module) -> list[tuple[str, bool]]:
    """Every module `tree` imports, and whether the import runs when the module is
    imported (module level or a class body, not a function or `if TYPE_CHECKING:`)."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, at_import: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, at_import) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, at_import))
            found.extend((f"{node.module}.{alias.name}", at_import) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            inside = at_import
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                inside = False
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                inside = False
            visit(child, inside)

    visit(tree, True)
    return found


def _is(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(relative: str, source: str) -> list[str]:
    """What the module at `relative` (a path from the repository root) breaks."""
    tree = ast.parse(source, relative)
    broken: list[str] = []
    for name, at_import in _imports(tree):
        if relative.startswith("context/") and _is(name, "lsp_server"):
            broken.append(f"{relative}: context/ imports {name}")
        if not relative.startswith("lsp_server/protocol/") and (
            _is(name, "lsprotocol") or _is(name, "pygls")
        ):
            broken.append(f"{relative}: only lsp_server/protocol/ may import {name}")
        if (
            _is(name, "llama_cpp")
            and relative != "lsp_server/engine/llama.py"
            and relative != LLAMA_CPP_CHECKER
        ):
            broken.append(f"{relative}: only lsp_server/engine/llama.py may import {name}")
        if _is(name, "lsp_server.engine.llama") and at_import:
            broken.append(f"{relative}: imports {name} (and so llama.cpp) at module level")
        if relative.startswith("lsp_server/protocol/") and _is(name, "lsp_server.engine"):
            broken.append(f"{relative}: a handler module imports {name}")
    if relative.startswith("lsp_server/protocol/"):
        # Handlers convert; the engine is reached through the runtime and the flows of
        # lsp_server/requests.py, never by queueing jobs on it here.
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("submit"):
                broken.append(f"{relative}:{node.lineno}: a handler module calls .{node.attr}")
    return broken


@pytest.mark.parametrize(
    "path", _modules(), ids=lambda p: str(p.relative_to(ROOT)).replace("\\", "/")
)
def test_module_keeps_the_import_invariants(path: pathlib.Path) -> None:
    relative = path.relative_to(ROOT).as_posix()
    assert violations(relative, path.read_text(encoding="utf-8")) == []


def test_the_check_finds_each_kind_of_violation() -> None:
    assert violations("context/x.py", "def f():\n    from lsp_server import settings\n")
    assert violations("lsp_server/runtime.py", "from lsprotocol import types\n")
    assert violations("lsp_server/cli.py", "def f():\n    import pygls.exceptions\n")
    assert violations("lsp_server/engine/host.py", "import llama_cpp\n")
    assert violations("lsp_server/commands/x.py", "from lsp_server.engine.llama import E\n")
    assert violations("lsp_server/x.py", "from lsp_server.engine import llama\n")
    # Allowed: a lazy import of the engine, the protocol package, type-only imports.
    assert not violations("lsp_server/x.py", "def f():\n    from lsp_server.engine import llama\n")
    assert not violations("lsp_server/protocol/x.py", "from pygls.lsp.server import S\n")
    assert violations("lsp_server/protocol/x.py", "from lsp_server.engine.types import Cancelled\n")
    assert violations(
        "lsp_server/protocol/x.py", "def f(ls):\n    ls.runtime.submit_completion()\n"
    )
    typing_only = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import lsp_server.engine.llama\n"
    )
    assert not violations("lsp_server/x.py", typing_only)


# The handler modules are one feature each: a file past this is a grab-bag again.
PROTOCOL_MODULE_LINES = 400


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "lsp_server" / "protocol").glob("*.py")),
    ids=lambda p: p.name,
)
def test_protocol_modules_stay_small(path: pathlib.Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= PROTOCOL_MODULE_LINES, f"{path.name}: {lines} lines; split it by feature"
