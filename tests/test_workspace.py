"""The context kept per document: stable while typing in one definition, fresh when it must be."""

from __future__ import annotations

import dataclasses
import os
import pathlib

from context.sticky import APPEND_CAP
from lsp_server.completion.service import ContextQuery
from lsp_server.settings import Settings
from lsp_server.workspace import MAX_FOLLOWED, Workspace

SHAPES = (
    "class Circle:\n    def __init__(self, r):\n        self.r = r\n\n\n"
    "def circle_area(c):\n    return 3.14 * c.r ** 2\n\n\n"
    "def circle_length(c):\n    return 6.28 * c.r\n"
)
MAIN = (
    "from shapes import Circle, circle_area, circle_length\n\n\n"
    "def report(c):\n    total = 0\n"
    + "".join(f"    total += {i}\n" for i in range(80))
    + "    return total\n\n\n"
    "def other(c):\n    return 1\n"
)


def count(text: str) -> int:
    return len(text) // 3 + 1


def setup(tmp_path: pathlib.Path) -> tuple[Workspace, str, str]:
    (tmp_path / "shapes.py").write_text(SHAPES)
    (tmp_path / "main.py").write_text(MAIN)
    settings = Settings()
    settings.completion.prefix_lines = 10
    settings.completion.suffix_lines = 5
    context = Workspace([str(tmp_path)], lambda: settings, cache_dir="")
    context.build()
    main = str((tmp_path / "main.py").resolve())
    context.update_document(main, MAIN)
    return context, main, str((tmp_path / "shapes.py").resolve())


def query(path: str, text: str, line: int) -> ContextQuery:
    return ContextQuery(
        path=path, text=text, line=line, character=4, budget_tokens=2000, format="chat"
    )


def test_typing_in_one_definition_keeps_the_blocks(tmp_path):
    context, main, _ = setup(tmp_path)
    provide = context.provider()
    first = provide(query(main, MAIN, 40), count)
    assert any("circle_area" in b.text for b in first)
    typed = MAIN.replace("    total += 40\n", "    total += 40\n    x = circle_length(c)\n")
    context.update_document(main, typed)
    second = provide(query(main, typed, 41), count)
    # What was shown stays, in the same order; anything new comes after it.
    assert [b.text for b in second[: len(first)]] == [b.text for b in first]
    assert context.repacks == 0


def test_an_edit_to_a_shown_definition_waits_for_a_refresh(tmp_path):
    """A request keeps the stale snippet (changing it would re-evaluate all after it); the
    idle-time refresh packs afresh, and requests see it once it is committed."""
    context, main, shapes = setup(tmp_path)
    provide = context.provider()
    first = provide(query(main, MAIN, 40), count)
    assert any("3.14" in b.text for b in first)
    pathlib.Path(shapes).write_text(SHAPES.replace("3.14", "3.14159"))
    context.files_changed([(shapes, False)])
    assert [b.text for b in provide(query(main, MAIN, 40), count)] == [b.text for b in first]
    refreshed = provide(dataclasses.replace(query(main, MAIN, 40), refresh=True), count)
    assert context.repacks == 1
    assert any("3.14159" in b.text for b in refreshed)
    # Pending until the refresh was evaluated: a request meanwhile keeps the old blocks.
    assert [b.text for b in provide(query(main, MAIN, 40), count)] == [b.text for b in first]
    provide.commit(main)
    second = provide(query(main, MAIN, 40), count)
    assert any("3.14159" in b.text for b in second)
    assert not any("3.14 *" in b.text for b in second)


def test_moving_to_another_definition_appends(tmp_path):
    """A jump never rewrites what is kept: what the new place needs comes after it, within
    the per-request cap."""
    context, main, _ = setup(tmp_path)
    provide = context.provider()
    first = provide(query(main, MAIN, 40), count)
    last = MAIN.count("\n") - 1
    moved = provide(query(main, MAIN, last), count)
    assert [b.text for b in moved[: len(first)]] == [b.text for b in first]
    assert all(b.appended for b in moved[len(first) :])
    assert context.repacks == 0
    assert sum(count(b.text) for b in moved[len(first) :]) <= APPEND_CAP


def test_recent_activity_comes_only_from_files_the_index_accepts(tmp_path):
    """A gitignored settings file with keys, an excluded folder, a file outside the
    workspace, a non-source file or a big one opened in the editor never reach a prompt:
    the model sees what the index may show, nothing else."""
    ws = tmp_path / "ws"
    (ws / "private").mkdir(parents=True)
    (ws / ".gitignore").write_text("local_settings.py\n")
    secrets = {
        ws / "local_settings.py": 'API_KEY = "sk-gitignored"\n',
        ws / "private" / "keys.py": 'TOKEN = "sk-excluded"\n',
        ws / ".env": "TOKEN=sk-dotenv\n",
        ws / "big.py": 'BIG = "sk-too-big"\n' + "x = 1\n" * 400,
        tmp_path / "outside.py": 'OUTSIDE = "sk-outside"\n',
    }
    for path, text in secrets.items():
        path.write_text(text)
    (ws / "helpers.py").write_text("def helper():\n    return 'shown'\n")
    (ws / "main.py").write_text("def main():\n    return 1\n")
    settings = Settings()
    settings.context.exclude = ["private/"]
    settings.context.max_file_size = 1000
    context = Workspace([str(ws)], lambda: settings, cache_dir="")
    context.build()
    for path in [*secrets, ws / "helpers.py"]:
        context.note_view(str(path.resolve()), 0)
        context.note_edit(str(path.resolve()), 0, 0)
    main = str((ws / "main.py").resolve())
    blocks = context.provider()(query(main, "def main():\n    return 1\n", 1), count)
    prompt = "\n".join(block.text for block in blocks)
    assert "return 'shown'" in prompt  # the indexable file viewed is context
    assert "sk-" not in prompt, prompt


def test_the_size_limit_holds_for_unsaved_text(tmp_path):
    """An unsaved buffer (or a file grown in the editor) over `maxFileSize` is not indexed:
    the index keeps the disk version, and nothing of the big text is parsed."""
    (tmp_path / "small.py").write_text("def on_disk():\n    return 1\n")
    settings = Settings()
    settings.context.max_file_size = 2000
    context = Workspace([str(tmp_path)], lambda: settings, cache_dir="")
    context.build()
    small = str((tmp_path / "small.py").resolve())
    unsaved = str((tmp_path / "unsaved.py").resolve())
    big = "def huge():\n    pass\n" + "x = 1\n" * 1000
    context.update_document(unsaved, big)
    assert context.index.definitions_named("huge") == []
    context.update_document(small, "def edited():\n    return 2\n")
    assert [d.name for d in context.index.definitions_named("edited")] == ["edited"]
    context.update_document(small, "def grown():\n    pass\n" + "y = 2\n" * 1000)
    assert context.index.definitions_named("grown") == []
    assert context.index.definitions_named("edited") == []
    assert [d.name for d in context.index.definitions_named("on_disk")] == ["on_disk"]


def test_lines_the_prompt_cuts_can_come_as_context(tmp_path, qwen2_model):
    """The prompt's window holds at most 100 characters per line on average: with long
    lines above the cursor it shows fewer than `prefixLines` lines, and retrieval must
    know which, or the imports cut from the window are in neither."""
    from lsp_server.completion.service import Completer, CompletionRequest
    from lsp_server.engine.llama import LlamaEngine
    from lsp_server.engine.types import EngineConfig

    (tmp_path / "util.py").write_text("def slugify(value):\n    return value.lower()\n")
    long_line = "    MESSAGES.append(('" + "a long translated message " * 5 + "', 'context'))"
    lines = ["from util import slugify", "", "", "MESSAGES = []", "", "", "def build():"]
    lines += [long_line] * 100 + ["    return slugify("]
    text = "\n".join(lines)
    (tmp_path / "app.py").write_text(text)
    settings = Settings()
    context = Workspace([str(tmp_path)], lambda: settings, cache_dir="")
    context.build()
    app = str((tmp_path / "app.py").resolve())
    context.update_document(app, text)
    with LlamaEngine(EngineConfig(model_path=str(qwen2_model), n_ctx=8192, n_threads=1)) as e:
        completer = Completer(e, settings, context=context.provider())
        request = CompletionRequest(app, text, len(lines) - 1, len(lines[-1]))
        window = completer.window(request)
        assert "from util import" not in window.prefix  # cut from the prompt's window
        prompt = completer.build(request, window).text
    assert "from util import slugify" in prompt  # so it comes as context
    assert "def slugify(value):" in prompt


FAR = "\n".join(f"step_{i} = {i}" for i in range(30))


def test_a_document_the_index_does_not_follow_gets_its_imports_and_own_definitions(tmp_path):
    """An untitled buffer, a notebook's cells or a file outside the workspace is not
    indexed, yet its imports must bring their definitions (a name imported under an alias
    cannot be found by name) and its own definitions far above the cursor can come as
    context, as for a file of the workspace."""
    context, _, _ = setup(tmp_path)
    provide = context.provider()
    text = (
        "import shapes as sh\nfrom shapes import circle_length as length\n\n\n"
        "def far_helper(c):\n    return 42\n\n\n"
        + FAR
        + "\n\n\ndef f(c):\n    return sh.circle_area(c) + length(c) + far_helper("
    )
    last, end = text.count("\n"), len(text.rsplit("\n", 1)[-1])
    for path, name in (
        ("untitled:Untitled-1", "Untitled-1"),
        ("vscode-notebook-cell:/w/nb.ipynb#W2sZmlsZQ%3D%3D", "nb.ipynb"),
    ):
        q = ContextQuery(path, text, last, end, 2000, "chat", language_id="python")
        shown = "\n".join(b.text for b in provide(q, count))
        assert "def circle_length(c):" in shown, path  # through the aliased import
        assert "def circle_area(c):" in shown, path  # through the module, resolved
        assert "def far_helper(c):" in shown, path  # its own, far above the window
        assert os.getcwd() not in shown  # its blocks are named as the prompt names it
        assert f"# File: {name} (elsewhere in this file)" in shown
        assert context.index.definitions_named("far_helper") == []  # never in the name map
        context.close_document(path)
        assert context.index.file(os.path.realpath(path)) is None
    # No language known: nothing is parsed, and nothing fails.
    q = ContextQuery("untitled:Untitled-2", text, last, end, 2000, "chat")
    assert "def far_helper" not in "\n".join(b.text for b in provide(q, count))


def test_a_followed_document_never_reaches_another_files_context(tmp_path):
    """A gitignored file (or one outside the workspace) completed in the editor is parsed
    for its own context, but an import of it from a workspace file must not resolve to
    it: its content would reach that file's prompt."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".gitignore").write_text("secrets.py\n")
    secret = "API_KEY = 'sk-live-1'\n\n\ndef get_key():\n    return 'sk-live-2'\n"
    (ws / "secrets.py").write_text(secret)
    outside = tmp_path / "private.py"
    outside.write_text("def token():\n    return 'sk-live-3'\n")
    app_text = "from secrets import get_key\nfrom private import token\n\n\ndef main():\n    k = get_key() + token()\n"
    (ws / "app.py").write_text(app_text)
    context = Workspace([str(ws)], lambda: Settings(), cache_dir="")
    context.build()
    provide = context.provider()
    app = str((ws / "app.py").resolve())
    context.update_document(app, app_text)
    for path, text in ((ws / "secrets.py", secret), (outside, outside.read_text())):
        q = ContextQuery(str(path.resolve()), text, 1, 0, 2000, "chat", language_id="python")
        provide(q, count)  # a completion in it: the index now holds its text
    q = ContextQuery(app, app_text, 5, 10, 2000, "chat", language_id="python")
    shown = "\n".join(b.text for b in provide(q, count))
    assert "sk-live" not in shown, shown


def test_a_notebooks_languages_keep_apart_and_few_documents_are_followed(tmp_path):
    """A notebook's cells of another language share its path: the context kept for its
    Python cells is not what its SQL cell gets. And documents the index does not follow
    are kept parsed a few at a time (a job queued before one closed reopens it)."""
    context, _, _ = setup(tmp_path)
    provide = context.provider()
    notebook = str(tmp_path / "nb.ipynb")
    code = "from shapes import circle_area\n\n\nx = circle_area("
    python = provide(ContextQuery(notebook, code, 3, 16, 2000, "chat", language_id="python"), count)
    assert any("def circle_area" in b.text for b in python)
    sql = provide(
        ContextQuery(notebook, "SELECT *\nFROM t", 1, 6, 2000, "chat", language_id="sql"), count
    )
    assert not any("def circle_area" in b.text for b in sql)
    assert context.index.file(notebook) is None  # no language: the Python text is dropped
    for i in range(12):
        provide(
            ContextQuery(f"untitled:Untitled-{i}", code, 3, 16, 2000, "chat", language_id="python"),
            count,
        )
    held = [i for i in range(12) if context.index.file(os.path.realpath(f"untitled:Untitled-{i}"))]
    assert held == list(range(12 - MAX_FOLLOWED, 12))
