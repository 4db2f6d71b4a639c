"""Code actions: what is offered (no model), what a rewrite may change, and the whole
round trip through the real server and engine on a tiny model."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import sys
import time
from concurrent.futures import CancelledError
from typing import Any, Union

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from context.symbols import file_symbols
from lsp_server.actions.diagnostics import SyntaxTrees
from lsp_server.actions.plan import MAX_FIXES, ActionPlan, Diagnostic, plan_actions, region_digest
from lsp_server.actions.rewrite import Rewriter, RewriteRequest, _lines, finish, syntax_errors
from lsp_server.engine.llama import LlamaEngine
from lsp_server.engine.types import EngineConfig
from lsp_server.settings import load_settings

PY = (
    "import math\n"  # 0
    "\n"  # 1
    "\n"  # 2
    "def area(radius):\n"  # 3
    "    return math.pi * radius ** 2\n"  # 4
    "\n"  # 5
    "\n"  # 6
    "def circumference(radius):\n"  # 7
    '    """The length around a circle."""\n'  # 8
    "    return 2 * math.pi * radus\n"  # 9
    "\n"  # 10
    "TOTAL = area(2)\n"  # 11
)


def plans_for(text: str, start: int, end: int, diagnostics: list[Diagnostic]) -> list[ActionPlan]:
    """As the server plans: with the file's definitions and its parse (syntax errors)."""
    definitions = file_symbols("/w/a.py", text.encode(), "python").definitions
    parsed = SyntaxTrees().view("/w/a.py", text, "python")
    return plan_actions(text, "python", start, end, diagnostics, definitions, parsed=parsed)


# --- what is offered -------------------------------------------------------------------


def plans_at(text: str, start: int, end: int, selection: bool = False) -> list[ActionPlan]:
    definitions = file_symbols("/w/a.py", text.encode(), "python").definitions
    return plan_actions(text, "python", start, end, [], definitions, selection=selection)


def test_a_function_without_docstring_gets_docstring_and_annotations() -> None:
    plans = plans_at(PY, 3, 3)  # the cursor on the `def` line
    assert [(p.task, p.kind, p.start_line, p.end_line) for p in plans] == [
        ("docstring", "refactor.rewrite", 3, 4),
        ("annotate", "refactor.rewrite", 3, 4),
    ]
    assert plans[0].title == "Add a docstring to `area` with Qwen"
    # It has one: only the annotations.
    assert [p.task for p in plans_at(PY, 7, 7)] == ["annotate"]
    # Top-level code: nothing to rewrite without a diagnostic.
    assert plans_at(PY, 11, 11) == []


def test_rewrites_are_offered_where_they_apply_so_the_lightbulb_means_something() -> None:
    """The cursor inside a body offers nothing (the lightbulb showed on every line of every
    function); on the definition's lines, or over a selection, only what is missing."""
    assert plans_at(PY, 4, 4) == []  # in the body of `area`
    assert [p.task for p in plans_at(PY, 4, 4, selection=True)] == ["docstring", "annotate"]
    typed = (
        "def area(radius: float, *args: int, scale: float = 1.0, **kw: str) -> float:\n"
        "    return radius\n"
        "\n"
        "class Shape:\n"
        "    def grow(self, by: int) -> None:\n"
        '        """Grow."""\n'
        "        self.size += by\n"
        "\n"
        "    def shrink(self, by: int):\n"
        '        """Shrink."""\n'
        "        self.size -= by\n"
        "\n"
        "    def scale(self,\n"
        "              factor):\n"
        '        """Scale."""\n'
        "        self.size *= factor\n"
    )
    assert [p.task for p in plans_at(typed, 0, 0)] == ["docstring"]  # fully annotated
    assert plans_at(typed, 4, 4) == []  # documented and annotated (`self` needs none)
    assert [p.task for p in plans_at(typed, 8, 8)] == ["annotate"]  # no return type
    # A signature over two lines: its second line is the definition's too.
    assert [p.task for p in plans_at(typed, 13, 13)] == ["annotate"]
    assert plans_at(typed, 15, 15) == []


def test_a_diagnostic_gets_a_fix_of_its_definition_first() -> None:
    diag = Diagnostic('"radus" is not defined', 9, 9, "Pyright")
    elsewhere = Diagnostic("unused import", 0, 0, "Ruff")
    plans = plans_for(PY, 9, 9, [elsewhere, diag])
    fix = plans[0]
    assert (fix.task, fix.kind, fix.start_line, fix.end_line) == ("fix", "quickfix", 7, 9)
    assert fix.diagnostic == 1  # its index among those given, for the client
    assert fix.title == 'Fix with Qwen: "radus" is not defined'
    assert "line 10 (Pyright)" in fix.instruction and '"radus" is not defined' in fix.instruction
    assert not fix.syntax and fix.target[0] == 9
    assert plans[1:] == []  # in the body: no rewrite of the function offered
    # Outside any definition: the statement.
    top = plans_for(PY, 0, 0, [elsewhere])[0]
    assert (top.start_line, top.end_line) == (0, 0)
    # The empty "line" after the final line break is never rewritten: the file keeps it.
    short = plan_actions("x = 1\ny = 2\n", None, 1, 1, [Diagnostic("d", 1, 1)], [])[0]
    assert (short.start_line, short.end_line) == (1, 1)
    many = [Diagnostic(f"problem {i}", 9, 9) for i in range(MAX_FIXES + 2)]
    assert sum(p.task == "fix" for p in plans_for(PY, 9, 9, many)) == MAX_FIXES


def test_plans_travel_as_data_and_junk_is_refused() -> None:
    plan = plans_at(PY, 3, 3)[0]
    assert plan.digest and ActionPlan.from_data(plan.to_data()) == plan
    fix = plans_for(PY, 9, 9, [Diagnostic("undefined radus", 9, 9, "", 24, 29)])[0]
    assert ActionPlan.from_data(json.loads(json.dumps(fix.to_data()))) == fix
    for junk in (None, [], {"task": "fix"}, {**plan.to_data(), "task": "rm -rf"}):
        with pytest.raises(ValueError):
            ActionPlan.from_data(junk)
    with pytest.raises(ValueError):
        ActionPlan.from_data({**plan.to_data(), "start_line": 5, "end_line": 2})


# --- what a rewrite may change -----------------------------------------------------------


def rewrite_request(text: str, plan: ActionPlan, path: str = "/w/a.py") -> RewriteRequest:
    return RewriteRequest(plan, path, os.path.basename(path), text)


def test_the_answer_replaces_exactly_the_planned_lines() -> None:
    fix = plans_for(PY, 9, 9, [Diagnostic("undefined radus", 9, 9)])[0]
    answer = (
        "def circumference(radius):\n"
        '    """The length around a circle."""\n'
        "    return 2 * math.pi * radius\n\n"
    )
    result = finish(rewrite_request(PY, fix), answer, "stop")
    # The edit is the one line that changed.
    assert (result.start_line, result.end_line) == (9, 10)
    assert result.new_text == "    return 2 * math.pi * radius"
    assert result.apply(PY) == PY.replace("* radus", "* radius")
    # A repeated opening fence is dropped.
    assert (
        finish(rewrite_request(PY, fix), "```python\n" + answer, "stop").new_text == result.new_text
    )


@pytest.mark.parametrize(
    ("answer", "stop", "message"),
    [
        ("", "stop", "no code"),
        ("\n\n", "eos", "no code"),
        ("def circumference(radius):\n    return (", "length", "codeActions.maxTokens"),
        ("def circumference(radius):\n    return (", "time", "codeActions.timeBudgetMs"),
        # The same lines again: nothing to do.
        (
            'def circumference(radius):\n    """The length around a circle."""\n'
            "    return 2 * math.pi * radus\n",
            "stop",
            "no change",
        ),
        # More syntax errors than before: refused.
        (
            'def circumference(radius:\n    """The length around a circle."""\n'
            "    return 2 * math.pi * radius",
            "stop",
            "does not parse",
        ),
    ],
)
def test_a_bad_answer_changes_nothing_and_says_why(answer: str, stop: str, message: str) -> None:
    fix = plans_for(PY, 9, 9, [Diagnostic("undefined radus", 9, 9)])[0]
    result = finish(rewrite_request(PY, fix), answer, stop)
    assert result.new_text is None and message in result.message


def test_a_repeated_opening_fence_does_not_end_the_answer() -> None:
    """The answer starts inside the fence; a model that opens one again must not be cut
    there (the engine used to stop at that ``` and the answer was always empty)."""
    from lsp_server.actions.rewrite import _closing_fence

    answer = "```python\ndef f():\n    return 1\n```\ntrailing prose"
    assert _closing_fence("```pyth") is None  # still writing the repeated fence
    assert answer[: _closing_fence(answer)] == "```python\ndef f():\n    return 1\n"
    assert _closing_fence("def f():\n    return 1\n```") == len("def f():\n    return 1\n")
    # A bare fence first closes the code: an explanation after it is never the code.
    assert _closing_fence("```\n\nThe code above is already correct.") == 0


def test_crlf_answers_and_dedented_methods_are_normalised() -> None:
    fix = plans_for(PY, 9, 9, [Diagnostic("undefined radus", 9, 9)])[0]
    lf = (
        "def circumference(radius):\n"
        '    """The length around a circle."""\n'
        "    return 2 * math.pi * radius"
    )
    crlf = finish(rewrite_request(PY, fix), lf.replace("\n", "\r\n"), "stop")
    assert crlf.new_text == "    return 2 * math.pi * radius"  # no CR into an LF file
    same = lf.replace("radius\n", "radius\r\n").replace("* radius", "* radus")
    assert (
        "no change" in finish(rewrite_request(PY, fix), same.replace("\n", "\r\n"), "stop").message
    )
    source = "class A:\n    def f(self, a):\n        return a\n"
    method = plans_for(source, 1, 1, [Diagnostic("add types", 1, 1)])[0]
    answer = "def f(self, a: int) -> int:\n    return a\n"  # answered at column 0
    result = finish(rewrite_request(source, method), answer, "stop")
    assert result.new_text == "    def f(self, a: int) -> int:"
    odd = "    def f(self, a: int) -> int:\nreturn a\n"  # less indented than its start
    assert finish(rewrite_request(source, method), odd, "stop").new_text is None


def test_lines_repeated_from_around_the_plan_are_not_doubled() -> None:
    """Models often write the decorator above a function (outside the planned lines)
    again, or the line after it: kept, it would be there twice. A blank region takes the
    code in place of its blank lines, not after them."""
    source = "import functools\n\n\n@functools.cache\ndef f(a):\n    return a\n\n\nX = f(1)\n"
    plan = plans_for(source, 4, 4, [Diagnostic("add types", 4, 4)])[0]
    assert (plan.start_line, plan.end_line) == (4, 5)
    answer = "@functools.cache\ndef f(a: int) -> int:\n    return a\n\n\nX = f(1)\n"
    result = finish(rewrite_request(source, plan), answer, "stop")
    assert result.new_text == "def f(a: int) -> int:"
    assert result.apply(source) == source.replace("def f(a):", "def f(a: int) -> int:")
    blank = "x = 1\n\ny = 2\n"
    fix = ActionPlan("fix", "quickfix", "Fix", 1, 1, "Fix it.", "", region_digest(blank, 1, 1))
    assert finish(rewrite_request(blank, fix), "z = 3", "stop").new_text == "z = 3"


def test_blank_lines_around_the_planned_lines_stay() -> None:
    """A fix outside any definition rewrites the lines around the problem, often with
    blank lines at both ends: the model's answer must not glue its neighbours together."""
    fix = ActionPlan(
        "fix", "quickfix", "Fix", 0, 6, "Fix it.", "", region_digest(PY, 0, 6), target=(0, 0, 0, 11)
    )
    answer = "import math  # noqa\n\n\ndef area(radius):\n    return math.pi * radius ** 2\n"
    result = finish(rewrite_request(PY, fix), answer, "stop")
    assert result.apply(PY) == PY.replace("import math\n", "import math  # noqa\n")
    assert (result.start_line, result.end_line, result.new_text) == (0, 1, "import math  # noqa")
    # Only blank lines differ from the lines planned: no change.
    same = "\n".join(PY.split("\n")[0:5]) + "\n"
    assert finish(rewrite_request(PY, fix), same, "stop").message == "Qwen suggested no change"


def test_crlf_files_are_read_without_cr_and_written_with_crlf() -> None:
    crlf = PY.replace("\n", "\r\n")
    definitions = file_symbols("/w/a.py", crlf.encode(), "python").definitions
    diag = Diagnostic("undefined radus", 9, 9)
    fix = plan_actions(crlf, "python", 9, 9, [diag], definitions)[0]
    assert (fix.start_line, fix.end_line) == (7, 9)
    unchanged = (
        "def circumference(radius):\n"
        '    """The length around a circle."""\n'
        "    return 2 * math.pi * radus"
    )
    result = finish(rewrite_request(crlf, fix), unchanged, "stop")
    assert result.message == "Qwen suggested no change"
    fixed = unchanged.replace("radus", "radius").replace("    return", "    # it\n    return")
    result = finish(rewrite_request(crlf, fix), fixed, "stop")
    assert result.new_text == "    # it\r\n    return 2 * math.pi * radius"
    assert result.apply(crlf) == crlf.replace(
        "    return 2 * math.pi * radus", "    # it\r\n    return 2 * math.pi * radius"
    )
    prompt_lines = "\n".join(_lines(crlf))
    assert "\r" not in prompt_lines


def test_a_fix_may_leave_errors_it_did_not_add() -> None:
    """Another error elsewhere in the file stays: the fix is judged on its own error."""
    broken = PY.replace("return 2 * math.pi * radus", "return 2 * math.pi * (radus")
    broken = broken.replace("    return math.pi", "    return (math.pi")
    assert syntax_errors(broken, "python") > 0 == syntax_errors(PY, "python")
    fix = plans_for(broken, 9, 9, [Diagnostic("'(' was never closed", 9, 9)])[0]
    # (The other error makes tree-sitter read the placeholder's neighbours differently:
    # the statement or its function.)
    assert fix.syntax and fix.start_line in (7, 9) and fix.end_line == 9
    answer = (
        'def circumference(radius):\n    """The length around a circle."""\n'
        "    return 2 * math.pi * radius"
    )
    result = finish(rewrite_request(broken, fix), answer, "stop")
    assert result.apply(broken) == broken.replace("(radus", "radius"), result.message
    # A language tree-sitter does not know is not checked.
    text = "some notes\nwith a typo: teh\n"
    plan = plan_actions(text, None, 1, 1, [Diagnostic("typo", 1, 1)], [])[0]
    answer = "some notes\nwith a typo: the ("
    result = finish(rewrite_request(text, plan, "/w/notes.txt"), answer, "stop")
    assert result.new_text == "with a typo: the ("
    # Nor is a language the index reads as text, which has no grammar (Ruby).
    ruby = "def total(lines)\n  lines.sum(&:amount\nend\n"
    plan = plan_actions(ruby, "ruby", 1, 1, [Diagnostic("missing )", 1, 1)], [])[0]
    answer = "def total(lines)\n  lines.sum(&:amount)\nend"
    assert finish(rewrite_request(ruby, plan, "/w/total.rb"), answer, "stop").new_text


# --- through the engine -----------------------------------------------------------------


def rewriter_for(model: pathlib.Path) -> tuple[LlamaEngine, Rewriter]:
    settings = load_settings({"codeActions": {"maxTokens": 24}, "context": {"enabled": False}})
    engine = LlamaEngine(EngineConfig(model_path=str(model), n_ctx=4096, n_threads=1))
    rewriter = Rewriter(engine, settings.settings)
    return engine, rewriter


@pytest.mark.parametrize("model_name", ["qwen2_model", "qwen35_model"])
def test_the_engine_writes_the_rewrite_and_stale_plans_are_refused(
    model_name: str, request: pytest.FixtureRequest
) -> None:
    engine, rewriter = rewriter_for(request.getfixturevalue(model_name))
    with engine:
        text = "some notes\nwith a typo: teh\nend\n"
        plan = plan_actions(text, None, 1, 1, [Diagnostic("typo: teh", 1, 1)], [])[0]
        req = rewrite_request(text, plan, "/w/notes.txt")
        prompt = rewriter.build(req)
        assert "with a typo: teh" in prompt.text and plan.instruction in prompt.text
        assert prompt.text.endswith("```\n")  # the answer starts inside the fence
        # What the engine generates for that prompt, checked by the same rules.
        generation = engine.generate(
            engine.tokenize_prompt(prompt).tokens, max_tokens=24, stop=("```",)
        )
        expected = finish(req, generation.text, generation.stop_reason)
        result = rewriter.run(req)
        assert (result.new_text, result.message) == (expected.new_text, expected.message)
        assert result.figures.generated_tokens == len(generation.tokens)
        # The lines changed since the action was offered: refused without the model.
        stale = rewriter.run(rewrite_request(text.replace("teh", "the"), plan, "/w/notes.txt"))
        assert stale.new_text is None and "changed" in stale.message
        assert stale.figures.generated_tokens == 0


# --- the server --------------------------------------------------------------------------

SERVER = ClientServerConfig(
    server_command=[sys.executable, "-m", "lsp_server", "--log-level", "DEBUG"],
    server_env={**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parents[1])},
)


@pytest_lsp.fixture(config=SERVER, params=["neovim", "visual_studio_code", "no-resolve"])
async def client(lsp_client: LanguageClient, request: pytest.FixtureRequest):
    lsp_client.client_spec = request.param  # type: ignore[attr-defined]
    lsp_client.applied = []  # type: ignore[attr-defined]
    # lsprotocol reads any item with a `command` key as a Command, so a CodeAction that
    # carries one (what clients without lazy edits get) would come back mangled; editors
    # tell them apart by the type of `command`, as the specification does.
    converter = lsp_client.protocol._converter

    def command_or_action(obj: Any, _: type) -> types.Command | types.CodeAction:
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)  # type: ignore[no-any-return]
        return converter.structure(obj, types.CodeAction)  # type: ignore[no-any-return]

    # The exact key lsprotocol registers its hook under.
    converter.register_structure_hook(
        Union[types.Command, types.CodeAction],  # noqa: UP007
        command_or_action,
    )

    @lsp_client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply_edit(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        lsp_client.applied.append(params.edit)  # type: ignore[attr-defined]
        return types.ApplyWorkspaceEditResult(applied=True)

    yield
    await lsp_client.shutdown_session()


def capabilities(spec: str) -> types.ClientCapabilities:
    if spec == "visual_studio_code":
        # What vscode-languageclient 10 (the extension's) adds to pytest-lsp's snapshot.
        caps = client_capabilities(spec)
        assert caps.text_document and caps.text_document.code_action
        caps.text_document.code_action.tag_support = types.CodeActionTagOptions(
            value_set=[types.CodeActionTag.LlmGenerated]
        )
        return caps
    if spec != "no-resolve":
        return client_capabilities(spec)
    caps = client_capabilities("visual_studio_code")
    assert caps.text_document and caps.text_document.code_action
    caps.text_document.code_action.resolve_support = None  # e.g. Helix, older clients
    return caps


async def start(
    client: LanguageClient,
    ws: pathlib.Path,
    model: pathlib.Path,
    contextSize: int = 4096,  # noqa: N803 (the setting's name)
    completion: dict[str, Any] | None = None,
    **actions: Any,
):
    spec = client.client_spec  # type: ignore[attr-defined]
    await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities(spec),
            workspace_folders=[types.WorkspaceFolder(uri=ws.as_uri(), name=ws.name)],
            initialization_options={
                "model": {"path": str(model), "threads": 1, "contextSize": contextSize},
                "codeActions": {"maxTokens": 24, **actions},
                "completion": completion or {},
                "context": {"enabled": False},
                "engine": {"warmup": False, "prefetch": False},
            },
        )
    )  # (no model yet: the first file opened or the first action picked loads it)


async def wait_model(client: LanguageClient) -> None:
    for _ in range(600):
        data = await client.protocol.send_request_async("qwenLsp/stats", {})
        if data.model not in ("idle", "loading"):
            return
        await asyncio.sleep(0.05)


def open_doc(
    client: LanguageClient, path: pathlib.Path, text: str, language_id: str = "python"
) -> str:
    path.write_text(text)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=path.as_uri(), language_id=language_id, version=1, text=text
            )
        )
    )
    return path.as_uri()


async def pick(client: LanguageClient, action: types.CodeAction) -> types.WorkspaceEdit | None:
    """What an editor does when the user picks the action: resolve its edit, or run its
    command (answered at once; the server then sends the edit with `workspace/applyEdit`,
    or a message saying why there is none)."""
    if client.client_spec == "no-resolve":  # type: ignore[attr-defined]
        assert action.command is not None and action.data is None
        applied = client.applied  # type: ignore[attr-defined]
        before = (len(applied), len(client.messages))
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command=action.command.command, arguments=action.command.arguments
            )
        )
        deadline = time.monotonic() + 30
        while (len(applied), len(client.messages)) == before and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return applied[-1] if len(applied) > before[0] else None
    assert action.data is not None and action.command is None
    return (await client.code_action_resolve_async(action)).edit


async def actions_at(
    client: LanguageClient,
    uri: str,
    start: tuple[int, int],
    end: tuple[int, int] | None = None,
    diagnostics: list[types.Diagnostic] | None = None,
    only: list[str] | None = None,
) -> list[types.Command | types.CodeAction] | None:
    """`textDocument/codeAction` over (line, character) `start`..`end`."""
    return await client.text_document_code_action_async(  # type: ignore[return-value]
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(*start), types.Position(*(end or start))),
            context=types.CodeActionContext(diagnostics=diagnostics or [], only=only),
        )
    )


def diagnostic(line: int, message: str) -> types.Diagnostic:
    return types.Diagnostic(
        range=types.Range(types.Position(line, 4), types.Position(line, 30)),
        message=message,
        source="Pyright",
    )


async def test_actions_are_offered_at_once_and_run_when_picked(
    client: LanguageClient, qwen2_model, tmp_path
):
    spec = client.client_spec  # type: ignore[attr-defined]
    ws = tmp_path / "ws"
    ws.mkdir()
    await start(client, ws, qwen2_model)
    uri = open_doc(client, ws / "circle.py", PY)
    diag = diagnostic(9, '"radus" is not defined')
    actions = await actions_at(client, uri, (9, 4), (9, 10), diagnostics=[diag])
    assert actions is not None
    titles = [a.title for a in actions if isinstance(a, types.CodeAction)]
    # A selection: its fix, and what the function lacks.
    assert titles == [
        'Fix with Qwen: "radus" is not defined',
        "Add type annotations to `circumference` with Qwen",
    ]
    # The cursor alone in the body: the fix only (no lightbulb for the function's rewrites
    # on every line of it).
    cursor = await actions_at(client, uri, (9, 4), diagnostics=[diag])
    assert [a.title for a in cursor or []] == titles[:1]
    fix = actions[0]
    assert isinstance(fix, types.CodeAction)
    assert fix.kind == types.CodeActionKind.QuickFix and fix.edit is None
    # Marked as written by a model where the client knows the tag (VS Code shows it so).
    tagged = spec == "visual_studio_code"
    assert (list(fix.tags or []) == [types.CodeActionTag.LlmGenerated]) == tagged, fix.tags
    assert fix.diagnostics and fix.diagnostics[0].message == diag.message
    # Only what the client asked for.
    only = await actions_at(
        client, uri, (9, 4), (9, 10), diagnostics=[diag], only=[types.CodeActionKind.Refactor]
    )
    assert [a.title for a in only or []] == titles[1:]
    on_def = await actions_at(client, uri, (7, 4), diagnostics=[], only=["refactor"])
    assert [a.title for a in on_def or []] == ["Add type annotations to `circumference` with Qwen"]
    # Whole lines selected (ending at column 0 of the next line): the function they cover.
    selected = await actions_at(client, uri, (3, 0), (5, 0))
    assert [a.title for a in selected or []] == [
        "Add a docstring to `area` with Qwen",
        "Add type annotations to `area` with Qwen",
    ]

    edit = await pick(client, fix)
    data = await client.protocol.send_request_async("qwenLsp/stats", {})
    run = [r for r in data.recent if r.kind == "codeAction"]
    assert len(run) == 1 and run[0].generatedTokens > 0  # the model ran once, when picked
    lines = PY.split("\n")
    if edit is None:
        # The tiny model's gibberish was refused: one message says why, nothing changes.
        assert run[0].outcome == "rejected"
        assert any("nothing was changed" in m.message for m in client.messages)
        return
    assert run[0].outcome == "ok"
    if edit.document_changes:  # versioned: the client refuses it if the text moved on
        (change,) = edit.document_changes
        assert isinstance(change, types.TextDocumentEdit)
        assert change.text_document.version == 1
        (text_edit,) = change.edits
    else:
        assert edit.changes is not None
        (text_edit,) = edit.changes[uri]
    assert isinstance(text_edit, types.TextEdit)
    # Whole lines of `circumference` and only those: the lines that changed.
    first, after = text_edit.range.start, text_edit.range.end
    assert first.character == after.character == 0 and 7 <= first.line <= after.line <= 10
    new = "\n".join(
        [*lines[: first.line], *text_edit.new_text.split("\n")[:-1], *lines[after.line :]]
    )
    assert syntax_errors(new, "python") <= syntax_errors(PY, "python")


async def test_a_rewrite_of_lines_that_changed_is_refused(
    client: LanguageClient, qwen2_model, tmp_path
):
    ws = tmp_path / "ws"
    ws.mkdir()
    await start(client, ws, qwen2_model)
    uri = open_doc(client, ws / "circle.py", PY)
    actions = await actions_at(client, uri, (3, 0))
    assert actions and isinstance(actions[0], types.CodeAction)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(4, 11), types.Position(4, 18)),
                    text="3.14159",
                )
            ],
        )
    )
    assert await pick(client, actions[0]) is None
    assert any("changed since the action was offered" in m.message for m in client.messages)
    data = await client.protocol.send_request_async("qwenLsp/stats", {})
    assert not [r for r in data.recent if r.kind == "codeAction" and r.generatedTokens]


async def test_edits_below_a_form_feed_land_on_the_editors_lines(
    client: LanguageClient, qwen2_model, tmp_path
):
    """A form feed (PEP 8 allows them) or U+2028 is not a line break for LSP: an edit
    below one must change the line the editor means, or the actions (and the lines a
    rewrite replaces) would be computed on text the user never wrote."""
    ws = tmp_path / "ws"
    ws.mkdir()
    await start(client, ws, qwen2_model)
    for n, odd in enumerate(["\x0c", "\u2028"]):
        uri = open_doc(client, ws / f"paged{n}.py", f"x = 1  # page{odd}\ndef foo():\n    pass\n")
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(types.Position(1, 4), types.Position(1, 4)), text="bar_"
                    )
                ],
            )
        )
        actions = await actions_at(client, uri, (1, 0))
        assert [a.title for a in actions or []] == [
            "Add a docstring to `bar_foo` with Qwen",
            "Add type annotations to `bar_foo` with Qwen",
        ]


async def test_code_actions_can_be_turned_off(client: LanguageClient, qwen2_model, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    await start(client, ws, qwen2_model, enabled=False)
    uri = open_doc(client, ws / "circle.py", PY)
    actions = await actions_at(client, uri, (4, 0), diagnostics=[diagnostic(4, "problem")])
    assert not actions


async def test_the_edit_is_the_engines_rewrite_of_the_planned_lines(
    client: LanguageClient, qwen2_model, tmp_path
):
    """The accepted path end to end, on a file whose language has no parser (so no syntax
    check: what the tiny model writes is taken), against the engine run directly."""
    ws = tmp_path / "ws"
    ws.mkdir()
    await start(client, ws, qwen2_model)
    text = "a = 1\nb = 2\n"
    uri = open_doc(client, ws / "x.md", text, "markdown")
    actions = await actions_at(client, uri, (1, 0), diagnostics=[diagnostic(1, "typo")])
    assert actions and isinstance(actions[0], types.CodeAction)
    # Offered without the model (Markdown is not completed): picked, the action loads it.
    assert (await client.protocol.send_request_async("qwenLsp/stats", {})).model == "idle"
    (fix,) = actions
    edit = await pick(client, fix)
    assert edit is not None, [m.message for m in client.messages]
    changes = edit.document_changes
    text_edit = changes[0].edits[0] if changes else edit.changes[uri][0]  # type: ignore[index, union-attr]
    assert isinstance(text_edit, types.TextEdit)
    data = fix.data if fix.data is not None else fix.command.arguments[0]  # type: ignore[union-attr, index]
    plan = ActionPlan.from_data(data["plan"])
    assert (plan.start_line, plan.end_line) == (1, 1)  # the statement with the problem
    engine, rewriter = rewriter_for(qwen2_model)
    with engine:
        expected = rewriter.run(RewriteRequest(plan, str((ws / "x.md").resolve()), "x.md", text))
    assert expected.new_text is not None
    # Exactly the engine's edit: the lines that changed, whole.
    assert text_edit.range.start == types.Position(expected.start_line, 0)
    new = (
        text[: 6 * expected.start_line] + text_edit.new_text + text[6 * text_edit.range.end.line :]
    )
    assert new == expected.apply(text)


async def test_a_buffer_without_a_path_is_checked_in_its_editors_language(
    client: LanguageClient, qwen2_model, tmp_path
):
    """An untitled buffer or a notebook cell has no extension to tell its language: the
    editor's language id does, so a Python buffer gets the Python actions, and a rewrite
    that does not parse is refused there as in a .py file. Before, such buffers had no
    syntax check: any answer replaced the lines."""
    ws = tmp_path / "ws"
    ws.mkdir()
    await start(client, ws, qwen2_model)

    def open_untitled(uri: str, text: str) -> None:
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=text
                )
            )
        )

    open_untitled("untitled:Untitled-1", "def area(r):\n    return math.pi * r ** 2\n")
    actions = await actions_at(client, "untitled:Untitled-1", (0, 4))
    titles = [a.title for a in actions if isinstance(a, types.CodeAction)]
    assert any("docstring" in t for t in titles) and any("annotations" in t for t in titles)

    # And a rewrite there is checked as Python: refused when it does not parse.
    text = "def area(r):\n    return 3.14 * r * r\n"
    fix = plan_actions(text, "python", 1, 1, [Diagnostic("typo", 1, 1)], [])[0]
    broken = "def area(r:\n    return 3.14 * r * r"
    cell = "vscode-notebook-cell:/w/a.ipynb#W0sZmlsZQ%3D%3D"
    for language_id, refused in (("python", True), ("", False)):
        request = RewriteRequest(fix, cell, "a.ipynb", text, language_id)
        assert (finish(request, broken, "stop").new_text is None) == refused


async def test_a_cancelled_action_answers_at_once_and_never_runs(
    client: LanguageClient, qwen35_model, tmp_path
):
    """Picked while the engine is busy (a long completion), then cancelled: the answer
    comes at once and the model never runs for it."""
    ws = tmp_path / "ws"
    ws.mkdir()
    long_completion = {
        "maxTokens": 4000,
        "multiline": "always",
        "timeBudgetMs": 60000,
        "prefixLines": 20000,
    }
    await start(client, ws, qwen35_model, contextSize=65536, completion=long_completion)
    if client.client_spec != "visual_studio_code":  # type: ignore[attr-defined]
        return  # one client is enough for this slow one (started: the fixture shuts down)
    body = "".join(
        f"def function_{i}(argument):\n    return argument * {i} + {i * 7}\n\n" for i in range(1500)
    )
    uri = open_doc(client, ws / "a.py", body + "def main():\n")
    await wait_model(client)
    busy = client.protocol.send_request(
        "textDocument/inlineCompletion",
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=body.count("\n") + 1, character=0),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        ),
        msg_id="busy",
    )
    actions = await actions_at(client, uri, (0, 0))
    assert actions and isinstance(actions[0], types.CodeAction)
    first = client.protocol.send_request("codeAction/resolve", actions[0], msg_id="superseded")
    await asyncio.sleep(0.1)
    future = client.protocol.send_request("codeAction/resolve", actions[0], msg_id="stop-me")
    # The first, still queued, gives way to the second on the same document: an answer
    # without an edit and one message, not an error.
    superseded = await asyncio.wait_for(asyncio.wrap_future(first), 10)
    assert superseded.edit is None
    assert any("cancelled: nothing was changed" in m.message for m in client.messages)
    await asyncio.sleep(0.1)
    sent = time.monotonic()
    client.protocol.notify("$/cancelRequest", types.CancelParams(id="stop-me"))
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(asyncio.wrap_future(future), 10)
    assert time.monotonic() - sent < 1.5
    client.protocol.notify("$/cancelRequest", types.CancelParams(id="busy"))
    with pytest.raises(Exception, match="cancel"):
        await asyncio.wait_for(asyncio.wrap_future(busy), 10)
    data = await client.protocol.send_request_async("qwenLsp/stats", {})
    assert not [r for r in data.recent if r.kind == "codeAction"]


def test_a_huge_file_is_checked_on_the_rewritten_lines_only(monkeypatch) -> None:
    import lsp_server.actions.rewrite as rewrite

    monkeypatch.setattr(rewrite, "WHOLE_FILE_CHECK_BYTES", 10)  # PY counts as huge now
    fix = plans_for(PY, 9, 9, [Diagnostic("undefined radus", 9, 9)])[0]
    good = 'def circumference(radius):\n    """The length."""\n    return 2 * math.pi * radius'
    assert finish(rewrite_request(PY, fix), good, "stop").apply(PY) == PY.replace(
        "around a circle", ""
    ).replace("length ", "length").replace("radus", "radius")
    bad = "def circumference(radius:\n    return 2 * math.pi * radius"
    assert finish(rewrite_request(PY, fix), bad, "stop").new_text is None


def test_jobs_queued_before_a_model_reload_do_not_touch_the_freed_engine(qwen2_model) -> None:
    """A settings change reloads the model while an action or a completion waits: they
    were bound to the old engine, which the reload frees. They stop (no crash)."""
    from lsp_server.completion.stats import Stats
    from lsp_server.engine.types import Cancelled
    from lsp_server.runtime import Runtime

    settings = load_settings(
        {
            "model": {"path": str(qwen2_model), "threads": 1, "contextSize": 2048},
            "context": {"enabled": False},
            "engine": {"warmup": False, "prefetch": False},
        }
    ).settings
    runtime = Runtime(settings, Stats())
    try:
        runtime.load_model().result(timeout=60)
        text = "def f(x):\n    return x\n"
        plan = runtime.plan_code_actions("/w/a.py", text, 0, 0, [])[0]
        completion = runtime.completion_request("/w/a.py", text, 1, 12)
        reload = runtime.load_model()  # queued first, as when the settings change
        action = runtime.submit_code_action("a", RewriteRequest(plan, "/w/a.py", "a.py", text))
        typed = runtime.submit_completion("a", completion)
        reload.result(timeout=60)
        for job in (action, typed):
            with pytest.raises((Cancelled, CancelledError)):
                job.future.result(timeout=60)
        assert runtime.code_actions_ready  # the new engine serves the next ones
        assert runtime.submit_code_action(
            "a", RewriteRequest(plan, "/w/a.py", "a.py", text)
        ).future.result(timeout=60)
    finally:
        runtime.close()
