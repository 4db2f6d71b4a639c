"""Languages without a grammar here (Ruby, PHP, shell, ...) are indexed as text: no
definitions, but their code is context for the files around them, as Copilot's
neighbouring tabs are, under the same rules as every indexed file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from context.index import WorkspaceIndex
from context.languages import has_grammar, language_for_path
from lsp_server.completion.service import ContextQuery
from lsp_server.settings import Settings
from lsp_server.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]

INVOICE = (
    "class Invoice\n"
    "  def initialize(lines)\n"
    "    @lines = lines\n"
    "  end\n"
    "\n"
    "  def total_with_tax(rate)\n"
    "    subtotal = @lines.sum { |line| line.quantity * line.unit_price }\n"
    "    subtotal + subtotal * rate\n"
    "  end\n"
    "end\n"
)
QUOTE = (
    "class Quote\n"
    "  def initialize(lines)\n"
    "    @lines = lines\n"
    "  end\n"
    "\n"
    "  def total_with_tax(rate)\n"
    "    subtotal = @lines.sum { |line| "
)


def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "app" / "models").mkdir(parents=True)
    (ws / "app" / "models" / "invoice.rb").write_text(INVOICE)
    (ws / "app" / "models" / "quote.rb").write_text(QUOTE)
    (ws / "script").mkdir()
    (ws / "script" / "deploy.sh").write_text("#!/bin/sh\nbundle exec rake db:migrate\n")
    (ws / "README.md").write_text("# Billing\n\nInvoices and quotes.\n")
    (ws / ".gitignore").write_text("config/master.rb\n")
    (ws / "config").mkdir()
    (ws / "config" / "master.rb").write_text('SECRET = "sk-gitignored"\n')
    return ws


def test_languages_read_as_text() -> None:
    assert language_for_path("app/models/invoice.rb") == "ruby"
    assert language_for_path("Rakefile.rake") == "ruby"
    assert language_for_path("src/Main.KT") == "kotlin"
    assert language_for_path("deploy.sh") == "shell"
    assert language_for_path("schema.sql") == "sql"
    assert not has_grammar("ruby") and has_grammar("python")
    # Prose, markup and data are not source.
    for name in ("README.md", "notes.txt", "config.yaml", "data.json", "index.html", "a.css"):
        assert language_for_path(name) is None, name


def test_text_files_are_indexed_without_definitions_and_persisted(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    cache = str(tmp_path / "cache")
    root = os.path.realpath(ws)
    with WorkspaceIndex([root], cache_dir=cache) as index:
        stats = index.build()
        files = {os.path.relpath(f, root) for f in index.files()}
        assert files == {"app/models/invoice.rb", "app/models/quote.rb", "script/deploy.sh"}
        assert stats.languages == {"ruby": 2, "shell": 1}
        assert stats.definitions == 0 and (stats.parsed, stats.read_as_text) == (0, 3)
        symbols = index.file(os.path.join(root, "app/models/invoice.rb"))
        assert symbols is not None and symbols.language == "ruby"
        assert symbols.definitions == () and symbols.imports == ()
        assert "total_with_tax" in symbols.references  # its words, for ranking
    with WorkspaceIndex([root], cache_dir=cache) as again:
        warm = again.build()
        assert (warm.parsed, warm.read_as_text, warm.reused, warm.files) == (0, 0, 3, 3)


def test_unsaved_text_of_a_text_language_is_what_the_index_reads(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    root = os.path.realpath(ws)
    quote = os.path.join(root, "app/models/quote.rb")
    with WorkspaceIndex([root], cache_dir="") as index:
        index.build()
        for typed in (QUOTE + "l", QUOTE + "li", QUOTE + "line.quantity }\n"):
            symbols = index.update_document(quote, typed)
            assert symbols is not None and symbols.definitions == ()
            assert index.text(quote) == typed
        assert "quantity" in index.file(quote).references  # type: ignore[union-attr]
        index.close_document(quote)
        assert index.text(quote) == QUOTE  # the disk's again


def test_similar_and_recent_ruby_code_reaches_the_prompt_of_a_ruby_file(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    settings = Settings()
    settings.completion.prefix_lines = 20
    context = Workspace([str(ws)], lambda: settings, cache_dir="")
    context.build()
    quote = str((ws / "app" / "models" / "quote.rb").resolve())
    invoice = str((ws / "app" / "models" / "invoice.rb").resolve())
    context.update_document(quote, QUOTE)
    # Viewed in the editor: the gitignored file never enters a prompt, the deploy script does.
    for name in ("config/master.rb", "script/deploy.sh"):
        context.note_view(str((ws / name).resolve()), 0)
    lines = QUOTE.split("\n")
    query = ContextQuery(
        path=quote,
        text=QUOTE,
        line=len(lines) - 1,
        character=len(lines[-1]),
        budget_tokens=2000,
        format="chat",
    )
    blocks = context.provider()(query, lambda text: len(text) // 3 + 1)
    prompt = "\n".join(block.text for block in blocks)
    # Invoice#total_with_tax looks like the code at the cursor: a similar window.
    assert "line.quantity * line.unit_price" in prompt, prompt
    assert "bundle exec rake db:migrate" in prompt  # recently viewed
    assert "sk-gitignored" not in prompt
    assert invoice != quote


def test_context_command_packs_ruby_code(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    quote = ws / "app" / "models" / "quote.rb"
    lines = QUOTE.split("\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "lsp_server",
            "context",
            f"{quote}:{len(lines)}:{len(lines[-1]) + 1}",
            "--workspace",
            str(ws),
            "--no-cache",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    paths = {s["path"] for s in data["snippets"]}
    assert "app/models/invoice.rb" in paths, data["snippets"]
